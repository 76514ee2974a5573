"""Keeps a source's state steps and the publication of their records in order.

A handler advances its state machine and hands the step's records to the
publisher. Usually that never waits; when it does (the producer queue is
full), no other step of the same source may run until those records are
handed over, or a later step's records could overtake them. An
``asyncio.Lock`` around every step would do that, at the price of two
coroutines per frame; the gate is a flag checked per frame and a future only
while a step waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable


class StepGate:
    """Shut while one step's records wait to be handed over."""

    def __init__(self) -> None:
        self._held: asyncio.Future[None] | None = None

    @property
    def shut(self) -> bool:
        return self._held is not None

    async def wait_open(self) -> None:
        """Return once no step is waiting; step at once after it, without awaiting."""
        while self._held is not None:
            # Shielded: a waiter that is cancelled must not cancel the holder's future.
            await asyncio.shield(self._held)

    def hold(self, waiting: Awaitable[object]) -> Awaitable[None]:
        """Shut the gate now and reopen it when ``waiting`` is done; the caller awaits it."""
        if self._held is not None:
            raise RuntimeError("a step ran while another was still waiting")
        held = asyncio.get_running_loop().create_future()
        self._held = held
        return self._release_after(waiting, held)

    async def _release_after(self, waiting: Awaitable[object], held: asyncio.Future[None]) -> None:
        try:
            await waiting
        finally:
            self._held = None
            held.set_result(None)
