"""Credential headers never reach websockets' DEBUG handshake lines."""

from __future__ import annotations

import logging

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode

from connector.ops import log_format
from connector.ops.wire_log import REDACTED, wire_logger

TOKEN = "tok-3b1f9e0c7d2a"


def test_credential_header_lines_are_redacted_in_both_directions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    adapter = wire_logger("test.wire.unit")
    with caplog.at_level(logging.DEBUG, logger="test.wire.unit"):
        adapter.debug("> %s: %s", "Authorization", f"Bearer {TOKEN}")
        adapter.debug("< %s: %s", "authorization", f"Bearer {TOKEN}")
        adapter.debug("< %s: %s", "Cookie", "session=x")
        adapter.debug("> %s: %s", "User-Id", "07174645")
        adapter.info("connection open")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"> Authorization: {REDACTED}",
        f"< authorization: {REDACTED}",
        f"< Cookie: {REDACTED}",
        "> User-Id: 07174645",
        "connection open",
    ]


async def test_a_real_handshake_at_debug_logs_no_token(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("hi")

    with caplog.at_level(logging.DEBUG):
        async with serve(handler, "127.0.0.1", 0, logger=wire_logger("test.wire.server")) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(
                f"ws://127.0.0.1:{port}/x",
                additional_headers={"Authorization": f"Bearer {TOKEN}"},
                logger=wire_logger("test.wire.client"),
            ) as ws:
                assert await ws.recv() == "hi"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "> GET /x HTTP/1.1" in text  # the handshake was logged at DEBUG
    assert f"> Authorization: {REDACTED}" in text and f"< Authorization: {REDACTED}" in text
    assert TOKEN not in text


def test_data_frames_are_logged_by_size_never_by_content(
    caplog: pytest.LogCaptureFixture,
) -> None:
    adapter = wire_logger("test.wire.frames")
    message = f'{{"action":"heartbeat","auth-token":"Bearer {TOKEN}","value":["5WT00001"]}}'
    with caplog.at_level(logging.DEBUG, logger="test.wire.frames"):
        adapter.debug("> %s", Frame(Opcode.TEXT, message.encode()))
        adapter.debug("< %s", Frame(Opcode.BINARY, b"\x00secret"))
        adapter.debug("> %s", Frame(Opcode.CLOSE, b"\x03\xe8Bye"))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == f"> TEXT {REDACTED} [{len(message)} bytes]"
    assert lines[1] == f"< BINARY {REDACTED} [7 bytes]"
    assert "1000" in lines[2] and "Bye" in lines[2]  # control frames stay readable
    assert not any(TOKEN in line or "5WT00001" in line for line in lines)


async def test_configured_debug_logging_keeps_handshakes_out_and_redaction_holds_below(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """log_format caps websockets at INFO; lowering that cap by hand still leaks no token."""
    root = logging.getLogger()
    library = logging.getLogger("websockets")
    saved = (root.handlers[:], root.level, library.level, logging.getLogger("httpx").level)
    try:
        log_format.configure("DEBUG", json_format=True)
        root.addHandler(caplog.handler)

        async def handshake() -> str:
            async def handler(ws: ServerConnection) -> None:
                await ws.send("hi")

            server_log = wire_logger("websockets.server")
            async with serve(handler, "127.0.0.1", 0, logger=server_log) as server:
                port = server.sockets[0].getsockname()[1]
                async with connect(
                    f"ws://127.0.0.1:{port}/x",
                    additional_headers={"Authorization": f"Bearer {TOKEN}"},
                    logger=wire_logger("websockets.client"),
                ) as ws:
                    return str(await ws.recv())

        assert await handshake() == "hi"
        capped = "\n".join(r.getMessage() for r in caplog.records)
        assert "> GET /x HTTP/1.1" not in capped and TOKEN not in capped
        caplog.clear()
        library.setLevel(logging.DEBUG)
        assert await handshake() == "hi"
        lowered = "\n".join(r.getMessage() for r in caplog.records)
        assert "> GET /x HTTP/1.1" in lowered and TOKEN not in lowered
    finally:
        handlers, level, library_level, httpx_level = saved
        root.handlers[:] = handlers
        root.setLevel(level)
        library.setLevel(library_level)
        logging.getLogger("httpx").setLevel(httpx_level)
        logging.getLogger("httpcore").setLevel(logging.NOTSET)
