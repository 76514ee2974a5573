"""Golden T+ market-data frames become valid, lossless Avro records."""

from __future__ import annotations

import json

import pytest

from connector.venues import json_numbers
from connector.venues.errors import FrameError, Reason
from connector.venues.tplus import market_data as md
from connector.venues.tplus.asset_ids import canonical_asset
from tests.avro_check import roundtrip
from tests.golden import frames, text

NOW = 1_761_283_014_000_000_000


def test_every_depth_frame_is_a_valid_lossless_diff_record() -> None:
    lines = frames("tplus", "depth.jsonl")
    assert len(lines) == 3
    for line in lines:
        levels = md.parse_book_levels(json_numbers.loads(line))
        record = md.depth_record("DIFF", "1", NOW, levels)
        decoded = roundtrip(md.DEPTH_STREAM, record.value)
        assert decoded == record.value
        assert record.key == "1"
    first = md.parse_book_levels(json_numbers.loads(lines[0]))
    # 3862.4 is kept as the venue's text, not as float noise.
    assert first.bids == (("3862.4", "1.75"),)
    assert first.asks == (("3863.0", "0.5"), ("3863.3", "1.2"))
    assert first.sequence_number == 1042


def test_snapshot_is_a_valid_record_and_continues_into_the_diffs() -> None:
    snap = md.parse_book_levels(json_numbers.loads(text("tplus", "snapshot.json")), snapshot=True)
    assert snap.sequence_number == 1041
    assert snap.bids[0] == ("3862.4", "1.25")
    record = md.depth_record("SNAPSHOT", "1", NOW, snap)
    assert roundtrip(md.DEPTH_STREAM, record.value)["kind"] == "SNAPSHOT"


def test_every_trade_frame_is_a_valid_record_keyed_by_asset() -> None:
    records = [
        md.parse_trade(json_numbers.loads(line), NOW) for line in frames("tplus", "trades.jsonl")
    ]
    assert [r.key for r in records] == [
        "1",
        "82af49447d8a07e3bd95bd0d56f35241523fbab1000000000000000000000000@00000000000000a4b1",
        "2",
    ]
    for record in records:
        assert roundtrip(md.TRADES_STREAM, record.value) == record.value
    assert records[0].value["price"] == "3862.36934070"
    assert records[0].event_ns == 1761283013888453220
    # The third frame omits order_id and status: the SDK defaults apply.
    assert records[2].value["order_id"] == ""
    assert records[2].value["status"] == "Confirmed"


def test_every_kline_frame_becomes_one_record_per_bar() -> None:
    lines = frames("tplus", "klines.jsonl")
    per_frame = [md.parse_klines(json_numbers.loads(line), "1", "1m", NOW) for line in lines]
    assert [len(r) for r in per_frame] == [1, 2]
    for records in per_frame:
        for record in records:
            assert roundtrip(md.KLINES_STREAM, record.value) == record.value
    assert per_frame[1][1].value["volume"] == "0"
    assert per_frame[0][0].value["interval"] == "1m"


def test_control_frames_are_recognised() -> None:
    assert md.is_control(json_numbers.loads('{"type":"ping"}'))
    assert md.is_control({"type": "subscriptions", "channels": []})
    assert not md.is_control({"type": "trade"})
    assert not md.is_control([{"type": "ping"}])


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ('{"bids":[],"asks":[]}', Reason.MISSING_FIELD),
        ('{"bids":"x","asks":[],"sequence_number":1}', Reason.WRONG_SHAPE),
        ('{"bids":[[1]],"asks":[],"sequence_number":1}', Reason.WRONG_SHAPE),
        ('{"bids":[["abc",1]],"asks":[],"sequence_number":1}', Reason.BAD_FIELD),
        ('{"bids":[[1,-2]],"asks":[],"sequence_number":1}', Reason.BAD_FIELD),
        ('{"bids":[],"asks":[],"sequence_number":1.5}', Reason.BAD_FIELD),
        ('{"bids":[],"asks":[],"sequence_number":-1}', Reason.BAD_FIELD),
        ('{"bids":[],"asks":[],"sequence_number":99999999999999999999}', Reason.BAD_FIELD),
        ("[1,2]", Reason.WRONG_SHAPE),
    ],
)
def test_bad_depth_frames_say_why(frame: str, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        md.parse_book_levels(json_numbers.loads(frame))
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"buyer_is_maker": "false"}, Reason.BAD_FIELD),
        ({"status": "confirmed"}, Reason.BAD_FIELD),
        ({"asset_id": "ETH"}, Reason.BAD_FIELD),
        ({"price": None}, Reason.BAD_FIELD),
        ({"timestamp_ns": "soon"}, Reason.BAD_FIELD),
    ],
)
def test_bad_trades_say_why(change: dict[str, object], reason: str) -> None:
    trade = json.loads(frames("tplus", "trades.jsonl")[0])
    trade.update(change)
    with pytest.raises(FrameError) as info:
        md.parse_trade(trade, NOW)
    assert info.value.reason == reason


def test_trade_without_buyer_is_maker_is_rejected_like_the_sdk() -> None:
    trade = json.loads(frames("tplus", "trades.jsonl")[0])
    del trade["buyer_is_maker"]
    with pytest.raises(FrameError) as info:
        md.parse_trade(trade, NOW)
    assert info.value.reason == Reason.MISSING_FIELD


def test_a_bare_kline_object_is_rejected() -> None:
    bar = json.loads(frames("tplus", "klines.jsonl")[0])[0]
    with pytest.raises(FrameError) as info:
        md.parse_klines(bar, "1", None, NOW)
    assert info.value.reason == Reason.WRONG_SHAPE


@pytest.mark.parametrize("asset", ["²", "1²", "\u00b9", "\u0661\u0662"])
def test_an_asset_id_of_non_ascii_digits_is_a_bad_field_not_a_crash(asset: str) -> None:
    # str.isdigit() accepts all of these and int() refuses the first three; the canonical
    # form of an index is ASCII digits only, so the last is refused too.
    with pytest.raises(FrameError) as caught:
        canonical_asset(asset)
    assert caught.value.reason == Reason.BAD_FIELD
    trade = {
        "asset_id": asset,
        "trade_id": 1,
        "price": "1",
        "quantity": "1",
        "timestamp_ns": 1,
        "buyer_is_maker": True,
    }
    with pytest.raises(FrameError):
        md.parse_trade(trade, NOW)
