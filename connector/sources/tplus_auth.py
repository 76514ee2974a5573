"""T+ account sign-in over HTTP: one token per account, shared by its sockets and REST calls.

The requests and answers are built and read by the pure
``connector.venues.tplus.auth``; this module only sends them. A token is
renewed ``refresh_margin_s`` before it expires (by :meth:`AccountAuth.run`,
and on demand when a socket needs headers), and dropped when the venue
rejects it, so the next caller signs in again. Concurrent callers share one
sign-in.

Logs name the account by its last four characters only and never carry
the key, the nonce signature or the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connector.ops.metrics import Metrics
from connector.secrets import mask_account
from connector.sources.backoff import Backoff
from connector.sources.http_client import SMALL_ANSWER_BYTES, Answer, bounded_request
from connector.sources.ws_session import HeadersUnavailable
from connector.venues import json_numbers
from connector.venues.errors import FrameError
from connector.venues.tplus import auth as tauth
from connector.venues.tplus import urls

log = logging.getLogger(__name__)

VENUE = "tplus"
REJECTED = frozenset({401, 403})


class SigninReason:
    """The closed set of sign-in failure reasons (a metric label)."""

    UNREACHABLE = "unreachable"
    NONCE_REJECTED = "nonce_rejected"
    AUTH_REJECTED = "auth_rejected"
    BAD_RESPONSE = "bad_response"


class SignInError(Exception):
    """Signing in failed; ``reason`` is a SigninReason, the message holds no secret."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class AccountAuth:
    """One account's bearer token: signed in on demand and renewed before it expires."""

    def __init__(
        self,
        name: str,
        key: Ed25519PrivateKey,
        http: httpx.AsyncClient,
        base_url: str,
        metrics: Metrics,
        *,
        retry: Backoff,
        refresh_margin_s: float = 60.0,
        timeout_s: float = 10.0,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.name = name
        self.account = tauth.account_id(key)
        self.masked = mask_account(self.account)
        self._key = key
        self._http = http
        self._base_url = base_url
        self._metrics = metrics
        self._retry = retry
        self._margin_ns = int(refresh_margin_s * 1e9)
        self._timeout_s = timeout_s
        self._clock_ns = clock_ns
        self._token: tauth.Token | None = None
        self._refresh_at_ns = 0
        self._generation = 0
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return f"AccountAuth(name={self.name!r}, account={self.masked!r})"

    # -- what sockets and REST calls use ---------------------------------------------

    async def headers(self) -> tuple[int, dict[str, str]]:
        """Fresh auth headers and the generation of the token in them; raises SignInError."""
        token = await self._fresh()
        return token.generation, tauth.auth_headers(token, self.account)

    def invalidate(self, generation: int) -> None:
        """Drop the token the venue rejected, unless a newer one already replaced it."""
        if self._token is not None and self._token.generation == generation:
            self._token = None
            self._changed.set()
            log.info("venue rejected the token; signing in again", extra={"account": self.masked})

    async def get(self, url: str, timeout_s: float, max_bytes: int) -> Answer:
        """An authenticated GET; one re-sign-in and retry when it answers 401/403.

        Each GET must complete within ``timeout_s`` and ``max_bytes``.
        """
        generation, headers = await self.headers()
        response = await self._bounded("GET", url, timeout_s, max_bytes, headers=headers)
        if response.status_code not in REJECTED:
            return response
        self.invalidate(generation)
        _, headers = await self.headers()
        return await self._bounded("GET", url, timeout_s, max_bytes, headers=headers)

    async def _bounded(
        self,
        method: str,
        url: str,
        timeout_s: float,
        max_bytes: int,
        *,
        headers: Mapping[str, str] | None = None,
        body: Mapping[str, object] | None = None,
    ) -> Answer:
        return await bounded_request(
            self._http,
            method,
            url,
            deadline_s=timeout_s,
            max_bytes=max_bytes,
            metrics=self._metrics,
            venue=VENUE,
            headers=headers,
            json=body,
        )

    def expiry_ns(self) -> int | None:
        return None if self._token is None else self._token.expiry_ns

    # -- the renewal loop ------------------------------------------------------------------

    @property
    def labels(self) -> tuple[str, str, str]:
        return VENUE, f"{VENUE}.auth", self.name  # serves both account streams

    async def run(self) -> None:
        """Keep a valid token, renewing it before expiry; runs until cancelled."""
        while True:
            now = self._clock_ns()
            if self._token is None or now >= self._refresh_at_ns:
                try:
                    await self._fresh()
                except SignInError:
                    await asyncio.sleep(self._retry.next_delay())
                    continue
                if self._clock_ns() >= self._refresh_at_ns:
                    # A token that is due the moment it arrives: do not spin.
                    await asyncio.sleep(self._retry.next_delay())
                else:
                    self._retry.reset()
                continue
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout((self._refresh_at_ns - now) / 1e9):
                    await self._changed.wait()

    # -- signing in ------------------------------------------------------------------------

    async def _fresh(self) -> tauth.Token:
        async with self._lock:
            token = self._token
            if token is not None and self._clock_ns() < self._refresh_at_ns:
                return token
            try:
                token = await self._sign_in()
            except SignInError as exc:
                self._metrics.signin_failures.labels(VENUE, exc.reason).inc()
                log.warning("sign-in failed", extra={"account": self.masked, "reason": exc.reason})
                raise
            now = self._clock_ns()
            self._token = token
            self._refresh_at_ns = tauth.refresh_at(now, token.expiry_ns, self._margin_ns)
            self._changed.set()
            log.info(
                "signed in",
                extra={
                    "account": self.masked,
                    "expires_in_s": round((token.expiry_ns - now) / 1e9, 1),
                },
            )
            return token

    async def _sign_in(self) -> tauth.Token:
        nonce_body = await self._call(
            "GET", tauth.nonce_path(self.account), None, SigninReason.NONCE_REJECTED
        )
        try:
            nonce = tauth.parse_nonce(nonce_body)
        except FrameError as exc:
            raise SignInError(SigninReason.BAD_RESPONSE, exc.detail) from None
        request = tauth.auth_request(self.account, nonce, self._key)
        token_body = await self._call("POST", tauth.AUTH_PATH, request, SigninReason.AUTH_REJECTED)
        self._generation += 1
        try:
            return tauth.parse_token(token_body, self._generation)
        except FrameError as exc:
            raise SignInError(SigninReason.BAD_RESPONSE, exc.detail) from None

    async def _call(
        self, method: str, path: str, body: Mapping[str, object] | None, rejected: str
    ) -> object:
        url = urls.rest_url(self._base_url, path)
        try:
            response = await self._bounded(
                method, url, self._timeout_s, SMALL_ANSWER_BYTES, body=body
            )
        except httpx.HTTPError as exc:
            raise SignInError(SigninReason.UNREACHABLE, type(exc).__name__) from None
        if response.status_code != 200:
            raise SignInError(rejected, f"HTTP {response.status_code}")
        try:
            return json_numbers.loads(response.content)
        except FrameError as exc:
            raise SignInError(SigninReason.BAD_RESPONSE, exc.detail) from None


class SessionCredentials:
    """The header factory and rejection handler of one account socket."""

    def __init__(self, auth: AccountAuth) -> None:
        self._auth = auth
        self._generation = 0

    async def headers(self) -> Mapping[str, str]:
        try:
            self._generation, headers = await self._auth.headers()
        except SignInError as exc:
            raise HeadersUnavailable(f"sign-in failed ({exc.reason})") from None
        return headers

    async def on_rejected(self, status: int) -> bool:
        """A 401/403 on the upgrade: drop that token and retry once with a new one."""
        if status not in REJECTED:
            return False
        self._auth.invalidate(self._generation)
        return True


def soonest_expiry_s(accounts: list[AccountAuth], clock_ns: Callable[[], int]) -> float:
    """Seconds until the first of these accounts' tokens expires; 0 while one has none."""
    if not accounts:
        return 0.0
    now = clock_ns()
    return min(((a.expiry_ns() or now) - now) / 1e9 for a in accounts)
