"""The operations port: /metrics, /healthz and /readyz on one asyncio server.

A minimal HTTP/1.1 responder on the event loop rather than a thread, so it
reads the same state the pipeline writes without locks beyond those the
metrics library already has.

The port is reachable by whatever can reach the pod, so a peer is given
little: a request head of at most 8 KiB, a few seconds to send it and to
take the answer, and one of a fixed number of connection slots. Beyond the
cap a connection is closed at once, so memory and descriptors stay flat
however many a peer opens (while the cap is full, probes may be refused: the
chart's NetworkPolicy keeps other pods off the port).
"""

from __future__ import annotations

import asyncio
import json
import logging

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from connector.ops.health import Health

log = logging.getLogger(__name__)

_MAX_REQUEST_HEAD = 8192
"""Longest request head read; a request line and a few headers need far less."""
HEADER_TIMEOUT_S = 5.0
"""Time a peer has to send its request head, and again to take the answer."""
MAX_CONNECTIONS = 64
"""Connections served at once; Prometheus and the kubelet need a handful."""


class Refusal:
    """Why a connection was closed unserved (the ``reason`` label)."""

    OVER_CAP = "over_cap"
    SLOW = "slow"
    TOO_LARGE = "too_large"


class OpsServer:
    """Serves metrics and health on one port until stopped."""

    def __init__(
        self,
        registry: CollectorRegistry,
        health: Health,
        host: str,
        port: int,
        *,
        header_timeout_s: float = HEADER_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
        refused: Counter | None = None,
    ) -> None:
        self._registry = registry
        self._health = health
        self._host = host
        self._port = port
        self._header_timeout_s = header_timeout_s
        self._max_connections = max_connections
        self._refused = refused
        self._open = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Start listening; return the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(
            # The backlog bounds how many connections one accept burst takes in.
            self._admit,
            self._host,
            self._port,
            limit=_MAX_REQUEST_HEAD,
            backlog=self._max_connections,
        )
        port: int = self._server.sockets[0].getsockname()[1]
        log.info("operations server listening", extra={"host": self._host, "port": port})
        return port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _route(self, method: str, path: str) -> tuple[int, str, bytes]:
        path = path.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)
        if path == "/healthz":
            return 200, "text/plain", b"ok\n"
        if path == "/readyz":
            conditions = self._health.snapshot()
            ready = self._health.ready()
            body = {
                "ready": ready,
                "conditions": {
                    name: {"ok": c.ok, "detail": c.detail} for name, c in sorted(conditions.items())
                },
            }
            return (200 if ready else 503), "application/json", json.dumps(body).encode() + b"\n"
        return 404, "text/plain", b"not found\n"

    def _refuse(self, reason: str) -> None:
        if self._refused is not None:
            self._refused.labels(reason).inc()

    async def _admit(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self._max_connections:
            self._refuse(Refusal.OVER_CAP)
            writer.transport.abort()
            return
        self._open += 1
        answered = False
        try:
            answered = await self._handle(reader, writer)
        finally:
            self._open -= 1
            if answered:
                writer.close()
            else:
                # Nothing worth flushing: free the descriptor now, not after a TCP timeout.
                writer.transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the peer was refused or went away."""
        try:
            async with asyncio.timeout(self._header_timeout_s):
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            self._refuse(Refusal.SLOW)
            return False
        except asyncio.LimitOverrunError:
            self._refuse(Refusal.TOO_LARGE)
            return False
        except (asyncio.IncompleteReadError, ConnectionError):
            return False
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3:
            status, ctype, body = 400, "text/plain", b"bad request\n"
            method = "GET"
        else:
            method = parts[0]
            status, ctype, body = self._route(method, parts[1])
        reason = {
            200: "OK",
            400: "Bad Request",
            404: "Not Found",
            405: "Method Not Allowed",
            503: "Service Unavailable",
        }[status]
        header = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        writer.write(header if method == "HEAD" else header + body)
        try:
            async with asyncio.timeout(self._header_timeout_s):
                await writer.drain()
        except TimeoutError:
            self._refuse(Refusal.SLOW)
            return False
        except ConnectionError:
            log.debug("operations client went away before the response was sent")
            return False
        return True
