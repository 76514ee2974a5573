"""The benchmark's venue: a local WebSocket server that sends pre-built frames.

Frames are encoded once, before the run, and written to the socket in
chunks with the transport's own flow control, so the server costs next to
nothing and TCP back-pressure paces it at maximum rate. At a fixed rate it
writes whatever is due every millisecond or so (the event loop's timer
resolution), which is how a venue's frames arrive too: in small bursts.

It also plays the two venues' handshakes the connector needs: the T+ REST
depth snapshot (a stream that has one starts only once its snapshot is
served, so the book goes live at once), and the tastytrade Account
Streamer's ``connect``/``heartbeat`` replies and the REST baseline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from connector.bench.frames import ACCOUNT, chunks, due, ws_text_frame

log = logging.getLogger(__name__)

DEPTH_PREFIX = "/marketdepth/diff/"
SNAPSHOT_PREFIX = "/marketdepth/"
STREAMER_PATH = "/streamer"

_CHUNK_FRAMES = 256
_TICK_S = 0.0005
_BASELINE_OBJECTS = {
    "balances": {"account-number": ACCOUNT, "cash-balance": "100000.00", "currency": "USD"},
    "trading-status": {"account-number": ACCOUNT, "id": 1, "is-closed": False},
}


@dataclass
class Stream:
    """What one WebSocket path sends in the current run."""

    frames: tuple[bytes, ...]
    rate: float | None = None
    """Events per second, or None for as fast as the reader takes them."""
    snapshot: str | None = None
    """A depth snapshot body: served over REST, and streaming waits for it."""
    handshake: bool = False
    """Answer the Account Streamer ``connect`` before streaming."""
    encoded: tuple[bytes, ...] = ()
    snapshot_served: asyncio.Event = field(default_factory=asyncio.Event)
    started_ns: int | None = None
    finished_ns: int | None = None


class FeedServer:
    """Serves the streams loaded for the current run on 127.0.0.1."""

    def __init__(self) -> None:
        self._server: Server | None = None
        self._streams: dict[str, Stream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting = 0
        self._go = asyncio.Event()

    async def start(self) -> str:
        """Listen; return the base URL ``http://127.0.0.1:PORT``."""
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            compression=None,
            ping_interval=None,
            max_size=None,
        )
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def load(self, streams: dict[str, Stream]) -> None:
        """Replace the streams served from now on (paths → streams).

        Streaming starts when every stream of the load is ready (connected,
        and its snapshot served), so concurrent processes start together.
        """
        for stream in streams.values():
            stream.encoded = tuple(ws_text_frame(f) for f in stream.frames)
        self._streams = streams
        self._waiting = len(streams)
        self._go = asyncio.Event()

    # --- HTTP ------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path in self._streams:
            return None
        if path.startswith(SNAPSHOT_PREFIX):
            stream = self._streams.get(DEPTH_PREFIX + path.removeprefix(SNAPSHOT_PREFIX))
            if stream is not None and stream.snapshot is not None:
                stream.snapshot_served.set()
                return _json(connection, HTTPStatus.OK, stream.snapshot)
        if path.startswith("/accounts/"):
            return _json(connection, HTTPStatus.OK, _baseline_body(path))
        return _json(connection, HTTPStatus.NOT_FOUND, '{"error":"not served"}')

    # --- WebSocket -------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        stream = self._streams.get(urlsplit(ws.request.path if ws.request else "").path)
        if stream is None:
            await ws.close(1008, "unknown stream")
            return
        try:
            if stream.handshake:
                await self._connect(ws)
            if stream.snapshot is not None:
                await stream.snapshot_served.wait()
            go = self._go
            self._waiting -= 1
            if self._waiting <= 0:
                go.set()
            await go.wait()
            await self._send(ws, stream)
            await ws.wait_closed()
        except ConnectionClosed:
            return

    async def _connect(self, ws: ServerConnection) -> None:
        """Answer the streamer's ``connect``, then every later request, with ``ok``."""
        request = json.loads(await ws.recv())
        await ws.send(_reply(request))
        task = asyncio.create_task(self._answer(ws))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, ws: ServerConnection) -> None:
        try:
            async for message in ws:
                await ws.send(_reply(json.loads(message)))
        except ConnectionClosed:
            return

    async def _send(self, ws: ServerConnection, stream: Stream) -> None:
        stream.started_ns = time.time_ns()
        if stream.rate is None:
            for chunk in chunks(stream.encoded, _CHUNK_FRAMES):
                ws.transport.write(chunk)
                await ws.drain()
        else:
            loop = asyncio.get_running_loop()
            start = loop.time()
            sent = 0
            total = len(stream.encoded)
            while sent < total:
                now = due(stream.rate, loop.time() - start, total)
                if now > sent:
                    ws.transport.write(b"".join(stream.encoded[sent:now]))
                    sent = now
                    await ws.drain()
                await asyncio.sleep(_TICK_S)
        stream.finished_ns = time.time_ns()


def _reply(request: dict[str, object]) -> str:
    return json.dumps(
        {
            "status": "ok",
            "action": request.get("action"),
            "web-socket-session-id": "bench",
            "request-id": request.get("request-id"),
        }
    )


def _baseline_body(path: str) -> str:
    for name, obj in _BASELINE_OBJECTS.items():
        if f"/{name}" in path:
            return json.dumps({"data": obj})
    return json.dumps({"data": {"items": []}})


def _json(connection: ServerConnection, status: HTTPStatus, body: str) -> Response:
    response = connection.respond(status, body)
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response
