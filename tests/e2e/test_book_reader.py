"""Consumers join at any time: the books topic and BookReader on the embedded stack.

Simulator → connector (checkpoints every second) → mock cluster and registry →
``connector.readers.BookReader`` (DeserializingConsumer, AvroDeserializer).
Every book a reader holds is compared with the simulator's own book at the
same sequence number, replayed from the model's diffs (skipped ones included).
The mock cluster does not compact: a reader reads every checkpoint and keeps
the newest of its asset, as it must on a real compacted topic before the
cleaner has run.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

import pytest
from confluent_kafka import Producer

from connector.app import Connector
from connector.dev import dev_settings
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.readers import BookReader, CheckpointExpired
from connector.readers.depth_book import Applied
from connector.settings import Settings, parse_settings
from connector.simulators.book_model import Book
from connector.simulators.tplus_market import TplusMarketSimulator
from connector.tail import tail_book
from tests.kafka_reader import TopicReader
from tests.running import running_connector

ASSET = "1"
CHECKPOINT_S = 1.0
JOIN_BUDGET_S = CHECKPOINT_S + 5  # one checkpoint interval plus a few seconds
TOPICS = ["tplus.depth", "tplus.trades", "tplus.klines", "tplus.books", "connector.dlq"]


@dataclass
class Stack:
    cluster: MockCluster
    registry_url: str
    sim: TplusMarketSimulator
    settings: Settings
    venue: VenueBooks


class VenueBooks:
    """The simulator's book of one asset at any sequence number from now on."""

    def __init__(self, sim: TplusMarketSimulator, asset: str) -> None:
        self._base = sim.book(asset)
        self._book = self._base.copy()
        self._diffs = sim.model.diffs[asset]

    def at(self, sequence: int) -> Book:
        if sequence < self._book.sequence_number:
            self._book = self._base.copy()  # replay again from the start
        assert sequence >= self._book.sequence_number, "asked for a book older than the start"
        for diff in self._diffs:
            if self._book.sequence_number < diff.sequence_number <= sequence:
                self._book.apply(diff)
        assert self._book.sequence_number == sequence, "the venue never reached that sequence"
        return self._book


@dataclass(frozen=True)
class Seen:
    """One state of a reader's book, taken in the reader's thread."""

    at: float
    applied: Applied | None  # None: the book as loaded by start()
    valid: bool
    sequence: int | None
    bids: dict[Decimal, Decimal]
    asks: dict[Decimal, Decimal]


def _seen(reader: BookReader, applied: Applied | None) -> Seen:
    bids, asks = reader.book.quantities()
    book = reader.book
    return Seen(time.monotonic(), applied, book.valid, book.sequence, bids, asks)


def _follow(
    reader: BookReader, done: Callable[[list[Seen]], bool], timeout_s: float = 30
) -> list[Seen]:
    """Poll until ``done(states)``; every change of the book is one state."""
    states: list[Seen] = []
    deadline = time.monotonic() + timeout_s
    while not done(states):
        if time.monotonic() > deadline:
            raise TimeoutError(f"reader at {reader.book.sequence} ({reader.book.state})")
        applied = reader.poll(0.2)
        if applied in (Applied.REPLACED, Applied.UPDATED, Applied.INVALIDATED):
            states.append(_seen(reader, applied))
    return states


def _join(reader: BookReader, more: int) -> list[Seen]:
    """Start a reader and follow ``more`` changes; the first state is the started book."""
    reader.start()
    first = [_seen(reader, None)]
    return first + _follow(reader, lambda states: len(states) >= more)


def _assert_matches_venue(stack: Stack, states: list[Seen]) -> None:
    valid = [s for s in states if s.valid]
    assert valid, "the reader never held a valid book"
    for state in valid:
        assert state.sequence is not None
        venue = stack.venue.at(state.sequence)
        assert (state.bids, state.asks) == (venue.bids, venue.asks), f"at {state.sequence}"


