"""A full embedded stack per fault scenario, and the accounting that proves nothing was lost.

Every event the simulator wrote to a socket must be found again: as its
record, as a dead letter, or folded into a snapshot that follows a GAP
announcement. Anything else is missing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from connector.app import Connector, RuntimeInfo
from connector.dev import dev_settings
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.settings import Settings, parse_settings
from connector.simulators.tplus_market import TplusMarketSimulator
from tests.depth_book import Book, apply_levels, empty_book
from tests.kafka_reader import Consumed, TopicReader
from tests.running import metric_value, running_connector

ASSETS = ["1", "2"]
TOPICS = ["tplus.depth", "tplus.trades", "tplus.klines"]
DLQ = "connector.dlq"


@dataclass
class Stack:
    cluster: MockCluster
    registry: RegistryServer
    registry_url: str
    sim: TplusMarketSimulator
    connector: Connector
    info: RuntimeInfo

    def metric(self, name: str, **labels: str) -> float:
        return metric_value(self.connector, name, **labels)

    def connector_pending(self) -> int:
        """Records the connector's producer holds unacknowledged (from its own gauge)."""
        return int(self.metric("connector_producer_queue_messages"))

    def metric_sum(self, name: str) -> float:
        """Sum of a counter over all its label sets."""
        return sum(
            sample.value
            for family in self.connector.registry.collect()
            for sample in family.samples
            if sample.name == name
        )


@dataclass
class Row:
    """One scenario's accounting, printed in the suite's summary table."""

    scenario: str
    sent: int = 0
    delivered: int = 0
    dlq: int = 0
    gap_announced: int = 0
    duplicates: int = 0
    missing: int = 0
    notes: list[str] = field(default_factory=list)


def settings_for(
    bootstrap: str, registry_url: str, venue_url: str, **overrides: dict[str, Any]
) -> Settings:
    data = dev_settings(bootstrap, registry_url, venue_url, ASSETS, 0).model_dump(mode="json")
    data["tplus"]["market_data"]["websocket"].update(
        # Short enough for the silent-socket scenario, long enough that a busy
        # machine does not starve a healthy socket past it.
        {"silence_timeout_s": 3.0, "backoff": {"initial_s": 0.05, "max_s": 0.3, "multiplier": 2}}
    )
    for section, values in overrides.items():
        _merge(data, section.split("."), values)
    return parse_settings(data)


def _merge(data: dict[str, Any], path: list[str], values: dict[str, Any]) -> None:
    node = data
    for part in path:
        node = node.setdefault(part, {})
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(node.get(key), dict):
            node[key].update(value)
        else:
            node[key] = value


@asynccontextmanager
async def running_stack(
    venue_pings: bool = True, **overrides: dict[str, Any]
) -> AsyncIterator[Stack]:
    with MockCluster(brokers=3) as cluster, RegistryServer() as registry:
        registry_url = registry.start()
        for topic in [*TOPICS, DLQ]:
            cluster.create_topic(topic, partitions=3, replication_factor=3)
        sim = TplusMarketSimulator(
            ASSETS,
            seed=11,
            depth_interval_s=0.01,
            trade_interval_s=0.01,
            kline_interval_s=0.05,
            ping_interval_s=20.0 if venue_pings else None,
        )
        venue_url = await sim.start()
        sim.pause()
        settings = settings_for(cluster.bootstrap_servers, registry_url, venue_url, **overrides)
        connector = Connector(settings)
        try:
            async with running_connector(
                connector, stop_timeout_s=60, expect_flushed=False
            ) as info:
                stack = Stack(cluster, registry, registry_url, sim, connector, info)
                await all_connected(sim)
                sim.resume()
                yield stack
        finally:
            await sim.stop()


async def all_connected(sim: TplusMarketSimulator) -> None:
    paths = [f"/marketdepth/diff/{a}" for a in ASSETS] + [f"/klines/diff/{a}" for a in ASSETS]
    for path in [*paths, "/trades"]:
        await asyncio.wait_for(sim.wait_connected(path, 1), timeout=30)


def _distinct_trades(records: dict[str, list[Consumed]]) -> set[int]:
    return {r.value["trade_id"] for r in records["tplus.trades"]}


async def wait_for_trades(reader: TopicReader, at_least: int) -> None:
    await asyncio.to_thread(reader.poll_until, lambda rs: len(_distinct_trades(rs)) >= at_least, 60)


async def traffic_after(stack: Stack, reader: TopicReader, more: int = 30) -> None:
    """Wait until ``more`` trades sent after this moment have arrived."""
    await wait_for_trades(reader, len(stack.sim.emitted.trades) + more)


