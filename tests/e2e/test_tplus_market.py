"""Simulator → connector → embedded Kafka and registry → Confluent's deserializer.

Every part is a real protocol peer on 127.0.0.1: the T+ simulator speaks
WebSocket and HTTP, librdkafka's mock cluster speaks Kafka, the registry
speaks the Confluent REST API, and the records are read back with
confluent-kafka's DeserializingConsumer and AvroDeserializer.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

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
    registry_url: str
    sim: TplusMarketSimulator
    connector: Connector
    settings: Settings
    info: RuntimeInfo


def _fast(settings: Settings) -> Settings:
    data = settings.model_dump(mode="json")
    md = data["tplus"]["market_data"]
    md["websocket"]["backoff"] = {"initial_s": 0.05, "max_s": 0.2, "multiplier": 2.0}
    data["metrics"]["port"] = 0
    return parse_settings(data)


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    with MockCluster(brokers=3) as cluster, RegistryServer() as registry:
        registry_url = registry.start()
        for topic in [*TOPICS, DLQ]:
            cluster.create_topic(topic, partitions=3)
        sim = TplusMarketSimulator(
            ASSETS, seed=7, depth_interval_s=0.01, trade_interval_s=0.02, kline_interval_s=0.05
        )
        venue_url = await sim.start()
        sim.pause()  # nothing is emitted until the connector is listening
        settings = _fast(
            dev_settings(cluster.bootstrap_servers, registry_url, venue_url, ASSETS, 0)
        )
        connector = Connector(settings)
        try:
            async with running_connector(connector) as info:
                yield Stack(cluster, registry_url, sim, connector, settings, info)
        finally:
            await sim.stop()


def _metric(stack: Stack, name: str, **labels: str) -> float:
    return metric_value(stack.connector, name, **labels)


async def _all_connected(sim: TplusMarketSimulator) -> None:
    paths = [f"/marketdepth/diff/{a}" for a in ASSETS] + [f"/klines/diff/{a}" for a in ASSETS]
    for path in [*paths, "/trades"]:
        await asyncio.wait_for(sim.wait_connected(path, 1), timeout=20)


def _by_key(records: list[Consumed]) -> dict[str, list[Consumed]]:
    out: dict[str, list[Consumed]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert r.key is not None
        out[r.key].append(r)
    return out


def _rebuild(records: list[Consumed]) -> tuple[Book, bool, int]:
    """A consumer's book from the depth topic alone: (book, valid, last sequence)."""
    book = empty_book()
    valid = False
    last = -1
    for r in records:
        v = r.value
        if v["kind"] == "GAP":
            valid = False
            continue
        if v["kind"] == "SNAPSHOT":
            book = empty_book()
            valid = True
        else:
            assert valid, "a DIFF arrived while the book was invalid"
            assert v["sequence_number"] == last + 1, "DIFFs must be contiguous"
        last = v["sequence_number"]
        apply_levels(book, v)
    return book, valid, last


def _gaps(records: dict[str, list[Consumed]], reason: str) -> int:
    return sum(r.value["gap_reason"] == reason for r in records["tplus.depth"])


