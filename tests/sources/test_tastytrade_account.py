"""The Account Streamer source against the tastytrade simulator on 127.0.0.1.

A real WebSocketSession, the real handler and token source, real HTTP; only
the Kafka sink is replaced by a recorder.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connector.ops.health import Health
from connector.ops.metrics import Metrics
from connector.pipeline import LossListener, Publisher
from connector.records import DeadLetter, Record
from connector.settings import WebSocketSettings
from connector.simulators.tastytrade import StreamerClient, TastytradeSimulator
from connector.sources.backoff import Backoff
from connector.sources.tastytrade_account import (
    STREAM,
    SUBSCRIPTION,
    AccountStreamHandler,
    BaselineFetcher,
)
from connector.sources.tastytrade_auth import VENUE, OAuthTokenSource
from connector.sources.ws_session import Endpoint, WebSocketSession
from connector.venues.tastytrade.streamer import AccountStreamer, StreamerConfig
from tests.conftest import sample
from tests.fakes import FakeLink, FixedTokens

ACCOUNTS = ("5WT00001", "5WT00002")
LABELS = {"venue": VENUE, "stream": STREAM, "subscription": SUBSCRIPTION}


class Sink:
    """Keeps what would have been produced, in order."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.dead: list[DeadLetter] = []
        self._changed = asyncio.Event()

    def submit(self, record: Record) -> None:
        self.records.append(record)
        self._changed.set()

    async def send(self, record: Record) -> None:
        self.submit(record)

    async def dead_letter(self, letter: DeadLetter) -> None:
        self.dead.append(letter)
        self._changed.set()

    def congested(self) -> bool:
        return False

    def on_lost(self, stream: str, listener: LossListener) -> None:
        return None

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while True:
                self._changed.clear()
                if predicate():
                    return
                await self._changed.wait()


def _rendered(record: logging.LogRecord) -> str:
    """A record as any formatter could print it: message, extras, exception text."""
    parts = [record.getMessage(), record.exc_text or ""]
    for key, value in vars(record).items():
        if key in ("msg", "args"):
            continue
        try:
            parts.append(f"{key}={value}")
        except ReferenceError:  # a weak proxy to an object already gone prints nothing
            continue
    return " ".join(parts)


@dataclass
class Rig:
    sim: TastytradeSimulator
    sink: Sink
    tokens: OAuthTokenSource
    task: asyncio.Task[None]


@pytest.fixture
async def sim() -> AsyncIterator[TastytradeSimulator]:
    simulator = TastytradeSimulator(ACCOUNTS, seed=5, event_interval_s=0.01, idle_timeout_s=30)
    await simulator.start()
    simulator.pause()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def _start(
    sim: TastytradeSimulator,
    http: httpx.AsyncClient,
    metrics: Metrics,
    health: Health,
    **streamer: Any,
) -> Rig:
    sink = Sink()
    tokens = OAuthTokenSource(
        http,
        sim.api_url,
        SecretStr(sim.refresh_token),
        SecretStr(sim.client_secret),
        metrics,
        rng=random.Random(3),
    )
    config = StreamerConfig(ACCOUNTS, **{"heartbeat_interval_s": 0.2, **streamer})
    handler = AccountStreamHandler(
        AccountStreamer(config),
        tokens,
        BaselineFetcher(http, sim.api_url, tokens, ACCOUNTS),
        Publisher(sink, metrics),
        metrics,
        retry=Backoff(0.05, 0.2, 2.0, random.Random(4)),
    )
    settings = WebSocketSettings.model_validate(
        {"silence_timeout_s": 10, "backoff": {"initial_s": 0.02, "max_s": 0.1}}
    )
    session = WebSocketSession(
        Endpoint(VENUE, STREAM, SUBSCRIPTION, sim.streamer_url),
        handler,
        settings,
        metrics,
        health,
        rng=random.Random(2),
        healthy_after_first_frame=False,
    )
    handler.attach(session)
    return Rig(sim, sink, tokens, asyncio.create_task(session.run()))


async def _stop(rig: Rig) -> None:
    rig.task.cancel()
    await asyncio.gather(rig.task, return_exceptions=True)


