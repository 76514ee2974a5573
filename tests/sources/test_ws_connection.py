"""DirectConnection against a real websockets server: what its recv must keep of the assembler's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.messages import MAX_FRAGMENTS
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, TooManyFragments
from websockets.frames import CloseCode

from connector.sources.ws_connection import DirectConnection

Script = Callable[[ServerConnection], Awaitable[None]]


class Peer:
    """A server that runs the script it is given, then holds the connection open."""

    def __init__(self) -> None:
        self.script: Script | None = None
        self.release = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        if self.script is not None:
            await self.script(ws)
        await self.release.wait()


@pytest.fixture
async def peer() -> AsyncIterator[tuple[Peer, str]]:
    p = Peer()
    async with serve(p.handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        yield p, f"ws://127.0.0.1:{port}/"
        p.release.set()


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while True:  # transport and connection state: polled, nothing to wait on
            if condition():
                return
            await asyncio.sleep(0.005)


async def test_a_burst_of_messages_is_read_in_order_as_str_and_bytes(
    peer: tuple[Peer, str],
) -> None:
    server, url = peer

    async def burst(ws: ServerConnection) -> None:
        for i in range(500):
            await ws.send(f"m{i}" if i % 2 else f"m{i}".encode())

    server.script = burst
    async with connect(url, create_connection=DirectConnection, compression=None) as ws:
        got = [await asyncio.wait_for(ws.recv(), 10) for _ in range(500)]
    assert got == [f"m{i}" if i % 2 else f"m{i}".encode() for i in range(500)]


async def test_a_fragmented_message_is_returned_whole(peer: tuple[Peer, str]) -> None:
    server, url = peer

    async def fragmented(ws: ServerConnection) -> None:
        await ws.send(["é" * 3, "part two", "end"])
        await ws.send(iter([b"\x00\x01", b"\x02"]))

    server.script = fragmented
    async with connect(url, create_connection=DirectConnection, compression=None) as ws:
        assert await asyncio.wait_for(ws.recv(), 10) == "ééépart twoend"
        assert await asyncio.wait_for(ws.recv(), 10) == b"\x00\x01\x02"


async def test_reading_pauses_above_max_queue_and_resumes_when_drained(
    peer: tuple[Peer, str],
) -> None:
    server, url = peer
    sent = asyncio.Event()

    async def flood(ws: ServerConnection) -> None:
        for i in range(200):
            await ws.send(f"{i:04d}" * 256)
        sent.set()

    server.script = flood
    async with connect(
        url, create_connection=DirectConnection, compression=None, max_queue=4
    ) as ws:
        transport = ws.transport
        await _until(lambda: not transport.is_reading())
        got = [await asyncio.wait_for(ws.recv(), 10) for _ in range(200)]
        assert got == [f"{i:04d}" * 256 for i in range(200)]
        assert transport.is_reading()
        await asyncio.wait_for(sent.wait(), 10)


async def test_messages_received_before_the_close_are_still_returned(
    peer: tuple[Peer, str],
) -> None:
    server, url = peer

    async def then_close(ws: ServerConnection) -> None:
        for i in range(3):
            await ws.send(str(i))
        await ws.close()

    server.script = then_close
    async with connect(url, create_connection=DirectConnection, compression=None) as ws:
        await asyncio.wait_for(ws.wait_closed(), 10)
        assert [await ws.recv() for _ in range(3)] == ["0", "1", "2"]
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()


async def test_a_waiting_recv_ends_with_connection_closed_when_the_peer_goes(
    peer: tuple[Peer, str],
) -> None:
    server, url = peer

    async def going_away(ws: ServerConnection) -> None:
        await ws.close(CloseCode.GOING_AWAY)

    server.script = going_away
    async with connect(url, create_connection=DirectConnection, compression=None) as ws:
        with pytest.raises(ConnectionClosed) as caught:
            await asyncio.wait_for(ws.recv(), 10)
    assert caught.value.rcvd is not None
    assert caught.value.rcvd.code == CloseCode.GOING_AWAY


async def test_a_cancelled_recv_loses_no_message(peer: tuple[Peer, str]) -> None:
    server, url = peer
    go = asyncio.Event()

    async def later(ws: ServerConnection) -> None:
        await go.wait()
        await ws.send("after the cancel")

    server.script = later
    async with connect(url, create_connection=DirectConnection, compression=None) as ws:
        assert isinstance(ws, DirectConnection)
        pending = asyncio.create_task(ws.recv())
        await _until(lambda: ws._waiter is not None)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        go.set()
        assert await asyncio.wait_for(ws.recv(), 10) == "after the cancel"


async def test_too_many_fragments_fail_the_connection_with_1009_after_earlier_messages(
    peer: tuple[Peer, str],
) -> None:
    server, url = peer

    async def endless(ws: ServerConnection) -> None:
        await ws.send("before")
        await ws.send(iter(["x"] * (MAX_FRAGMENTS + 1)))

    server.script = endless
    async with connect(url, create_connection=DirectConnection, compression=None) as ws:
        assert await asyncio.wait_for(ws.recv(), 10) == "before"
        with pytest.raises(ConnectionClosed) as caught:
            await asyncio.wait_for(ws.recv(), 10)
    assert caught.value.sent is not None
    assert caught.value.sent.code == CloseCode.MESSAGE_TOO_BIG
    assert isinstance(caught.value.__cause__, TooManyFragments)


async def test_streaming_a_message_is_refused_rather_than_left_waiting(
    peer: tuple[Peer, str],
) -> None:
    _, url = peer
    async with connect(url, create_connection=DirectConnection, compression=None) as ws:
        with pytest.raises(NotImplementedError):
            ws.recv_streaming()


async def test_take_returns_queued_messages_and_leaves_a_failing_one_to_recv(
    peer: tuple[Peer, str],
) -> None:
    server, url = peer
    go = asyncio.Event()

    async def three(ws: ServerConnection) -> None:
        await go.wait()
        await ws.send("first")
        await ws.send(b"\x00second")
        await ws.send(b'{"a": "\xff"}', text=True)  # a text frame that is not UTF-8

    server.script = three
    async with connect(url, create_connection=DirectConnection, compression=None) as ws:
        assert isinstance(ws, DirectConnection)
        assert ws.take() is None  # nothing sent yet
        go.set()
        await _until(lambda: ws._ready == 3)
        assert ws.take() == "first"
        assert ws.take() == b"\x00second"
        assert ws.take() is None
        with pytest.raises(ConnectionClosed) as caught:
            await asyncio.wait_for(ws.recv(), 10)
    assert caught.value.sent is not None
    assert caught.value.sent.code == CloseCode.INVALID_DATA
    assert isinstance(caught.value.__cause__, UnicodeDecodeError)
