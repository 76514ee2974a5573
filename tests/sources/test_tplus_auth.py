"""T+ account sign-in against a scripted venue (httpx MockTransport)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connector.ops.metrics import Metrics
from connector.sources.backoff import Backoff
from connector.sources.tplus_auth import (
    AccountAuth,
    SessionCredentials,
    SignInError,
    soonest_expiry_s,
)
from connector.sources.ws_session import HeadersUnavailable
from connector.venues.tplus.auth import account_id, compact_nonce
from tests.conftest import sample

KEY = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
ACCOUNT = account_id(KEY)
BASE = "http://oms.test/api"


class FakeVenue:
    """Answers /nonce and /auth (verifying the signature); scripted failures on demand."""

    def __init__(self, ttl_s: float = 3600.0) -> None:
        self.ttl_s = ttl_s
        self.issued: list[str] = []
        self.issued_changed = asyncio.Event()
        self.fail_nonce: int | None = None
        self.fail_auth: int | None = None
        self.nonce_body: object = None
        self.token_body: object = None
        self.unreachable = False
        self.get_statuses: list[int] = []
        self.seen_tokens: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.unreachable:
            raise httpx.ConnectError("refused", request=request)
        path = request.url.path
        if path == f"/api/nonce/{ACCOUNT}":
            if self.fail_nonce is not None:
                return httpx.Response(self.fail_nonce)
            body = self.nonce_body if self.nonce_body is not None else {"value": "n 1\n2"}
            return httpx.Response(200, json=body)
        if path == "/api/auth":
            payload = json.loads(request.content)
            assert payload["nonce"] == "n 1\n2" and payload["user_id"] == ACCOUNT
            KEY.public_key().verify(bytes(payload["signature"]), compact_nonce("n 1\n2").encode())
            if self.fail_auth is not None:
                return httpx.Response(self.fail_auth)
            token = f"t{len(self.issued)}"
            self.issued.append(token)
            self.issued_changed.set()
            body = self.token_body or {
                "token": token,
                "expiry_ns": time.time_ns() + int(self.ttl_s * 1e9),
            }
            return httpx.Response(200, json=body)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.seen_tokens.append(token)
        status = self.get_statuses.pop(0) if self.get_statuses else 200
        return httpx.Response(status, json=[])

    async def wait_issued(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.issued) < count:
                self.issued_changed.clear()
                await self.issued_changed.wait()


@pytest.fixture
async def venue_http() -> AsyncIterator[tuple[FakeVenue, httpx.AsyncClient]]:
    venue = FakeVenue()
    async with httpx.AsyncClient(transport=httpx.MockTransport(venue)) as http:
        yield venue, http


def _auth(
    http: httpx.AsyncClient,
    metrics: Metrics,
    *,
    margin_s: float = 60.0,
    clock_ns: Callable[[], int] = time.time_ns,
) -> AccountAuth:
    return AccountAuth(
        "desk",
        KEY,
        http,
        BASE,
        metrics,
        retry=Backoff(0.01, 0.02, 2.0, random.Random(1)),
        refresh_margin_s=margin_s,
        clock_ns=clock_ns,
    )


async def test_signs_in_once_and_shares_the_token(
    venue_http: tuple[FakeVenue, httpx.AsyncClient], metrics: Metrics
) -> None:
    venue, http = venue_http
    auth = _auth(http, metrics)
    results = await asyncio.gather(*(auth.headers() for _ in range(5)))
    assert venue.issued == ["t0"]
    assert {g for g, _ in results} == {1}
    assert results[0][1] == {"Authorization": "Bearer t0", "User-Id": ACCOUNT}
    assert 3590 < soonest_expiry_s([auth], time.time_ns) <= 3600
    assert ACCOUNT not in repr(auth) and "t0" not in repr(auth)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ({"unreachable": True}, "unreachable"),
        ({"fail_nonce": 404}, "nonce_rejected"),
        ({"fail_auth": 401}, "auth_rejected"),
        ({"nonce_body": {"other": 1}}, "bad_response"),
        ({"token_body": {"token": "x"}}, "bad_response"),
    ],
)
async def test_sign_in_failures_are_counted_by_reason(
    venue_http: tuple[FakeVenue, httpx.AsyncClient],
    metrics: Metrics,
    setup: dict[str, object],
    reason: str,
) -> None:
    venue, http = venue_http
    for name, value in setup.items():
        setattr(venue, name, value)
    auth = _auth(http, metrics)
    with pytest.raises(SignInError) as err:
        await auth.headers()
    assert err.value.reason == reason
    assert sample(metrics, "connector_signin_failures_total", venue="tplus", reason=reason) == 1
    creds = SessionCredentials(auth)
    with pytest.raises(HeadersUnavailable) as unavailable:
        await creds.headers()
    assert reason in str(unavailable.value)
    assert soonest_expiry_s([auth], time.time_ns) == 0.0


async def test_the_keeper_renews_before_expiry(
    venue_http: tuple[FakeVenue, httpx.AsyncClient], metrics: Metrics
) -> None:
    venue, http = venue_http
    venue.ttl_s = 0.4  # shorter than twice the 60 s margin: renewed halfway, every 0.2 s
    auth = _auth(http, metrics)
    keeper = asyncio.create_task(auth.run())
    try:
        await venue.wait_issued(3)
        _, headers = await auth.headers()
        assert headers["Authorization"] in {"Bearer t2", "Bearer t3"}
        assert soonest_expiry_s([auth], time.time_ns) > 0
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)


async def test_a_token_is_renewed_on_demand_a_margin_before_expiry(
    venue_http: tuple[FakeVenue, httpx.AsyncClient], metrics: Metrics
) -> None:
    venue, http = venue_http
    now = [time.time_ns()]
    auth = _auth(http, metrics, margin_s=60.0, clock_ns=lambda: now[0])
    await auth.headers()
    now[0] += int(3539 * 1e9)
    await auth.headers()
    assert venue.issued == ["t0"]
    now[0] += int(2 * 1e9)  # now within 60 s of expiry
    generation, headers = await auth.headers()
    assert (venue.issued, generation, headers["Authorization"]) == (["t0", "t1"], 2, "Bearer t1")


async def test_rejections_of_one_token_share_one_new_sign_in(
    venue_http: tuple[FakeVenue, httpx.AsyncClient], metrics: Metrics
) -> None:
    venue, http = venue_http
    auth = _auth(http, metrics)
    orders, trades = SessionCredentials(auth), SessionCredentials(auth)
    await orders.headers()
    await trades.headers()
    assert await orders.on_rejected(401) and await trades.on_rejected(403)
    assert not await orders.on_rejected(500)
    await asyncio.gather(orders.headers(), trades.headers())
    assert venue.issued == ["t0", "t1"]
    # A rejection of the old token after the new one arrived drops nothing.
    auth.invalidate(1)
    assert (await auth.headers())[0] == 2


async def test_an_authenticated_get_signs_in_again_once_on_401(
    venue_http: tuple[FakeVenue, httpx.AsyncClient], metrics: Metrics
) -> None:
    venue, http = venue_http
    auth = _auth(http, metrics)
    venue.get_statuses = [401]
    response = await auth.get(f"{BASE}/orders/user/{ACCOUNT}", 5.0, 1 << 20)
    assert response.status_code == 200
    assert venue.seen_tokens == ["t0", "t1"]
    venue.get_statuses = [403, 403]
    assert (await auth.get(f"{BASE}/x", 5.0, 1 << 20)).status_code == 403
    assert venue.seen_tokens[-2:] == ["t1", "t2"]
