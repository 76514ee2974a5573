"""Depth and tastytrade in one connector with a spool, and the accounting of what they sent.

Shared by the spool fault tests: the venues and the cluster run in the test
process; the connector runs in it too, or as ``connector run`` in a child
process when the test must signal it (SIGTERM, SIGKILL).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.settings import Settings, parse_settings
from connector.simulators.tastytrade import (
    TastytradeSimulator,
    connector_environ,
    connector_section,
)
from connector.simulators.tplus_market import TplusMarketSimulator
from connector.venues.tastytrade import notifications as n
from tests import running
from tests.e2e.test_tastytrade import FINGERPRINTS, _key
from tests.faults.harness import Row, account_book
from tests.kafka_reader import Consumed, TopicReader

ASSETS = ["1", "2"]
ACCOUNTS = ["5WT00001", "5WT00002"]
DEPTH = "tplus.depth"
DLQ = "connector.dlq"
ACCOUNT_TOPICS = sorted(t.stream for t in n.TYPES.values())
TOPICS = [DEPTH, *ACCOUNT_TOPICS]
NAME = "spool-fault"
QUEUE = 500
"""The producer's queue, scaled down with the rates: an outage outlasts it in a second."""


@dataclass
class Venues:
    cluster: MockCluster
    registry_url: str
    market: TplusMarketSimulator
    tasty: TastytradeSimulator

    def pause(self) -> None:
        self.market.pause()
        self.tasty.pause()


@asynccontextmanager
async def venues() -> AsyncIterator[Venues]:
    with MockCluster(brokers=3) as cluster, RegistryServer() as registry:
        registry_url = registry.start()
        for topic in [*TOPICS, DLQ]:
            cluster.create_topic(topic, partitions=3, replication_factor=3)
        market = TplusMarketSimulator(
            ASSETS, seed=7, depth_interval_s=0.005, trade_interval_s=1.0, kline_interval_s=1.0
        )
        tasty = TastytradeSimulator(ACCOUNTS, seed=3, event_interval_s=0.01)
        await market.start()
        await tasty.start()
        try:
            yield Venues(cluster, registry_url, market, tasty)
        finally:
            await tasty.stop()
            await market.stop()


def settings_data(v: Venues, spool_dir: Path) -> dict[str, Any]:
    """Default settings except the scaled producer queue and short venue timers."""
    tasty = connector_section(v.tasty)
    tasty["account_streamer"].update({"heartbeat_interval_s": 2, "heartbeat_timeout_s": 10})
    tasty["account_streamer"]["websocket"] = {"backoff": {"initial_s": 0.05, "max_s": 0.5}}
    return {
        "name": NAME,
        "kafka": {
            "bootstrap_servers": v.cluster.bootstrap_servers,
            "queue_max_messages": QUEUE,
            "linger_ms": 2,
        },
        "schema_registry": {"url": v.registry_url},
        "metrics": {"host": "127.0.0.1", "port": 0},
        "logging": {"level": "INFO", "json_format": True},
        "shutdown_grace_s": 2,
        "spool": {"path": str(spool_dir)},
        "tplus": {
            "market_data": {
                "base_url": v.market.base_url,
                "assets": ASSETS,
                "trades": False,
                "klines": False,
                "websocket": {"backoff": {"initial_s": 0.05, "max_s": 0.5}},
            }
        },
        "tastytrade": tasty,
    }


def settings(v: Venues, spool_dir: Path) -> Settings:
    return parse_settings(settings_data(v, spool_dir))


async def start_process(v: Venues, spool_dir: Path, port: int) -> asyncio.subprocess.Process:
    """``connector run`` in a child process, secrets in its environment."""
    data = settings_data(v, spool_dir)
    data["metrics"]["port"] = port
    config = spool_dir.parent / f"connector-{port}.yaml"
    config.write_text(yaml.safe_dump(data))
    env = {**os.environ, **connector_environ(v.tasty)}
    return await running.run_process(config, env=env, stderr=asyncio.subprocess.DEVNULL)


