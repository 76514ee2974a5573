"""``connector dev`` as a user runs it: a separate process, read from outside."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from decimal import Decimal
from typing import Any

import httpx

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


async def test_dev_runs_the_stack_and_other_processes_decode_every_topic() -> None:
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
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        env = await _read_addresses(proc)
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

        async with httpx.AsyncClient() as http:
            body = (await http.get(env["METRICS_URL"])).text
        assert 'connector_dlq_records_total{reason="missing_field",stage="validate"' in body
        assert "connector_sequence_gaps_total{" in body
        assert 'connector_records_delivered_total{topic="tplus.depth"}' in body
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=60)
    assert code == 0