async def settle_and_account(
    stack: Stack,
    reader: TopicReader,
    dlq_reader: TopicReader,
    row: Row,
    *,
    extra_dlq: int = 0,
) -> Row:
    """Stop the venue, wait for every sent event to be accounted for, fill in the row."""
    sim = stack.sim
    sim.pause()
    trade_ids = {t["trade_id"] for t in sim.emitted.trades}
    bars = Counter(
        (asset, b["open_timestamp_ns"], b["close"], b["volume"])
        for asset in ASSETS
        for frame in sim.emitted.klines[asset]
        for b in frame
    )
    final_seq = {a: sim.emitted.depth[a][-1].sequence_number for a in ASSETS}
    garbage = len(sim.emitted.garbage) + extra_dlq

    def done(rs: dict[str, list[Consumed]]) -> bool:
        last: dict[str | None, int] = {}
        for r in rs["tplus.depth"]:
            if r.value["sequence_number"] is not None:
                last[r.key] = max(last.get(r.key, -1), r.value["sequence_number"])
        return (
            trade_ids <= _distinct_trades(rs)
            and all(last.get(a) == final_seq[a] for a in ASSETS)
            and sum(bars.values()) <= len(rs["tplus.klines"])
        )

    try:
        records = await asyncio.to_thread(reader.poll_until, done, 60)
    except TimeoutError:
        rs = reader.records
        last = {
            a: [
                (r.value["kind"], r.value["sequence_number"])
                for r in rs["tplus.depth"]
                if r.key == a
            ][-3:]
            for a in ASSETS
        }
        raise AssertionError(
            f"not settled: trades missing {len(trade_ids - _distinct_trades(rs))}, "
            f"bars {len(rs['tplus.klines'])}/{sum(bars.values())}, depth final {final_seq} "
            f"last {last}, connector pending {stack.connector_pending()}"
        ) from None
    dead = await asyncio.to_thread(dlq_reader.poll_until, lambda rs: len(rs[DLQ]) >= garbage, 60)

    # Trades: each sent trade, once.
    got_trades = [r.value["trade_id"] for r in records["tplus.trades"]]
    row.sent += len(trade_ids)
    row.delivered += len(trade_ids & set(got_trades))
    row.duplicates += len(got_trades) - len(set(got_trades))
    row.missing += len(trade_ids - set(got_trades))
    if trade_ids - set(got_trades):
        row.notes.append(f"missing trades {sorted(trade_ids - set(got_trades))[:5]}")

    # Klines: each sent bar update, once.
    got_bars = Counter(
        (r.value["asset_id"], r.value["open_timestamp_ns"], r.value["close"], r.value["volume"])
        for r in records["tplus.klines"]
    )
    row.sent += sum(bars.values())
    row.delivered += sum((bars & got_bars).values())
    row.duplicates += sum((got_bars - bars).values())
    row.missing += sum((bars - got_bars).values())
    if bars - got_bars:
        row.notes.append(f"missing bars {list((bars - got_bars).elements())[:3]}")

    # Depth: each sent diff published, or folded into a snapshot after a GAP.
    for asset in ASSETS:
        sent = [d.sequence_number for d in sim.emitted.depth[asset]]
        depth = sorted(
            (r for r in records["tplus.depth"] if r.key == asset), key=lambda r: r.offset
        )
        lost_diffs = account_book(row, depth, sent)
        if lost_diffs:
            lost = sorted(lost_diffs)[:5]
            kinds = [(r.value["kind"], r.value["sequence_number"]) for r in depth][-8:]
            row.notes.append(f"missing diffs {asset}: {lost}; tail {kinds}")
        book = _rebuild(depth)
        venue = stack.sim.book(asset)
        if book != {"bids": dict(venue.bids), "asks": dict(venue.asks)}:
            row.notes.append(f"book {asset} differs from the venue's")

    # Garbage and oversized frames: each one in the DLQ.
    row.sent += garbage
    row.dlq += len(dead[DLQ])
    row.missing += max(0, garbage - len(dead[DLQ]))
    return row


def account_book(row: Row, records: list[Consumed], sent: list[int]) -> set[int]:
    """Add one book's diffs to ``row`` (``records`` in offset order); return those missing."""
    published, folded, dups = _account_depth(records, sent)
    row.sent += len(sent)
    row.delivered += len(published)
    row.gap_announced += len(folded)
    row.duplicates += dups
    missing = set(sent) - published - folded
    row.missing += len(missing)
    return missing


def _account_depth(records: list[Consumed], sent: list[int]) -> tuple[set[int], set[int], int]:
    published: set[int] = set()
    folded: set[int] = set()
    duplicates = 0
    announced = False
    first = True
    for r in records:
        v = r.value
        if v["kind"] == "GAP":
            announced = True
        elif v["kind"] == "SNAPSHOT":
            covered = {s for s in sent if s <= v["sequence_number"]} - published - folded
            if first:
                # The book's first snapshot: diffs it contains were delivered in it.
                published |= covered
            elif announced:
                folded |= covered
            # Otherwise a snapshot silently skipped sent diffs: they stay missing.
            announced = False
            first = False
        else:
            seq = v["sequence_number"]
            if seq in published:
                duplicates += 1
            published.add(seq)
    return published, folded, duplicates


def _rebuild(records: list[Consumed]) -> Book:
    book = empty_book()
    for r in records:
        v = r.value
        if v["kind"] == "GAP":
            continue
        if v["kind"] == "SNAPSHOT":
            book = empty_book()
        apply_levels(book, v)
    return book


Inject = Callable[[Stack, TopicReader], Any]
