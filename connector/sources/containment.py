"""The one boundary between a stream and the code that turns its frames into records.

Parsers raise FrameError for a frame they refuse; anything else they (or the
driver around them) raise is a bug. A bug must cost one frame, not the
stream and not the process, so every frame passes this boundary:

* an exception that is not a FrameError becomes a dead letter with reason
  ``internal_error`` and stage ``parse`` (raised in venue code, reading the
  frame) or ``map`` (raised in the driver, applying what venue code made of
  it). The dead letter names the exception's type, never its text, which
  may quote the frame. It is counted in ``connector_internal_errors_total``
  and logged at ERROR, at most a few lines a minute per type, with the code
  locations it passed (no values);
* a frame above the configured size goes to the DLQ whole (``too_large``)
  instead of to a parser. The socket itself accepts up to four times the
  limit (a hard memory bound); a frame the WebSocket layer refused (beyond
  that, invalid UTF-8 in a text frame, a protocol error) leaves a dead
  letter with reason ``frame_rejected``: its size and close code, no content;
* a stream that keeps state across frames (a depth book) is told when one
  of its frames was dead-lettered, so it can announce the loss (a GAP) and
  resync.

REST answers are parsed through :meth:`Containment.call`, which gives the
same treatment to the same bugs.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from connector.ops.log_throttle import Throttle
from connector.ops.metrics import Metrics
from connector.pipeline import Publisher
from connector.records import OptionalHeader, Stage
from connector.sources.ws_session import FrameHandler, FrameRejection
from connector.venues.errors import FrameError, Reason

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

LossHandler = Callable[[str, str], None]
"""``diff_lost(key, reason)`` of a stream whose state a lost frame breaks (a depth book)."""

DEAD_LETTERED = "dead_lettered"
"""The ``reason`` a LossHandler is given for a frame that went to the DLQ."""

_VENUE_CODE = "connector.venues"
_WHERE_FRAMES = 6


def stage_of(exc: BaseException) -> str:
    """``parse`` when the innermost connector code it passed is venue code, else ``map``."""
    module = ""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__", "")
        if isinstance(name, str) and name.startswith("connector."):
            module = name
        tb = tb.tb_next
    return Stage.PARSE if module.startswith(_VENUE_CODE) else Stage.MAP


def where(exc: BaseException) -> str:
    """The code locations an exception passed (``module.py:line in function``), innermost last.

    Locations only: never the exception's text or any local value.
    """
    frames = traceback.extract_tb(exc.__traceback__)[-_WHERE_FRAMES:]
    return " < ".join(
        f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}"
        for frame in reversed(frames)
    )


class Containment:
    """Turns one stream's unexpected exceptions into dead-letter reasons, counted and logged."""

    def __init__(
        self,
        venue: str,
        stream: str,
        subscription: str,
        metrics: Metrics,
        throttle: Throttle | None = None,
    ) -> None:
        self._venue = venue
        self._stream = stream
        self._subscription = subscription
        self._metrics = metrics
        # A few lines a minute per exception type; every one is counted.
        self._throttle = throttle if throttle is not None else Throttle(window_s=60.0, burst=5)

    def internal_error(self, exc: Exception, what: str = "frame") -> FrameError:
        """The FrameError a bug on ``what`` is dead-lettered with; counts and logs it."""
        name = type(exc).__name__
        stage = stage_of(exc)
        self._metrics.internal_errors.labels(self._venue, self._stream, stage, name).inc()
        suppressed = self._throttle.admit(name)
        if suppressed is not None:
            log.error(
                "unexpected error handling a venue %s; it is dead-lettered and the stream goes on",
                what,
                extra={
                    "venue": self._venue,
                    "stream": self._stream,
                    "subscription": self._subscription,
                    "stage": stage,
                    "error": name,
                    "where": where(exc),
                    "suppressed": suppressed,
                },
            )
        return FrameError(Reason.INTERNAL_ERROR, f"{name} raised while handling the {what}", stage)

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args)``, any exception but a FrameError turned into ``internal_error``.

        For venue code run on a REST answer, whose callers already dead-letter
        on FrameError.
        """
        try:
            return fn(*args, **kwargs)
        except FrameError:
            raise
        except Exception as exc:  # noqa: BLE001 - the containment boundary, for REST answers
            raise self.internal_error(exc, "REST answer") from None


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a stream's dead letters go: its DLQ stream name and key."""

    stream: str
    key: str
    max_bytes: int
    """Frames above this size are dead-lettered unread (``websocket.max_message_bytes``)."""


