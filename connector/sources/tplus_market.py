"""T+ market data: depth books kept in sync with REST snapshots, trades and klines.

Each handler turns one connection's frames into records through the pure
parsers in ``connector.venues.tplus``. The depth handler also owns the REST
snapshot requests its BookSync asks for; a StepGate makes every state change
and the publication of its records one step, so records reach the sink in
exactly the order the state machine produced them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import httpx

from connector.ops.metrics import Metrics, preset
from connector.pipeline import Publisher, settle
from connector.records import FrameSource, OptionalHeader, Record, members
from connector.settings import ConfigError, TplusMarketDataSettings
from connector.sources import book_checkpoints
from connector.sources.backoff import Backoff
from connector.sources.containment import Containment, where
from connector.sources.context import Service, SourceContext
from connector.sources.http_client import DEFAULT_MAX_ANSWER_BYTES, bounded_request
from connector.sources.step_gate import StepGate
from connector.sources.ws_session import Endpoint
from connector.venues import json_numbers
from connector.venues.errors import FrameError
from connector.venues.tplus import market_data as md
from connector.venues.tplus import urls
from connector.venues.tplus.asset_ids import canonical_asset
from connector.venues.tplus.book_sync import BookSync, GapReason, ResyncReason, SyncOutput
from connector.venues.tplus.market_data import (
    DEPTH_STREAM,
    KLINES_STREAM,
    TRADES_STREAM,
    BookLevels,
)

log = logging.getLogger(__name__)

VENUE = "tplus"

SnapshotFetcher = Callable[[str], Awaitable[bytes]]


class DiscardReason:
    """Why depth events were not published (the ``reason`` of ``connector_events_discarded``)."""

    STALE_SEQUENCE = "stale_sequence"
    BACKPRESSURE = "backpressure"
    BUFFER_OVERFLOW = "buffer_overflow"


class SnapshotError(Exception):
    """The REST snapshot could not be fetched or was not a snapshot."""


def http_snapshot_fetcher(
    client: httpx.AsyncClient,
    base_url: str,
    timeout_s: float,
    max_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    metrics: Metrics | None = None,
) -> SnapshotFetcher:
    """GET ``/marketdepth/{asset}`` and return the raw body (parsed by the handler).

    ``timeout_s`` bounds the whole request and ``max_bytes`` the body.
    """

    async def fetch(asset: str) -> bytes:
        try:
            response = await bounded_request(
                client,
                "GET",
                urls.rest_url(base_url, urls.snapshot_path(asset)),
                deadline_s=timeout_s,
                max_bytes=max_bytes,
                metrics=metrics,
                venue=VENUE,
            )
        except httpx.HTTPError as exc:
            raise SnapshotError(f"snapshot request failed ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise SnapshotError(f"snapshot request answered HTTP {response.status_code}")
        return response.content

    return fetch


class DepthHandler:
    """One asset's depth socket: buffer, snapshot, sequence-check, publish.

    A diff that continues a live book (nearly all of them) is parsed, stepped
    and handed to the sink without a coroutine; every other input goes
    through BookSync's full step. A StepGate keeps the snapshot loop and the
    socket from interleaving while a step's records wait for the sink.
    """

    def __init__(
        self,
        asset: str,
        sync: BookSync,
        publisher: Publisher,
        fetch_snapshot: SnapshotFetcher,
        metrics: Metrics,
        *,
        retry: Backoff,
        shed: bool = True,
        clock_ns: Callable[[], int] = time.time_ns,
        containment: Containment | None = None,
    ) -> None:
        self._asset = asset
        self._containment = (
            containment
            if containment is not None
            else Containment(VENUE, DEPTH_STREAM, asset, metrics)
        )
        self._loss_tasks: set[asyncio.Task[None]] = set()
        self._shed = shed
        self._sync = sync
        subscription = (VENUE, md.DEPTH_STREAM, asset)
        preset(metrics.sequence_gaps, subscription)
        preset(metrics.snapshot_failures, (VENUE, asset))
        preset(metrics.resyncs, *((VENUE, asset, r) for r in members(ResyncReason)))
        preset(metrics.discarded, *((VENUE, md.DEPTH_STREAM, r) for r in members(DiscardReason)))
        self._publisher = publisher
        self._fetch = fetch_snapshot
        self._metrics = metrics
        self._retry = retry
        self._clock_ns = clock_ns
        self._gate = StepGate()
        self._snapshot_task: asyncio.Task[None] | None = None

    async def on_open(self) -> None:
        await self._gate.wait_open()
        await settle(self._emit(self._sync.on_connected()))

    async def on_close(self, reason: str) -> None:
        await self._gate.wait_open()
        self._cancel_snapshot()
        await settle(self._emit(self._sync.on_disconnected(self._clock_ns())))

    def on_frame(self, data: str | bytes, received_ns: int) -> Awaitable[None] | None:
        try:
            message = json_numbers.loads(data)
            if md.is_control(message):
                return None
            diff = md.parse_book_levels(message)
        except FrameError as exc:
            # Told before the dead letter is awaited: the GAP precedes any later diff.
            self.diff_lost(self._asset, GapReason.DEAD_LETTERED)
            return self._publisher.reject(md.DEPTH_STREAM, exc, data, received_ns, key=self._asset)
        if self._gate.shut:
            return self._step_later(diff, received_ns)
        return self._step(diff, received_ns)

    def _step(self, diff: BookLevels, received_ns: int) -> Awaitable[None] | None:
        """Apply one diff and hand its records over; the gate is open."""
        if self._shed and self._publisher.congested():
            return self._emit(self._sync.on_overflow(received_ns))
        record = self._sync.step_live(diff, received_ns)
        if record is None:
            return self._emit(self._sync.on_diff(diff, received_ns))
        waiting = self._publisher.submit(record)
        return None if waiting is None else self._gate.hold(waiting)

    async def _step_later(self, diff: BookLevels, received_ns: int) -> None:
        await self._gate.wait_open()
        await settle(self._step(diff, received_ns))

    def diff_lost(self, asset: str, reason: str) -> None:
        """A diff of this book will never reach the topic: publish a GAP and resync.

        ``reason`` becomes the GAP's ``gap_reason`` (``dead_lettered`` for a
        diff sent to the DLQ: refused by its parser, by the containment
        boundary or, permanently, by the brokers). Called from the frame path
        (before the next frame is read) or from outside it (a delivery
        report); when a step is still waiting for the sink, the GAP follows
        that step's records. Only a live book announces a loss: while a
        snapshot is awaited, the sequence check finds it.
        """
        if asset != self._asset:
            raise ValueError("diff_lost() names another book than this handler's")
        if self._gate.shut:
            self._spawn_loss(self._lose_later(reason))
            return
        waiting = self._emit(self._sync.on_lost(self._clock_ns(), reason))
        if waiting is not None:
            self._spawn_loss(settle(waiting))

    async def _lose_later(self, reason: str) -> None:
        await self._gate.wait_open()
        await settle(self._emit(self._sync.on_lost(self._clock_ns(), reason)))

    def _spawn_loss(self, step: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(step, name=f"depth-loss-{self._asset}")
        self._loss_tasks.add(task)
        task.add_done_callback(self._loss_tasks.discard)

    async def close(self) -> None:
        self._cancel_snapshot()
        for task in list(self._loss_tasks):
            task.cancel()

    def _cancel_snapshot(self) -> None:
        if self._snapshot_task is not None and not self._snapshot_task.done():
            self._snapshot_task.cancel()
        self._snapshot_task = None

    def _emit(self, out: SyncOutput, *, in_snapshot_loop: bool = False) -> Awaitable[None] | None:
        """Account for a step and hand its records over; the gate is open."""
        if out.gaps:
            self._metrics.sequence_gaps.labels(VENUE, md.DEPTH_STREAM, self._asset).inc(out.gaps)
            log.warning(
                "depth sequence gap; resyncing from a snapshot", extra={"subscription": self._asset}
            )
        discarded = self._metrics.discarded
        if out.stale_dropped:
            discarded.labels(VENUE, md.DEPTH_STREAM, DiscardReason.STALE_SEQUENCE).inc(
                out.stale_dropped
            )
        if out.shed:
            discarded.labels(VENUE, md.DEPTH_STREAM, DiscardReason.BACKPRESSURE).inc(out.shed)
        if out.buffer_dropped:
            discarded.labels(VENUE, md.DEPTH_STREAM, DiscardReason.BUFFER_OVERFLOW).inc(
                out.buffer_dropped
            )
        waiting = self._publisher.submit_all(out.records) if out.records else None
        if out.request_snapshot is not None:
            self._metrics.resyncs.labels(VENUE, self._asset, out.request_snapshot).inc()
            if not in_snapshot_loop and (self._snapshot_task is None or self._snapshot_task.done()):
                self._start_snapshots(first=True)
        return None if waiting is None else self._gate.hold(waiting)

    def _start_snapshots(self, *, first: bool) -> None:
        task = asyncio.create_task(self._snapshot_loop(first), name=f"snapshot-{self._asset}")
        task.add_done_callback(self._snapshots_ended)
        self._snapshot_task = task

    def _snapshots_ended(self, task: asyncio.Task[None]) -> None:
        """The snapshot loop's own supervisor: a loop that died is counted and started again."""
        if task.cancelled() or task.exception() is None or task is not self._snapshot_task:
            return
        exc = task.exception()
        assert exc is not None
        self._metrics.task_restarts.labels(VENUE, DEPTH_STREAM, type(exc).__name__).inc()
        log.error(
            "depth snapshot loop ended; restarting it",
            extra={"subscription": self._asset, "error": type(exc).__name__, "where": where(exc)},
        )
        self._start_snapshots(first=False)

    async def _snapshot_loop(self, first: bool = True) -> None:
        """Fetch snapshots until the book is live; cancelled when the socket goes away."""
        while True:
            if not first:
                await asyncio.sleep(self._retry.next_delay())
            first = False
            try:
                body = await self._fetch(self._asset)
            except SnapshotError as exc:
                self._metrics.snapshot_failures.labels(VENUE, self._asset).inc()
                log.warning(
                    "depth snapshot failed; retrying",
                    extra={"subscription": self._asset, "error": str(exc)},
                )
                continue
            try:
                snapshot = self._containment.call(_parse_snapshot, body)
            except FrameError as exc:
                # Kept in the DLQ like any bad frame; the book waits for a good snapshot.
                self._metrics.snapshot_failures.labels(VENUE, self._asset).inc()
                await self._publisher.reject(
                    md.DEPTH_STREAM,
                    exc,
                    body,
                    self._clock_ns(),
                    key=self._asset,
                    extra_headers=((OptionalHeader.SOURCE, FrameSource.REST_SNAPSHOT),),
                )
                continue
            received_ns = self._clock_ns()
            await self._gate.wait_open()
            out = self._sync.on_snapshot(snapshot, received_ns)
            await settle(self._emit(out, in_snapshot_loop=True))
            if out.request_snapshot is None:
                self._retry.reset()
                return


