"""A T+ market-data service (MDS) on 127.0.0.1 that speaks the venue's wire protocol.

Serves the real paths on one port: ``WS /marketdepth/diff/{asset}``,
``WS /trades``, ``WS /klines/diff/{asset}`` and the plain-HTTP snapshot
``GET /marketdepth/{asset}``. The market itself is the pure
:class:`~connector.simulators.book_model.MarketModel`; this module only
schedules it and puts its frames on sockets.

Snapshot consistency: a model step and the broadcast of its frame happen in
one synchronous call (``broadcast`` writes without awaiting), and the
snapshot is rendered synchronously inside ``process_request``. So a snapshot
with ``sequence_number`` S always contains exactly the diffs <= S, and every
diff > S is written to each depth socket after it.

Fault switches (``skip_sequence``, ``disconnect_all``, ``send_garbage``,
``pause``/``resume``) let tests and ``connector dev`` exercise the gap,
reconnect and bad-frame paths of a client deterministically.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal, get_args
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosedError
from websockets.http11 import Request, Response

from connector.simulators.book_model import (
    Book,
    DepthDiff,
    MarketModel,
    Snapshot,
    Timebar,
    TradeEvent,
    render_depth,
    render_klines,
    render_snapshot,
    render_trade,
)
from connector.simulators.lifecycle import SimulatorLifecycle

log = logging.getLogger(__name__)
_wire_log = logging.getLogger(f"{__name__}.wire")
"""Handed to websockets, which logs every handshake and HTTP answer at INFO."""

StreamKind = Literal["depth", "trades", "klines"]
STREAM_KINDS: tuple[StreamKind, ...] = get_args(StreamKind)

DEPTH_PREFIX = "/marketdepth/diff/"
KLINES_PREFIX = "/klines/diff/"
SNAPSHOT_PREFIX = "/marketdepth/"
TRADES_PATH = "/trades"


def depth_path(asset: str) -> str:
    return f"{DEPTH_PREFIX}{asset}"


def klines_path(asset: str) -> str:
    return f"{KLINES_PREFIX}{asset}"


def _request_path(raw: str) -> str:
    """The path without query; the venue's clients put asset ids in raw (``@`` unescaped)."""
    return unquote(raw.split("?", 1)[0])


def _asset_segment(path: str, prefix: str) -> str | None:
    if not path.startswith(prefix):
        return None
    asset = path[len(prefix) :]
    return asset if asset and "/" not in asset else None


def _stream_kind(path: str) -> StreamKind | None:
    if path == TRADES_PATH:
        return "trades"
    if path.startswith(DEPTH_PREFIX):
        return "depth"
    if path.startswith(KLINES_PREFIX):
        return "klines"
    return None


@dataclass(slots=True)
class Emitted:
    """What was actually written to at least one client, in order.

    The market moves whether or not anyone listens, but an event sent to
    nobody (no client connected, or only silenced ones) is not recorded:
    this is what a client could have received. Skipped diffs are absent.
    Each record is bounded by the simulator's ``max_history``.
    """

    depth: dict[str, deque[DepthDiff]]
    trades: deque[TradeEvent]
    klines: dict[str, deque[list[Timebar]]]
    garbage: list[tuple[StreamKind, bytes | str]] = field(default_factory=list)


