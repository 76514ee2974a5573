"""The tastytrade simulator over real sockets on 127.0.0.1: streamer protocol and REST API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from connector.simulators.tastytrade import TastytradeSimulator
from connector.venues import json_numbers
from connector.venues.tastytrade import notifications as n
from connector.venues.tastytrade.rest import baseline_items, baseline_requests
from tests.golden import frames

ACCOUNTS = ["5WT00001", "5WT00002"]
TIMEOUT_S = 5.0


@pytest.fixture
async def sim() -> AsyncIterator[TastytradeSimulator]:
    async with TastytradeSimulator(
        ACCOUNTS, seed=3, event_interval_s=0.005, session_token="legacy-abc"
    ) as simulator:
        simulator.pause()
        yield simulator


@pytest.fixture
async def http(sim: TastytradeSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.api_url, trust_env=False, timeout=TIMEOUT_S) as c:
        yield c


async def _access_token(http: httpx.AsyncClient, sim: TastytradeSimulator) -> str:
    response = await http.post(
        "/oauth/token",
        json={
            "grant_type": "refresh_token",
            "refresh_token": sim.refresh_token,
            "client_secret": sim.client_secret,
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    return str(body["access_token"])


def _client(sim: TastytradeSimulator) -> connect:
    return connect(sim.streamer_url, proxy=None, open_timeout=TIMEOUT_S)


async def _json(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT_S):
        message = await ws.recv()
    assert isinstance(message, str)
    value = json.loads(message)
    assert isinstance(value, dict)
    return value


async def _send(ws: ClientConnection, **message: Any) -> None:
    await ws.send(json.dumps({k.replace("_", "-"): v for k, v in message.items()}))


async def _closed_with(ws: ClientConnection) -> tuple[int | None, str | None]:
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(TIMEOUT_S):
            await ws.recv()
    assert ws.close_code is not None
    return ws.close_code, ws.close_reason


async def test_connect_heartbeat_and_subscriptions_are_answered_like_the_venue(
    sim: TastytradeSimulator, http: httpx.AsyncClient
) -> None:
    golden = [json.loads(line)["msg"] for line in frames("tastytrade", "handshake.jsonl")]
    token = f"Bearer {await _access_token(http, sim)}"
    async with _client(sim) as ws:
        await _send(ws, action="connect", value=ACCOUNTS, auth_token=token, request_id=1)
        ack = await _json(ws)
        assert list(ack) == list(golden[1])
        assert ack["status"] == "ok" and ack["value"] == ACCOUNTS and ack["request-id"] == 1
        await _send(ws, action="heartbeat", auth_token=token, request_id=2)
        beat = await _json(ws)
        assert list(beat) == list(golden[3])
        assert beat["request-id"] == 2
        assert beat["web-socket-session-id"] == ack["web-socket-session-id"]
        await _send(ws, action="quote-alerts-subscribe", auth_token=token, request_id=3)
        assert (await _json(ws))["action"] == "quote-alerts-subscribe"
        sim.stop_heartbeat_replies()
        await _send(ws, action="heartbeat", auth_token=token, request_id=4)
        await _send(ws, action="public-watchlists-subscribe", auth_token=token, request_id=5)
        # The heartbeat got no answer; the next message's answer comes first.
        assert (await _json(ws))["request-id"] == 5
    (client,) = sim.clients
    assert client.tokens == [token] * 5


async def test_a_legacy_session_token_is_accepted_raw_and_refused_with_bearer(
    sim: TastytradeSimulator,
) -> None:
    async with _client(sim) as ws:
        await _send(ws, action="connect", value="5WT00001", auth_token="legacy-abc", request_id=1)
        ack = await _json(ws)
        assert (ack["status"], ack["value"]) == ("ok", ["5WT00001"])
    async with _client(sim) as ws:
        await _send(
            ws, action="connect", value=ACCOUNTS, auth_token="Bearer legacy-abc", request_id=1
        )
        error = await _json(ws)
        observed = json.loads(frames("tastytrade", "handshake.jsonl")[10])["msg"]
        assert list(error) == list(observed)
        assert error["message"] == "failed" and "request-id" not in error
        assert await _closed_with(ws) == (1000, "Bye")


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ("raw", {"status": "error", "action": "connect", "message": "Unknown domain"}),
        ("unknown", {"action": "connect", "status": "error"}),
        ("expired", {"action": "connect", "status": "error"}),
    ],
)
async def test_bad_credentials_are_refused_then_bye(
    sim: TastytradeSimulator, http: httpx.AsyncClient, form: str, expected: dict[str, Any]
) -> None:
    token = await _access_token(http, sim)
    auth = {"raw": token, "unknown": "Bearer nope", "expired": f"Bearer {token}"}[form]
    if form == "expired":
        sim.expire_tokens()
    async with _client(sim) as ws:
        await _send(ws, action="connect", value=ACCOUNTS, auth_token=auth, request_id=1)
        reply = await _json(ws)
        assert {k: reply[k] for k in expected} == expected
        assert await _closed_with(ws) == (1000, "Bye")


async def test_switches_refuse_auth_and_expire_tokens_on_a_live_socket(
    sim: TastytradeSimulator, http: httpx.AsyncClient
) -> None:
    token = f"Bearer {await _access_token(http, sim)}"
    sim.fail_auth(1)
    async with _client(sim) as ws:
        await _send(ws, action="connect", value=ACCOUNTS, auth_token=token, request_id=1)
        assert (await _json(ws))["message"] == "failed"
        assert await _closed_with(ws) == (1000, "Bye")
    async with _client(sim) as ws:
        await _send(ws, action="heartbeat", auth_token=token, request_id=1)
        assert (await _json(ws))["message"] == "connect-not-completed"
        await _send(ws, action="connect", value=ACCOUNTS, auth_token=token, request_id=2)
        assert (await _json(ws))["status"] == "ok"
        sim.expire_tokens()
        await _send(ws, action="heartbeat", auth_token=token, request_id=3)
        error = await _json(ws)
        assert (error["status"], error["action"], error["request-id"]) == ("error", "heartbeat", 3)
        assert await _closed_with(ws) == (1000, "Bye")


async def test_an_idle_socket_is_closed_with_bye() -> None:
    async with TastytradeSimulator(ACCOUNTS, idle_timeout_s=0.3, session_token="s") as sim:
        sim.pause()
        loop = asyncio.get_running_loop()
        async with _client(sim) as ws:
            opened = loop.time()
            await _send(ws, action="connect", value=ACCOUNTS, auth_token="s", request_id=1)
            assert (await _json(ws))["status"] == "ok"
            assert await _closed_with(ws) == (1000, "Bye")
            assert 0.3 <= loop.time() - opened < 2.0


async def test_notifications_single_and_batched_reach_only_subscribed_accounts(
    sim: TastytradeSimulator,
) -> None:
    async with _client(sim) as ws:
        await _send(ws, action="connect", value=["5WT00002"], auth_token="legacy-abc", request_id=1)
        assert (await _json(ws))["status"] == "ok"
        sim.resume()
        single = [await _json(ws) for _ in range(5)]
        sim.batch_next(4)
        received = []
        while True:
            frame = await _json(ws)
            if "results" in frame:
                break
            received.append(frame)
        sim.pause()
    for envelope in single + received + frame["results"]:
        assert set(envelope) == {"type", "data", "timestamp"}
        if envelope["type"] not in ("QuoteAlert", "PublicWatchlists"):
            assert envelope["data"]["account-number"] == "5WT00002"
    assert 1 <= len(frame["results"]) <= 4
    assert sim.batch_frames
    mine = [s.envelope for s in sim.sent if s.client == 1]
    assert mine[: len(single)] == single
    assert [s.envelope for s in sim.sent if s.frame == sim.batch_frames[0]] == frame["results"]


async def test_rest_baselines_need_a_credential_and_have_the_venue_shape(
    sim: TastytradeSimulator, http: httpx.AsyncClient
) -> None:
    for _ in range(300):
        sim.model.step(1_773_153_000_000)
    assert (await http.get("/accounts/5WT00001/positions")).status_code == 401
    token = f"Bearer {await _access_token(http, sim)}"
    headers = {"Authorization": token}
    assert (await http.get("/accounts/9XX99999/positions", headers=headers)).status_code == 404
    for request in baseline_requests("5WT00001", "USD"):
        response = await http.get(request.path, headers=headers)
        assert response.status_code == 200
        items = baseline_items(request, json_numbers.loads(response.content))
        for item in items:
            record = n.record(request.type, item, origin=n.Origin.BASELINE, received_ns=1)
            assert record.key == "5WT00001"
    assert [s.type for s in sim.served] == [
        "AccountBalance",
        "CurrentPosition",
        "Order",
        "ComplexOrder",
        "TradingStatus",
    ]
    sim.fail_rest(1)
    assert (await http.get("/accounts/5WT00001/positions", headers=headers)).status_code == 503


async def test_the_token_endpoint_checks_the_client_credentials(
    sim: TastytradeSimulator, http: httpx.AsyncClient
) -> None:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": sim.refresh_token,
        "client_secret": sim.client_secret,
    }
    assert (await http.post("/oauth/token", data=form)).status_code == 200
    wrong = {**form, "client_secret": "guess"}
    assert (await http.post("/oauth/token", json=wrong)).status_code == 401
    sim.fail_refresh(1)
    assert (await http.post("/oauth/token", json=form)).status_code == 401
    assert (await http.post("/oauth/token", json={"grant_type": "password"})).status_code == 400
    assert (await http.get("/oauth/token")).status_code == 405
    assert len(sim.issued) == 1


async def test_refused_subscriptions_and_raw_frames_keep_the_socket(
    sim: TastytradeSimulator, http: httpx.AsyncClient
) -> None:
    token = f"Bearer {await _access_token(http, sim)}"
    sim.refuse_subscriptions()
    async with _client(sim) as ws:
        await _send(ws, action="connect", value=ACCOUNTS, auth_token=token, request_id=1)
        assert (await _json(ws))["status"] == "ok"
        await _send(ws, action="quote-alerts-subscribe", auth_token=token, request_id=2)
        refusal = await _json(ws)
        assert (refusal["status"], refusal["action"], refusal["request-id"]) == (
            "error",
            "quote-alerts-subscribe",
            2,
        )
        assert sim.inject_text('{"results": [[]]}') == 1
        assert await _json(ws) == {"results": [[]]}
        await _send(ws, action="heartbeat", auth_token=token, request_id=3)
        assert (await _json(ws))["status"] == "ok"
    (client,) = sim.clients
    assert client.quote_alerts is False
    assert sim.sent == []  # a raw frame is not a notification the simulator accounts for
