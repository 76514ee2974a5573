"""tastytrade simulator → connector → embedded Kafka and registry → Confluent's deserializer.

Every notification the simulator wrote to the connector's sockets and every
object it served as a REST baseline must come back from Kafka, decoded by
confluent-kafka's AvroDeserializer, keyed by its account, in order per
account: across a batched frame, an OAuth token refresh on a live socket and
a forced disconnect (after which the baseline is fetched again).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from json import dumps as json_dumps
from typing import Any

import pytest

from connector.app import Connector, RuntimeInfo
from connector.dev import dev_settings
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.settings import Settings, parse_settings
from connector.simulators.tastytrade import (
    TastytradeSimulator,
    connector_environ,
    connector_section,
)
from connector.venues.tastytrade import notifications as n
from tests.kafka_reader import Consumed, TopicReader
from tests.running import metric_value, running_connector

ACCOUNTS = ["5WT00001", "5WT00002"]
TOPICS = sorted(t.stream for t in n.TYPES.values())
DLQ = "connector.dlq"
MS = 1_000_000
BASELINES_PER_CONNECT = 5 * len(ACCOUNTS)


@dataclass
class Stack:
    cluster: MockCluster
    registry_url: str
    sim: TastytradeSimulator
    connector: Connector
    settings: Settings
    info: RuntimeInfo


def _fast(settings: Settings) -> Settings:
    """Fast heartbeats, short backoff, and a token refresh every 1.5 s (life 3 s)."""
    data = settings.model_dump(mode="json")
    for section in data["tplus"].values():
        section["enabled"] = False  # this test is about tastytrade alone
    tt = data["tastytrade"]["account_streamer"]
    tt["heartbeat_interval_s"] = 2.0
    tt["heartbeat_timeout_s"] = 2.0
    tt["auth"]["refresh_margin_s"] = 2.0
    tt["websocket"]["backoff"] = {"initial_s": 0.05, "max_s": 0.2, "multiplier": 2.0}
    data["metrics"]["port"] = 0
    return parse_settings(data)


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    with MockCluster(brokers=3) as cluster, RegistryServer() as registry:
        registry_url = registry.start()
        for topic in [*TOPICS, DLQ]:
            cluster.create_topic(topic, partitions=3)
        sim = TastytradeSimulator(
            ACCOUNTS,
            seed=11,
            event_interval_s=0.01,
            token_lifetime_s=3.0,
            alert_every=7,
            watchlist_every=11,
        )
        await sim.start()
        sim.pause()  # nothing happens in the accounts until the connector listens
        try:
            settings = _fast(
                dev_settings(
                    cluster.bootstrap_servers,
                    registry_url,
                    "http://127.0.0.1:9",
                    ["1"],
                    0,
                    tastytrade=connector_section(sim),
                )
            )
            connector = Connector(settings, environ=connector_environ(sim))
            async with running_connector(connector) as info:
                yield Stack(cluster, registry_url, sim, connector, settings, info)
        finally:
            await sim.stop()


def _metric(stack: Stack, name: str, **labels: str) -> float:
    return metric_value(stack.connector, name, **labels)


# What identifies one state of each object: read from the venue's JSON and from the record.
Fingerprint = Callable[[dict[str, Any]], tuple[Any, ...]]
FINGERPRINTS: dict[str, tuple[Fingerprint, Fingerprint]] = {
    "Order": (
        lambda d: (
            d["id"],
            d["status"],
            d["updated-at"] * MS,
            [f["fill-id"] for f in d["legs"][0]["fills"]],
            [str(f["quantity"]) for f in d["legs"][0]["fills"]],
            d.get("price"),
        ),
        lambda v: (
            v["id"],
            v["status"],
            v["updated_at_ns"],
            [f["fill_id"] for f in v["legs"][0]["fills"]],
            [f["quantity"] for f in v["legs"][0]["fills"]],
            v["price"],
        ),
    ),
    "ComplexOrder": (
        lambda d: (d["id"], d["type"], [(o["id"], o["status"]) for o in d["orders"]]),
        lambda v: (v["id"], v["type"], [(o["id"], o["status"]) for o in v["orders"]]),
    ),
    "AccountBalance": (
        lambda d: (d["cash-balance"], d["net-liquidating-value"], d["pending-cash-effect"]),
        lambda v: (v["cash_balance"], v["net_liquidating_value"], v["pending_cash_effect"]),
    ),
    "CurrentPosition": (
        lambda d: (d["symbol"], str(d["quantity"]), d["average-open-price"], d["realized-today"]),
        lambda v: (v["symbol"], v["quantity"], v["average_open_price"], v["realized_today"]),
    ),
    "TradingStatus": (
        lambda d: (d["id"], d["day-trade-count"], d["is-pattern-day-trader"]),
        lambda v: (v["id"], v["day_trade_count"], v["is_pattern_day_trader"]),
    ),
    "ExternalTransaction": (
        lambda d: (d["id"], d["state"], d["amount"], d["direction"]),
        lambda v: (v["id"], v["state"], v["amount"], v["direction"]),
    ),
    "UnderlyingYearGainSummary": (
        lambda d: (d["symbol"], d["yearly-realized-gain"], d["yearly-realized-gain-effect"]),
        lambda v: (v["symbol"], v["yearly_realized_gain"], v["yearly_realized_gain_effect"]),
    ),
    "OrderChain": (
        lambda d: (d["id"], d["lite-nodes-sizes"], [x["id"] for x in d["lite-nodes"]]),
        lambda v: (v["id"], v["lite_nodes_sizes"], [x["id"] for x in v["lite_nodes"]]),
    ),
    "QuoteAlert": (
        lambda d: (d["alert-external-id"], d["symbol"], d["threshold"]),
        lambda v: (v["alert_external_id"], v["symbol"], v["threshold"]),
    ),
    "PublicWatchlists": (
        lambda d: (d["name"], [e["symbol"] for e in d["watchlist-entries"]]),
        lambda v: (v["name"], [e["symbol"] for e in v["watchlist_entries"]]),
    ),
}

Expected = dict[tuple[str, str], list[tuple[str, tuple[Any, ...]]]]


def _key(kind: str, data: dict[str, Any]) -> str:
    scope = n.TYPES[kind].scope
    if scope is n.Scope.ACCOUNT:
        return str(data["account-number"])
    if scope is n.Scope.USER:
        return str(data["user-external-id"])
    return n.PUBLIC_KEY


def _expected(sim: TastytradeSimulator, clients: list[int]) -> Expected:
    """Per (topic, key): each connection's baseline, then what was sent on it, in order."""
    assert len(sim.served) == BASELINES_PER_CONNECT * len(clients)
    out: Expected = defaultdict(list)
    for index, client in enumerate(clients):
        served = sim.served[index * BASELINES_PER_CONNECT : (index + 1) * BASELINES_PER_CONNECT]
        for answer in served:
            wire_fp = FINGERPRINTS[answer.type][0]
            for item in answer.items:
                topic = n.TYPES[answer.type].stream
                out[(topic, answer.account)].append(("REST_BASELINE", wire_fp(item)))
        for sent in (s for s in sim.sent if s.client == client):
            kind = sent.envelope["type"]
            if kind not in n.TYPES:
                continue
            data = sent.envelope["data"]
            out[(n.TYPES[kind].stream, _key(kind, data))].append(
                ("STREAM", FINGERPRINTS[kind][0](data))
            )
    return out


