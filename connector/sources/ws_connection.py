"""A websockets client connection that hands complete messages over without its assembler.

websockets' asyncio connection already drives the sans-I/O ``ClientProtocol``
from an ``asyncio.Protocol``; what costs per frame is its ``Assembler``: an
async queue, a lock flag and a future per message. This subclass keeps
everything else of websockets (handshake, TLS, proxies, pings and pongs,
keepalive, close handshake, ``max_size``, compression) and replaces only the
way a parsed frame reaches ``recv``: a deque of frames, a count of complete
messages, and a future only when the reader actually has to wait. A burst of
frames read in one ``data_received`` is then read by one task wake-up.

Behaviour kept from the assembler: messages are returned in order, frames
already received are still returned after the connection closed, invalid
UTF-8 in a text message fails the connection with 1007 when that message is
read, more than websockets' fragment limit fails it with 1009, and reading
pauses while more than ``max_queue`` frames of complete messages wait.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Literal, overload

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.messages import MAX_FRAGMENTS
from websockets.exceptions import TooManyFragments
from websockets.frames import BINARY, CONT, PONG, TEXT, CloseCode, Frame
from websockets.protocol import Event
from websockets.typing import Data


class DirectConnection(ClientConnection):
    """A ``ClientConnection`` whose ``recv`` reads a plain deque of parsed frames.

    Pass it to ``connect(create_connection=DirectConnection)``. Only one
    reader at a time (the session's loop), and ``recv_streaming`` is not
    supported.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._frames: deque[Frame] = deque()
        self._ready = 0
        """Complete messages in ``_frames`` (their last frame has arrived)."""
        self._fragments = 0
        """Frames of the message being received so far."""
        self._overflow = False
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        high = self.max_queue_high
        low = self.max_queue_low
        if high is not None and low is None:
            low = high // 4
        self._high, self._low = high, low

    def process_event(self, event: Event) -> None:
        if self.response is None or not isinstance(event, Frame):
            super().process_event(event)  # the handshake's response
            return
        opcode = event.opcode
        if opcode is TEXT or opcode is BINARY or opcode is CONT:
            if self._overflow:
                return  # the connection is failing; keep no more of it
            self._fragments += 1
            if self._fragments > MAX_FRAGMENTS:
                self._overflow = True
                self._wake()
                return
            self._frames.append(event)
            if event.fin:
                self._fragments = 0
                self._ready += 1
                if self._waiter is not None:
                    self._wake()
                high = self._high
                if high is not None and not self._paused and len(self._frames) > high:
                    self._paused = True
                    self.transport.pause_reading()
        elif opcode is PONG:
            self.acknowledge_pings(bytes(event.data))

    @property
    def unread_frames(self) -> int:
        """Frames received and queued that nobody has read yet."""
        return len(self._frames)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._wake()

    @overload
    async def recv(self, decode: Literal[True]) -> str: ...

    @overload
    async def recv(self, decode: Literal[False]) -> bytes: ...

    @overload
    async def recv(self, decode: bool | None = None) -> Data: ...

    async def recv(self, decode: bool | None = None) -> Data:
        """The next message, as ``ClientConnection.recv`` returns it; ConnectionClosed after."""
        while not self._ready:
            if self._overflow:
                self.set_connection_exc(TooManyFragments(MAX_FRAGMENTS))
                async with self.send_context():
                    self.protocol.fail(CloseCode.MESSAGE_TOO_BIG, "too many fragments")
                break
            if self.connection_lost_waiter.done():
                break
            waiter = self.loop.create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        else:
            data, text = self._pop(decode)
            if not text:
                return data
            try:
                return data.decode()
            except UnicodeDecodeError as exc:
                self.set_connection_exc(exc)
                async with self.send_context():
                    self.protocol.fail(
                        CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}"
                    )
        await asyncio.shield(self.connection_lost_waiter)
        raise self.close_exc

    def take(self) -> Data | None:
        """The next message if a whole one is queued, without a coroutine; else None (use recv).

        Returns what ``recv()`` would; a message that must fail the connection
        (invalid UTF-8) is left for ``recv`` to fail on.
        """
        if not self._ready:
            return None
        frames = self._frames
        frame = frames[0]
        if not frame.fin:
            return None
        if frame.opcode is TEXT:
            try:
                data: Data = str(frame.data, "utf-8")
            except UnicodeDecodeError:
                return None
        else:
            data = bytes(frame.data)
        frames.popleft()
        self._ready -= 1
        if self._paused and (not self._ready or len(frames) <= (self._low or 0)):
            self._paused = False
            self.transport.resume_reading()
        return data

    @overload
    def recv_streaming(self, decode: Literal[True]) -> AsyncIterator[str]: ...

    @overload
    def recv_streaming(self, decode: Literal[False]) -> AsyncIterator[bytes]: ...

    @overload
    def recv_streaming(self, decode: bool | None = None) -> AsyncIterator[Data]: ...

    def recv_streaming(self, decode: bool | None = None) -> AsyncIterator[Data]:
        """Not supported: frames reach ``recv`` only, never websockets' assembler."""
        raise NotImplementedError("DirectConnection reads whole messages with recv()")

    def _pop(self, decode: bool | None) -> tuple[bytes, bool]:
        """The next complete message's bytes, and whether to decode them as text."""
        frames = self._frames
        frame = frames.popleft()
        text = frame.opcode is TEXT if decode is None else decode
        if frame.fin:
            data = bytes(frame.data)
        else:
            parts = [frame.data]
            while not frame.fin:
                frame = frames.popleft()
                parts.append(frame.data)
            data = b"".join(parts)
        self._ready -= 1
        if self._paused and (not self._ready or len(frames) <= (self._low or 0)):
            self._paused = False
            self.transport.resume_reading()
        return data, text
