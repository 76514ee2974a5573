"""The operations port: /metrics, /healthz and /readyz on one asyncio server.

A minimal HTTP/1.1 responder on the event loop rather than a thread, so it
reads the same state the pipeline writes without locks beyond those the
metrics library already has.
"""

from __future__ import annotations

import asyncio
import json
import logging

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from connector.ops.health import Health

log = logging.getLogger(__name__)

_MAX_REQUEST_HEAD = 8192


class OpsServer:
    """Serves metrics and health on one port until stopped."""

    def __init__(self, registry: CollectorRegistry, health: Health, host: str, port: int) -> None:
        self._registry = registry
        self._health = health
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Start listening; return the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
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

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        request_line = head[:_MAX_REQUEST_HEAD].split(b"\r\n", 1)[0].decode("latin-1")
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
            await writer.drain()
        except ConnectionError:
            log.debug("operations client went away before the response was sent")
        finally:
            writer.close()