async def scrape(port: int) -> dict[str, float]:
    """The other process's /metrics as ``name{labels}`` → value ({} while it is not up)."""
    try:
        async with httpx.AsyncClient() as http:
            body = (await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)).text
    except httpx.HTTPError:
        return {}
    out: dict[str, float] = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            out[series] = float(value)
    return out


def tasty_silence(metrics: dict[str, float]) -> float | None:
    """Seconds since the tastytrade socket's last frame, from a scrape."""
    for series, value in metrics.items():
        if series.startswith("connector_seconds_since_last_message{") and (
            'venue="tastytrade"' in series
        ):
            return value
    return None


def read_all(v: Venues, done: Any, timeout_s: float = 60) -> dict[str, list[Consumed]]:
    reader = TopicReader(v.cluster.bootstrap_servers, v.registry_url, TOPICS)
    try:
        return reader.poll_until(done, timeout_s)
    finally:
        reader.close()


def expected_account_events(tasty: TastytradeSimulator) -> Counter[tuple[str, str, Any]]:
    """Every notification the simulator wrote to a socket, as (topic, key, fingerprint)."""
    out: Counter[tuple[str, str, Any]] = Counter()
    for sent in tasty.sent:
        kind = sent.envelope["type"]
        if kind in n.TYPES:
            data = sent.envelope["data"]
            fp = repr(FINGERPRINTS[kind][0](data))
            out[(n.TYPES[kind].stream, _key(kind, data), fp)] += 1
    return out


def delivered_account_events(records: dict[str, list[Consumed]]) -> Counter[tuple[str, str, Any]]:
    out: Counter[tuple[str, str, Any]] = Counter()
    for topic in ACCOUNT_TOPICS:
        kind = n.STREAM_TYPES[topic].name
        for r in records[topic]:
            if r.value["origin"] == "STREAM" and r.key is not None:
                out[(topic, r.key, repr(FINGERPRINTS[kind][1](r.value)))] += 1
    return out


def final_sequences(market: TplusMarketSimulator) -> dict[str, int]:
    return {a: market.emitted.depth[a][-1].sequence_number for a in ASSETS}


class Settled:
    """``poll_until``'s condition: every account event delivered, every book at the venue's
    last diff. Checked at most every half second: it recounts everything read."""

    def __init__(self, v: Venues) -> None:
        self._v = v
        self._next = 0.0

    def __call__(self, records: dict[str, list[Consumed]]) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + 0.5
        return settled(self._v, records)


def settled(v: Venues, records: dict[str, list[Consumed]]) -> bool:
    """Every account event delivered and every book at the venue's last diff."""
    want = expected_account_events(v.tasty)
    got = delivered_account_events(records)
    last: dict[str | None, int] = {}
    for r in records[DEPTH]:
        if r.value["sequence_number"] is not None:
            last[r.key] = max(last.get(r.key, -1), r.value["sequence_number"])
    final = final_sequences(v.market)
    return not (want - got) and all(last.get(a) == final[a] for a in ASSETS)


def account(v: Venues, records: dict[str, list[Consumed]], row: Row) -> Row:
    """Fill in ``row``: account events missing or duplicated, diffs published or under a GAP."""
    want = expected_account_events(v.tasty)
    got = delivered_account_events(records)
    row.sent += sum(want.values())
    row.delivered += sum((want & got).values())
    row.missing += sum((want - got).values())
    row.duplicates += sum((got - want).values())
    for asset in ASSETS:
        sent = [d.sequence_number for d in v.market.emitted.depth[asset]]
        depth = sorted((r for r in records[DEPTH] if r.key == asset), key=lambda r: r.offset)
        account_book(row, depth, sent)
    return row


def without_event_id(records: dict[str, list[Consumed]]) -> int:
    return sum(
        1
        for topic in TOPICS
        for r in records[topic]
        if not r.headers.get("event_id", b"").startswith(NAME.encode() + b":")
    )
