"""Hostile input at the driver level: every handler's ``on_frame``, not only the parsers.

The handlers are run bare, without the containment boundary, so an exception
from venue or driver code fails the test instead of becoming a dead letter.
Each frame must end as records, dead letters or a documented ignore (a
keep-alive object, a protocol reply, a diff held for the snapshot or older
than the book, an empty kline array), and a depth book must stay valid: a
consumer applying the records never applies a DIFF out of sequence, and a
frame lost to the DLQ is announced with a GAP.

Two passes: every field of every golden frame (and the frame itself)
replaced by every JSON type and a few hostile values, exhaustively; then
hypothesis, with arbitrary bytes, text and JSON and golden frames with a
field replaced by deep nesting, huge numbers or non-ASCII digits.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from connector.ops.metrics import Metrics
from connector.pipeline import Publisher
from connector.records import Record
from connector.sources.backoff import Backoff
from connector.sources.tastytrade_account import AccountStreamHandler
from connector.sources.tplus_market import DepthHandler, KlinesHandler, TradesHandler
from connector.sources.tplus_oms import OrdersHandler, UserTradesHandler
from connector.venues import json_numbers
from connector.venues.errors import FrameError
from connector.venues.tastytrade.messages import ElementKind, classify, elements
from connector.venues.tastytrade.streamer import AccountStreamer, Rejected, StreamerConfig
from connector.venues.tplus import market_data as md
from connector.venues.tplus.book_sync import BookSync
from tests.conftest import sample
from tests.fakes import FakeLink, FixedTokens, RecordingSink, handle_frame
from tests.golden import frames, text
from tests.venues.test_hostile_input import json_values

ACCOUNT = "07174645dda5c7fa66ac240ecad7ea4c6e6bf13662057e9b413c97cf73a67016"
TT_ACCOUNTS = ("5WT00001", "5WT00002")
SNAPSHOT = text("tplus", "snapshot.json").encode()  # sequence 1041
DIFFS = frames("tplus", "depth.jsonl")  # 1042, 1043, 1044
TASTYTRADE_FILES = [
    "AccountBalance",
    "ComplexOrder",
    "CurrentPosition",
    "ExternalTransaction",
    "Order",
    "OrderChain",
    "PublicWatchlists",
    "QuoteAlert",
    "TradingStatus",
    "UnderlyingYearGainSummary",
    "results-batch",
]
REPLIES = [
    json.dumps(json.loads(line)["msg"])
    for line in frames("tastytrade", "handshake.jsonl")
    if json.loads(line)["dir"] == "server->client"
]


def _nested(depth: int, opener: str, inner: str, closer: str) -> str:
    return opener * depth + inner + closer * depth


HOSTILE = [
    '"\u00b2"',  # str.isdigit() is true, int() refuses it
    "-" + "9" * 4000,
    "1e400",
    _nested(400, "[", "", "]"),
    _nested(900, '{"a":', "1", "}"),
]
MORE_HOSTILE = [
    '"\u0661\u0662"',
    '"1\u00b2"',
    "9" * 30,
    "0." + "0" * 400 + "1",
    '"' + "x" * 2000 + '"',
]
JSON_TYPES = ["null", "true", "0", "1.5", '"x"', "[]", "{}"]
"""One value of each JSON type."""


@dataclass(frozen=True)
class Golden:
    stream: str
    frame: Any


GOLDEN: list[Golden] = [
    *(Golden("depth", json_numbers.loads(line)) for line in DIFFS),
    *(Golden("trades", json_numbers.loads(line)) for line in frames("tplus", "trades.jsonl")),
    *(Golden("klines", json_numbers.loads(line)) for line in frames("tplus", "klines.jsonl")),
    *(Golden("orders", json_numbers.loads(line)) for line in frames("tplus", "orders.jsonl")),
    *(
        Golden("user_trades", json_numbers.loads(line))
        for line in frames("tplus", "user_trades.jsonl")
    ),
    *(
        Golden("tastytrade", json_numbers.loads(line))
        for name in TASTYTRADE_FILES
        for line in frames("tastytrade", f"{name}.jsonl")
    ),
    *(Golden("tastytrade", json_numbers.loads(line)) for line in REPLIES),
]
STREAMS = sorted({g.stream for g in GOLDEN})

Path = tuple[str | int, ...]


def paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every place in a decoded frame a value sits, the frame itself first."""
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from paths(inner, (*prefix, index))


