"""OMS simulator → connector → embedded Kafka and registry → Confluent's deserializer.

Two accounts, real Ed25519 sign-in, a forced token expiry, forced 401s and a
venue disconnect with events the connector could not see. Every order
event and fill the simulator delivered must come back, from the right
topic, keyed by its account, in order; what was missed must be recoverable
from the REST baseline published after the reconnect. A second test runs
the same faults with every logger at DEBUG and searches the output for
keys, tokens and signatures.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connector.app import Connector, RuntimeInfo
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.ops.log_format import JsonFormatter
from connector.settings import Settings, parse_settings
from connector.simulators import tplus_oms as oms_sim
from connector.simulators.oms_model import OrderFrame, TradeFrame
from connector.simulators.tplus_oms import Handshake, TplusOmsSimulator
from tests.kafka_reader import Consumed, TopicReader
from tests.running import metric_value, running_connector

ORDERS, TRADES, DLQ = "tplus.orders", "tplus.user-trades", "connector.dlq"
SEEDS = [hashlib.sha256(b"tplus-bridge-example-user").digest(), bytes(range(32))]
KEYS = [Ed25519PrivateKey.from_private_bytes(seed) for seed in SEEDS]


@dataclass
class Stack:
    cluster: MockCluster
    registry_url: str
    sim: TplusOmsSimulator
    connector: Connector
    info: RuntimeInfo

    def metric(self, name: str, **labels: str) -> float:
        return metric_value(self.connector, name, **labels)


def _settings(
    bootstrap: str, registry_url: str, sim: TplusOmsSimulator, spool_dir: Path
) -> Settings:
    oms = oms_sim.connector_section(sim)
    oms["websocket"] = {"backoff": {"initial_s": 0.02, "max_s": 0.1}}
    return parse_settings(
        {
            "name": "e2e-oms",
            "kafka": {"bootstrap_servers": bootstrap, "linger_ms": 2},
            "schema_registry": {"url": registry_url},
            "metrics": {"host": "127.0.0.1", "port": 0},
            "spool": {"path": str(spool_dir)},
            "tplus": {"market_data": {"enabled": False}, "oms": oms},
        }
    )


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    with MockCluster(brokers=3) as cluster, RegistryServer() as registry:
        registry_url = registry.start()
        for topic in (ORDERS, TRADES, DLQ):
            cluster.create_topic(topic, partitions=3)
        sim = TplusOmsSimulator(KEYS, seed=5, interval_s=0.005)
        await sim.start()
        sim.pause()
        for _ in range(30):
            sim.step()  # history before the connector starts: only a baseline can tell it
        settings = _settings(cluster.bootstrap_servers, registry_url, sim, tmp_path)
        connector = Connector(settings, environ=oms_sim.connector_environ(sim))
        try:
            async with running_connector(connector) as info:
                yield Stack(cluster, registry_url, sim, connector, info)
        finally:
            await sim.stop()


async def _all_connected(sim: TplusOmsSimulator) -> None:
    async with asyncio.timeout(20):
        for account in sim.accounts:
            await sim.wait_connected("orders", account)
            await sim.wait_connected("user_trades", account)


def _stream(records: list[Consumed]) -> list[Consumed]:
    return [r for r in records if r.value["source"] == "STREAM"]


def _in_order(records: list[Consumed], account: str) -> list[Consumed]:
    mine = [r for r in records if r.key == account]
    assert len({r.partition for r in mine}) <= 1, "one account's records share a partition"
    return sorted(mine, key=lambda r: r.offset)


def _baseline_after(records: list[Consumed], account: str, after_ns: int) -> bool:
    return any(
        r.key == account
        and r.value["event_type"] == "BaselineEnd"
        and r.value["baseline"]["id"] > after_ns
        for r in records
    )


async def _run_faults(stack: Stack, reader: TopicReader) -> dict[str, Any]:
    """Traffic, a token expiry, forced 401s with a disconnect and missed events; returns facts."""
    sim = stack.sim
    await _all_connected(sim)
    sim.resume()
    await asyncio.to_thread(reader.poll_until, lambda rs: len(_stream(rs[ORDERS])) >= 40)

    # Fault 1: every token expires; the venue closes the sockets and refuses the old tokens.
    sim.pause()
    sign_ins = dict(sim.auth_log.sign_ins)
    await sim.expire_tokens()
    for account in sim.accounts:
        await asyncio.wait_for(sim.wait_sign_ins(account, sign_ins[account] + 1), timeout=20)
    await _all_connected(sim)
    sim.resume()
    await asyncio.to_thread(reader.poll_until, lambda rs: len(_stream(rs[ORDERS])) >= 80)

    # Fault 2: the venue drops every socket and refuses upgrades (401) while events happen.
    sim.pause()
    sim.reject_next_handshakes(1000)
    mark = len(sim.handshakes)
    await sim.disconnect_all(1011)
    cut_ns = time.time_ns()
    missed = [frame for _ in range(30) for frame in sim.step()]
    open_then = {a: [o["order_id"] for o in sim.model.open_orders(a)] for a in sim.accounts}
    trades_then = {
        a: [(t["trade_id"], t["status"]) for t in sim.model.recent_trades(a)] for a in sim.accounts
    }

    def every_socket_refused(handshakes: list[Handshake]) -> bool:
        refused = {(h.path, h.user_id) for h in handshakes[mark:] if h.status == 401}
        return all(
            ("/orders", a) in refused and (f"/trades/user/events/{a}", a) in refused
            for a in sim.accounts
        )

    await asyncio.wait_for(sim.wait_handshakes(every_socket_refused), timeout=20)
    sim.accept_handshakes()
    await _all_connected(sim)
    await asyncio.to_thread(
        reader.poll_until,
        lambda rs: all(_baseline_after(rs[ORDERS], a, cut_ns) for a in sim.accounts),
    )
    # A frame no account socket could receive, and one the protocol does not define.
    assert sim.inject("orders", sim.accounts[1], '{"Settled":{"order_id":"x"}}') == 1
    sim.resume()
    await asyncio.to_thread(reader.poll_until, lambda rs: len(_stream(rs[ORDERS])) >= 120)
    sim.pause()
    return {"missed": missed, "open_then": open_then, "trades_then": trades_then, "cut": cut_ns}


async def test_every_account_event_arrives_keyed_and_in_order_across_faults(stack: Stack) -> None:
    sim = stack.sim
    reader = TopicReader(stack.cluster.bootstrap_servers, stack.registry_url, [ORDERS, TRADES])
    dlq = TopicReader(stack.cluster.bootstrap_servers, None, [DLQ])
    try:
        facts = await _run_faults(stack, reader)
        delivered = {a: [s.frame for s in sim.emitted[a] if s.delivered > 0] for a in sim.accounts}
        want_orders = {
            a: [f for f in delivered[a] if isinstance(f, OrderFrame)] for a in sim.accounts
        }
        want_trades = {
            a: [f for f in delivered[a] if isinstance(f, TradeFrame)] for a in sim.accounts
        }

        def complete(rs: dict[str, list[Consumed]]) -> bool:
            return all(
                len([r for r in _stream(rs[ORDERS]) if r.key == a]) >= len(want_orders[a])
                and len([r for r in _stream(rs[TRADES]) if r.key == a]) >= len(want_trades[a])
                for a in sim.accounts
            )

        records = await asyncio.to_thread(reader.poll_until, complete)
        dead = await asyncio.to_thread(dlq.poll_until, lambda rs: len(rs[DLQ]) >= 1)
    finally:
        reader.close()
        dlq.close()

    missed: list[OrderFrame | TradeFrame] = facts["missed"]
    assert missed and all(
        s.delivered == 0 for a in sim.accounts for s in sim.emitted[a] if s.frame in missed
    )
    for account in sim.accounts:
        orders = _in_order(records[ORDERS], account)
        trades = _in_order(records[TRADES], account)
        assert {r.value["account"] for r in orders + trades} == {account}
        # Every delivered event exactly once, in the venue's order.
        assert [(r.value["event_type"], r.value["order_id"]) for r in _stream(orders)] == [
            (f.variant, f.order_id) for f in want_orders[account]
        ]
        assert [(r.value["trade_id"], r.value["status"]) for r in _stream(trades)] == [
            (f.trade_id, f.status) for f in want_trades[account]
        ]
        # Three connections per socket (start, token expiry, disconnect): three baselines each.
        ends = [r for r in orders if r.value["event_type"] == "BaselineEnd"]
        assert len(ends) == 3 and all(r.value["baseline"]["complete"] for r in ends)
        # The baseline after the disconnect shows what the missed events left open...
        last_id = ends[-1].value["baseline"]["id"]
        assert last_id > facts["cut"]
        last = [r.value for r in orders if (r.value["baseline"] or {}).get("id") == last_id]
        assert [v["order_id"] for v in last[:-1]] == facts["open_then"][account]
        # ...and the trade baseline every fill with its status then, missed ones included.
        trade_baselines = sorted({r.value["baseline_id"] for r in trades} - {None})
        assert len(trade_baselines) == 3
        last_trades = [
            (r.value["trade_id"], r.value["status"])
            for r in trades
            if r.value["baseline_id"] == trade_baselines[-1]
        ]
        assert last_trades == facts["trades_then"][account]
        # (each at its latest status: a Pending settled meanwhile shows as settled).
        missed_fills = {
            f.trade_id for f in missed if isinstance(f, TradeFrame) and f.account == account
        }
        assert missed_fills and missed_fills <= {trade_id for trade_id, _ in last_trades}

    kinds = {r.value["event_type"] for r in records[ORDERS]}
    assert {"Created", "Replaced", "Amended", "Canceled", "Removed", "OpenOrder"} <= kinds
    assert {r.value["status"] for r in records[TRADES]} == {"Pending", "Confirmed", "Rollbacked"}

    [letter] = dead[DLQ]
    assert letter.value == b'{"Settled":{"order_id":"x"}}'
    assert letter.key == sim.accounts[1]
    assert (letter.headers["stream"], letter.headers["reason"]) == (
        b"tplus.orders",
        b"unknown_type",
    )

    baseline_orders = sum(r.value["source"] == "REST_BASELINE" for r in records[ORDERS])
    baseline_trades = sum(r.value["source"] == "REST_BASELINE" for r in records[TRADES])
    assert (
        stack.metric("connector_baseline_records_total", venue="tplus", stream="tplus.orders")
        == baseline_orders
    )
    assert (
        stack.metric("connector_baseline_records_total", venue="tplus", stream="tplus.user-trades")
        == baseline_trades
    )
    assert 3000 < stack.metric("connector_token_expiry_seconds", venue="tplus") <= 3600
    for index in range(2):
        for stream in ("tplus.orders", "tplus.user-trades"):
            labels = {"venue": "tplus", "stream": stream, "subscription": f"dev-{index}"}
            assert stack.metric("connector_reconnects_total", reason="closed_error", **labels) == 2
            assert (
                stack.metric("connector_reconnects_total", reason="handshake_rejected", **labels)
                >= 1
            )
            assert stack.metric("connector_connection_up", **labels) == 1
            assert stack.metric("connector_frames_received_total", **labels) > 0
    assert (
        stack.metric(
            "connector_dlq_records_total",
            stream="tplus.orders",
            stage="validate",
            reason="unknown_type",
        )
        == 1
    )
    assert stack.connector.health.ready()


@pytest.fixture
def debug_log() -> Iterator[list[str]]:
    """Every log record of every logger, at DEBUG, formatted as the connector formats them."""
    lines: list[str] = []
    formatter = JsonFormatter()

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(formatter.format(record))
            lines.append(record.getMessage())

    root = logging.getLogger()
    handler = Capture(logging.DEBUG)
    saved = {
        name: lg.level
        for name, lg in logging.root.manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    }
    root_level = root.level
    for name in [
        *saved,
        "websockets.client",
        "websockets.server",
        "httpx",
        "httpcore",
        "librdkafka",
    ]:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(root_level)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _forms(secret: bytes) -> list[str]:
    """The ways a byte secret could be printed."""
    return [
        secret.hex(),
        secret.hex().upper(),
        repr(secret),
        str(list(secret)),
        ",".join(str(b) for b in secret),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
    ]


async def test_nothing_secret_is_logged_at_debug(stack: Stack, debug_log: list[str]) -> None:
    reader = TopicReader(stack.cluster.bootstrap_servers, stack.registry_url, [ORDERS, TRADES])
    try:
        await _run_faults(stack, reader)
    finally:
        reader.close()
    sim = stack.sim
    text = "\n".join(debug_log)
    # The capture really holds the DEBUG handshakes, with the credentials redacted.
    assert "> GET /orders HTTP/1.1" in text
    assert "Authorization: [redacted]" in text
    assert len(sim.auth_log.tokens) >= 6 and len(sim.auth_log.signatures) >= 6
    secrets: list[str] = []
    for seed, key in zip(SEEDS, KEYS, strict=True):
        secrets += _forms(seed)
        secrets.append(oms_sim.seed_hex(key))
    for signature in sim.auth_log.signatures:
        secrets += _forms(signature)
    secrets += sim.auth_log.tokens
    leaked = [s for s in secrets if s in text]
    assert leaked == []


HOSTILE_ORDERS = [
    '{"type": ["removed"], "order_id": "x"}',  # a type that cannot be hashed
    '{"type": {"Removed": {}}, "order_id": "x"}',
    '{"Canceled": {"order_id": "x", "asset_id": "\u00b2", "user_id": "u", "timestamp_ns": 1}}',
]
HOSTILE_TRADES = [
    json.dumps(
        {
            "asset_id": "\u00b2",  # str.isdigit() accepts it, int() refuses it
            "trade_id": 1,
            "order_id": "x",
            "price": "1",
            "quantity": "1",
            "timestamp_ns": 1,
            "is_maker": True,
            "is_buyer": True,
            "status": "Pending",
        }
    ),
]


async def test_hostile_frames_are_dead_lettered_and_the_events_after_them_arrive(
    stack: Stack,
) -> None:
    sim = stack.sim
    await _all_connected(sim)
    account = sim.accounts[0]
    for text in HOSTILE_ORDERS:
        assert sim.inject("orders", account, text) == 1
    for text in HOSTILE_TRADES:
        assert sim.inject("user_trades", account, text) == 1
    marks = {a: len(sim.emitted[a]) for a in sim.accounts}
    reader = TopicReader(stack.cluster.bootstrap_servers, stack.registry_url, [ORDERS, TRADES])
    dlq = TopicReader(stack.cluster.bootstrap_servers, None, [DLQ])
    try:
        sim.resume()
        await asyncio.to_thread(reader.poll_until, lambda rs: len(_stream(rs[ORDERS])) >= 40)
        sim.pause()
        after = {
            a: [s.frame for s in list(sim.emitted[a])[marks[a] :] if s.delivered]
            for a in sim.accounts
        }
        assert all(after.values())

        def arrived(rs: dict[str, list[Consumed]]) -> bool:
            return all(
                {f.order_id for f in after[a] if isinstance(f, OrderFrame)}
                <= {r.value["order_id"] for r in _stream(rs[ORDERS]) if r.key == a}
                and {f.trade_id for f in after[a] if isinstance(f, TradeFrame)}
                <= {r.value["trade_id"] for r in _stream(rs[TRADES]) if r.key == a}
                for a in sim.accounts
            )

        await asyncio.to_thread(reader.poll_until, arrived)
        dead = await asyncio.to_thread(
            dlq.poll_until, lambda rs: len(rs[DLQ]) >= len(HOSTILE_ORDERS) + len(HOSTILE_TRADES)
        )
    finally:
        reader.close()
        dlq.close()
    reasons = [b"wrong_shape", b"wrong_shape", b"bad_field", b"bad_field"]
    frames_sent = [t.encode() for t in (*HOSTILE_ORDERS, *HOSTILE_TRADES)]
    assert sorted((d.value, d.headers["reason"]) for d in dead[DLQ]) == sorted(
        zip(frames_sent, reasons, strict=True)
    )
    assert all(d.key == account for d in dead[DLQ])
    for stream in (ORDERS, TRADES):
        labels = {"venue": "tplus", "stream": stream, "subscription": "dev-0"}
        assert stack.metric("connector_connection_up", **labels) == 1