class FrameBoundary:
    """A FrameHandler that contains every failure of the handler it wraps (see the module doc)."""

    def __init__(
        self,
        inner: FrameHandler,
        containment: Containment,
        publisher: Publisher,
        destination: Destination,
        on_lost: LossHandler | None = None,
    ) -> None:
        self._inner = inner
        self._containment = containment
        self._publisher = publisher
        self._destination = destination
        self._on_lost = on_lost

    async def on_open(self) -> None:
        await self._inner.on_open()

    async def on_close(self, reason: str) -> None:
        await self._inner.on_close(reason)

    async def close(self) -> None:
        await self._inner.close()

    def on_frame(self, data: str | bytes, received_ns: int) -> Awaitable[None] | None:
        # A str of n characters is at most 4n bytes in UTF-8: only frames that
        # could exceed the limit pay for measuring their encoded size.
        size, limit = len(data), self._destination.max_bytes
        if isinstance(data, str) and 4 * size > limit:
            size = len(data.encode("utf-8"))
        if size > limit:
            error = FrameError(
                Reason.TOO_LARGE, f"frame of {size} bytes exceeds {limit}", Stage.DECODE
            )
            return self._contain(error, data, received_ns)
        try:
            waiting = self._inner.on_frame(data, received_ns)
        except Exception as exc:  # noqa: BLE001 - the containment boundary: a frame, not the stream
            return self._contain(exc, data, received_ns)
        if waiting is None:
            return None
        return self._guarded(waiting, data, received_ns)

    async def _guarded(self, waiting: Awaitable[None], data: str | bytes, received_ns: int) -> None:
        try:
            await waiting
        except Exception as exc:  # noqa: BLE001 - the boundary, for what the handler awaited
            await self._contain(exc, data, received_ns)

    def _contain(self, exc: Exception, data: str | bytes, received_ns: int) -> Awaitable[None]:
        error = exc if isinstance(exc, FrameError) else self._containment.internal_error(exc)
        extra: tuple[tuple[str, str], ...] = ()
        if error.reason == Reason.INTERNAL_ERROR:
            extra = ((OptionalHeader.ERROR, type(exc).__name__),)
        # Told before the dead letter is awaited: the loss is announced before any later frame.
        if self._on_lost is not None:
            self._on_lost(self._destination.key, DEAD_LETTERED)
        return self._publisher.reject(
            self._destination.stream,
            error,
            data,
            received_ns,
            key=self._destination.key,
            extra_headers=extra,
        )

    async def on_frame_rejected(self, rejection: FrameRejection, received_ns: int) -> None:
        """A frame the WebSocket layer refused: a marker in the DLQ, never its content."""
        detail = (
            f"the WebSocket layer refused a frame ({rejection.cause}, close code {rejection.code})"
        )
        headers = [(OptionalHeader.CLOSE_CODE, str(rejection.code))]
        if rejection.size is not None:
            detail += f", {rejection.size} bytes"
            headers.append((OptionalHeader.FRAME_BYTES, str(rejection.size)))
        if rejection.limit is not None:
            headers.append((OptionalHeader.MAX_SIZE, str(rejection.limit)))
        await self._publisher.reject(
            self._destination.stream,
            FrameError(Reason.FRAME_REJECTED, detail, Stage.DECODE),
            b"",
            received_ns,
            key=self._destination.key,
            extra_headers=tuple(headers),
        )

    def __getattr__(self, name: str) -> object:
        # Handlers may expose more than the FrameHandler protocol (e.g. a hook
        # the session looks up); the boundary is transparent to those.
        return getattr(self._inner, name)
