"""tastytrade credentials: OAuth refresh against the simulator, and session tokens."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from connector.ops.metrics import Metrics
from connector.settings import ConfigError, TastytradeAuthSettings
from connector.simulators.tastytrade import TastytradeSimulator
from connector.sources.tastytrade_auth import (
    OAuthTokenSource,
    SessionTokenSource,
    TokenUnavailable,
    token_source,
)
from tests.conftest import sample


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sim() -> AsyncIterator[TastytradeSimulator]:
    async with TastytradeSimulator(["5WT00001"], token_lifetime_s=900) as simulator:
        simulator.pause()
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def _oauth(
    sim: TastytradeSimulator, http: httpx.AsyncClient, metrics: Metrics, clock: Clock
) -> OAuthTokenSource:
    return OAuthTokenSource(
        http,
        sim.api_url,
        SecretStr(sim.refresh_token),
        SecretStr(sim.client_secret),
        metrics,
        refresh_margin_s=60,
        rng=random.Random(1),
        monotonic=clock,
    )


async def test_oauth_tokens_are_bearer_values_refreshed_a_margin_before_expiry(
    sim: TastytradeSimulator, http: httpx.AsyncClient, metrics: Metrics
) -> None:
    clock = Clock()
    tokens = _oauth(sim, http, metrics, clock)
    assert sample(metrics, "connector_token_expiry_seconds", venue="tastytrade") == 0
    first = await tokens.auth_token()
    assert first == f"Bearer {sim.issued[0]}"
    assert sample(metrics, "connector_token_expiry_seconds", venue="tastytrade") == 900
    clock.now += 839
    assert await tokens.auth_token() == first, "reused until the margin"
    assert len(sim.issued) == 1
    clock.now += 2  # 59 s before expiry
    second = await tokens.auth_token()
    assert second == f"Bearer {sim.issued[1]}" != first
    assert tokens.refreshes == 2


async def test_a_failed_refresh_keeps_the_valid_token_then_gives_up_when_it_expires(
    sim: TastytradeSimulator, http: httpx.AsyncClient, metrics: Metrics
) -> None:
    clock = Clock()
    tokens = _oauth(sim, http, metrics, clock)
    first = await tokens.auth_token()
    sim.fail_refresh(2)
    clock.now += 850  # inside the margin: a refresh is tried and fails
    assert await tokens.auth_token() == first
    assert (
        sample(
            metrics,
            "connector_signin_failures_total",
            venue="tastytrade",
            reason="refresh_rejected",
        )
        == 1
    )
    assert await tokens.auth_token() == first, "no retry storm: the next try waits"
    assert (
        sample(
            metrics,
            "connector_signin_failures_total",
            venue="tastytrade",
            reason="refresh_rejected",
        )
        == 1
    )
    clock.now += 60  # expired now
    with pytest.raises(TokenUnavailable):
        await tokens.auth_token()
    clock.now += 60  # the two failures are used up
    assert await tokens.auth_token() == f"Bearer {sim.issued[1]}"


async def test_a_rejected_token_is_refreshed_before_its_next_use(
    sim: TastytradeSimulator, http: httpx.AsyncClient, metrics: Metrics
) -> None:
    clock = Clock()
    tokens = _oauth(sim, http, metrics, clock)
    first = await tokens.auth_token()
    tokens.rejected()
    assert await tokens.auth_token() != first
    assert len(sim.issued) == 2


async def test_wrong_client_credentials_and_an_unreachable_endpoint_are_counted(
    sim: TastytradeSimulator, http: httpx.AsyncClient, metrics: Metrics
) -> None:
    wrong = OAuthTokenSource(
        http, sim.api_url, SecretStr("nope"), SecretStr(sim.client_secret), metrics
    )
    with pytest.raises(TokenUnavailable) as info:
        await wrong.auth_token()
    assert "nope" not in str(info.value)
    unreachable = OAuthTokenSource(
        http, "http://127.0.0.1:9", SecretStr("a"), SecretStr("b"), metrics, timeout_s=2
    )
    with pytest.raises(TokenUnavailable):
        await unreachable.auth_token()
    labels = {"venue": "tastytrade"}
    assert (
        sample(metrics, "connector_signin_failures_total", reason="refresh_rejected", **labels) == 1
    )
    assert (
        sample(metrics, "connector_signin_failures_total", reason="refresh_failed", **labels) == 1
    )


async def test_a_session_token_is_sent_raw() -> None:
    tokens = SessionTokenSource(SecretStr("legacy-123"))
    assert await tokens.auth_token() == "legacy-123"
    tokens.rejected()
    assert await tokens.auth_token() == "legacy-123"


async def test_secrets_are_resolved_from_files_or_the_environment(
    tmp_path: Path, http: httpx.AsyncClient, metrics: Metrics
) -> None:
    secret_file = tmp_path / "session"
    secret_file.write_text("from-a-file\n")
    session = TastytradeAuthSettings.model_validate(
        {"scheme": "session", "session_token": {"file": str(secret_file)}}
    )
    source = token_source(session, "http://127.0.0.1:9", http, metrics, {})
    assert await source.auth_token() == "from-a-file"
    oauth = TastytradeAuthSettings.model_validate(
        {"refresh_token": {"env": "TT_REFRESH"}, "client_secret": {"env": "TT_SECRET"}}
    )
    with pytest.raises(ConfigError, match=r"auth\.client_secret: environment variable TT_SECRET"):
        token_source(oauth, "http://127.0.0.1:9", http, metrics, {"TT_REFRESH": "r"})
    built = token_source(oauth, "http://x", http, metrics, {"TT_REFRESH": "r", "TT_SECRET": "s"})
    assert isinstance(built, OAuthTokenSource)
