"""Running an SDK script in its own environment and collecting its report."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


async def run_sdk(python: Path, script: str, job: Any, timeout_s: float = 180) -> dict[str, Any]:
    """Run ``script`` (a file next to this one) with ``python``, ``job`` as JSON on stdin;
    returns the JSON report it prints last. The event loop stays free for the simulators."""
    process = await asyncio.create_subprocess_exec(
        str(python),
        str(HERE / script),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await process.communicate(json.dumps(job).encode())
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    lines = out.decode().strip().splitlines()
    if process.returncode != 0 or not lines:
        tail = err.decode(errors="replace")[-4000:]
        raise AssertionError(f"{script} exited {process.returncode}:\n{tail}")
    report: dict[str, Any] = json.loads(lines[-1])
    return report
