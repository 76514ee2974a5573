"""What every venue simulator shares: async-context lifecycle and its own addresses."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class SimulatorLifecycle(ABC):
    """``async with`` starts and stops the simulator; subclasses set ``_base_url`` in start."""

    _base_url: str | None = None

    @abstractmethod
    async def start(self) -> object: ...

    @abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` once started."""
        if self._base_url is None:
            raise RuntimeError("simulator not started")
        return self._base_url

    def ws_url(self, path: str) -> str:
        """``ws://`` URL of a stream path on this simulator."""
        return "ws://" + self.base_url.removeprefix("http://") + path