async def test_every_event_arrives_once_in_order_and_books_rebuild_exactly(stack: Stack) -> None:
    sim = stack.sim
    await _all_connected(sim)
    sim.resume()
    reader = TopicReader(stack.cluster.bootstrap_servers, stack.registry_url, TOPICS)
    dlq_reader = TopicReader(stack.cluster.bootstrap_servers, None, [DLQ])
    try:
        # Let the books go live and some traffic flow.
        await asyncio.to_thread(
            reader.poll_until,
            lambda rs: sum(r.value["kind"] == "DIFF" for r in rs["tplus.depth"]) >= 40,
        )
        # Fault 1: the venue skips two sequence numbers on asset 1.
        sim.skip_sequence("1", 2)
        await asyncio.to_thread(reader.poll_until, lambda rs: _gaps(rs, "sequence_gap") >= 1)
        # Fault 2: one bad frame on every depth socket: each book announces its loss.
        sim.send_garbage("depth", "this is not json")
        await asyncio.to_thread(
            reader.poll_until, lambda rs: _gaps(rs, "dead_lettered") >= len(ASSETS)
        )
        # Fault 3: the venue drops every socket. Emission pauses while the
        # connector is away: the venue has no replay, so events sent to nobody
        # cannot be expected; the book must still converge via the snapshot.
        sim.pause()
        await sim.disconnect_all(1011)
        await _all_connected(sim)
        sim.resume()
        await asyncio.to_thread(
            reader.poll_until,
            lambda rs: sum(r.value["kind"] == "SNAPSHOT" for r in rs["tplus.depth"]) >= 5,
        )
        sim.pause()
        final_seq = {a: sim.emitted.depth[a][-1].sequence_number for a in ASSETS}
        trade_ids = [t["trade_id"] for t in sim.emitted.trades]
        bars = {a: [b for frame in sim.emitted.klines[a] for b in frame] for a in ASSETS}

        def complete(rs: dict[str, list[Consumed]]) -> bool:
            depth = _by_key(rs["tplus.depth"])
            return (
                all(
                    depth.get(a) and depth[a][-1].value["sequence_number"] == final_seq[a]
                    for a in ASSETS
                )
                and len(rs["tplus.trades"]) >= len(trade_ids)
                and len(rs["tplus.klines"]) >= sum(len(b) for b in bars.values())
            )

        records = await asyncio.to_thread(reader.poll_until, complete)
        dead = await asyncio.to_thread(dlq_reader.poll_until, lambda rs: len(rs[DLQ]) >= 2)
    finally:
        reader.close()
        dlq_reader.close()

    # Depth: the rebuilt book equals the simulator's, for every asset.
    depth = _by_key(records["tplus.depth"])
    for asset in ASSETS:
        book, valid, last = _rebuild(depth[asset])
        venue_book = sim.book(asset)
        assert valid and last == final_seq[asset]
        assert book == {"bids": dict(venue_book.bids), "asks": dict(venue_book.asks)}
        kinds = [r.value["kind"] for r in depth[asset]]
        # Connect, the dead-lettered frame, the reconnect; and asset 1's sequence gap.
        assert kinds.count("SNAPSHOT") == (4 if asset == "1" else 3)
        diffs = [r.value["sequence_number"] for r in depth[asset] if r.value["kind"] == "DIFF"]
        assert len(diffs) == len(set(diffs)), "a diff was published twice"
    gaps = [r.value for r in records["tplus.depth"] if r.value["kind"] == "GAP"]
    seq_gaps = [g for g in gaps if g["gap_reason"] == "sequence_gap"]
    assert [(g["asset_id"], g["gap_received"] - g["gap_expected"]) for g in seq_gaps] == [("1", 2)]
    assert sorted(g["asset_id"] for g in gaps if g["gap_reason"] == "disconnected") == ASSETS
    assert sorted(g["asset_id"] for g in gaps if g["gap_reason"] == "dead_lettered") == ASSETS

    # Trades: every emitted trade exactly once, in emission order per asset.
    trades = _by_key(records["tplus.trades"])
    got = [r.value["trade_id"] for rs in trades.values() for r in rs]
    assert sorted(got) == sorted(trade_ids)
    emitted_by_asset: dict[str, list[int]] = defaultdict(list)
    for t in sim.emitted.trades:
        emitted_by_asset[t["asset_id"]].append(t["trade_id"])
    assert {k: [r.value["trade_id"] for r in v] for k, v in trades.items()} == emitted_by_asset
    first = next(iter(sim.emitted.trades))
    sent = next(
        r.value for rs in trades.values() for r in rs if r.value["trade_id"] == first["trade_id"]
    )
    assert (sent["price"], sent["quantity"]) == (first["price"], first["quantity"])

    # Klines: every bar, in order, per asset.
    klines = _by_key(records["tplus.klines"])
    for asset in ASSETS:
        assert [(r.value["open_timestamp_ns"], r.value["close"]) for r in klines[asset]] == [
            (b["open_timestamp_ns"], b["close"]) for b in bars[asset]
        ]

    # DLQ: the bad frame, whole, with the reason in its headers.
    assert [r.value for r in dead[DLQ]] == [b"this is not json"] * 2
    for r in dead[DLQ]:
        assert r.headers["stream"] == b"tplus.depth"
        assert r.headers["stage"] == b"decode"
        assert r.headers["reason"] == b"not_json"
        assert r.headers["connector"] == b"dev"
    assert sorted(r.key or "" for r in dead[DLQ]) == ASSETS

    # Metrics count exactly the injected faults.
    assert (
        _metric(
            stack,
            "connector_sequence_gaps_total",
            venue="tplus",
            stream="tplus.depth",
            subscription="1",
        )
        == 1
    )
    assert (
        _metric(
            stack,
            "connector_sequence_gaps_total",
            venue="tplus",
            stream="tplus.depth",
            subscription="2",
        )
        == 0
    )
    assert (
        _metric(
            stack,
            "connector_dlq_records_total",
            stream="tplus.depth",
            stage="decode",
            reason="not_json",
        )
        == 2
    )
    for stream, subs in (
        ("tplus.depth", ASSETS),
        ("tplus.klines", ASSETS),
        ("tplus.trades", ["all"]),
    ):
        for sub in subs:
            labels = {"venue": "tplus", "stream": stream, "subscription": sub}
            assert (
                _metric(stack, "connector_reconnects_total", reason="closed_error", **labels) == 1
            )
            assert _metric(stack, "connector_connection_up", **labels) == 1
    assert (
        _metric(
            stack, "connector_book_resyncs_total", venue="tplus", subscription="1", reason="gap"
        )
        == 1
    )
    for asset in ASSETS:
        labels = {"venue": "tplus", "subscription": asset, "reason": "lost"}
        assert _metric(stack, "connector_book_resyncs_total", **labels) == 1
    delivered = sum(
        _metric(stack, "connector_records_delivered_total", topic=t) for t in [*TOPICS, DLQ]
    )
    assert delivered == sum(len(v) for v in records.values()) + len(dead[DLQ])
    assert stack.connector.health.ready()
