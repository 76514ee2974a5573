"""The T+ OMS simulator over real sockets on 127.0.0.1: sign-in, streams, baselines, switches."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from connector.simulators.oms_model import OrderFrame, TradeFrame
from connector.simulators.tplus_oms import Handshake, TplusOmsSimulator
from connector.venues.tplus import auth

TIMEOUT_S = 5.0
KEYS = [Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32) for i in (7, 8)]
A, B = (auth.account_id(k) for k in KEYS)


@pytest.fixture
async def sim() -> AsyncIterator[TplusOmsSimulator]:
    simulator = TplusOmsSimulator(KEYS, seed=4, interval_s=0.01)
    await simulator.start()
    simulator.pause()
    try:
        yield simulator
    finally:
        await simulator.stop()


def _http(sim: TplusOmsSimulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=sim.base_url, trust_env=False, timeout=TIMEOUT_S)


async def _sign_in(
    http: httpx.AsyncClient, key: Ed25519PrivateKey, account: str | None = None
) -> httpx.Response:
    account = account or auth.account_id(key)
    nonce = (await http.get(f"/nonce/{account}")).json()["value"]
    return await http.post("/auth", json=auth.auth_request(account, nonce, key))


async def _token(sim: TplusOmsSimulator, key: Ed25519PrivateKey) -> str:
    async with _http(sim) as http:
        response = await _sign_in(http, key)
    assert response.status_code == 200
    return str(response.json()["token"])


def _ws(sim: TplusOmsSimulator, path: str, token: str, account: str) -> connect:
    headers = {"Authorization": f"Bearer {token}", "User-Id": account}
    return connect(sim.ws_url(path), additional_headers=headers, proxy=None, open_timeout=TIMEOUT_S)


async def _text(ws: ClientConnection) -> str:
    async with asyncio.timeout(TIMEOUT_S):
        message = await ws.recv()
    assert isinstance(message, str)
    return message


async def test_sign_in_verifies_the_ed25519_signature(sim: TplusOmsSimulator) -> None:
    async with _http(sim) as http:
        good = await _sign_in(http, KEYS[0])
        assert good.status_code == 200
        body = good.json()
        assert body["token"] and body["expiry_ns"] > 0
        # Signed by the other account's key: refused.
        forged = await _sign_in(http, KEYS[1], account=A)
        assert forged.status_code == 401
        # A nonce is good for one sign-in only.
        nonce = (await http.get(f"/nonce/{A}")).json()["value"]
        request = auth.auth_request(A, nonce, KEYS[0])
        assert (await http.post("/auth", json=request)).status_code == 200
        assert (await http.post("/auth", json=request)).status_code == 401
        assert (await http.get(f"/nonce/{'0' * 64}")).status_code == 404
        assert (await http.post("/auth", content=b"{")).status_code == 400
    assert sim.auth_log.sign_ins == {A: 2}
    assert sim.auth_log.rejected_sign_ins == 2


async def test_streams_need_a_valid_token_for_the_right_account(sim: TplusOmsSimulator) -> None:
    token = await _token(sim, KEYS[0])
    for path, tok, account, status in [
        ("/orders", "nope", A, 401),
        ("/orders", token, B, 403),
        (f"/trades/user/events/{B}", token, A, 403),
        ("/elsewhere", token, A, 404),
    ]:
        with pytest.raises(InvalidStatus) as err:
            async with _ws(sim, path, tok, account):
                pass
        assert err.value.response.status_code == status, path
    async with (
        _ws(sim, "/orders", token, A) as orders,
        _ws(sim, f"/trades/user/events/{A}", token, A) as trades,
    ):
        await sim.wait_connected("orders", A)
        await sim.wait_connected("user_trades", A)
        sent: list[OrderFrame | TradeFrame] = []
        while not any(isinstance(f, TradeFrame) for f in sent):
            sent += [f for f in sim.step() if f.account == A]
        for frame in sent:
            ws = orders if isinstance(frame, OrderFrame) else trades
            assert await _text(ws) == frame.text
    assert all(s.delivered == 1 for s in sim.emitted[A])
    assert Handshake(f"/trades/user/events/{A}", A, 101) in sim.handshakes


async def test_forced_rejections_then_acceptance(sim: TplusOmsSimulator) -> None:
    token = await _token(sim, KEYS[0])
    sim.reject_next_handshakes(2, status=401)
    for _ in range(2):
        with pytest.raises(InvalidStatus) as err:
            async with _ws(sim, "/orders", token, A):
                pass
        assert err.value.response.status_code == 401
    async with _ws(sim, "/orders", token, A):
        await sim.wait_connected("orders", A)
    assert [h.status for h in sim.handshakes] == [401, 401, 101]


async def test_expired_tokens_close_their_sockets_and_are_refused(sim: TplusOmsSimulator) -> None:
    token = await _token(sim, KEYS[0])
    async with _ws(sim, "/orders", token, A) as ws:
        await sim.wait_connected("orders", A)
        await sim.expire_tokens()
        with pytest.raises(ConnectionClosedError) as err:
            await _text(ws)
        assert err.value.rcvd is not None and err.value.rcvd.code == 1008
    with pytest.raises(InvalidStatus) as refused:
        async with _ws(sim, "/orders", token, A):
            pass
    assert refused.value.response.status_code == 401
    async with _http(sim) as http:
        response = await http.get(
            f"/orders/user/{A}", headers={"Authorization": f"Bearer {token}", "User-Id": A}
        )
    assert response.status_code == 401


async def test_a_token_expires_by_itself_after_its_ttl(sim: TplusOmsSimulator) -> None:
    sim.token_ttl_s = 0.3
    token = await _token(sim, KEYS[1])
    loop = asyncio.get_running_loop()
    async with _ws(sim, "/orders", token, B) as ws:
        opened = loop.time()
        with pytest.raises(ConnectionClosedError) as err:
            await _text(ws)
        assert err.value.rcvd is not None and err.value.rcvd.code == 1008
        assert loop.time() - opened < 2.0


async def test_disconnect_all_closes_with_the_given_code(sim: TplusOmsSimulator) -> None:
    token = await _token(sim, KEYS[0])
    async with _ws(sim, "/orders", token, A) as ws:
        await sim.wait_connected("orders", A)
        await sim.disconnect_all(1011)
        with pytest.raises(ConnectionClosedError) as err:
            await _text(ws)
        assert err.value.rcvd is not None and err.value.rcvd.code == 1011
    assert sim.connected("orders", A) == 0


async def test_baselines_answer_the_models_state_to_the_account_only(
    sim: TplusOmsSimulator,
) -> None:
    for _ in range(60):
        sim.step()
    token = await _token(sim, KEYS[0])
    headers = {"Authorization": f"Bearer {token}", "User-Id": A}
    async with _http(sim) as http:
        orders = await http.get(f"/orders/user/{A}", headers=headers)
        trades = await http.get(f"/trades/user/{A}", headers=headers)
        other = await http.get(f"/orders/user/{B}", headers=headers)
        anonymous = await http.get(f"/trades/user/{A}")
        page = await http.get(f"/orders/user/{A}?page=0&limit=100", headers=headers)
        market = await http.get("/market/1")
        no_market = await http.get("/market/2")
        sim.baseline_available = False
        absent = await http.get(f"/orders/user/{A}", headers=headers)
    assert orders.status_code == 200 and orders.json() == json.loads(
        json.dumps(sim.model.open_orders(A))
    )
    assert trades.status_code == 200 and trades.json() == sim.model.recent_trades(A)
    assert trades.json(), "60 steps produce fills"
    assert (other.status_code, anonymous.status_code, absent.status_code) == (403, 401, 404)
    # Asked for a page, the same orders come in the page object the SDK's client reads.
    assert page.json() == {"orders": orders.json(), "has_next_page": False}
    assert all(
        isinstance(o["confirmed_trading_fees_amount"], int)
        and isinstance(o["pending_trading_fees_amount"], int)
        for o in orders.json()
    )
    assert market.json() == {"asset_id": "1", "book_price_decimals": 2, "book_quantity_decimals": 4}
    assert no_market.status_code == 404
