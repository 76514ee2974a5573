"""Bounded REST answers against a real HTTP peer on 127.0.0.1 that trickles or floods."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from connector.ops.metrics import Metrics
from connector.sources.http_client import (
    AnswerTooLarge,
    DeadlineExceeded,
    RefusedReason,
    bounded_request,
)
from tests.conftest import sample

Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HUGE = 300 * 1024 * 1024
CAP = 64 * 1024


class Sent:
    """How many body bytes the peer managed to hand to its socket."""

    def __init__(self) -> None:
        self.bytes = 0


@asynccontextmanager
async def serving(peer: Peer) -> AsyncIterator[str]:
    """A peer on 127.0.0.1; its connection handlers are ended with it."""
    handlers: set[asyncio.Task[object]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        await peer(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def _read_head(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


def trickling(head: bytes) -> Peer:
    """Answers a head at once, then one body byte a second, for ever."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(head)
        try:
            while True:
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(1.0)  # the slow peer's pace, not synchronisation
        except ConnectionError:
            pass
        finally:
            writer.close()

    return peer


def flooding(sent: Sent, declare_length: bool) -> Peer:
    """Answers 300 MiB as fast as the socket takes it, declared or chunked."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        if declare_length:
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {HUGE}\r\n\r\n".encode())
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        block = b"y" * 65536
        chunk = block if declare_length else b"10000\r\n" + block + b"\r\n"
        try:
            while sent.bytes < HUGE:
                writer.write(chunk)
                await writer.drain()
                sent.bytes += len(block)
        except ConnectionError:
            pass
        finally:
            writer.close()

    return peer


async def test_a_slow_body_fails_within_its_deadline_plus_one_second(metrics: Metrics) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    deadline_s = 1.5
    async with serving(trickling(head)) as url, httpx.AsyncClient(trust_env=False) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            # httpx's per-read timeout never fires: a byte arrives every second.
            await bounded_request(
                client,
                "GET",
                url,
                deadline_s=deadline_s,
                max_bytes=CAP,
                metrics=metrics,
                venue="tplus",
            )
        elapsed = time.monotonic() - started
    assert deadline_s <= elapsed < deadline_s + 1.0
    assert (
        sample(
            metrics,
            "connector_rest_answers_refused_total",
            venue="tplus",
            reason=RefusedReason.DEADLINE,
        )
        == 1
    )


@pytest.mark.parametrize("declare_length", [True, False], ids=["declared", "chunked"])
async def test_an_oversized_answer_is_refused_without_reading_it_whole(
    metrics: Metrics, declare_length: bool
) -> None:
    sent = Sent()
    async with (
        serving(flooding(sent, declare_length)) as url,
        httpx.AsyncClient(trust_env=False) as client,
    ):
        with pytest.raises(AnswerTooLarge):
            await bounded_request(
                client,
                "GET",
                url,
                deadline_s=30.0,
                max_bytes=CAP,
                metrics=metrics,
                venue="tastytrade",
            )
    # What the peer got into socket buffers before the connection closed, far below 300 MiB.
    assert sent.bytes < 32 * 1024 * 1024
    assert (
        sample(
            metrics,
            "connector_rest_answers_refused_total",
            venue="tastytrade",
            reason=RefusedReason.TOO_LARGE,
        )
        == 1
    )


async def test_an_answer_within_bounds_is_returned_whole(metrics: Metrics) -> None:
    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope\n")
        await writer.drain()
        writer.close()

    async with serving(peer) as url, httpx.AsyncClient(trust_env=False) as client:
        answer = await bounded_request(client, "GET", url, deadline_s=5.0, max_bytes=5)
    assert (answer.status_code, answer.content) == (404, b"nope\n")
