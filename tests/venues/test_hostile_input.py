"""Arbitrary bytes and arbitrary JSON never crash a parser: each bad frame becomes a reason.

Parsers may only raise FrameError (whose stage and reason come from closed
sets); handlers turn every frame into records, a dead letter, or, for the
venue's keep-alive objects, nothing at all.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from connector.ops.metrics import Metrics
from connector.pipeline import Publisher
from connector.records import Stage
from connector.sources.backoff import Backoff
from connector.sources.tplus_market import DepthHandler, KlinesHandler, TradesHandler
from connector.venues import json_numbers
from connector.venues.errors import FrameError, Reason
from connector.venues.tastytrade import notifications
from connector.venues.tastytrade.streamer import AccountStreamer, StreamerConfig
from connector.venues.tplus import market_data as md
from connector.venues.tplus import orders, user_trades
from connector.venues.tplus.asset_ids import canonical_asset
from connector.venues.tplus.book_sync import BookSync
from tests.fakes import RecordingSink, handle_frame

STAGES = {v for k, v in vars(Stage).items() if k.isupper()}
REASONS = {v for k, v in vars(Reason).items() if k.isupper()}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=25,
)
# Objects shaped like the venue's, with arbitrary values: reaches deeper than pure noise.
venue_like = st.fixed_dictionaries(
    {},
    optional={
        "bids": json_values,
        "asks": json_values,
        "sequence_number": json_values,
        "asset_id": json_values,
        "trade_id": json_values,
        "price": json_values,
        "quantity": json_values,
        "timestamp_ns": json_values,
        "buyer_is_maker": json_values,
        "status": json_values,
        "order_id": json_values,
        "type": json_values,
    },
)
frames = st.one_of(
    st.binary(max_size=200),
    json_values.map(json.dumps),
    venue_like.map(json.dumps),
    st.lists(venue_like, max_size=3).map(json.dumps),
)


def _check(error: FrameError) -> None:
    assert error.stage in STAGES and error.reason in REASONS
    assert error.detail


@settings(max_examples=300, deadline=None)
@given(frames)
def test_parsers_raise_only_frame_errors(frame: bytes | str) -> None:
    try:
        message = json_numbers.loads(frame)
    except FrameError as exc:
        _check(exc)
        return
    for parse in (
        lambda m: md.parse_book_levels(m),
        lambda m: md.parse_book_levels(m, snapshot=True),
        lambda m: md.parse_trade(m, 1),
        lambda m: md.parse_klines(m, "1", None, 1),
        lambda m: canonical_asset(m),
    ):
        try:
            parse(message)
        except FrameError as exc:
            _check(exc)


async def _feed(frame: bytes | str) -> list[tuple[str, int, int]]:
    """(handler, records, dead letters) for one frame given to each handler."""
    metrics = Metrics(CollectorRegistry())
    out = []

    async def snapshot(asset: str) -> bytes:
        return b'{"bids": [], "asks": [], "sequence_number": 1}'

    for name in ("depth", "trades", "klines"):
        sink = RecordingSink()
        publisher = Publisher(sink, metrics)
        handler: Any
        if name == "depth":
            handler = DepthHandler(
                "1",
                BookSync("1"),
                publisher,
                snapshot,
                metrics,
                retry=Backoff(0.001, 0.001, 1, random.Random(0)),
            )
        elif name == "trades":
            handler = TradesHandler(publisher)
        else:
            handler = KlinesHandler("1", None, publisher)
        await handle_frame(handler, frame, 1)
        await handler.close()
        for letter in sink.dead:
            assert letter.stage in STAGES and letter.reason in REASONS
            raw = frame.encode() if isinstance(frame, str) else frame
            assert letter.raw == raw, "the DLQ must keep the frame's exact bytes"
        out.append((name, len(sink.records), len(sink.dead)))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames)
def test_every_frame_becomes_records_a_dead_letter_or_a_known_keepalive(frame: bytes | str) -> None:
    results = asyncio.run(_feed(frame))
    try:
        keepalive = md.is_control(json_numbers.loads(frame))
    except FrameError:
        keepalive = False
    for name, records, dead in results:
        assert dead <= 1
        if keepalive:
            assert (records, dead) == (0, 0), name
        elif name == "trades":
            assert records + dead == 1, (name, records, dead)
        elif name == "klines":
            assert dead == 1 or records >= 0
            if dead:
                assert records == 0
        else:
            # A valid diff is buffered until the snapshot; anything else is dead-lettered.
            assert records == 0


def test_the_strategies_reach_both_outcomes() -> None:
    """Guard against a generator that only ever produces one kind of frame."""
    valid_trade = json.dumps(
        {
            "asset_id": "1",
            "trade_id": 1,
            "price": "1",
            "quantity": "1",
            "timestamp_ns": 1,
            "buyer_is_maker": True,
        }
    )
    assert asyncio.run(_feed(valid_trade))[1] == ("trades", 1, 0)
    assert asyncio.run(_feed(b"\xff"))[1] == ("trades", 0, 1)


# --- T+ OMS and tastytrade --------------------------------------------------------

ORDER_VARIANTS = [
    "Created",
    "Replaced",
    "Amended",
    "Removed",
    "Canceled",
    "Triggered",
    "CreateFailed",
    "created",
    "type",
]
order_like = st.builds(
    lambda variant, body: {variant: body} if variant != "type" else {**body, "type": "removed"},
    st.sampled_from(ORDER_VARIANTS),
    st.dictionaries(
        st.sampled_from(
            [
                "order_id",
                "asset_id",
                "user_id",
                "timestamp_ns",
                "reason",
                "user_order",
                "book_price_decimals",
                "quantity",
                "limit_price",
                "filled_quantity",
                "side",
                "details",
                "signature",
            ]
        ),
        json_values,
        max_size=8,
    ),
)
tastytrade_like = st.builds(
    lambda kind, data, extra: {"type": kind, "data": data, **extra},
    st.sampled_from(
        [
            "Order",
            "ComplexOrder",
            "AccountBalance",
            "CurrentPosition",
            "TradingStatus",
            "ExternalTransaction",
            "OrderChain",
            "QuoteAlert",
            "PublicWatchlists",
            "UnderlyingYearGainSummary",
            "Mystery",
        ]
    ),
    json_values
    | st.dictionaries(
        st.sampled_from(
            [
                "account-number",
                "id",
                "status",
                "legs",
                "price",
                "size",
                "cash-balance",
                "quantity",
                "symbol",
                "updated-at",
            ]
        ),
        json_values,
        max_size=8,
    ),
    st.dictionaries(
        st.sampled_from(["timestamp", "ws-sequence", "action", "status"]), json_values, max_size=3
    ),
)
account_frames = st.one_of(
    st.binary(max_size=200),
    json_values.map(json.dumps),
    order_like.map(json.dumps),
    tastytrade_like.map(json.dumps),
    st.lists(tastytrade_like, max_size=3).map(lambda items: json.dumps({"results": items})),
)
ACCOUNT = "07174645dda5c7fa66ac240ecad7ea4c6e6bf13662057e9b413c97cf73a67016"


@settings(max_examples=400, deadline=None)
@given(account_frames)
def test_tplus_account_parsers_raise_only_frame_errors(frame: bytes | str) -> None:
    try:
        message = json_numbers.loads(frame)
    except FrameError as exc:
        _check(exc)
        return
    for parse in (
        lambda m: orders.parse_order_event(m, ACCOUNT, 1, orders.OrderDecimals()),
        lambda m: orders.parse_open_orders(m, ACCOUNT, 1),
        lambda m: user_trades.parse_user_trade(m, ACCOUNT, 1),
        lambda m: user_trades.parse_user_trades_baseline(m, ACCOUNT, 1),
    ):
        try:
            parse(message)
        except FrameError as exc:
            _check(exc)


@settings(max_examples=400, deadline=None)
@given(account_frames)
def test_the_tastytrade_streamer_turns_every_frame_into_records_or_reasons(
    frame: bytes | str,
) -> None:
    streamer = AccountStreamer(StreamerConfig(accounts=("5WT00001",)))
    streamer.open(0.0, "token")
    step = streamer.receive(frame, 1, 0.5)
    for rejected in step.rejected:
        _check(rejected.error)
    if not (step.records or step.rejected or step.errors or step.replace):
        # Nothing came of it: only a protocol reply may be absorbed silently.
        message = json_numbers.loads(frame)
        assert isinstance(message, dict)
        assert "action" in message or "status" in message or message == {"results": []}, message
    try:
        message = json_numbers.loads(frame)
    except FrameError:
        return
    if isinstance(message, dict) and isinstance(message.get("type"), str):
        try:
            notifications.parse_notification(message, 1)
        except FrameError as exc:
            _check(exc)