def _live(sim: TastytradeSimulator) -> StreamerClient | None:
    clients = sim.live_clients()
    return clients[-1] if clients else None


def _baselined(rig: Rig, count: int) -> bool:
    return sum(r.value["origin"] == "REST_BASELINE" for r in rig.sink.records) > 0 and (
        len(rig.sim.served) >= count * 5 * len(ACCOUNTS)
    )


async def test_a_socket_whose_heartbeat_replies_stop_is_replaced_within_the_timeout(
    sim: TastytradeSimulator, http: httpx.AsyncClient, metrics: Metrics, health: Health
) -> None:
    timeout_s = 0.6
    rig = _start(sim, http, metrics, health, heartbeat_timeout_s=timeout_s)
    try:
        await sim.wait_until(lambda: (c := _live(sim)) is not None and c.heartbeats_answered >= 2)
        first = _live(sim)
        assert first is not None
        sim.stop_heartbeat_replies()
        stopped_after = len(first.heartbeats)
        await sim.wait_until(lambda: first.closed_at is not None, 5)
        assert first.closed_at is not None
        unanswered = first.heartbeats[stopped_after]  # the first heartbeat left unanswered
        detected_in = first.closed_at - unanswered
        assert timeout_s - 0.05 <= detected_in <= timeout_s + 0.25
        sim.resume_heartbeat_replies()
        # Replaced: a new socket is connected and answered shortly after.
        await sim.wait_until(lambda: (c := _live(sim)) is not None and c.id != first.id, 2)
        second = _live(sim)
        assert second is not None
        assert second.opened_at - first.closed_at < 0.5
        await sim.wait_until(lambda: second.heartbeats_answered >= 2, 5)
        assert (
            sample(metrics, "connector_reconnects_total", reason="heartbeat_timeout", **LABELS) == 1
        )
        assert sample(metrics, "connector_connection_up", **LABELS) == 1
        assert not second.closed
    finally:
        await _stop(rig)


async def test_heartbeats_keep_a_socket_alive_past_the_idle_close(
    http: httpx.AsyncClient, metrics: Metrics, health: Health
) -> None:
    async with TastytradeSimulator(ACCOUNTS, idle_timeout_s=0.5) as sim:
        sim.pause()
        rig = _start(sim, http, metrics, health, heartbeat_interval_s=0.1)
        try:
            await sim.wait_until(
                lambda: (c := _live(sim)) is not None and c.heartbeats_answered >= 12
            )
            assert len(sim.clients) == 1, "1.2 s of heartbeats outlived the 0.5 s idle close"
        finally:
            await _stop(rig)


async def test_the_idle_close_is_survived_with_a_new_baseline(
    http: httpx.AsyncClient, metrics: Metrics, health: Health
) -> None:
    async with TastytradeSimulator(ACCOUNTS, idle_timeout_s=0.3) as sim:
        sim.pause()
        rig = _start(sim, http, metrics, health, heartbeat_interval_s=30.0)
        try:
            # Nothing happened in the accounts: each baseline is a balance and a status each.
            await rig.sink.wait_until(lambda: len(rig.sink.records) >= 2 * 2 * len(ACCOUNTS))
            assert sim.clients[0].closed
            assert (
                sample(metrics, "connector_reconnects_total", reason="closed_normal", **LABELS) >= 1
            )
            assert {(r.stream, r.value["origin"]) for r in rig.sink.records} == {
                ("tastytrade.balances", "REST_BASELINE"),
                ("tastytrade.trading-status", "REST_BASELINE"),
            }
        finally:
            await _stop(rig)


async def test_a_refused_connect_is_counted_and_retried_with_a_fresh_token(
    sim: TastytradeSimulator, http: httpx.AsyncClient, metrics: Metrics, health: Health
) -> None:
    sim.fail_auth(1)
    rig = _start(sim, http, metrics, health)
    try:
        await sim.wait_until(lambda: _live(sim) is not None and len(sim.served) == 10)
        assert sim.clients[0].closed and not sim.clients[0].connected
        assert (
            sample(
                metrics,
                "connector_signin_failures_total",
                venue="tastytrade",
                reason="streamer_rejected",
            )
            == 1
        )
        assert (
            sample(metrics, "connector_reconnects_total", reason="connect_rejected", **LABELS) == 1
        )
        assert len(sim.issued) == 2, "the refused token was not used again"
        assert sim.clients[-1].tokens[0] == f"Bearer {sim.issued[1]}"
    finally:
        await _stop(rig)


