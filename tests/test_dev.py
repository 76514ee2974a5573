"""``connector dev`` as a user runs it: a separate process, read from outside."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.dev import DevOptions, run_dev_async
from tests.kafka_reader import TopicReader

TOPICS = ["tplus.depth", "tplus.trades", "tplus.klines"]
OMS_TOPICS = ["tplus.orders", "tplus.user-trades"]


async def _read_addresses(proc: asyncio.subprocess.Process) -> dict[str, str]:
    assert proc.stdout is not None
    found: dict[str, str] = {}
    async with asyncio.timeout(60):
        while "TOPICS" not in found:
            line = (await proc.stdout.readline()).decode()
            assert line, "connector dev exited before printing its addresses"
            name, sep, value = line.strip().partition("=")
            if sep and name.isupper():
                found[name] = value
    return found


async def _tail(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    """``connector tail ARGS`` against the dev stack, as another process; its JSON lines."""
    tail = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "connector",
        "tail",
        *args,
        "--bootstrap",
        env["KAFKA_BOOTSTRAP"],
        "--registry",
        env["SCHEMA_REGISTRY_URL"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(tail.communicate(), timeout=60)
    assert tail.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


async def _status_line(proc: asyncio.subprocess.Process) -> str:
    """The first status line that reports the connector ready."""
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        while True:
            line = (await proc.stdout.readline()).decode()
            assert line, "connector dev exited before printing a status line"
            if line.startswith("[") and "] ready |" in line:
                return line.strip()


def _sourced(path: Path) -> dict[str, str]:
    """The variables a shell gets from ``source path``."""
    out = subprocess.run(
        ["bash", "-c", f'source "{path}" && env -0'], capture_output=True, check=True
    ).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


async def test_dev_runs_the_stack_and_other_processes_decode_every_topic(tmp_path: Path) -> None:
    env_file = tmp_path / "dev.env"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "connector",
        "dev",
        "--metrics-port",
        "0",
        "--fault-interval",
        "0.3",
        "--duration",
        "120",
        "--env-file",
        str(env_file),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        env = await _read_addresses(proc)
        sourced = _sourced(env_file)
        assert {name: sourced[name] for name in env} == env
        assert {*TOPICS, *OMS_TOPICS, "connector.dlq"} <= set(env["TOPICS"].split(","))
        assert env["TPLUS_OMS_URL"].startswith("http://127.0.0.1:")
        reader = TopicReader(
            env["KAFKA_BOOTSTRAP"], env["SCHEMA_REGISTRY_URL"], [*TOPICS, *OMS_TOPICS]
        )
        dlq = TopicReader(env["KAFKA_BOOTSTRAP"], None, ["connector.dlq"])
        try:
            # Records on every topic, and the injected faults visible as records.
            records = await asyncio.to_thread(
                reader.poll_until,
                lambda rs: (
                    all(len(rs[t]) >= 3 for t in TOPICS)
                    and all(len({r.key for r in rs[t]}) == 2 for t in OMS_TOPICS)
                    and any(r.value["kind"] == "GAP" for r in rs["tplus.depth"])
                ),
                60,
            )
            dead = await asyncio.to_thread(
                dlq.poll_until,
                lambda rs: any(r.headers["stream"] == b"tplus.depth" for r in rs["connector.dlq"]),
            )
        finally:
            reader.close()
            dlq.close()
        depth_dead = [r for r in dead["connector.dlq"] if r.headers["stream"] == b"tplus.depth"]
        assert depth_dead[0].headers["reason"] == b"missing_field"
        for topic in OMS_TOPICS:
            keys = {r.key for r in records[topic]}
            assert all(r.key == r.value["account"] for r in records[topic])
            assert len(keys) == 2 and all(k is not None and len(k) == 64 for k in keys)
        assert {r.value["kind"] for r in records["tplus.depth"]} >= {"SNAPSHOT", "DIFF"}
        assert all(r.key in ("1", "2") for r in records["tplus.depth"])
        assert all(isinstance(r.value["price"], str) for r in records["tplus.trades"])

        lines = await _tail(env, "tplus.trades", "--from-beginning", "--max-records", "2")
        assert len(lines) == 2 and all("trade_id" in line["value"] for line in lines)
        tops = await _tail(env, "--book", "1", "--max-records", "3")
        assert len(tops) == 4 and all(top["asset"] == "1" for top in tops)
        joined = tops[0]  # the book as loaded from its latest checkpoint
        assert joined["state"] == "live" and Decimal(joined["bid"][0]) < Decimal(joined["ask"][0])
        moves = [{k: v for k, v in top.items() if k != "sequence"} for top in tops]
        assert all(a != b for a, b in itertools.pairwise(moves)), "a line without a move"

        async with httpx.AsyncClient() as http:
            body = (await http.get(env["METRICS_URL"])).text
        assert 'connector_dlq_records_total{reason="missing_field",stage="validate"' in body
        assert "connector_sequence_gaps_total{" in body
        assert 'connector_records_delivered_total{topic="tplus.depth"}' in body
        status = await _status_line(proc)
        assert re.search(r"events tastytrade=[\d.]+/s tplus=[\d.]+/s \| delivered=\d+", status)
        assert re.search(r"dlq=[1-9]\d* reconnects=\d+ queued=\d+$", status), status
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=60)
    assert code == 0
    assert not env_file.exists()  # its addresses died with the stack


class _Watched(io.StringIO):
    """Output that sets ``seen`` once ``needle`` has been written."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = asyncio.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.needle in self.getvalue():
            self.seen.set()
        return written


async def test_an_env_file_that_cannot_be_written_falls_back_to_the_full_command(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = _Watched("try: connector tail")
    stop = asyncio.Event()
    unwritable = tmp_path / "no such folder" / "dev.env"
    options = DevOptions(duration_s=None, assets=["1"], metrics_port=0, env_file=unwritable)
    task = asyncio.create_task(run_dev_async(options, stop, out))
    try:
        await asyncio.wait_for(out.seen.wait(), timeout=60)
    finally:
        stop.set()
        assert await asyncio.wait_for(task, timeout=60) == 0
    hint = next(line for line in out.getvalue().splitlines() if line.startswith("try:"))
    assert "--bootstrap 127.0.0.1:" in hint and "--registry http://127.0.0.1:" in hint
    assert any(r.getMessage() == "env file not written" for r in caplog.records)
