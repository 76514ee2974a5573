"""T+ account streams: order events and user trades of every configured account.

Per account: one :class:`~connector.sources.tplus_auth.AccountAuth` (sign-in
and renewal) and one socket per stream, authenticated with its headers.
Records are keyed by the account's public key, the identity the connection
was authenticated as.

Recovery: after every (re)connect, before the socket's first frame is
read, the handler fetches the account's REST baseline (open orders, recent
trades) and publishes it marked ``REST_BASELINE``. Frames that arrive
meanwhile wait in the socket, so they are published after the baseline
and a consumer that applies records in order ends at the venue's current
state. A baseline that cannot be fetched is counted and the stream goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connector.ops.metrics import Metrics, preset
from connector.pipeline import Publisher
from connector.records import FrameSource, OptionalHeader, Record, members
from connector.secrets import mask_account, resolve_secret
from connector.settings import ConfigError, TplusOmsBaselineSettings, TplusOmsSettings
from connector.sources.backoff import Backoff
from connector.sources.containment import Containment
from connector.sources.context import Service, SourceContext
from connector.sources.http_client import SMALL_ANSWER_BYTES
from connector.sources.tplus_auth import (
    VENUE,
    AccountAuth,
    SessionCredentials,
    SignInError,
    SigninReason,
    soonest_expiry_s,
)
from connector.sources.ws_session import Endpoint
from connector.venues import json_numbers
from connector.venues.errors import FrameError
from connector.venues.tplus import auth as tauth
from connector.venues.tplus import orders as od
from connector.venues.tplus import urls
from connector.venues.tplus import user_trades as ut

log = logging.getLogger(__name__)

ORDERS = od.ORDERS_STREAM
USER_TRADES = ut.USER_TRADES_STREAM
"""Stream labels of the two account sockets (metrics and health): the streams' names."""


class BaselineFailure:
    """The closed set of reasons a baseline was not fetched (a metric label)."""

    AUTH = "auth"
    UNREACHABLE = "unreachable"
    NOT_SERVED = "not_served"
    HTTP_STATUS = "http_status"
    BAD_RESPONSE = "bad_response"


@dataclass(frozen=True, slots=True)
class AccountKey:
    name: str
    key: Ed25519PrivateKey
    account: str


def load_accounts(oms: TplusOmsSettings, environ: Mapping[str, str]) -> list[AccountKey]:
    """Read every account's private key; ConfigError names the key path, never the key."""
    out: list[AccountKey] = []
    for index, settings in enumerate(oms.accounts):
        where = f"tplus.oms.accounts[{index}].private_key"
        secret = resolve_secret(settings.private_key, where, environ)
        try:
            key = tauth.private_key_from_text(secret.get_secret_value())
        except tauth.KeyFormatError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        account = tauth.account_id(key)
        if settings.public_key is not None and settings.public_key != account:
            raise ConfigError(
                f"{where}: the key belongs to account {mask_account(account)}, "
                f"not to public_key {mask_account(settings.public_key)}"
            )
        if any(other.account == account for other in out):
            raise ConfigError(f"{where}: the same account is configured twice")
        out.append(AccountKey(settings.name, key, account))
    return out


