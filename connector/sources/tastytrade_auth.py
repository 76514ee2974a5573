"""tastytrade credentials: a legacy session token, or OAuth access tokens kept fresh.

The Account Streamer wants a valid credential in every message and the REST
API in every request, in the same form (``Bearer <access token>`` for OAuth,
the bare session token for the legacy scheme). A TokenSource hands out that
value on demand; the OAuth source refreshes it ``refresh_margin_s`` before it
expires, so the next message after a refresh already carries the new token,
without reconnecting.

Secrets are held as SecretStr and leave this module only as the returned
header value: never in a log line, a metric label or an exception message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import NoReturn, Protocol

import httpx
from pydantic import SecretStr

from connector.ops.metrics import Metrics
from connector.secrets import resolve_secret
from connector.settings import TastytradeAuthSettings
from connector.sources.backoff import Backoff
from connector.sources.http_client import SMALL_ANSWER_BYTES, bounded_request
from connector.venues import json_numbers
from connector.venues.errors import FrameError
from connector.venues.tastytrade.messages import auth_value
from connector.venues.tastytrade.rest import TOKEN_PATH, parse_token_response

log = logging.getLogger(__name__)

VENUE = "tastytrade"


class TokenUnavailable(Exception):
    """No usable credential now: the refresh failed and no unexpired token is left."""


class SigninReason:
    """Why a sign-in step failed (the ``reason`` label of ``connector_signin_failures``)."""

    REFRESH_REJECTED = "refresh_rejected"
    REFRESH_FAILED = "refresh_failed"
    STREAMER_REJECTED = "streamer_rejected"
    REST_REJECTED = "rest_rejected"


class TokenSource(Protocol):
    async def auth_token(self) -> str:
        """The current ``auth-token``/``Authorization`` value; raises TokenUnavailable."""
        ...

    def rejected(self) -> None:
        """The venue refused the current credential: do not hand it out again unrefreshed."""
        ...


class SessionTokenSource:
    """A legacy session token, sent as is; there is nothing to refresh."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    async def auth_token(self) -> str:
        return auth_value("session", self._token.get_secret_value())

    def rejected(self) -> None:
        log.warning("tastytrade refused the session token; it cannot be refreshed here")


class OAuthTokenSource:
    """Access tokens from ``POST /oauth/token``, refreshed before they expire."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_url: str,
        refresh_token: SecretStr,
        client_secret: SecretStr,
        metrics: Metrics,
        *,
        refresh_margin_s: float = 60.0,
        timeout_s: float = 10.0,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._url = api_url.rstrip("/") + TOKEN_PATH
        self._refresh_token = refresh_token
        self._client_secret = client_secret
        self._metrics = metrics
        self._margin = refresh_margin_s
        self._timeout = timeout_s
        self._monotonic = monotonic
        self._retry = Backoff(0.5, 30.0, 2.0, rng or random.Random())
        self._lock = asyncio.Lock()
        self._token: SecretStr | None = None
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self._stale = False
        self._next_attempt = 0.0
        self.refreshes = 0
        """Access tokens obtained so far (observability and tests)."""
        metrics.token_expiry.labels(VENUE).set_function(self._seconds_left)

    def _seconds_left(self) -> float:
        if self._token is None:
            return 0.0
        return max(0.0, self._expires_at - self._monotonic())

    def rejected(self) -> None:
        self._stale = True

    async def auth_token(self) -> str:
        async with self._lock:
            now = self._monotonic()
            usable = self._token is not None and not self._stale and now < self._expires_at
            if usable and now < self._refresh_at:
                assert self._token is not None
                return auth_value("oauth", self._token.get_secret_value())
            if now >= self._next_attempt:
                try:
                    await self._refresh()
                except TokenUnavailable:
                    self._next_attempt = self._monotonic() + self._retry.next_delay()
                    if not usable:
                        raise
            elif not usable:
                raise TokenUnavailable("token refresh is backing off after a failure")
            assert self._token is not None
            return auth_value("oauth", self._token.get_secret_value())

    async def _refresh(self) -> None:
        body = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token.get_secret_value(),
            "client_secret": self._client_secret.get_secret_value(),
        }
        try:
            # One deadline for the whole exchange: callers wait on this lock.
            response = await bounded_request(
                self._http,
                "POST",
                self._url,
                deadline_s=self._timeout,
                max_bytes=SMALL_ANSWER_BYTES,
                metrics=self._metrics,
                venue=VENUE,
                content=json.dumps(body),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            self._fail(SigninReason.REFRESH_FAILED, f"request failed ({type(exc).__name__})")
        if response.status_code != 200:
            reason = (
                SigninReason.REFRESH_REJECTED
                if 400 <= response.status_code < 500
                else SigninReason.REFRESH_FAILED
            )
            self._fail(reason, f"token endpoint answered HTTP {response.status_code}")
        try:
            grant = parse_token_response(json_numbers.loads(response.content))
        except FrameError as exc:
            self._fail(SigninReason.REFRESH_FAILED, f"unusable token response ({exc.reason})")
        now = self._monotonic()
        self._token = SecretStr(grant.access_token)
        self._expires_at = now + grant.expires_in_s
        # Refresh a margin before expiry, but never sooner than half-way: a
        # margin longer than the token's life must not refresh on every use.
        lifetime = grant.expires_in_s
        self._refresh_at = now + max(lifetime - self._margin, lifetime / 2)
        self._stale = False
        self._next_attempt = 0.0
        self._retry.reset()
        self.refreshes += 1
        log.info(
            "tastytrade access token refreshed",
            extra={"venue": VENUE, "expires_in_s": round(grant.expires_in_s, 1)},
        )

    def _fail(self, reason: str, detail: str) -> NoReturn:
        self._metrics.signin_failures.labels(VENUE, reason).inc()
        log.warning("tastytrade token refresh failed", extra={"venue": VENUE, "error": detail})
        raise TokenUnavailable(detail)


def token_source(
    auth: TastytradeAuthSettings,
    api_url: str,
    http: httpx.AsyncClient,
    metrics: Metrics,
    environ: Mapping[str, str] | None,
    *,
    rng: random.Random | None = None,
) -> TokenSource:
    """The configured credential, its secrets resolved now (ConfigError names a missing one)."""
    env = environ or {}
    key = "tastytrade.account_streamer.auth"
    if auth.scheme == "session":
        assert auth.session_token is not None
        return SessionTokenSource(resolve_secret(auth.session_token, f"{key}.session_token", env))
    assert auth.refresh_token is not None and auth.client_secret is not None
    return OAuthTokenSource(
        http,
        api_url,
        resolve_secret(auth.refresh_token, f"{key}.refresh_token", env),
        resolve_secret(auth.client_secret, f"{key}.client_secret", env),
        metrics,
        refresh_margin_s=auth.refresh_margin_s,
        timeout_s=auth.timeout_s,
        rng=rng,
    )