def _actual(records: dict[str, list[Consumed]]) -> Expected:
    out: Expected = defaultdict(list)
    for topic, consumed in records.items():
        kind = n.STREAM_TYPES[topic].name
        for r in sorted(consumed, key=lambda r: (r.partition, r.offset)):
            assert r.key is not None
            out[(topic, r.key)].append((r.value["origin"], FINGERPRINTS[kind][1](r.value)))
    return out


async def test_every_event_and_baseline_arrives_keyed_and_in_order_per_account(
    stack: Stack,
) -> None:
    sim = stack.sim
    # First connection: connect, then the whole baseline before any event.
    await sim.wait_until(
        lambda: len(sim.live_clients()) == 1 and len(sim.served) == BASELINES_PER_CONNECT, 20
    )
    first = sim.live_clients()[0]
    sim.resume()
    await sim.wait_until(lambda: len(sim.sent) >= 80)
    # A batched frame.
    sim.batch_next(4)
    await sim.wait_until(lambda: len(sim.batch_frames) == 1)
    # An OAuth token refresh on the live socket: heartbeats carry the new token.
    await sim.wait_until(lambda: len(set(first.tokens)) >= 2 and first.heartbeats_answered >= 2, 15)
    assert not first.closed, "the refresh did not need a new socket"
    # A forced disconnect; the connector reconnects and fetches a new baseline.
    sim.pause()
    await sim.disconnect_all(1011)
    await sim.wait_until(
        lambda: len(sim.live_clients()) == 1 and len(sim.served) == 2 * BASELINES_PER_CONNECT, 20
    )
    second = sim.live_clients()[0]
    assert second.id != first.id
    sim.resume()
    sent_before = len(sim.sent)
    await sim.wait_until(lambda: len(sim.sent) >= sent_before + 60)
    sim.batch_next(3)
    await sim.wait_until(lambda: len(sim.batch_frames) == 2)
    unknown = {"type": "UserMessage", "data": {"account-number": ACCOUNTS[1]}, "timestamp": 1}
    sim.inject(unknown)
    sim.pause()

    expected = _expected(sim, [first.id, second.id])
    total = sum(len(v) for v in expected.values())
    reader = TopicReader(stack.cluster.bootstrap_servers, stack.registry_url, TOPICS)
    dlq_reader = TopicReader(stack.cluster.bootstrap_servers, None, [DLQ])
    try:
        records = await asyncio.to_thread(
            reader.poll_until, lambda rs: sum(len(v) for v in rs.values()) >= total, 30.0
        )
        dead = await asyncio.to_thread(dlq_reader.poll_until, lambda rs: len(rs[DLQ]) >= 1)
    finally:
        reader.close()
        dlq_reader.close()

    # Everything, exactly once, in order per (topic, key).
    actual = _actual(records)
    assert sum(len(v) for v in actual.values()) == total
    assert set(actual) == set(expected)
    for where, sequence in expected.items():
        assert actual[where] == sequence, f"{where} differs"
    # Both accounts lived, every type was seen, and the keys are the accounts.
    account_keys = {
        key for (topic, key) in expected if n.STREAM_TYPES[topic].scope.value == "account"
    }
    assert account_keys == set(ACCOUNTS)
    assert {topic for (topic, _) in expected} == set(TOPICS)
    for topic, consumed in records.items():
        for r in consumed:
            if n.STREAM_TYPES[topic].scope is n.Scope.ACCOUNT:
                assert r.key == r.value["account_number"]
            assert r.value["received_ns"] > 0
            assert (r.value["timestamp_ns"] is None) == (r.value["origin"] == "REST_BASELINE")

    # The unknown type went to the DLQ whole, with its reason.
    (letter,) = dead[DLQ]
    assert letter.headers["reason"] == b"unknown_type"
    assert letter.headers["stage"] == b"route"
    assert letter.headers["stream"] == b"tastytrade.streamer"
    assert letter.headers["notification_type"] == b"UserMessage"
    assert letter.key == ACCOUNTS[1]

    # Metrics say the same: two baselines, one forced reconnect, no sign-in trouble.
    for answer_type in ("AccountBalance", "CurrentPosition", "Order", "ComplexOrder"):
        stream = n.TYPES[answer_type].stream
        served = sum(len(s.items) for s in sim.served if s.type == answer_type)
        assert (
            _metric(stack, "connector_baseline_records_total", venue="tastytrade", stream=stream)
            == served
        )
    labels = {"venue": "tastytrade", "stream": "tastytrade.streamer", "subscription": "streamer"}
    assert _metric(stack, "connector_reconnects_total", reason="closed_error", **labels) == 1
    assert _metric(stack, "connector_reconnects_total", reason="heartbeat_timeout", **labels) == 0
    assert _metric(stack, "connector_connection_up", **labels) == 1
    assert len(sim.issued) >= 2
    assert stack.connector.health.ready()


