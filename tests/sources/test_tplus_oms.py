"""T+ account sources against the OMS simulator on 127.0.0.1 (records to a recording sink)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connector.ops.health import Health
from connector.ops.metrics import Metrics
from connector.pipeline import Publisher
from connector.settings import ConfigError, TplusOmsSettings
from connector.simulators.oms_model import OrderFrame, TradeFrame
from connector.simulators.tplus_oms import TplusOmsSimulator
from connector.sources import tplus_oms
from connector.sources.backoff import Backoff
from connector.sources.context import SourceContext
from connector.sources.tplus_auth import AccountAuth
from connector.venues.tplus.auth import account_id
from tests.conftest import sample
from tests.fakes import RecordingSink

KEYS = [Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32) for i in (21, 22)]
A, B = (account_id(k) for k in KEYS)
NAMES = {A: "desk-a", B: "desk-b"}


def _seed_hex(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    ).hex()


def _settings(base_url: str, key_file: Path, **change: Any) -> TplusOmsSettings:
    data: dict[str, Any] = {
        "enabled": True,
        "base_url": base_url,
        "accounts": [
            {"name": "desk-a", "private_key": {"file": str(key_file)}},
            {"name": "desk-b", "private_key": {"env": "DESK_B_KEY"}, "public_key": B},
        ],
        "websocket": {"backoff": {"initial_s": 0.02, "max_s": 0.1}},
        "baseline": {"timeout_s": 5, "attempts": 2},
        **change,
    }
    return TplusOmsSettings.model_validate(data)


@dataclass
class Running:
    sim: TplusOmsSimulator
    sink: RecordingSink
    metrics: Metrics
    key_file: Path
    http: httpx.AsyncClient
    environ: dict[str, str]


@pytest.fixture
async def running(tmp_path: Path, metrics: Metrics) -> AsyncIterator[Running]:
    sim = TplusOmsSimulator(KEYS, seed=11, interval_s=0.01)
    await sim.start()
    sim.pause()
    for _ in range(40):
        sim.step()  # some open orders and fills for the baselines
    key_file = tmp_path / "desk-a.key"
    key_file.write_text(_seed_hex(KEYS[0]) + "\n")
    async with httpx.AsyncClient(trust_env=False) as http:
        try:
            yield Running(
                sim, RecordingSink(), metrics, key_file, http, {"DESK_B_KEY": _seed_hex(KEYS[1])}
            )
        finally:
            await sim.stop()


async def _start(
    r: Running, health: Health, settings: TplusOmsSettings
) -> list[asyncio.Task[None]]:
    ctx = SourceContext(
        Publisher(r.sink, r.metrics),
        r.metrics,
        health,
        r.http,
        random.Random(2),
        time.time_ns,
        r.environ,
    )
    services = tplus_oms.build(settings, ctx)
    return [asyncio.create_task(s.run()) for s in services]


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _expected_baseline(sim: TplusOmsSimulator) -> int:
    return sum(len(sim.model.open_orders(a)) + 1 + len(sim.model.recent_trades(a)) for a in (A, B))


async def _wait_dead(sink: RecordingSink, count: int) -> None:
    async with asyncio.timeout(10):
        while len(sink.dead) < count:
            sink.changed.clear()
            await sink.changed.wait()


async def test_both_accounts_stream_after_their_baselines(running: Running, health: Health) -> None:
    r, sim = running, running.sim
    baseline_count = _expected_baseline(sim)
    open_ids = {a: [o["order_id"] for o in sim.model.open_orders(a)] for a in (A, B)}
    trade_ids = {a: [t["trade_id"] for t in sim.model.recent_trades(a)] for a in (A, B)}
    tasks = await _start(r, health, _settings(sim.base_url, r.key_file))
    assert len(tasks) == 6  # per account: token keeper, orders socket, trades socket
    try:
        await r.sink.wait_for(baseline_count)
        for a in (A, B):
            await sim.wait_connected("orders", a)
            await sim.wait_connected("user_trades", a)
        frames = [f for _ in range(60) for f in sim.step()]
        await r.sink.wait_for(baseline_count + len(frames))
        for a in (A, B):
            assert [s.delivered for s in sim.emitted[a] if s.frame in frames] == [1] * sum(
                f.account == a for f in frames
            )
    finally:
        await _stop(tasks)

    for a in (A, B):
        orders = [x for x in r.sink.records if x.stream == "tplus.orders" and x.key == a]
        trades = [x for x in r.sink.records if x.stream == "tplus.user-trades" and x.key == a]
        assert {x.value["account"] for x in orders + trades} == {a}
        base = [x.value for x in orders if x.value["source"] == "REST_BASELINE"]
        assert [v["order_id"] for v in base[:-1]] == open_ids[a]
        assert base[-1]["event_type"] == "BaselineEnd"
        assert base[-1]["baseline"]["size"] == len(open_ids[a])
        # No event had described the market yet: its description gave the book's decimals.
        assert {
            (v["open_order"]["book_price_decimals"], v["open_order"]["book_quantity_decimals"])
            for v in base[:-1]
        } == {(2, 4)}
        # The baseline comes first, then the stream in the venue's order.
        assert orders[: len(base)] == [x for x in orders if x.value["source"] == "REST_BASELINE"]
        sent_orders = [f for f in frames if isinstance(f, OrderFrame) and f.account == a]
        assert [(x.value["event_type"], x.value["order_id"]) for x in orders[len(base) :]] == [
            (f.variant, f.order_id) for f in sent_orders
        ]
        base_trades = [x.value["trade_id"] for x in trades if x.value["source"] == "REST_BASELINE"]
        assert base_trades == trade_ids[a]
        sent_trades = [f for f in frames if isinstance(f, TradeFrame) and f.account == a]
        assert [
            (x.value["trade_id"], x.value["status"])
            for x in trades
            if x.value["source"] == "STREAM"
        ] == [(f.trade_id, f.status) for f in sent_trades]
    m = r.metrics
    total_orders_baseline = sum(len(open_ids[a]) + 1 for a in (A, B))
    assert (
        sample(m, "connector_baseline_records_total", venue="tplus", stream="tplus.orders")
        == total_orders_baseline
    )
    assert sample(
        m, "connector_baseline_records_total", venue="tplus", stream="tplus.user-trades"
    ) == sum(len(v) for v in trade_ids.values())
    assert 3000 < sample(m, "connector_token_expiry_seconds", venue="tplus") <= 3600
    for name in NAMES.values():
        for stream in ("tplus.orders", "tplus.user-trades"):
            labels = {"venue": "tplus", "stream": stream, "subscription": name}
            assert sample(m, "connector_frames_received_total", **labels) > 0
    assert sim.auth_log.sign_ins == {A: 1, B: 1}


async def test_unknown_and_bad_frames_go_to_the_dlq_keyed_by_account(
    running: Running, health: Health, caplog: pytest.LogCaptureFixture
) -> None:
    r, sim = running, running.sim
    tasks = await _start(r, health, _settings(sim.base_url, r.key_file))
    try:
        await r.sink.wait_for(_expected_baseline(sim))
        for a in (A, B):
            await sim.wait_connected("orders", a)
            await sim.wait_connected("user_trades", a)
        before = len(r.sink.records)
        assert sim.inject("orders", A, '{"Settled":{"order_id":"x"}}') == 1
        assert sim.inject("user_trades", B, '{"Pending":{"trade_id":1}}') == 1
        assert sim.inject("orders", B, '{"type":"ping"}') == 1
        foreign = '{"Canceled":{"order_id":"o","asset_id":"1","user_id":"0xabc","timestamp_ns":1}}'
        with caplog.at_level(logging.WARNING, logger="connector.sources.tplus_oms"):
            assert sim.inject("orders", A, foreign) == 1
            await _wait_dead(r.sink, 2)
            await r.sink.wait_for(before + 1)
    finally:
        await _stop(tasks)
    unknown, wrapped = sorted(r.sink.dead, key=lambda d: d.stream)
    assert (unknown.stream, unknown.reason, unknown.key) == ("tplus.orders", "unknown_type", A)
    assert unknown.raw == b'{"Settled":{"order_id":"x"}}'
    assert (wrapped.stream, wrapped.reason, wrapped.key) == ("tplus.user-trades", "wrong_shape", B)
    # The foreign-account event is published under the connection's account, with a warning.
    last = r.sink.records[-1]
    assert (last.key, last.value["user_id"]) == (A, "abc".rjust(64, "0"))
    assert "names another account" in caplog.text and A not in caplog.text


async def test_expired_tokens_are_replaced_with_one_sign_in_per_account(
    running: Running, health: Health
) -> None:
    r, sim = running, running.sim
    tasks = await _start(r, health, _settings(sim.base_url, r.key_file))
    try:
        await r.sink.wait_for(_expected_baseline(sim))
        for a in (A, B):
            await sim.wait_connected("orders", a)
            await sim.wait_connected("user_trades", a)
        rejected_before = sum(1 for h in sim.handshakes if h.status == 401)
        await sim.expire_tokens()
        for a in (A, B):
            await sim.wait_sign_ins(a, 2)
            await sim.wait_connected("orders", a)
            await sim.wait_connected("user_trades", a)
        # Each reconnect fetched its baseline again.
        await r.sink.wait_for(2 * _expected_baseline(sim))
    finally:
        await _stop(tasks)
    assert sim.auth_log.sign_ins == {A: 2, B: 2}
    statuses = [h.status for h in sim.handshakes]
    assert statuses.count(101) == 8 and statuses.count(401) > rejected_before
    assert (
        sample(r.metrics, "connector_signin_failures_total", venue="tplus", reason="auth_rejected")
        == 0
    )
    labels = {"venue": "tplus", "stream": "tplus.orders", "subscription": "desk-a"}
    assert sample(r.metrics, "connector_reconnects_total", reason="closed_error", **labels) == 1


async def test_a_venue_without_baseline_endpoints_still_streams(
    running: Running, health: Health
) -> None:
    r, sim = running, running.sim
    sim.baseline_available = False
    tasks = await _start(r, health, _settings(sim.base_url, r.key_file, orders=False))
    try:
        await sim.wait_connected("user_trades", A)
        await sim.wait_connected("user_trades", B)
        frames = [f for _ in range(30) for f in sim.step() if isinstance(f, TradeFrame)]
        await r.sink.wait_for(len(frames))
    finally:
        await _stop(tasks)
    assert [x.value["source"] for x in r.sink.records] == ["STREAM"] * len(frames)
    assert (
        sample(
            r.metrics,
            "connector_baseline_failures_total",
            venue="tplus",
            stream="tplus.user-trades",
            reason="not_served",
        )
        == 2
    )
    assert (
        sample(
            r.metrics, "connector_baseline_records_total", venue="tplus", stream="tplus.user-trades"
        )
        == 0
    )


def test_keys_load_from_files_and_env_and_mismatches_are_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "a.key"
    key_file.write_text(_seed_hex(KEYS[0]))
    env = {"DESK_B_KEY": _seed_hex(KEYS[1])}
    settings = _settings("http://oms.test", key_file)
    loaded = tplus_oms.load_accounts(settings, env)
    assert [(k.name, k.account) for k in loaded] == [("desk-a", A), ("desk-b", B)]

    with pytest.raises(ConfigError) as err:
        tplus_oms.load_accounts(settings, {})
    assert "DESK_B_KEY" in str(err.value) and "accounts[1]" in str(err.value)

    wrong = {"DESK_B_KEY": _seed_hex(KEYS[0])}
    with pytest.raises(ConfigError) as err:
        tplus_oms.load_accounts(settings, wrong)
    message = str(err.value)
    assert "public_key" in message and _seed_hex(KEYS[0]) not in message and A not in message

    key_file.write_text("not a key at all")
    with pytest.raises(ConfigError) as err:
        tplus_oms.load_accounts(settings, env)
    assert "accounts[0]" in str(err.value) and "not a key" not in str(err.value)

    key_file.write_text(_seed_hex(KEYS[1]))
    with pytest.raises(ConfigError) as err:
        tplus_oms.load_accounts(_settings("http://oms.test", key_file), env)
    assert "twice" in str(err.value)


class _CannedBaseline(tplus_oms.BaselineFetcher):
    """A fetcher that answers a fixed body, to see how entries the parser refuses travel."""

    def __init__(self, body: Any) -> None:
        self._body = body

    async def fetch(self) -> tuple[Any, bytes, int] | None:
        return self._body, b"raw", 1234


async def test_refused_baseline_entries_go_to_the_dlq_marked_as_rest(metrics: Metrics) -> None:
    sink = RecordingSink()
    good = {"order_id": "a", "base_asset": "1", "side": "Buy", "status": "Open", "timestamp_ns": 1}
    handler = tplus_oms.OrdersHandler(
        A, Publisher(sink, metrics), metrics, _CannedBaseline([good, {"order_id": "b"}])
    )
    await handler.on_open()
    assert [r.value["event_type"] for r in sink.records] == ["OpenOrder", "BaselineEnd"]
    assert sink.records[-1].value["baseline"] == {"id": 1234, "size": 1, "complete": False}
    [letter] = sink.dead
    assert (letter.stream, letter.reason, letter.key) == ("tplus.orders", "missing_field", A)
    assert letter.raw == b'{"order_id":"b"}' and ("source", "rest_baseline") in letter.extra_headers
    assert (
        sample(metrics, "connector_baseline_records_total", venue="tplus", stream="tplus.orders")
        == 2
    )

    whole = tplus_oms.UserTradesHandler(
        B, Publisher(sink, metrics), metrics, _CannedBaseline({"not": "a list"})
    )
    await whole.on_open()
    assert sink.dead[-1].raw == b"raw" and sink.dead[-1].reason == "wrong_shape"
    assert (
        sample(
            metrics,
            "connector_baseline_failures_total",
            venue="tplus",
            stream="tplus.user-trades",
            reason="bad_response",
        )
        == 1
    )


async def test_a_market_without_a_description_leaves_its_decimals_unknown(
    running: Running, metrics: Metrics
) -> None:
    r = running
    auth = AccountAuth(
        "desk-b",
        KEYS[1],
        r.http,
        r.sim.base_url,
        metrics,
        retry=Backoff(0.01, 0.1, 2.0, random.Random(1)),
    )
    described = {
        "order_id": "a",
        "base_asset": "1",
        "side": "Buy",
        "status": "Open",
        "timestamp_ns": 1,
    }
    unknown = {**described, "order_id": "b", "base_asset": "7"}
    handler = tplus_oms.OrdersHandler(
        B,
        Publisher(r.sink, metrics),
        metrics,
        _CannedBaseline({"orders": [described, unknown]}),
        tplus_oms.MarketDecimals(auth, r.sim.base_url, 5),
    )
    await handler.on_open()
    opened = [x.value["open_order"] for x in r.sink.records[:2]]
    assert [(o["book_price_decimals"], o["book_quantity_decimals"]) for o in opened] == [
        (2, 4),
        (None, None),
    ]
    assert r.sink.records[-1].value["baseline"]["complete"] is True