def _parse_snapshot(body: bytes) -> BookLevels:
    return md.parse_book_levels(json_numbers.loads(body), snapshot=True)


class _StatelessHandler:
    """A stream whose frames map to records one by one, with no connection state."""

    def __init__(self, stream: str, key: str | None, publisher: Publisher) -> None:
        self._stream = stream
        self._key = key
        self._publisher = publisher

    def _parse(self, message: Any, received_ns: int) -> Sequence[Record]:
        raise NotImplementedError

    async def on_open(self) -> None:
        return None

    async def on_close(self, reason: str) -> None:
        return None

    async def close(self) -> None:
        return None

    def on_frame(self, data: str | bytes, received_ns: int) -> Awaitable[None] | None:
        try:
            message = json_numbers.loads(data)
            if md.is_control(message):
                return None
            records = self._parse(message, received_ns)
        except FrameError as exc:
            return self._publisher.reject(self._stream, exc, data, received_ns, key=self._key)
        # The reader awaits whatever must wait before its next frame: order is kept.
        return self._publisher.submit_all(records)


class TradesHandler(_StatelessHandler):
    """The all-markets public trade stream."""

    def __init__(self, publisher: Publisher) -> None:
        super().__init__(md.TRADES_STREAM, None, publisher)

    def _parse(self, message: Any, received_ns: int) -> Sequence[Record]:
        return (md.parse_trade(message, received_ns),)