async def test_hostile_replies_and_notifications_cost_only_themselves(stack: Stack) -> None:
    """A refused subscription, a timestamp of non-ASCII digits, deep nesting and a batch
    with a bad element: each is logged or dead-lettered, and what follows is delivered."""
    sim = stack.sim
    sim.refuse_subscriptions()  # the connector asks for quote alerts and watchlists
    await sim.disconnect_all(1011)
    await sim.wait_until(
        lambda: (
            len(sim.live_clients()) == 1
            and {"quote-alerts-subscribe", "public-watchlists-subscribe"}
            <= set(sim.live_clients()[0].actions)
        ),
        20,
    )
    client = sim.live_clients()[0]
    bad_time = {"type": "Order", "data": {"id": 9, "account-number": ACCOUNTS[0]}}
    nested = "[" * 600 + "]" * 600  # deeper than a recursive writer survives
    assert sim.inject_text(json_dumps({**bad_time, "timestamp": "\u00b2"})) == 1
    deep = f'{{"type":"Order","data":{{"id":9,"account-number":"{ACCOUNTS[0]}","x":{nested}}}}}'
    assert sim.inject_text(deep)
    assert sim.inject_text('{"results":[' + "[" * 400 + "]" * 400 + "]}")  # a batch element
    sim.resume()
    sent_before = len(sim.sent)
    await sim.wait_until(lambda: len(sim.sent) >= sent_before + 40)
    sim.pause()
    after = [s for s in sim.sent[sent_before:] if s.envelope["type"] in n.TYPES]

    reader = TopicReader(stack.cluster.bootstrap_servers, stack.registry_url, TOPICS)
    dlq_reader = TopicReader(stack.cluster.bootstrap_servers, None, [DLQ])
    try:
        wanted = {(s.envelope["type"], s.envelope["timestamp"]) for s in after}

        def delivered(rs: dict[str, list[Consumed]]) -> bool:
            got = {
                (n.STREAM_TYPES[topic].name, r.value["timestamp_ns"] // MS)
                for topic, consumed in rs.items()
                for r in consumed
                if r.value["timestamp_ns"] is not None
            }
            return wanted <= got and any(r.value["id"] == 9 for r in rs["tastytrade.orders"])

        records = await asyncio.to_thread(reader.poll_until, delivered, 30.0)
        dead = await asyncio.to_thread(dlq_reader.poll_until, lambda rs: len(rs[DLQ]) >= 2)
    finally:
        reader.close()
        dlq_reader.close()

    assert client.closed is False, "a refused subscription keeps the socket"
    assert sorted((d.headers["stream"], d.headers["reason"]) for d in dead[DLQ]) == [
        (b"tastytrade.orders", b"bad_field"),
        (b"tastytrade.streamer", b"wrong_shape"),
    ]
    # The deeply nested unknown field arrived with its order, as JSON text in extra.
    (order,) = [r for r in records["tastytrade.orders"] if r.value["id"] == 9]
    assert order.value["extra"] == {"x": nested}
    labels = {"venue": "tastytrade", "stream": "tastytrade.streamer", "subscription": "streamer"}
    assert _metric(stack, "connector_connection_up", **labels) == 1
    assert stack.connector.health.ready()