async def test_an_expired_token_on_a_live_socket_reconnects_with_a_new_one(
    sim: TastytradeSimulator, http: httpx.AsyncClient, metrics: Metrics, health: Health
) -> None:
    rig = _start(sim, http, metrics, health)
    try:
        await sim.wait_until(lambda: (c := _live(sim)) is not None and c.heartbeats_answered >= 1)
        sim.expire_tokens()
        await sim.wait_until(lambda: (c := _live(sim)) is not None and c.id != 1, 5)
        assert (
            sample(metrics, "connector_reconnects_total", reason="heartbeat_rejected", **LABELS)
            == 1
        )
        assert len(sim.issued) == 2
    finally:
        await _stop(rig)


async def test_a_failing_baseline_is_retried_and_held_events_follow_it(
    sim: TastytradeSimulator, http: httpx.AsyncClient, metrics: Metrics, health: Health
) -> None:
    sim.fail_rest(3)
    sim.resume()  # events flow while the baseline keeps failing
    rig = _start(sim, http, metrics, health)
    try:
        await rig.sink.wait_until(
            lambda: any(r.value["origin"] == "REST_BASELINE" for r in rig.sink.records)
        )
        await sim.wait_until(lambda: len(sim.sent) > 20)
        sim.pause()
        # The first attempt lost 3 of its 10 requests; the second fetched all 10 again.
        assert len(sim.served) == 17
        failures = [
            s.value
            for family in metrics.registry.collect()
            if family.name == "connector_baseline_failures"
            for s in family.samples
            if s.name.endswith("_total")
            and s.labels["venue"] == "tastytrade"
            and s.labels["reason"] == "http_status"
        ]
        assert sum(failures) == 3
        await rig.sink.wait_until(
            lambda: any(r.value["origin"] == "STREAM" for r in rig.sink.records)
        )
        origins = [r.value["origin"] for r in rig.sink.records]
        first_stream = origins.index("STREAM")
        assert origins[:first_stream] == ["REST_BASELINE"] * first_stream
        assert "REST_BASELINE" not in origins[first_stream:]
        assert first_stream >= 4, "balances and trading status of both accounts at least"
    finally:
        await _stop(rig)