_HOLE = json.dumps("\x00hole\x00")


def holed(frame: Any, path: Path) -> str:
    """The frame's JSON text with a marker where the value at ``path`` was."""
    if not path:
        return _HOLE
    copy = json_numbers.loads(json_numbers.json_text(frame))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = json.loads(_HOLE)
    return json_numbers.json_text(copy)


def replaced(frame: Any, path: Path, fragment: str) -> str:
    """The frame's JSON text with the value at ``path`` replaced by the JSON text ``fragment``."""
    return holed(frame, path).replace(_HOLE, fragment, 1)


# --- the handlers, each in a known state ------------------------------------------------


@dataclass
class Outcome:
    records: list[Record]
    dead: int
    ignored: bool
    """The handler did nothing with the frame, and its stream documents why."""


class _NoBaseline:
    async def fetch(self) -> tuple[list[Record], list[Rejected]]:
        return [], []


def _decoded(frame: str | bytes) -> Any:
    try:
        return json_numbers.loads(frame)
    except FrameError:
        return FrameError


def _control(frame: str | bytes) -> bool:
    return md.is_control(_decoded(frame))


def _only_replies(frame: str | bytes) -> bool:
    """A streamer frame that holds protocol replies only (or an empty batch)."""
    message = _decoded(frame)
    try:
        items = elements(message)
        return all(classify(item) is ElementKind.REPLY for item in items)
    except FrameError:
        return False


def _book_is_valid(records: list[Record]) -> None:
    """What a consumer of tplus.depth relies on (README: rebuilding an order book)."""
    last: int | None = None
    for record in records:
        value = record.value
        if value["kind"] == "SNAPSHOT":
            last = value["sequence_number"]
        elif value["kind"] == "GAP":
            last = None
        else:
            assert last is not None, "a DIFF while the book is invalid"
            assert value["sequence_number"] == last + 1, "a DIFF out of sequence"
            last = value["sequence_number"]


async def _depth(frame: str | bytes, metrics: Metrics) -> Outcome:
    """A live book (snapshot 1041, diff 1042), then the frame, then diff 1043."""
    sink = RecordingSink()

    async def snapshot(asset: str) -> bytes:
        return SNAPSHOT

    sync = BookSync("1")
    handler = DepthHandler(
        "1",
        sync,
        Publisher(sink, metrics),
        snapshot,
        metrics,
        retry=Backoff(0.001, 0.001, 1, random.Random(0)),
    )
    await handler.on_open()
    await sink.wait_for(1)
    await handle_frame(handler, DIFFS[0], 1)
    before = len(sink.records)
    stale = {"venue": "tplus", "stream": "tplus.depth", "reason": "stale_sequence"}
    dropped = sample(metrics, "connector_events_discarded_total", **stale)
    await handle_frame(handler, frame, 2)
    published = sink.records[before:]
    buffered = sync.buffered
    was_stale = sample(metrics, "connector_events_discarded_total", **stale) > dropped
    await handle_frame(handler, DIFFS[1], 3)
    await handler.close()
    _book_is_valid(sink.records)
    if sink.dead:
        gaps = [r for r in sink.records if r.value["gap_reason"] == "dead_lettered"]
        assert gaps, "a frame of a live book went to the DLQ without a GAP"
    ignored = _control(frame) or buffered > 0 or was_stale
    return Outcome(published, len(sink.dead), ignored)


async def _stateless(make: Callable[[Publisher], Any], frame: str | bytes, m: Metrics) -> Outcome:
    sink = RecordingSink()
    handler = make(Publisher(sink, m))
    await handle_frame(handler, frame, 1)
    await handler.close()
    decoded = _decoded(frame)
    empty_bars = isinstance(handler, KlinesHandler) and decoded == []
    return Outcome(sink.records, len(sink.dead), _control(frame) or empty_bars)


