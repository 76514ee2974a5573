"""tastytrade Account Streamer → records: the I/O around the pure AccountStreamer.

One WebSocket carries every configured account. This module feeds the
socket's frames and the passage of time into
:class:`~connector.venues.tastytrade.streamer.AccountStreamer` and carries out
what it answers: frames to send (``connect``, heartbeats with the current
token), records to publish, sockets to replace, and the REST baseline to
fetch after every ``connect`` ack.

Ordering: every step that can publish records runs under one lock, and the
step's records are published before the lock is released, so records reach
the sink in exactly the order the state machine produced them (baseline
first, then the notifications held back while it was fetched).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ParamSpec, Protocol, TypeVar

import httpx

from connector.ops.metrics import Metrics, preset
from connector.pipeline import Publisher, preset_dead_letters
from connector.records import FrameSource, OptionalHeader, Record, members
from connector.secrets import mask_account
from connector.settings import TastytradeAccountStreamerSettings
from connector.sources.backoff import Backoff
from connector.sources.containment import Containment, where
from connector.sources.context import Service, SourceContext
from connector.sources.http_client import DEFAULT_MAX_ANSWER_BYTES, bounded_request
from connector.sources.tastytrade_auth import (
    VENUE,
    SigninReason,
    TokenSource,
    TokenUnavailable,
    token_source,
)
from connector.sources.ws_session import CloseReason, Endpoint, WebSocketSession
from connector.venues import json_numbers
from connector.venues.errors import FrameError, Reason
from connector.venues.json_numbers import json_text
from connector.venues.tastytrade import notifications
from connector.venues.tastytrade.rest import BaselineRequest, baseline_items, baseline_requests
from connector.venues.tastytrade.streamer import (
    AccountStreamer,
    Phase,
    Rejected,
    ReplaceReason,
    Step,
    StreamerConfig,
)

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

STREAM = notifications.STREAMER
"""The socket's ``stream`` label: it carries every stream, and its own frames' DLQ name."""
SUBSCRIPTION = "streamer"


class SocketLink(Protocol):
    """What the handler may do with its session's socket (WebSocketSession provides it)."""

    async def send(self, text: str) -> bool: ...
    def replace(self, reason: str) -> None: ...
    def mark_healthy(self) -> None: ...


class BaselineSource(Protocol):
    """Where a connection's baseline comes from (BaselineFetcher, or a fake in tests)."""

    async def fetch(self) -> tuple[list[Record], list[Rejected]]: ...


class BaselineFailure:
    """Why a baseline request failed (the ``reason`` of ``connector_baseline_failures``)."""

    AUTH = "auth"
    UNREACHABLE = "unreachable"
    NOT_SERVED = "not_served"
    HTTP_STATUS = "http_status"
    BAD_RESPONSE = "bad_response"


class BaselineError(Exception):
    """One baseline request failed."""

    def __init__(self, detail: str, stream: str, reason: str) -> None:
        super().__init__(detail)
        self.stream = stream
        self.reason = reason


class BaselineFailed(Exception):
    """Some requests of a baseline failed; the whole baseline is fetched again."""

    def __init__(self, errors: list[BaselineError]) -> None:
        super().__init__(f"{len(errors)} baseline requests failed")
        self.errors = errors