def _settings(cluster: MockCluster, registry_url: str, venue_url: str) -> Settings:
    data = dev_settings(cluster.bootstrap_servers, registry_url, venue_url, [ASSET], 0).model_dump(
        mode="json"
    )
    md = data["tplus"]["market_data"]
    md["book_checkpoint_s"] = CHECKPOINT_S
    md["websocket"]["backoff"] = {"initial_s": 0.05, "max_s": 0.2, "multiplier": 2.0}
    return parse_settings(data)


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    with MockCluster(brokers=3) as cluster, RegistryServer() as registry:
        registry_url = registry.start()
        for topic in TOPICS:
            cluster.create_topic(topic, partitions=3)
        sim = TplusMarketSimulator(
            [ASSET], seed=11, depth_interval_s=0.01, trade_interval_s=0.5, kline_interval_s=0.5
        )
        venue_url = await sim.start()
        sim.pause()  # the replay starts from the book as it is now
        try:
            yield Stack(
                cluster,
                registry_url,
                sim,
                _settings(cluster, registry_url, venue_url),
                VenueBooks(sim, ASSET),
            )
        finally:
            await sim.stop()


def _reader(stack: Stack) -> BookReader:
    return BookReader(ASSET, stack.cluster.bootstrap_servers, stack.registry_url)


async def _join_once(stack: Stack, more: int) -> tuple[BookReader, list[Seen]]:
    """A new reader, joined and followed for ``more`` changes, then closed."""
    reader = _reader(stack)
    try:
        return reader, await asyncio.to_thread(_join, reader, more)
    finally:
        reader.close()


@asynccontextmanager
async def _streaming(stack: Stack) -> AsyncIterator[None]:
    """A connector bridging the asset's depth, with the simulator emitting."""
    async with running_connector(Connector(stack.settings)):
        await asyncio.wait_for(stack.sim.wait_connected(f"/marketdepth/diff/{ASSET}"), 20)
        stack.sim.resume()
        yield


async def _delivered(stack: Stack, count: int) -> int:
    """Until ``tplus.depth`` holds at least ``count`` records; returns how many it holds."""
    depth = TopicReader(stack.cluster.bootstrap_servers, stack.registry_url, ["tplus.depth"])
    try:
        read = await asyncio.to_thread(depth.poll_until, lambda rs: len(rs["tplus.depth"]) >= count)
    finally:
        depth.close()
    return len(read["tplus.depth"])


async def test_a_reader_that_joins_mid_stream_holds_the_venues_book(stack: Stack) -> None:
    async with _streaming(stack):
        await _delivered(stack, random.Random().randint(150, 400))  # a random moment
        joined = time.monotonic()
        reader, states = await _join_once(stack, 100)
        assert reader.checkpoint is not None, "the reader did not start from a checkpoint"
        first_valid = next(s for s in states if s.valid)
        assert first_valid.at - joined < JOIN_BUDGET_S
        assert all(s.valid for s in states)
        _assert_matches_venue(stack, states)


async def test_readers_hold_the_venues_book_across_a_connector_restart(stack: Stack) -> None:
    early = _reader(stack)
    try:
        async with _streaming(stack):
            delivered = await _delivered(stack, 200)
            before = await asyncio.to_thread(_join, early, 50)
        # The venue goes on while no connector listens; the next one resyncs.
        async with _streaming(stack):
            await _delivered(stack, delivered + 200)
            target = stack.sim.emitted.depth[ASSET][-1].sequence_number
            across = await asyncio.to_thread(
                _follow, early, lambda s: bool(s) and (s[-1].sequence or 0) >= target
            )
            late, after = await _join_once(stack, 50)
    finally:
        early.close()
    assert any(s.applied is Applied.REPLACED for s in across), "no SNAPSHOT after the restart"
    assert across[-1].valid
    _assert_matches_venue(stack, before + across)
    assert late.checkpoint is not None
    assert all(s.valid for s in after)
    _assert_matches_venue(stack, after)


