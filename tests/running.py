"""A connector running in the test's event loop, as the end-to-end stacks start it,
or as a separate ``connector run`` process read through its JSON log."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from connector.app import Connector, RuntimeInfo


@asynccontextmanager
async def running_connector(
    connector: Connector, *, stop_timeout_s: float = 30, expect_flushed: bool = True
) -> AsyncIterator[RuntimeInfo]:
    """Run ``connector`` until the block ends; then stop it and, by default,
    check that it left no record undelivered."""
    stop = asyncio.Event()
    started: asyncio.Future[RuntimeInfo] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(connector.run(stop, on_started=started.set_result))
    try:
        yield await asyncio.wait_for(asyncio.shield(started), timeout=30)
    finally:
        stop.set()
        remaining = await asyncio.wait_for(task, timeout=stop_timeout_s)
    if expect_flushed:
        assert remaining == 0, f"{remaining} records left undelivered at shutdown"


def metric_value(connector: Connector, name: str, **labels: str) -> float:
    """A sample of the connector's registry; 0 when the series does not exist yet."""
    value = connector.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def run_process(config: Path) -> asyncio.subprocess.Process:
    """``connector run config`` as a child process; its log is on ``stderr``."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "connector",
        "run",
        str(config),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def log_until(proc: asyncio.subprocess.Process, message: str) -> list[dict[str, object]]:
    """Read JSON log lines until one has ``msg == message``."""
    assert proc.stderr is not None
    seen: list[dict[str, object]] = []
    async with asyncio.timeout(60):
        while True:
            line = await proc.stderr.readline()
            assert line, f"process ended before logging {message!r}: {seen[-5:]}"
            if line.startswith(b"{"):
                seen.append(json.loads(line))
                if seen[-1]["msg"] == message:
                    return seen