class BaselineFetcher:
    """GETs every account's balances, positions, live orders, live complex orders and status."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_url: str,
        tokens: TokenSource,
        accounts: Sequence[str],
        *,
        currency: str = "USD",
        timeout_s: float = 10.0,
        max_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        metrics: Metrics | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        containment: Containment | None = None,
    ) -> None:
        self._contain = containment
        self._http = http
        self._max_bytes = max_bytes
        self._metrics = metrics
        self._api_url = api_url.rstrip("/")
        self._tokens = tokens
        self._requests = [r for a in accounts for r in baseline_requests(a, currency)]
        self._timeout = timeout_s
        self._clock_ns = clock_ns

    async def fetch(self) -> tuple[list[Record], list[Rejected]]:
        """Every baseline record in publication order, and the objects that were not valid."""
        token = await self._tokens.auth_token()
        results = await asyncio.gather(
            *(self._get(r, token) for r in self._requests), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            unexpected = [e for e in failed if not isinstance(e, BaselineError)]
            if unexpected:
                raise unexpected[0]
            raise BaselineFailed([e for e in failed if isinstance(e, BaselineError)])
        answers = [r for r in results if not isinstance(r, BaseException)]
        records: list[Record] = []
        rejected: list[Rejected] = []
        headers = ((OptionalHeader.SOURCE, FrameSource.REST_BASELINE),)
        for request, (body, received_ns) in zip(self._requests, answers, strict=True):
            stream = request.type.stream
            try:
                items = self._call(_items, request, body)
            except FrameError as exc:
                rejected.append(Rejected(stream, exc, body, received_ns, request.account, headers))
                continue
            for item in items:
                try:
                    if not isinstance(item, dict):
                        raise FrameError(
                            Reason.WRONG_SHAPE, "a baseline item must be a JSON object"
                        )
                    records.append(self._call(_baseline_record, request, item, received_ns))
                except FrameError as exc:
                    rejected.append(
                        Rejected(
                            stream,
                            exc,
                            json_text(item),
                            received_ns,
                            notifications.account_of(item) or request.account,
                            headers,
                        )
                    )
        return records, rejected

    def _call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Venue code on an answer, behind the stream's containment when it has one."""
        if self._contain is None:
            return fn(*args, **kwargs)
        return self._contain.call(fn, *args, **kwargs)

    async def _get(self, request: BaselineRequest, token: str) -> tuple[bytes, int]:
        try:
            response = await bounded_request(
                self._http,
                "GET",
                self._api_url + request.path,
                deadline_s=self._timeout,
                max_bytes=self._max_bytes,
                metrics=self._metrics,
                venue=VENUE,
                headers={"Authorization": token, "Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise BaselineError(
                f"baseline request failed ({type(exc).__name__})",
                request.type.stream,
                BaselineFailure.UNREACHABLE,
            ) from None
        status = response.status_code
        if status != 200:
            reason = (
                BaselineFailure.AUTH
                if status in (401, 403)
                else BaselineFailure.NOT_SERVED
                if status in (404, 405, 501)
                else BaselineFailure.HTTP_STATUS
            )
            raise BaselineError(
                f"baseline request answered HTTP {status}", request.type.stream, reason
            )
        return response.content, self._clock_ns()


def _items(request: BaselineRequest, body: bytes) -> list[Any]:
    return baseline_items(request, json_numbers.loads(body))


def _baseline_record(request: BaselineRequest, item: dict[str, Any], received_ns: int) -> Record:
    return notifications.record(
        request.type, item, origin=notifications.Origin.BASELINE, received_ns=received_ns
    )


class AccountStreamHandler:
    """The FrameHandler of the Account Streamer socket."""

    def __init__(
        self,
        core: AccountStreamer,
        tokens: TokenSource,
        baseline: BaselineSource,
        publisher: Publisher,
        metrics: Metrics,
        *,
        retry: Backoff,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._core = core
        self._tokens = tokens
        self._baseline = baseline
        self._publisher = publisher
        self._metrics = metrics
        self._retry = retry
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._link: SocketLink | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        """Set when a step brings a deadline forward (the connect ack schedules heartbeats)."""
        self._masked = ", ".join(mask_account(a) for a in core.config.accounts)

    def attach(self, link: SocketLink) -> None:
        """Bind the session whose socket this handler drives (before it runs)."""
        self._link = link

    @property
    def link(self) -> SocketLink:
        if self._link is None:
            raise RuntimeError("handler is not attached to a session")
        return self._link

    # --- FrameHandler ------------------------------------------------------------

    async def on_open(self) -> None:
        try:
            token = await self._tokens.auth_token()
        except TokenUnavailable:
            self.link.replace(CloseReason.AUTH_FAILED)
            return
        async with self._lock:
            await self._apply(self._core.open(self._monotonic(), token))
        self._spawn(self._clock(), "tastytrade-heartbeat")

    async def on_frame(self, data: str | bytes, received_ns: int) -> None:
        async with self._lock:
            await self._apply(self._core.receive(data, received_ns, self._monotonic()))

    async def on_close(self, reason: str) -> None:
        async with self._lock:
            # Holding the lock, no task is publishing: cancelling loses no record.
            self._cancel_tasks()
            await self._apply(self._core.closed())

    async def close(self) -> None:
        tasks = self._cancel_tasks()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Notifications held back for a baseline that never came are still real events.
        await self._publisher.publish(self._core.closed().records)

    # --- internals ---------------------------------------------------------------

    def _scrub(self, text: str | None) -> str:
        """Venue text fit for a log line: bounded, account numbers masked."""
        out = (text or "")[:200]
        for account in self._core.config.accounts:
            out = out.replace(account, mask_account(account))
        return out

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A heartbeat or baseline task that died: counted; the socket is replaced to restart it."""
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        assert exc is not None
        name = task.get_name().removeprefix("tastytrade-")
        self._metrics.task_restarts.labels(VENUE, STREAM, type(exc).__name__).inc()
        log.error(
            "tastytrade %s task ended; replacing the socket to restart it",
            name,
            extra={"venue": VENUE, "error": type(exc).__name__, "where": where(exc)},
        )
        self.link.replace(CloseReason.TASK_FAILED)

    def _cancel_tasks(self) -> list[asyncio.Task[None]]:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        return tasks

    async def _clock(self) -> None:
        """Send heartbeats when due and enforce the connect and heartbeat deadlines."""
        while True:
            deadline = self._core.next_deadline()
            delay = 1.0 if deadline is None else max(0.0, deadline - self._monotonic())
            self._wake.clear()
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass
            if self._core.heartbeat_due(self._monotonic()):
                try:
                    token = await self._tokens.auth_token()
                except TokenUnavailable:
                    self.link.replace(CloseReason.AUTH_FAILED)
                    return
                await self._apply(self._core.heartbeat(self._monotonic(), token))
            await self._apply(self._core.check(self._monotonic()))

    async def _apply(self, step: Step) -> None:
        """Carry out one step; a step with records must be applied holding the lock."""
        for text in step.send:
            await self.link.send(text)
        if step.records:
            await self._publisher.publish(step.records)
        for r in step.rejected:
            await self._publisher.reject(
                r.stream, r.error, r.raw, r.received_ns, key=r.key, extra_headers=r.headers
            )
        for reply in step.errors:
            log.warning(
                "tastytrade refused a streamer request",
                extra={
                    "venue": VENUE,
                    "action": reply.action,
                    "venue_message": self._scrub(reply.message),
                },
            )
        if step.published_early:
            log.warning(
                "notification buffer full while the baseline is fetched; publishing early",
                extra={"venue": VENUE, "count": step.published_early},
            )
        if step.token_rejected:
            self._tokens.rejected()
            self._metrics.signin_failures.labels(VENUE, SigninReason.STREAMER_REJECTED).inc()
        if step.replace is not None:
            self.link.replace(step.replace)
        if step.start_baseline:
            self._wake.set()
            self.link.mark_healthy()
            log.info(
                "tastytrade account streamer connected",
                extra={
                    "venue": VENUE,
                    "accounts": self._masked,
                    "session_id": self._core.session_id,
                },
            )
            self._spawn(self._baseline_loop(), "tastytrade-baseline")

    async def _baseline_loop(self) -> None:
        """Fetch the baseline until it is in; cancelled when the socket goes away."""
        first = True
        while True:
            if not first:
                await asyncio.sleep(self._retry.next_delay())
            first = False
            try:
                records, rejected = await self._baseline.fetch()
            except TokenUnavailable:
                continue
            except BaselineFailed as exc:
                for error in exc.errors:
                    self._metrics.baseline_failures.labels(VENUE, error.stream, error.reason).inc()
                if any(error.reason == BaselineFailure.AUTH for error in exc.errors):
                    self._tokens.rejected()
                    self._metrics.signin_failures.labels(VENUE, SigninReason.REST_REJECTED).inc()
                log.warning(
                    "tastytrade baseline failed; retrying",
                    extra={"venue": VENUE, "error": str(exc.errors[0]), "failed": len(exc.errors)},
                )
                continue
            async with self._lock:
                if self._core.phase is not Phase.BASELINE:
                    return
                for r in rejected:
                    self._metrics.baseline_failures.labels(
                        VENUE, r.stream, BaselineFailure.BAD_RESPONSE
                    ).inc()
                    await self._publisher.reject(
                        r.stream, r.error, r.raw, r.received_ns, key=r.key, extra_headers=r.headers
                    )
                await self._apply(self._core.baseline(records))
            for record in records:
                self._metrics.baseline_records.labels(VENUE, record.stream).inc()
            self._retry.reset()
            log.info(
                "tastytrade baseline published",
                extra={"venue": VENUE, "accounts": self._masked, "records": len(records)},
            )
            return


def streamer_config(section: TastytradeAccountStreamerSettings) -> StreamerConfig:
    return StreamerConfig(
        accounts=tuple(section.accounts),
        heartbeat_interval_s=section.heartbeat_interval_s,
        heartbeat_timeout_s=section.heartbeat_timeout_s,
        connect_timeout_s=section.connect_timeout_s,
        public_watchlists=section.public_watchlists,
        quote_alerts=section.quote_alerts,
        source=section.source,
        max_buffered=section.max_buffered,
    )


def new_retry(rng: random.Random) -> Backoff:
    """Backoff for baseline retries: quick first retry, capped at 10 s."""
    return Backoff(0.2, 10.0, 2.0, rng)


def build(section: TastytradeAccountStreamerSettings, ctx: SourceContext) -> list[Service]:
    """One Account Streamer socket for all configured accounts."""
    if not section.enabled:
        return []
    tokens = token_source(
        section.auth, section.api_url, ctx.http, ctx.metrics, ctx.environ, rng=ctx.child_rng()
    )
    baseline = BaselineFetcher(
        ctx.http,
        section.api_url,
        tokens,
        section.accounts,
        currency=section.baseline_currency,
        timeout_s=section.baseline_timeout_s,
        max_bytes=section.baseline_max_bytes,
        metrics=ctx.metrics,
        clock_ns=ctx.clock_ns,
        containment=ctx.containment(VENUE, STREAM, SUBSCRIPTION),
    )
    handler = AccountStreamHandler(
        AccountStreamer(streamer_config(section)),
        tokens,
        baseline,
        ctx.publisher,
        ctx.metrics,
        retry=new_retry(ctx.child_rng()),
    )
    # Built here rather than by ctx.session: the first frame may be a refused
    # connect, so only the handler can tell when the connection is healthy.
    endpoint = Endpoint(VENUE, STREAM, SUBSCRIPTION, section.streamer_url)
    boundary = ctx.boundary(endpoint, handler, section.websocket)
    session = WebSocketSession(
        endpoint,
        boundary,
        section.websocket,
        ctx.metrics,
        ctx.health,
        rng=ctx.child_rng(),
        clock_ns=ctx.clock_ns,
        healthy_after_first_frame=False,
        on_unread=ctx.unread_marker(notifications.STREAMER, SUBSCRIPTION),
        on_frame_rejected=boundary.on_frame_rejected,
    )
    handler.attach(session)
    metrics = ctx.metrics
    preset(metrics.reconnects, *((VENUE, STREAM, SUBSCRIPTION, r) for r in members(ReplaceReason)))
    preset(metrics.signin_failures, *((VENUE, r) for r in members(SigninReason)))
    preset_dead_letters(metrics, [STREAM])
    for stream in dict.fromkeys(r.type.stream for r in baseline_requests("", "USD")):
        preset(metrics.baseline_records, (VENUE, stream))
        preset(metrics.baseline_failures, *((VENUE, stream, r) for r in members(BaselineFailure)))
    return [session]