async def test_no_secret_and_no_full_account_number_reaches_any_log_line(
    sim: TastytradeSimulator,
    http: httpx.AsyncClient,
    metrics: Metrics,
    health: Health,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("websockets", "httpx", "httpcore", "connector"):
        caplog.set_level(logging.DEBUG, logger=name)
    sim.fail_auth(1)
    sim.fail_refresh(1)
    sim.resume()
    rig = _start(sim, http, metrics, health)
    try:
        await sim.wait_until(
            lambda: (c := _live(sim)) is not None and c.heartbeats_answered >= 2, 10
        )
        sim.expire_tokens()
        sim.inject({"type": "UserMessage", "data": {"account-number": ACCOUNTS[0]}})
        await sim.wait_until(lambda: len(sim.live_clients()) == 1 and len(sim.clients) >= 3, 10)
        await sim.wait_until(lambda: _live(sim) is not None and _live(sim).heartbeats_answered >= 1)  # type: ignore[union-attr]
    finally:
        await _stop(rig)
    secrets = [sim.refresh_token, sim.client_secret, *sim.issued]
    assert len(sim.issued) >= 2
    lines = [(record.name, _rendered(record)) for record in caplog.records]
    assert len(lines) > 50, "DEBUG logging was captured"
    for name, text in lines:
        for secret in secrets:
            assert secret not in text, f"a secret reached the {name} log"
    for name, text in lines:
        if name == "httpx":
            continue  # request URLs; production logging floors httpx at WARNING
        for account in ACCOUNTS:
            assert account not in text, f"an unmasked account number reached the {name} log"
    assert any("…0001" in text for _, text in lines), "accounts are logged masked"
    for letter in rig.sink.dead:
        assert not any(secret in letter.detail for secret in secrets)


class StuckBaseline:
    """A baseline that never arrives."""

    async def fetch(self) -> tuple[list[Record], list[Any]]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_events_held_for_a_baseline_are_published_when_the_socket_or_service_ends(
    metrics: Metrics,
) -> None:
    for ending in ("on_close", "close"):
        sink = Sink()
        link = FakeLink()
        handler = AccountStreamHandler(
            AccountStreamer(StreamerConfig(ACCOUNTS)),
            FixedTokens(),
            StuckBaseline(),
            Publisher(sink, metrics),
            metrics,
            retry=Backoff(0.05, 0.2, 2.0, random.Random(4)),
        )
        handler.attach(link)
        await handler.on_open()
        assert json.loads(link.sent[0])["auth-token"] == "Bearer fixed"
        await handler.on_frame('{"status":"ok","action":"connect","request-id":1}', 1)
        order = {"type": "Order", "data": {"id": 7, "account-number": ACCOUNTS[0]}}
        await handler.on_frame(json.dumps(order), 2)
        assert sink.records == [], "held until the baseline"
        if ending == "on_close":
            await handler.on_close("closed_error")
        await handler.close()
        assert [(r.value["id"], r.value["origin"]) for r in sink.records] == [(7, "STREAM")]


async def test_a_refused_subscription_is_logged_with_the_venue_message_and_the_socket_stays(
    http: httpx.AsyncClient, metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    sink = Sink()
    tokens = OAuthTokenSource(
        http, "http://127.0.0.1:9", SecretStr("r"), SecretStr("c"), metrics, rng=random.Random(1)
    )
    handler = AccountStreamHandler(
        AccountStreamer(StreamerConfig(ACCOUNTS, quote_alerts=True)),
        tokens,
        BaselineFetcher(http, "http://127.0.0.1:9", tokens, ACCOUNTS),
        Publisher(sink, metrics),
        metrics,
        retry=Backoff(0.05, 0.2, 2.0, random.Random(4)),
    )
    link = FakeLink()
    handler.attach(link)
    refusal = {
        "status": "error",
        "action": "quote-alerts-subscribe",
        "message": "quote alerts are not enabled for 5WT00001",
    }
    with caplog.at_level(logging.WARNING, logger="connector.sources.tastytrade_account"):
        await handler.on_frame(json.dumps(refusal), 1)
    (line,) = [r for r in caplog.records if "refused" in r.getMessage()]
    assert vars(line)["venue_message"] == "quote alerts are not enabled for …0001"
    assert "5WT00001" not in _rendered(line)
    assert link.replaced == [] and sink.dead == []


class _BrokenBaseline:
    """A baseline source with a bug: it raises something no retry rule knows."""

    def __init__(self) -> None:
        self.calls = 0

    async def fetch(self) -> tuple[list[Record], list[Any]]:
        self.calls += 1
        raise ZeroDivisionError


async def test_a_baseline_task_that_dies_of_a_bug_is_counted_and_its_socket_replaced(
    metrics: Metrics,
) -> None:
    sink = Sink()
    link = FakeLink()
    baseline = _BrokenBaseline()
    handler = AccountStreamHandler(
        AccountStreamer(StreamerConfig(ACCOUNTS)),
        FixedTokens(),
        baseline,
        Publisher(sink, metrics),
        metrics,
        retry=Backoff(0.001, 0.002, 2.0, random.Random(4)),
    )
    handler.attach(link)
    await handler.on_open()
    ack = {"status": "ok", "action": "connect", "request-id": 1, "web-socket-session-id": "s"}
    await handler.on_frame(json.dumps(ack), 1)
    await asyncio.wait_for(link.replacing.wait(), timeout=10)
    assert link.replaced == ["task_failed"] and baseline.calls == 1
    labels = {"venue": "tastytrade", "stream": "tastytrade.streamer", "reason": "ZeroDivisionError"}
    assert sample(metrics, "connector_task_restarts_total", **labels) == 1
    await handler.close()