class BaselineFetcher:
    """GETs one account's REST baseline with a few tries; None when it cannot."""

    def __init__(
        self,
        auth: AccountAuth,
        url: str,
        stream: str,
        settings: TplusOmsBaselineSettings,
        metrics: Metrics,
        *,
        retry: Backoff,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._auth = auth
        self._url = url
        self._stream = stream
        self._settings = settings
        self._metrics = metrics
        self._retry = retry
        self._clock_ns = clock_ns

    async def fetch(self) -> tuple[Any, bytes, int] | None:
        """``(decoded body, raw body, receive time)`` of the first good answer."""
        self._retry.reset()
        for attempt in range(self._settings.attempts):
            if attempt:
                await asyncio.sleep(self._retry.next_delay())
            reason = await self._try()
            if isinstance(reason, tuple):
                return reason
            self._metrics.baseline_failures.labels(VENUE, self._stream, reason).inc()
            log.warning(
                "baseline request failed",
                extra={"stream": self._stream, "account": self._auth.masked, "reason": reason},
            )
            if reason == BaselineFailure.NOT_SERVED:
                break
        return None

    async def _try(self) -> tuple[Any, bytes, int] | str:
        try:
            response = await self._auth.get(
                self._url, self._settings.timeout_s, self._settings.max_bytes
            )
        except SignInError:
            return BaselineFailure.AUTH
        except httpx.HTTPError:
            return BaselineFailure.UNREACHABLE
        if response.status_code in (404, 405, 501):
            return BaselineFailure.NOT_SERVED
        if response.status_code in (401, 403):
            return BaselineFailure.AUTH
        if response.status_code != 200:
            return BaselineFailure.HTTP_STATUS
        received_ns = self._clock_ns()
        try:
            return json_numbers.loads(response.content), response.content, received_ns
        except FrameError:
            return BaselineFailure.BAD_RESPONSE


class MarketDecimals:
    """Learns the book decimals of the markets a baseline names that no event described yet,
    from the OMS's market description, so even the first baseline's orders can be scaled.

    Best effort: an answer that is missing, refused or unreadable leaves the
    market's decimals unknown (null in the records) and is logged; the
    baseline is published all the same.
    """

    def __init__(self, auth: AccountAuth, base_url: str, timeout_s: float) -> None:
        self._auth = auth
        self._base_url = base_url
        self._timeout_s = timeout_s

    async def learn(self, assets: list[str], decimals: od.OrderDecimals) -> None:
        for asset in assets:
            why = await self._learn_one(asset, decimals)
            if why is not None:
                log.info(
                    "market decimals not learnt; its open orders carry none",
                    extra={"asset": asset, "account": self._auth.masked, "reason": why},
                )

    async def _learn_one(self, asset: str, decimals: od.OrderDecimals) -> str | None:
        url = urls.rest_url(self._base_url, urls.market_path(asset))
        try:
            response = await self._auth.get(url, self._timeout_s, SMALL_ANSWER_BYTES)
        except SignInError:
            return BaselineFailure.AUTH
        except httpx.HTTPError:
            return BaselineFailure.UNREACHABLE
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        try:
            described, price, quantity = od.parse_market(json_numbers.loads(response.content))
        except FrameError as exc:
            return exc.reason
        decimals.remember_market(described, price, quantity)
        return None


_FROM_REST = ((OptionalHeader.SOURCE, FrameSource.REST_BASELINE),)
"""DLQ header telling a rejected baseline entry from a rejected frame."""


class _AccountHandler:
    """What the two account sockets share: the baseline on open, DLQ on bad frames."""

    stream_name = ""
    label = ""

    def __init__(
        self,
        account: str,
        publisher: Publisher,
        metrics: Metrics,
        baseline: BaselineFetcher | None,
        containment: Containment | None = None,
    ) -> None:
        self.account = account
        self._contain = (
            containment
            if containment is not None
            else Containment(VENUE, self.label, mask_account(account), metrics)
        )
        self._masked = mask_account(account)
        self._publisher = publisher
        self._metrics = metrics
        self._baseline = baseline

    async def on_open(self) -> None:
        if self._baseline is None:
            return
        fetched = await self._baseline.fetch()
        if fetched is None:
            return
        body, raw, received_ns = fetched
        await self._prepare_baseline(body)
        try:
            records, rejected = self._contain.call(self._parse_baseline, body, received_ns)
        except FrameError as exc:
            self._metrics.baseline_failures.labels(
                VENUE, self.label, BaselineFailure.BAD_RESPONSE
            ).inc()
            await self._publisher.reject(
                self.stream_name, exc, raw, received_ns, key=self.account, extra_headers=_FROM_REST
            )
            return
        for error, entry in rejected:
            await self._publisher.reject(
                self.stream_name,
                error,
                entry,
                received_ns,
                key=self.account,
                extra_headers=_FROM_REST,
            )
        await self._publisher.publish(records)
        self._metrics.baseline_records.labels(VENUE, self.label).inc(len(records))
        log.info(
            "baseline published",
            extra={"stream": self.label, "account": self._masked, "records": len(records)},
        )

    async def _prepare_baseline(self, body: Any) -> None:
        """What a stream needs fetched before its baseline can be parsed; nothing by default."""
        return None

    def _parse_baseline(
        self, body: Any, received_ns: int
    ) -> tuple[list[Record], list[tuple[FrameError, str]]]:
        raise NotImplementedError

    async def on_close(self, reason: str) -> None:
        return None

    async def close(self) -> None:
        return None


class OrdersHandler(_AccountHandler):
    """One account's ``/orders`` socket."""

    stream_name = od.ORDERS_STREAM
    label = ORDERS

    def __init__(
        self,
        account: str,
        publisher: Publisher,
        metrics: Metrics,
        baseline: BaselineFetcher | None,
        markets: MarketDecimals | None = None,
        containment: Containment | None = None,
    ) -> None:
        super().__init__(account, publisher, metrics, baseline, containment)
        self._decimals = od.OrderDecimals()
        self._markets = markets
        self._warned_identity = False

    async def _prepare_baseline(self, body: Any) -> None:
        if self._markets is not None:
            await self._markets.learn(od.markets_to_learn(body, self._decimals), self._decimals)

    def _parse_baseline(
        self, body: Any, received_ns: int
    ) -> tuple[list[Record], list[tuple[FrameError, str]]]:
        baseline = od.parse_open_orders(body, self.account, received_ns, self._decimals)
        return baseline.records, baseline.rejected

    async def on_open(self) -> None:
        self._warned_identity = False
        await super().on_open()

    async def on_frame(self, data: str | bytes, received_ns: int) -> None:
        try:
            message = json_numbers.loads(data)
            if od.is_control(message):
                return
            parsed = od.parse_order_event(message, self.account, received_ns, self._decimals)
        except FrameError as exc:
            await self._publisher.reject(od.ORDERS_STREAM, exc, data, received_ns, key=self.account)
            return
        named = parsed.named_account
        if named is not None and named != self.account and not self._warned_identity:
            # Published anyway, under the connection's account: the venue scopes
            # this socket to it, and dropping events would lose them for good.
            self._warned_identity = True
            log.warning(
                "order event names another account than its connection",
                extra={"account": self._masked, "named": mask_account(named)},
            )
        await self._publisher.publish((parsed.record,))


class UserTradesHandler(_AccountHandler):
    """One account's ``/trades/user/events/{account}`` socket."""

    stream_name = ut.USER_TRADES_STREAM
    label = USER_TRADES

    def _parse_baseline(
        self, body: Any, received_ns: int
    ) -> tuple[list[Record], list[tuple[FrameError, str]]]:
        baseline = ut.parse_user_trades_baseline(body, self.account, received_ns)
        return baseline.records, baseline.rejected

    async def on_frame(self, data: str | bytes, received_ns: int) -> None:
        try:
            message = json_numbers.loads(data)
            if od.is_control(message):
                return
            record = ut.parse_user_trade(message, self.account, received_ns)
        except FrameError as exc:
            await self._publisher.reject(
                ut.USER_TRADES_STREAM, exc, data, received_ns, key=self.account
            )
            return
        await self._publisher.publish((record,))


def new_retry(ctx: SourceContext) -> Backoff:
    """Backoff for sign-in and baseline retries: quick first retry, capped at 10 s."""
    return Backoff(0.2, 10.0, 2.0, ctx.child_rng())


def _fetcher(
    oms: TplusOmsSettings, ctx: SourceContext, auth: AccountAuth, stream: str
) -> BaselineFetcher:
    b = oms.baseline
    template = b.open_orders_path if stream == ORDERS else b.user_trades_path
    url = urls.rest_url(oms.base_url, template.replace("{account}", auth.account))
    preset(ctx.metrics.baseline_records, (VENUE, stream))
    preset(ctx.metrics.baseline_failures, *((VENUE, stream, r) for r in members(BaselineFailure)))
    return BaselineFetcher(
        auth, url, stream, b, ctx.metrics, retry=new_retry(ctx), clock_ns=ctx.clock_ns
    )


def build(oms: TplusOmsSettings, ctx: SourceContext) -> list[Service]:
    """Per account: its token keeper and one socket per enabled stream."""
    if not oms.enabled:
        return []
    keys = load_accounts(oms, ctx.environ)
    origin = urls.origin(oms.base_url)
    services: list[Service] = []
    auths: list[AccountAuth] = []
    for item in keys:
        auth = AccountAuth(
            item.name,
            item.key,
            ctx.http,
            oms.base_url,
            ctx.metrics,
            retry=new_retry(ctx),
            refresh_margin_s=oms.refresh_margin_s,
            timeout_s=oms.signin_timeout_s,
            clock_ns=ctx.clock_ns,
        )
        auths.append(auth)
        services.append(auth)
        log.info("T+ account configured", extra={"account_name": item.name, "account": auth.masked})

        if oms.orders:
            creds = SessionCredentials(auth)
            orders_handler = OrdersHandler(
                item.account,
                ctx.publisher,
                ctx.metrics,
                _fetcher(oms, ctx, auth, ORDERS) if oms.baseline.open_orders else None,
                MarketDecimals(auth, oms.base_url, oms.baseline.timeout_s),
                ctx.containment(VENUE, ORDERS, item.name),
            )
            services.append(
                ctx.session(
                    Endpoint(
                        VENUE, ORDERS, item.name, urls.ws_url(oms.base_url, od.ORDERS_PATH), origin
                    ),
                    orders_handler,
                    oms.websocket,
                    headers=creds.headers,
                    on_rejected=creds.on_rejected,
                )
            )
        if oms.user_trades:
            creds = SessionCredentials(auth)
            trades_handler = UserTradesHandler(
                item.account,
                ctx.publisher,
                ctx.metrics,
                _fetcher(oms, ctx, auth, USER_TRADES) if oms.baseline.user_trades else None,
                ctx.containment(VENUE, USER_TRADES, item.name),
            )
            path = ut.user_trades_path(item.account)
            services.append(
                ctx.session(
                    Endpoint(
                        VENUE, USER_TRADES, item.name, urls.ws_url(oms.base_url, path), origin
                    ),
                    trades_handler,
                    oms.websocket,
                    headers=creds.headers,
                    on_rejected=creds.on_rejected,
                )
            )
    clock_ns = ctx.clock_ns
    preset(ctx.metrics.signin_failures, *((VENUE, r) for r in members(SigninReason)))
    ctx.metrics.token_expiry.labels(VENUE).set_function(lambda: soonest_expiry_s(auths, clock_ns))
    return services