class TplusMarketSimulator(SimulatorLifecycle):
    """The T+ MDS streams and snapshot endpoint over a seeded random-walk market."""

    def __init__(
        self,
        assets: Sequence[str],
        *,
        seed: int = 1,
        depth_interval_s: float = 0.05,
        trade_interval_s: float = 0.2,
        kline_interval_s: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        levels: int = 10,
        clock_ns: Callable[[], int] = time.time_ns,
        max_history: int = 100_000,
        ping_interval_s: float | None = 20.0,
    ) -> None:
        """``ping_interval_s=None`` makes a venue that never drops a slow reader."""
        self.model = MarketModel(assets, seed, levels, max_history=max_history)
        self.emitted = Emitted(
            depth={asset: deque(maxlen=max_history) for asset in self.model.assets},
            trades=deque(maxlen=max_history),
            klines={asset: deque(maxlen=max_history) for asset in self.model.assets},
        )
        self._intervals: dict[StreamKind, float] = {
            "depth": depth_interval_s,
            "trades": trade_interval_s,
            "klines": kline_interval_s,
        }
        self._host = host
        self._port = port
        self._clock_ns = clock_ns
        self._server: Server | None = None
        self._base_url: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._clients: dict[str, set[ServerConnection]] = {}
        self._clients_changed = asyncio.Condition()
        self._running = asyncio.Event()
        self._running.set()
        self._skips: dict[str, int] = {}
        self._garbage: dict[StreamKind, list[tuple[bytes | str, bool | None]]] = {
            kind: [] for kind in STREAM_KINDS
        }
        self._silenced: set[ServerConnection] = set()
        self._ping_interval_s = ping_interval_s
        self._trade_sent = asyncio.Event()
        self._rejections = 0
        self._rejection_status = HTTPStatus.SERVICE_UNAVAILABLE

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> str:
        """Listen and start the generators; returns the base URL ``http://127.0.0.1:PORT``."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._server = await serve(
            self._handle,
            self._host,
            self._port,
            process_request=self._process_request,
            logger=_wire_log,
            ping_interval=self._ping_interval_s,
        )
        port = self._server.sockets[0].getsockname()[1]
        self._base_url = f"http://{self._host}:{port}"
        emitters: dict[StreamKind, Callable[[], None]] = {
            "depth": self._emit_depth,
            "trades": self._emit_trade,
            "klines": self._emit_klines,
        }
        for kind, emit in emitters.items():
            task = asyncio.create_task(
                self._generate(self._intervals[kind], emit), name=f"tplus-sim-{kind}"
            )
            task.add_done_callback(self._generator_done)
            self._tasks.append(task)
        log.info("T+ market simulator listening on %s", self._base_url)
        return self._base_url

    async def stop(self) -> None:
        """Stop the generators and close every socket (code 1001); safe to call twice."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
            log.info("T+ market simulator on %s stopped", self._base_url)
        self._clients.clear()
        failures = [r for r in results if isinstance(r, Exception)]
        if failures:
            raise failures[0]

    # -- fault switches --------------------------------------------------------

    def skip_sequence(self, asset: str, count: int = 1) -> None:
        """Make the next diff for ``asset`` jump its sequence number by ``count + 1``.

        The ``count`` skipped diffs are still applied to the model's book, as
        a venue would have applied them, but never sent: only a client that
        resyncs from a snapshot ends up with the right book.
        """
        if asset not in self.model.assets:
            raise KeyError(f"unknown asset {asset!r}")
        if count < 1:
            raise ValueError("count must be at least 1")
        self._skips[asset] = self._skips.get(asset, 0) + count
        log.info("next depth diff for asset %s skips %d sequence numbers", asset, count)

    async def disconnect_all(self, code: int = 1011) -> None:
        """Close every open WebSocket with ``code`` (a close frame, as a failing venue sends).

        The connections are forgotten before the close starts, so nothing
        more is broadcast to them and ``wait_connected`` counts only new
        clients afterwards.
        """
        connections = [conn for group in self._clients.values() for conn in group]
        for group in self._clients.values():
            group.clear()
        log.info("disconnecting %d clients with close code %d", len(connections), code)
        await asyncio.gather(*(conn.close(code, "simulated venue failure") for conn in connections))

    def send_garbage(
        self, stream: StreamKind, payload: bytes | str, *, as_text: bool | None = None
    ) -> None:
        """Send ``payload`` as an EXTRA frame just before the next real event(s) of ``stream``.

        Nothing is replaced: on the next tick of that stream kind every
        client of that kind (for ``depth``/``klines``: every asset's path)
        first receives ``payload`` (``str`` as a text frame, ``bytes`` as a
        binary frame, unless ``as_text`` says otherwise: ``bytes`` with
        ``as_text=True`` is a text frame that need not be UTF-8), then the
        tick's real events as usual. So no sequence number or trade id goes
        missing because of garbage.
        """
        if stream not in STREAM_KINDS:
            raise ValueError(f"stream must be one of {STREAM_KINDS}, got {stream!r}")
        self._garbage[stream].append((payload, as_text))

    def silence(self, stream: StreamKind) -> None:
        """Stop sending to the clients now connected on ``stream``, keeping their sockets open.

        A venue that goes quiet without closing: only the client's own
        watchdog can notice. Clients that connect afterwards are served.
        """
        if stream not in STREAM_KINDS:
            raise ValueError(f"stream must be one of {STREAM_KINDS}, got {stream!r}")
        for path, group in self._clients.items():
            if _stream_kind(path) == stream:
                self._silenced.update(group)
                group.clear()
        log.info("silenced the %s clients", stream)

    def reject_handshakes(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` WebSocket upgrades with HTTP ``status`` instead."""
        self._rejections += count
        self._rejection_status = HTTPStatus(status)

    def pause(self) -> None:
        """Stop generating events (sockets stay open); no step happens after this returns."""
        self._running.clear()
        log.info("T+ market simulator paused")

    def resume(self) -> None:
        self._running.set()
        log.info("T+ market simulator resumed")

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # -- observability ---------------------------------------------------------

    def snapshot(self, asset: str) -> Snapshot:
        """What ``GET /marketdepth/{asset}`` would answer right now."""
        return self.model.snapshot(asset)

    def book(self, asset: str) -> Book:
        """A copy of the model's current book for ``asset``."""
        return self.model.book(asset)

    def connected(self, path: str) -> int:
        return len(self._clients.get(path, ()))

    async def wait_emitted_trades(self, count: int) -> None:
        """Return once at least ``count`` trades have been written to a client."""
        while len(self.emitted.trades) < count:
            self._trade_sent.clear()
            await self._trade_sent.wait()

    async def wait_connected(self, path: str, count: int = 1) -> None:
        """Return once at least ``count`` clients are registered on ``path``."""
        async with self._clients_changed:
            await self._clients_changed.wait_for(lambda: self.connected(path) >= count)

    # -- HTTP and WebSocket handling -------------------------------------------

    def _unknown(self, connection: ServerConnection, what: str) -> Response:
        return _json_response(connection, HTTPStatus.NOT_FOUND, json.dumps({"error": what}))

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Route by path; answer the snapshot and every 404 before any upgrade.

        Synchronous on purpose: the snapshot is rendered in the same loop
        step as the request is read, never between a model step and its
        broadcast.
        """
        path = _request_path(request.path)
        if self._rejections and _stream_kind(path) is not None:
            self._rejections -= 1
            return _json_response(
                connection, self._rejection_status, json.dumps({"error": "rejected"})
            )
        if path == TRADES_PATH:
            return None
        for prefix in (DEPTH_PREFIX, KLINES_PREFIX):
            asset = _asset_segment(path, prefix)
            if asset is not None:
                return (
                    None
                    if asset in self.model.assets
                    else self._unknown(connection, "unknown asset")
                )
        asset = _asset_segment(path, SNAPSHOT_PREFIX)
        if asset is None:
            return self._unknown(connection, "not found")
        if asset not in self.model.assets:
            return self._unknown(connection, "unknown asset")
        return _json_response(
            connection, HTTPStatus.OK, render_snapshot(self.model.snapshot(asset))
        )

    async def _handle(self, connection: ServerConnection) -> None:
        """Keep the socket registered until it closes; clients are never expected to send."""
        assert connection.request is not None
        path = _request_path(connection.request.path)
        group = self._clients.setdefault(path, set())
        group.add(connection)
        log.debug("client %s connected to %s", connection.remote_address, path)
        async with self._clients_changed:
            self._clients_changed.notify_all()
        try:
            async for message in connection:
                log.debug("ignored %d-byte client frame on %s", len(message), path)
        except ConnectionClosedError as exc:
            log.debug("client on %s closed abnormally: %s", path, exc)
        finally:
            group.discard(connection)
            self._silenced.discard(connection)
            log.debug("client %s left %s", connection.remote_address, path)

    # -- generators ------------------------------------------------------------

    async def _generate(self, interval_s: float, emit: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            while not self._running.is_set():
                await self._running.wait()
            emit()

    def _generator_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped", task.get_name(), exc_info=task.exception())

    def _send_garbage(self, kind: StreamKind, paths: Sequence[str]) -> None:
        payloads, self._garbage[kind] = self._garbage[kind], []
        for payload, as_text in payloads:
            for path in paths:
                clients = self._clients.get(path, ())
                if clients:
                    broadcast(clients, payload, text=as_text)
                    self.emitted.garbage.append((kind, payload))

    def _emit_depth(self) -> None:
        self._send_garbage("depth", [depth_path(asset) for asset in self.model.assets])
        for asset in self.model.assets:
            for _ in range(self._skips.pop(asset, 0)):
                self.model.step_depth(asset)
            diff = self.model.step_depth(asset)
            clients = self._clients.get(depth_path(asset), ())
            if clients:
                broadcast(clients, render_depth(diff))
                self.emitted.depth[asset].append(diff)

    def _emit_trade(self) -> None:
        self._send_garbage("trades", [TRADES_PATH])
        trade = self.model.step_trade(self._clock_ns())
        clients = self._clients.get(TRADES_PATH, ())
        if clients:
            broadcast(clients, render_trade(trade))
            self.emitted.trades.append(trade)
            self._trade_sent.set()

    def _emit_klines(self) -> None:
        self._send_garbage("klines", [klines_path(asset) for asset in self.model.assets])
        now_ns = self._clock_ns()
        for asset in self.model.assets:
            bars = self.model.step_kline(asset, now_ns)
            clients = self._clients.get(klines_path(asset), ())
            if clients:
                broadcast(clients, render_klines(bars))
                self.emitted.klines[asset].append(bars)


def _json_response(connection: ServerConnection, status: HTTPStatus, body: str) -> Response:
    response = connection.respond(status, body)
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response