async def _tastytrade(frame: str | bytes, metrics: Metrics) -> Outcome:
    core = AccountStreamer(StreamerConfig(TT_ACCOUNTS))
    core.open(0.0, "Bearer t")
    core.receive(REPLIES[0], 1, 0.1)  # the connect ack
    core.baseline([])
    sink = RecordingSink()
    handler = AccountStreamHandler(
        core,
        FixedTokens(),
        _NoBaseline(),
        Publisher(sink, metrics),
        metrics,
        retry=Backoff(0.001, 0.001, 1, random.Random(0)),
    )
    handler.attach(FakeLink())
    await handler.on_frame(frame, 2)
    await handler.close()
    return Outcome(sink.records, len(sink.dead), _only_replies(frame))


async def _run(stream: str, frame: str | bytes, metrics: Metrics) -> Outcome:
    runners: dict[str, Callable[[], Awaitable[Outcome]]] = {
        "depth": lambda: _depth(frame, metrics),
        "trades": lambda: _stateless(TradesHandler, frame, metrics),
        "klines": lambda: _stateless(lambda p: KlinesHandler("1", None, p), frame, metrics),
        "orders": lambda: _stateless(
            lambda p: OrdersHandler(ACCOUNT, p, metrics, None), frame, metrics
        ),
        "user_trades": lambda: _stateless(
            lambda p: UserTradesHandler(ACCOUNT, p, metrics, None), frame, metrics
        ),
        "tastytrade": lambda: _tastytrade(frame, metrics),
    }
    return await runners[stream]()


async def _check(stream: str, frame: str | bytes, metrics: Metrics) -> Outcome:
    outcome = await _run(stream, frame, metrics)  # raises if anything escaped the handler
    assert outcome.records or outcome.dead or outcome.ignored, (stream, frame)
    return outcome


# --- pass one: every field, every JSON type ----------------------------------------------


async def test_every_field_of_every_golden_frame_replaced_by_every_json_type(
    metrics: Metrics,
) -> None:
    outcomes: dict[str, set[str]] = {stream: set() for stream in STREAMS}
    checked = 0
    for golden in GOLDEN:
        for path in paths(golden.frame):
            template = holed(golden.frame, path)
            for fragment in (*JSON_TYPES, *HOSTILE):
                frame = template.replace(_HOLE, fragment, 1)
                outcome = await _check(golden.stream, frame, metrics)
                outcomes[golden.stream].add(
                    "dead" if outcome.dead else "records" if outcome.records else "ignored"
                )
                checked += 1
    assert checked > 10_000
    for stream, kinds in outcomes.items():
        # The mutations reach both outcomes on every stream: the frames were really parsed.
        assert {"records", "dead"} <= kinds, (stream, kinds)


# --- pass two: hypothesis -----------------------------------------------------------------

fragments = st.one_of(
    json_values.map(json.dumps),
    st.sampled_from([*HOSTILE, *MORE_HOSTILE]),
    st.builds(
        lambda depth, as_list: (
            _nested(depth, "[", "", "]") if as_list else _nested(depth, '{"a":', "1", "}")
        ),
        st.integers(1, 950),
        st.booleans(),
    ),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=8).map(
        json.dumps
    ),
)


@st.composite
def mutated(draw: st.DrawFn, stream: str) -> str:
    pool = [g for g in GOLDEN if g.stream == stream]
    golden = draw(st.sampled_from(pool))
    path = draw(st.sampled_from(list(paths(golden.frame))))
    return replaced(golden.frame, path, draw(fragments))


def hostile_frames(stream: str) -> st.SearchStrategy[str | bytes]:
    return st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300),
        json_values.map(json.dumps),
        mutated(stream),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(STREAMS).flatmap(lambda s: st.tuples(st.just(s), hostile_frames(s))))
def test_no_frame_escapes_a_handler_and_each_has_an_outcome(case: tuple[str, str | bytes]) -> None:
    stream, frame = case
    asyncio.run(_check(stream, frame, Metrics(CollectorRegistry())))


async def test_a_deeply_nested_results_batch_is_dead_lettered_not_raised(metrics: Metrics) -> None:
    batch = '{"results":[' + _nested(900, "[", "", "]") + "]}"
    outcome = await _check("tastytrade", batch, metrics)
    assert outcome.dead == 1 and not outcome.records
