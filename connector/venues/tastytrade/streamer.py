"""One Account Streamer connection as a sans-I/O state machine.

The driver reports what happened (the socket opened, a frame arrived, time
passed, the baseline arrived, the socket closed) and gets back a ``Step``:
frames to send, records to publish, frames to dead-letter, and whether to
fetch a baseline or replace the socket. No clock and no socket live here, so
the connect handshake, heartbeat liveness and baseline ordering are tested
with plain numbers.

The life of a connection::

    IDLE --open--> CONNECTING --ok connect--> BASELINE --baseline--> LIVE
                        |  error / no ack         |  unanswered heartbeat
                        +------------> CLOSING <--+

* ``connect`` must be acknowledged within ``connect_timeout_s``; an error
  reply (matched by ``request-id`` or, when the venue leaves it out, by
  action) ends the socket, since the venue closes it anyway.
* Heartbeats go out every ``heartbeat_interval_s`` after the ``connect`` ack,
  each with the token the driver hands in at that moment. A heartbeat not
  answered within ``heartbeat_timeout_s`` of being sent ends the socket.
* From ``open`` until the baseline is in, notifications are held back and
  published right after the baseline records, so on every key the baseline
  comes first and the changes that followed it come after it. At most
  ``max_buffered`` are held; beyond that the oldest are published early.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from connector.records import Record
from connector.venues import json_numbers
from connector.venues.errors import FrameError
from connector.venues.tastytrade.messages import (
    Action,
    ElementKind,
    Reply,
    Status,
    classify,
    client_message,
    elements,
    parse_reply,
)
from connector.venues.tastytrade.notifications import (
    STREAMER,
    TYPES,
    account_of,
    parse_notification,
)


class Phase(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    BASELINE = "baseline"
    LIVE = "live"
    CLOSING = "closing"


class ReplaceReason:
    """Why the streamer asks for its socket to be replaced (a closed set: metric labels)."""

    CONNECT_TIMEOUT = "connect_timeout"
    CONNECT_REJECTED = "connect_rejected"
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"
    HEARTBEAT_REJECTED = "heartbeat_rejected"


@dataclass(frozen=True, slots=True)
class StreamerConfig:
    accounts: tuple[str, ...]
    heartbeat_interval_s: float = 20.0
    heartbeat_timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    public_watchlists: bool = False
    quote_alerts: bool = False
    source: str | None = None
    max_buffered: int = 10_000


@dataclass(frozen=True, slots=True)
class Rejected:
    """A frame (or one element of a batch) bound for the DLQ."""

    stream: str
    error: FrameError
    raw: bytes | str
    received_ns: int
    key: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Step:
    """What the driver must do after one input."""

    send: list[str] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    errors: list[Reply] = field(default_factory=list)
    """Error replies that do not end the socket (for the log)."""
    start_baseline: bool = False
    replace: str | None = None
    """A ReplaceReason when the socket must be closed and opened again."""
    token_rejected: bool = False
    """The venue refused the credential: get a fresh one before the next use."""
    published_early: int = 0
    """Held-back notifications published before the baseline because the buffer was full."""


@dataclass(frozen=True, slots=True)
class _Pending:
    action: str
    sent_at: float


class AccountStreamer:
    """The protocol state of one Account Streamer socket at a time."""

    def __init__(self, config: StreamerConfig) -> None:
        if not config.accounts:
            raise ValueError("at least one account is needed")
        self.config = config
        self.phase = Phase.IDLE
        self.session_id: str | None = None
        """The venue's ``web-socket-session-id`` of the current socket."""
        self._auth_token = ""
        self._next_id = 1
        self._pending: dict[int, _Pending] = {}
        self._connect_deadline: float | None = None
        self._next_heartbeat: float | None = None
        self._buffer: deque[Record] = deque()

    # --- inputs ----------------------------------------------------------------

    def open(self, now: float, auth_token: str) -> Step:
        """A new socket is open: send ``connect`` with the configured accounts."""
        step = self.closed()
        self.phase = Phase.CONNECTING
        self._auth_token = auth_token
        step.send.append(self._request(Action.CONNECT, now, value=self.config.accounts))
        self._connect_deadline = now + self.config.connect_timeout_s
        return step

    def receive(self, data: str | bytes, received_ns: int, now: float) -> Step:
        """One server frame: a notification, a reply, or a batch of them."""
        step = Step()
        try:
            message = json_numbers.loads(data)
            items = elements(message)
        except FrameError as exc:
            step.rejected.append(Rejected(STREAMER, exc, data, received_ns))
            return step
        batched = isinstance(message, dict) and "results" in message and "type" not in message
        for index, element in enumerate(items):
            headers = (("results_index", str(index)),) if batched else ()
            try:
                kind = classify(element)
                if kind is ElementKind.REPLY:
                    self._on_reply(parse_reply(element), now, step)
                    continue
            except FrameError as exc:
                step.rejected.append(Rejected(STREAMER, exc, data, received_ns, None, headers))
                continue
            self._on_notification(element, data, received_ns, headers, step)
        return step

    def heartbeat_due(self, now: float) -> bool:
        return (
            self.phase in (Phase.BASELINE, Phase.LIVE)
            and self._next_heartbeat is not None
            and now >= self._next_heartbeat
        )

    def heartbeat(self, now: float, auth_token: str) -> Step:
        """Send the due heartbeat carrying ``auth_token`` (the current one)."""
        step = Step()
        if not self.heartbeat_due(now):
            return step
        self._auth_token = auth_token
        step.send.append(self._request(Action.HEARTBEAT, now))
        self._next_heartbeat = now + self.config.heartbeat_interval_s
        return step

    def check(self, now: float) -> Step:
        """Enforce the connect and heartbeat deadlines."""
        step = Step()
        if self.phase is Phase.CONNECTING:
            if self._connect_deadline is not None and now >= self._connect_deadline:
                self._replace(step, ReplaceReason.CONNECT_TIMEOUT)
        elif self.phase in (Phase.BASELINE, Phase.LIVE):
            oldest = self._oldest_heartbeat()
            if oldest is not None and now >= oldest + self.config.heartbeat_timeout_s:
                self._replace(step, ReplaceReason.HEARTBEAT_TIMEOUT)
        return step

    def next_deadline(self) -> float | None:
        """When ``heartbeat``/``check`` next have something to do (same clock as ``now``)."""
        times: list[float] = []
        if self.phase is Phase.CONNECTING and self._connect_deadline is not None:
            times.append(self._connect_deadline)
        if self.phase in (Phase.BASELINE, Phase.LIVE):
            if self._next_heartbeat is not None:
                times.append(self._next_heartbeat)
            oldest = self._oldest_heartbeat()
            if oldest is not None:
                times.append(oldest + self.config.heartbeat_timeout_s)
        return min(times) if times else None

    def baseline(self, records: Sequence[Record]) -> Step:
        """The baseline is in: publish it, then the notifications held back meanwhile."""
        step = Step()
        if self.phase is not Phase.BASELINE:
            return step  # the socket it belonged to is gone; the next one fetches its own
        step.records.extend(records)
        step.records.extend(self._buffer)
        self._buffer.clear()
        self.phase = Phase.LIVE
        return step

    def closed(self) -> Step:
        """The socket is gone: release whatever was held back, and forget the connection."""
        step = Step(records=list(self._buffer))
        self._buffer.clear()
        self.phase = Phase.IDLE
        self.session_id = None
        self._pending.clear()
        self._next_id = 1
        self._connect_deadline = None
        self._next_heartbeat = None
        return step

    # --- internals -------------------------------------------------------------

    def _request(self, action: str, now: float, value: Sequence[str] | None = None) -> str:
        request_id = self._next_id
        self._next_id += 1
        self._pending[request_id] = _Pending(action, now)
        return client_message(
            action, self._auth_token, request_id, value=value, source=self.config.source
        )

    def _oldest_heartbeat(self) -> float | None:
        times = [p.sent_at for p in self._pending.values() if p.action == Action.HEARTBEAT]
        return min(times) if times else None

    def _match(self, reply: Reply) -> tuple[int, str] | None:
        """The request a reply answers: by ``request-id``, else the oldest of its action."""
        if reply.request_id is not None and reply.request_id in self._pending:
            return reply.request_id, self._pending.pop(reply.request_id).action
        if reply.action is not None:
            for request_id, pending in sorted(self._pending.items()):
                if pending.action == reply.action:
                    del self._pending[request_id]
                    return request_id, pending.action
        return None

    def _replace(self, step: Step, reason: str) -> None:
        if self.phase in (Phase.IDLE, Phase.CLOSING):
            return
        self.phase = Phase.CLOSING
        step.replace = reason

    def _on_reply(self, reply: Reply, now: float, step: Step) -> None:
        matched = self._match(reply)
        action = matched[1] if matched is not None else None
        if reply.status is Status.ERROR:
            if action == Action.CONNECT:
                step.token_rejected = True
                self._replace(step, ReplaceReason.CONNECT_REJECTED)
            elif action == Action.HEARTBEAT:
                step.token_rejected = True
                self._replace(step, ReplaceReason.HEARTBEAT_REJECTED)
            else:
                step.errors.append(reply)
            return
        if action == Action.CONNECT and self.phase is Phase.CONNECTING:
            self.phase = Phase.BASELINE
            self.session_id = reply.session_id
            self._connect_deadline = None
            self._next_heartbeat = now + self.config.heartbeat_interval_s
            step.start_baseline = True
            if self.config.public_watchlists:
                step.send.append(self._request(Action.PUBLIC_WATCHLISTS, now))
            if self.config.quote_alerts:
                step.send.append(self._request(Action.QUOTE_ALERTS, now))
        elif action == Action.HEARTBEAT and matched is not None:
            # Any answer proves the socket alive; older unanswered heartbeats are moot.
            answered = matched[0]
            for request_id in [
                i for i, p in self._pending.items() if p.action == Action.HEARTBEAT and i < answered
            ]:
                del self._pending[request_id]

    def _on_notification(
        self,
        element: dict[str, object],
        raw: str | bytes,
        received_ns: int,
        headers: tuple[tuple[str, str], ...],
        step: Step,
    ) -> None:
        try:
            record = parse_notification(element, received_ns)
        except FrameError as exc:
            name = element.get("type")
            known = TYPES.get(name) if isinstance(name, str) else None
            if known is None:
                label = name if isinstance(name, str) else type(name).__name__
                headers = (*headers, ("notification_type", label[:100]))
            step.rejected.append(
                Rejected(
                    known.stream if known is not None else STREAMER,
                    exc,
                    raw,
                    received_ns,
                    account_of(element.get("data")),
                    headers,
                )
            )
            return
        if self.phase in (Phase.CONNECTING, Phase.BASELINE) or self._buffer:
            self._buffer.append(record)
            while len(self._buffer) > self.config.max_buffered:
                step.records.append(self._buffer.popleft())
                step.published_early += 1
        else:
            step.records.append(record)