class KlinesHandler(_StatelessHandler):
    """One asset's kline stream; each frame is an array of bars."""

    def __init__(self, asset: str, interval: str | None, publisher: Publisher) -> None:
        super().__init__(md.KLINES_STREAM, asset, publisher)
        self._asset = asset
        self._interval = interval

    def _parse(self, message: Any, received_ns: int) -> Sequence[Record]:
        return md.parse_klines(message, self._asset, self._interval, received_ns)


def new_retry(rng: random.Random) -> Backoff:
    """Backoff for snapshot retries: quick first retry, capped at 10 s."""
    return Backoff(0.2, 10.0, 2.0, rng)


def subscription_asset(configured: str, index: int) -> str:
    """A configured asset id in the SDK's canonical form: the subscription path and the key,
    so a market configured as ``0x…@…`` keys its records as the venue's own frames name it."""
    try:
        return canonical_asset(configured)
    except FrameError as exc:
        raise ConfigError(f"tplus.market_data.assets[{index}]: {exc.detail}") from None


def build(md: TplusMarketDataSettings, ctx: SourceContext) -> list[Service]:
    """One WebSocket per depth and kline subscription, plus the all-markets trade stream."""
    if not md.enabled:
        return []
    origin = urls.origin(md.base_url)

    def endpoint(stream: str, subscription: str, path: str) -> Endpoint:
        return Endpoint(VENUE, stream, subscription, urls.ws_url(md.base_url, path), origin)

    fetch = http_snapshot_fetcher(
        ctx.http, md.base_url, md.snapshot_timeout_s, md.snapshot_max_bytes, ctx.metrics
    )
    services: list[Service] = []
    books: dict[str, DepthHandler] = {}
    for index, configured in enumerate(md.assets):
        asset = subscription_asset(configured, index)
        if md.depth:
            handler = books[asset] = DepthHandler(
                asset,
                BookSync(
                    asset,
                    step=md.sequence_step,
                    max_buffered=md.max_buffered_diffs,
                    restarted=ctx.restarted,
                ),
                book_checkpoints.depth_publisher(md, ctx.publisher, asset, ctx.clock_ns),
                fetch,
                ctx.metrics,
                retry=new_retry(ctx.child_rng()),
                shed=md.depth_overflow == "shed",
                clock_ns=ctx.clock_ns,
                containment=ctx.containment(VENUE, DEPTH_STREAM, asset),
            )
            services.append(
                ctx.session(
                    endpoint(DEPTH_STREAM, asset, urls.depth_path(asset)),
                    handler,
                    md.websocket_for("depth"),
                    on_lost=handler.diff_lost,
                )
            )
        if md.klines:
            services.append(
                ctx.session(
                    endpoint(KLINES_STREAM, asset, urls.klines_path(asset)),
                    KlinesHandler(asset, md.kline_interval, ctx.publisher),
                    md.websocket_for("klines"),
                )
            )
    if books:

        def book_lost(asset: str, reason: str) -> None:
            # The sink's reason (delivery_failed, encode_failed) is the dead letter's;
            # the book's GAP says only that the diff went to the DLQ.
            book = books.get(asset)
            if book is not None:
                book.diff_lost(asset, GapReason.DEAD_LETTERED)

        ctx.publisher.on_lost(DEPTH_STREAM, book_lost)
    if md.trades:
        services.append(
            ctx.session(
                endpoint(TRADES_STREAM, "all", urls.TRADES_PATH),
                TradesHandler(ctx.publisher),
                md.websocket_for("trades"),
            )
        )
    return services
