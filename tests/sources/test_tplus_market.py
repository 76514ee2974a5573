"""The depth handler's I/O decisions: snapshot retries, control frames, dead letters."""

from __future__ import annotations

import asyncio
import random

import pytest

from connector.ops.metrics import Metrics
from connector.pipeline import Publisher, Waiting
from connector.records import Record
from connector.settings import ConfigError
from connector.sources.backoff import Backoff
from connector.sources.tplus_market import (
    DepthHandler,
    KlinesHandler,
    SnapshotError,
    TradesHandler,
    subscription_asset,
)
from connector.venues.tplus.book_sync import BookSync
from tests.conftest import sample
from tests.fakes import RecordingSink, handle_frame
from tests.golden import frames, text

SNAPSHOT = text("tplus", "snapshot.json").encode()


class FlakyVenue:
    """Fails the first ``failures`` requests, answers ``bad`` bodies next, then the golden one."""

    def __init__(self, failures: int, bad: list[bytes] | None = None) -> None:
        self.failures = failures
        self.bad = list(bad or [])
        self.calls = 0

    async def fetch(self, asset: str) -> bytes:
        self.calls += 1
        if self.calls <= self.failures:
            raise SnapshotError("snapshot request answered HTTP 503")
        if self.bad:
            return self.bad.pop(0)
        return SNAPSHOT


def _handler(
    venue: FlakyVenue | SlowVenue | BuggyThenGoodVenue, metrics: Metrics, sink: RecordingSink
) -> DepthHandler:
    return DepthHandler(
        "1",
        BookSync("1"),
        Publisher(sink, metrics),
        venue.fetch,
        metrics,
        retry=Backoff(0.001, 0.002, 2.0, random.Random(1)),
    )


async def test_snapshot_failures_are_retried_and_counted(metrics: Metrics) -> None:
    sink = RecordingSink()
    venue = FlakyVenue(failures=2)
    handler = _handler(venue, metrics, sink)
    await handler.on_open()
    for line in frames("tplus", "depth.jsonl"):
        await handle_frame(handler, line, 5)
    await sink.wait_for(4)
    assert [r.value["kind"] for r in sink.records] == ["SNAPSHOT", "DIFF", "DIFF", "DIFF"]
    assert [r.value["sequence_number"] for r in sink.records] == [1041, 1042, 1043, 1044]
    assert venue.calls == 3
    assert (
        sample(metrics, "connector_snapshot_failures_total", venue="tplus", subscription="1") == 2
    )
    assert (
        sample(
            metrics,
            "connector_book_resyncs_total",
            venue="tplus",
            subscription="1",
            reason="connect",
        )
        == 1
    )
    await handler.close()


async def test_a_malformed_snapshot_is_dead_lettered_and_fetched_again(metrics: Metrics) -> None:
    sink = RecordingSink()
    venue = FlakyVenue(failures=0, bad=[b'{"bids": "nope"}'])
    handler = _handler(venue, metrics, sink)
    await handler.on_open()
    await sink.wait_for(1)
    assert sink.records[0].value["kind"] == "SNAPSHOT"
    (dead,) = sink.dead
    assert dead.raw == b'{"bids": "nope"}'
    assert dict(dead.extra_headers) == {"source": "rest_snapshot"}
    await handler.close()