async def test_readers_hold_the_venues_book_across_an_injected_gap(stack: Stack) -> None:
    early = _reader(stack)
    try:
        async with _streaming(stack):
            await _delivered(stack, 200)
            before = await asyncio.to_thread(_join, early, 20)
            stack.sim.skip_sequence(ASSET, 3)
            gap_at = time.monotonic()
            across = await asyncio.to_thread(
                _follow,
                early,
                lambda s: any(not x.valid for x in s) and s[-1].applied is Applied.UPDATED,
            )
            # Its checkpoint is from before the gap or from the resync after it.
            late, after = await _join_once(stack, 50)
    finally:
        early.close()
    invalid = [s for s in across if not s.valid]
    assert early.book.valid and invalid
    assert invalid[0].applied is Applied.INVALIDATED
    resynced = next(s for s in across if s.applied is Applied.REPLACED)
    assert resynced.at - gap_at < JOIN_BUDGET_S
    _assert_matches_venue(stack, before + across)
    assert late.checkpoint is not None and after[-1].valid
    _assert_matches_venue(stack, after)


async def test_without_checkpoints_a_reader_starts_from_the_oldest_record(stack: Stack) -> None:
    data = stack.settings.model_dump(mode="json")
    data["tplus"]["market_data"]["book_checkpoint_s"] = 0
    stack.settings = parse_settings(data)
    async with _streaming(stack):
        await _delivered(stack, 100)
        reader, states = await _join_once(stack, 100)
    assert reader.checkpoint is None
    assert not states[0].valid  # nothing to start from until the first SNAPSHOT
    assert states[1].applied is Applied.REPLACED
    _assert_matches_venue(stack, states)


def _overflow_partition(cluster: MockCluster, topic: str, partition: int) -> None:
    """Write past the mock's per-partition log size (about 5 MiB), so it drops the oldest data.

    That is the mock's stand-in for retention (it implements neither retention.ms nor
    DeleteRecords); the filler is not Avro, and no reader is meant to read it.
    """
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 0})
    for _ in range(14):
        producer.produce(topic, b"x" * 500_000, b"filler", partition=partition)
        producer.flush(10)
    assert producer.flush(10) == 0


async def test_a_reader_whose_checkpoint_is_older_than_the_retention_says_so(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    async with _streaming(stack):
        await _delivered(stack, 100)
        books = TopicReader(stack.cluster.bootstrap_servers, stack.registry_url, ["tplus.books"])
        try:
            read = await asyncio.to_thread(books.poll_until, lambda rs: len(rs["tplus.books"]) >= 2)
        finally:
            books.close()
    stack.sim.pause()
    partition = read["tplus.books"][-1].value["depth_partition"]
    # A reader that is positioned but has fetched (almost) nothing yet when retention moves.
    behind = BookReader(
        ASSET,
        stack.cluster.bootstrap_servers,
        stack.registry_url,
        config={
            "queued.min.messages": 1,
            "queued.max.messages.kbytes": 1,
            "fetch.max.bytes": 1024,
            "message.max.bytes": 1024,
            "max.partition.fetch.bytes": 1024,
        },
    )
    try:
        await asyncio.to_thread(behind.start)
        assert behind.book.valid
        await asyncio.to_thread(_overflow_partition, stack.cluster, "tplus.depth", partition)
        with pytest.raises(CheckpointExpired) as fell_behind:
            await asyncio.to_thread(_follow, behind, lambda states: False, 20)
    finally:
        behind.close()
    assert fell_behind.value.partition == partition
    assert fell_behind.value.wanted < fell_behind.value.earliest
    assert (behind.book.valid, behind.book.invalid_reason) == (False, "expired")
    reader = _reader(stack)
    try:
        with pytest.raises(CheckpointExpired) as raised:
            await asyncio.to_thread(reader.start)
    finally:
        reader.close()
    expired = raised.value
    assert (expired.topic, expired.partition) == ("tplus.depth", partition)
    assert expired.wanted < expired.earliest
    assert "no book is built from it" in str(expired)
    assert not reader.book.valid
    capsys.readouterr()
    code = await asyncio.to_thread(
        tail_book,
        ASSET,
        stack.cluster.bootstrap_servers,
        stack.registry_url,
        books_topic="tplus.books",
        depth_topic="tplus.depth",
        max_records=None,
        idle_timeout_s=5,
    )
    printed = capsys.readouterr()
    assert (code, printed.out) == (1, "")
    assert printed.err == f"connector tail: {expired}\n"
