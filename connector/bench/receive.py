"""``python -m connector.bench.receive``: CPU per frame of the WebSocket receive path alone.

The end-to-end benchmark cannot resolve a fraction of a microsecond per frame
on a shared machine; this one isolates the part ``DirectConnection`` changed.
websockets' own connection (its assembler and ``recv``) and ``DirectConnection``
read as the session does (``take``, then ``recv`` when it must wait) the same
depth-sized frames from a server in a child process, in alternating rounds;
the figures are the client's CPU time per frame, medians of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import TEXT, Frame

from connector.sources.ws_connection import DirectConnection

_FRAME = b'{"bids":[["3862.4","1.75"]],"asks":[["3862.9","0.5"]],"sequence_number":1042}'
_BURST = 500
"""Frames per write: the server writes pre-encoded bursts with websockets' flow control."""

ASSEMBLER = "websockets recv"
DIRECT = "DirectConnection"


@dataclass(frozen=True, slots=True)
class ReceiveFigures:
    """Client CPU µs per frame, one figure per round, for each way of reading."""

    rounds: dict[str, list[float]]

    def ratio(self) -> float:
        """The median of the rounds' DirectConnection / assembler ratios."""
        pairs = zip(self.rounds[DIRECT], self.rounds[ASSEMBLER], strict=True)
        return statistics.median(d / a for d, a in pairs)


def _serve(frames: int, ports: multiprocessing.Queue[int]) -> None:
    asyncio.run(_server(frames, ports))


async def _server(frames: int, ports: multiprocessing.Queue[int]) -> None:
    burst = Frame(TEXT, _FRAME).serialize(mask=False, extensions=[]) * _BURST

    async def send(ws: ServerConnection) -> None:
        for _ in range(frames // _BURST):
            ws.transport.write(burst)
            await ws.drain()
        await ws.wait_closed()

    async with serve(send, "127.0.0.1", 0, compression=None) as server:
        ports.put(server.sockets[0].getsockname()[1])
        await asyncio.Future()  # until the parent ends this process


async def _read(url: str, frames: int, direct: bool) -> float:
    factory = DirectConnection if direct else ClientConnection
    async with connect(url, compression=None, max_queue=4, create_connection=factory) as ws:
        await ws.recv()  # the connection is settled; the clock starts
        start = time.process_time()
        if isinstance(ws, DirectConnection):
            take = ws.take
            for _ in range(frames - 1):
                if take() is None:
                    await ws.recv()
        else:
            for _ in range(frames - 1):
                await ws.recv()
        cpu_s = time.process_time() - start
    return cpu_s * 1e6 / (frames - 1)


async def measure(frames: int, rounds: int) -> ReceiveFigures:
    """Alternate the two readers ``rounds`` times over ``frames`` frames each."""
    frames = max(_BURST, frames // _BURST * _BURST)
    spawn = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue[int] = spawn.Queue()
    server = spawn.Process(target=_serve, args=(frames, ports), daemon=True)
    server.start()
    try:
        port = await asyncio.to_thread(ports.get, True, 30)
        url = f"ws://127.0.0.1:{port}/"
        figures: dict[str, list[float]] = {ASSEMBLER: [], DIRECT: []}
        for _ in range(rounds):
            figures[ASSEMBLER].append(await _read(url, frames, direct=False))
            figures[DIRECT].append(await _read(url, frames, direct=True))
        return ReceiveFigures(figures)
    finally:
        server.terminate()
        server.join(10)


def render(figures: ReceiveFigures) -> str:
    """A Markdown table of the medians and the same-round ratio."""
    lines = [
        "| reader | µs CPU per frame (median) | min | max |",
        "|---|---:|---:|---:|",
    ]
    for name, values in figures.rounds.items():
        med, low, high = statistics.median(values), min(values), max(values)
        lines.append(f"| {name} | {med:.2f} | {low:.2f} | {high:.2f} |")
    lines.append(
        f"\nDirectConnection / websockets recv, median of same-round ratios: {figures.ratio():.2f}x"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m connector.bench.receive", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--frames", type=int, default=300_000, help="frames per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    args = parser.parse_args(argv)
    print(render(asyncio.run(measure(args.frames, args.rounds))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