class HeldSink(RecordingSink):
    """Makes the first record of one kind wait until released, as a full producer queue does."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    def submit(self, record: Record) -> Waiting | None:
        if record.value["kind"] == self.kind and not self.holding.is_set():
            self.holding.set()
            return self._keep_when_released(record)
        return super().submit(record)

    async def _keep_when_released(self, record: Record) -> None:
        await self.release.wait()
        super().submit(record)


class SlowVenue:
    """Answers the golden snapshot once told to."""

    def __init__(self) -> None:
        self.go = asyncio.Event()

    async def fetch(self, asset: str) -> bytes:
        await self.go.wait()
        return SNAPSHOT


async def test_a_diff_read_while_the_snapshot_waits_for_the_sink_follows_it(
    metrics: Metrics,
) -> None:
    sink = HeldSink("SNAPSHOT")
    venue = SlowVenue()
    handler = _handler(venue, metrics, sink)
    first, second = frames("tplus", "depth.jsonl")[:2]
    await handler.on_open()
    await handle_frame(handler, first, 5)  # buffered until the snapshot
    venue.go.set()
    await sink.holding.wait()  # the snapshot and the buffered diff wait for the sink
    reading = handler.on_frame(second, 6)  # as the session reads the next frame
    assert sink.records == [], "a diff overtook the snapshot that was waiting for the sink"
    assert reading is not None
    sink.release.set()
    await reading
    await sink.wait_for(3)
    assert [r.value["sequence_number"] for r in sink.records] == [1041, 1042, 1043]
    await handler.close()


async def test_control_frames_are_skipped_and_a_bad_frame_is_dead_lettered_under_a_gap(
    metrics: Metrics,
) -> None:
    venue = FlakyVenue(failures=0)
    sink = RecordingSink()
    handler = _handler(venue, metrics, sink)
    await handler.on_open()
    await sink.wait_for(1)
    await handle_frame(handler, '{"type":"ping"}', 5)
    assert len(sink.records) == 1
    await handle_frame(handler, b'{"bids": [[1, 2]], "asks": []}', 6)
    (dead,) = sink.dead
    assert (dead.stream, dead.stage, dead.reason) == ("tplus.depth", "validate", "missing_field")
    assert dead.raw == b'{"bids": [[1, 2]], "asks": []}' and dead.key == "1"
    # The frame may have been a diff: the book says it is broken and fetches a snapshot.
    gap = sink.records[1].value
    assert (gap["kind"], gap["gap_reason"], gap["gap_expected"]) == ("GAP", "dead_lettered", 1042)
    await sink.wait_for(3)
    assert sink.records[2].value["kind"] == "SNAPSHOT" and venue.calls == 2
    await handle_frame(handler, frames("tplus", "depth.jsonl")[0], 7)
    assert [r.value["kind"] for r in sink.records] == ["SNAPSHOT", "GAP", "SNAPSHOT", "DIFF"]
    await handler.close()


async def test_diff_lost_announces_a_gap_once_and_only_on_a_live_book(metrics: Metrics) -> None:
    sink = RecordingSink()
    venue = SlowVenue()
    handler = _handler(venue, metrics, sink)
    await handler.on_open()
    handler.diff_lost("1", "dead_lettered")  # nothing published yet: nothing to announce
    assert sink.records == []
    venue.go.set()
    await sink.wait_for(1)
    handler.diff_lost("1", "dead_lettered")
    handler.diff_lost("1", "dead_lettered")  # the book is already awaiting a snapshot
    assert [r.value["kind"] for r in sink.records] == ["SNAPSHOT", "GAP"]
    assert (
        sample(
            metrics, "connector_book_resyncs_total", venue="tplus", subscription="1", reason="lost"
        )
        == 1
    )
    await handler.close()


async def test_disconnect_cancels_a_pending_snapshot_and_announces_nothing_before_live(
    metrics: Metrics,
) -> None:
    sink = RecordingSink()
    blocked = asyncio.Event()

    async def never(asset: str) -> bytes:
        blocked.set()
        await asyncio.Event().wait()
        return b""

    handler = DepthHandler(
        "1",
        BookSync("1"),
        Publisher(sink, metrics),
        never,
        metrics,
        retry=Backoff(0.001, 0.002, 2.0, random.Random(1)),
    )
    await handler.on_open()
    await blocked.wait()
    await handler.on_close("closed_error")
    assert sink.records == [] and sink.dead == []


async def test_trades_and_klines_handlers_publish_golden_frames(metrics: Metrics) -> None:
    sink = RecordingSink()
    publisher = Publisher(sink, metrics)
    trades, klines = TradesHandler(publisher), KlinesHandler("1", None, publisher)
    for line in frames("tplus", "trades.jsonl"):
        await handle_frame(trades, line, 1_761_283_016_000_000_000)
    for line in frames("tplus", "klines.jsonl"):
        await handle_frame(klines, line, 1)
    await handle_frame(klines, '{"not": "an array"}', 2)
    assert [r.stream for r in sink.records] == ["tplus.trades"] * 3 + ["tplus.klines"] * 3
    assert [d.reason for d in sink.dead] == ["wrong_shape"]
    lag = metrics.registry.get_sample_value(
        "connector_event_lag_seconds_count", {"stream": "tplus.trades"}
    )
    assert lag == 3


def test_a_configured_asset_subscribes_and_keys_in_the_sdk_canonical_form() -> None:
    weth = "0x82AF49447D8A07E3BD95BD0D56F35241523FBAB1@00000000000000a4b1"
    assert subscription_asset(weth, 0) == (
        "82af49447d8a07e3bd95bd0d56f35241523fbab1000000000000000000000000@00000000000000a4b1"
    )
    assert subscription_asset("1", 0) == "1"
    with pytest.raises(ConfigError, match=r"^tplus\.market_data\.assets\[2\]: asset_id chain"):
        subscription_asset("82af49447d8a07e3bd95bd0d56f35241523fbab1@000000000000a4b1", 2)


class BuggyThenGoodVenue:
    """Fails its first request with an exception no retry rule knows (a bug), then answers."""

    def __init__(self) -> None:
        self.calls = 0

    async def fetch(self, asset: str) -> bytes:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("not a SnapshotError: a bug in the fetcher")
        return SNAPSHOT


async def test_a_snapshot_loop_that_dies_of_a_bug_is_counted_and_started_again(
    metrics: Metrics,
) -> None:
    sink = RecordingSink()
    venue = BuggyThenGoodVenue()
    handler = _handler(venue, metrics, sink)
    await handler.on_open()
    await sink.wait_for(1)
    assert sink.records[0].value["kind"] == "SNAPSHOT" and venue.calls == 2
    labels = {"venue": "tplus", "stream": "tplus.depth", "reason": "RuntimeError"}
    assert sample(metrics, "connector_task_restarts_total", **labels) == 1
    await handler.close()
