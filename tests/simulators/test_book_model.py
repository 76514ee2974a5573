"""The pure market model: determinism, book invariants and byte-exact rendering."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.simulators.book_model import (
    KLINE_BUCKET_NS,
    TICK,
    Book,
    DepthDiff,
    MarketModel,
    Snapshot,
    book_from_levels,
    parse_depth,
    parse_snapshot,
    render_depth,
    render_klines,
    render_snapshot,
    render_trade,
)
from tests.golden import frames, text

T0 = 1_761_283_013_888_453_220


def _run(model: MarketModel, steps: int) -> list[str]:
    out: list[str] = []
    for i in range(steps):
        for asset in model.assets:
            out.append(render_depth(model.step_depth(asset)))
            out.append(render_klines(model.step_kline(asset, T0 + i * 10_000_000_000)))
        out.append(render_trade(model.step_trade(T0 + i)))
    return out


def _shape(value: Any) -> Any:
    """Keys and JSON types, ignoring values, so frames can be compared with the examples."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value[:1]]
    return type(value).__name__


def test_same_seed_same_frames_and_different_seed_different_frames() -> None:
    first = _run(MarketModel(["1", "2", "7"], seed=42), 50)
    assert first == _run(MarketModel(["1", "2", "7"], seed=42), 50)
    assert first != _run(MarketModel(["1", "2", "7"], seed=43), 50)


def test_known_assets_start_near_their_reference_prices() -> None:
    model = MarketModel(["1", "2"], seed=3)
    assert model.book("1").best_bid() == Decimal("3862.4")
    assert model.book("2").best_bid() == Decimal("67012.5")


def test_sequence_number_advances_by_exactly_one_per_diff() -> None:
    model = MarketModel(["1", "2"], seed=5)
    start = {asset: model.snapshot(asset).sequence_number for asset in model.assets}
    for n in range(1, 301):
        for asset in model.assets:
            assert model.step_depth(asset).sequence_number == start[asset] + n
    assert [d.sequence_number for d in model.diffs["1"]] == list(
        range(start["1"] + 1, start["1"] + 301)
    )


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), levels=st.integers(1, 12))
def test_books_never_cross_and_diffs_are_well_formed(seed: int, levels: int) -> None:
    model = MarketModel(["1", "9"], seed=seed, levels=levels)
    for _ in range(150):
        for asset in model.assets:
            diff = model.step_depth(asset)
            book = model.book(asset)
            best_bid, best_ask = book.best_bid(), book.best_ask()
            assert best_bid is not None and best_ask is not None
            assert best_bid < best_ask
            assert diff.bids or diff.asks
            for side in (diff.bids, diff.asks):
                prices = [price for price, _ in side]
                assert len(prices) == len(set(prices)), "a price changes once per diff"
                for price, quantity in side:
                    assert price % TICK == 0 and price > 0
                    assert quantity >= 0 and quantity.as_tuple().exponent in (-1, -2, -3, -4)


def test_initial_snapshot_plus_every_diff_equals_the_final_book() -> None:
    model = MarketModel(["1", "2", "3"], seed=11)
    rebuilt = {asset: Book.from_snapshot(model.snapshot(asset)) for asset in model.assets}
    for _ in range(500):
        for asset in model.assets:
            rebuilt[asset].apply(model.step_depth(asset))
    for asset in model.assets:
        assert rebuilt[asset] == model.book(asset)
        assert rebuilt[asset].snapshot() == model.snapshot(asset)


def test_every_diff_changes_the_book() -> None:
    model = MarketModel(["1"], seed=2)
    for _ in range(300):
        before = model.book("1")
        diff = model.step_depth("1")
        after = model.book("1")
        assert (before.bids, before.asks) != (after.bids, after.asks)
        before.apply(diff)
        assert before == after


def test_rendered_depth_decodes_to_exactly_the_model_decimals() -> None:
    model = MarketModel(["1", "2"], seed=9)
    for _ in range(200):
        for asset in model.assets:
            diff = model.step_depth(asset)
            decoded = json.loads(render_depth(diff), parse_float=Decimal)
            for key, levels in (("bids", diff.bids), ("asks", diff.asks)):
                assert [tuple(level) for level in decoded[key]] == list(levels)
                # same text, not just the same value: no float noise, no lost digits
                assert [[str(v) for v in level] for level in decoded[key]] == [
                    [str(p), str(q)] for p, q in levels
                ]
            assert decoded["sequence_number"] == diff.sequence_number
            assert parse_depth(render_depth(diff)) == diff
    snapshot = model.snapshot("2")
    assert parse_snapshot(render_snapshot(snapshot)) == snapshot


def test_the_example_frames_round_trip_byte_for_byte() -> None:
    snapshot_text = text("tplus", "snapshot.json").strip()
    assert render_snapshot(parse_snapshot(snapshot_text)) == snapshot_text
    for line in frames("tplus", "depth.jsonl"):
        assert render_depth(parse_depth(line)) == line


def test_example_diffs_continue_the_example_snapshot_with_absolute_quantities() -> None:
    book = Book.from_snapshot(parse_snapshot(text("tplus", "snapshot.json")))
    for line in frames("tplus", "depth.jsonl"):
        book.apply(parse_depth(line))
    expected = book_from_levels(
        bids=[["3862.4", "1.75"], [Decimal("3861.8"), Decimal("3.0")]],
        asks=[["3862.9", "0.4"], ["3863.3", "1.2"], ["3863.5", "2.0"], ["3864.2", "5.5"]],
        sequence_number=1044,
    )
    assert book == expected


def test_rendered_frames_have_the_shape_of_the_examples() -> None:
    model = MarketModel(["1"], seed=4)
    diff = json.loads(render_depth(model.step_depth("1")))
    example_diff = json.loads(frames("tplus", "depth.jsonl")[0])
    assert list(diff) == list(example_diff)
    assert _shape(diff) == _shape(example_diff)

    snapshot = json.loads(render_snapshot(model.snapshot("1")))
    example_snapshot = json.loads(text("tplus", "snapshot.json"))
    assert list(snapshot) == list(example_snapshot)
    assert _shape(snapshot) == _shape(example_snapshot)
    assert [p for p, _ in snapshot["bids"]] == sorted(
        (p for p, _ in snapshot["bids"]), reverse=True
    )
    assert [p for p, _ in snapshot["asks"]] == sorted(p for p, _ in snapshot["asks"])

    trade = json.loads(render_trade(model.step_trade(T0)))
    example_trade = json.loads(frames("tplus", "trades.jsonl")[0])
    assert list(trade) == list(example_trade)
    assert _shape(trade) == _shape(example_trade)

    bars = json.loads(render_klines(model.step_kline("1", T0)))
    example_bars = json.loads(frames("tplus", "klines.jsonl")[0])
    assert _shape(bars) == _shape(example_bars)
    assert list(bars[0]) == list(example_bars[0])


def test_trades_have_increasing_ids_and_are_recorded_by_id() -> None:
    model = MarketModel(["1", "2"], seed=6)
    trades = [model.step_trade(T0 + i) for i in range(50)]
    ids = [trade["trade_id"] for trade in trades]
    assert ids == list(range(ids[0], ids[0] + 50))
    assert model.trades == {trade["trade_id"]: trade for trade in trades}
    for trade in trades:
        book = model.book(trade["asset_id"])
        touch = book.best_bid() if trade["buyer_is_maker"] else book.best_ask()
        assert Decimal(trade["price"]) == touch
        assert trade["status"] == "Confirmed" and len(trade["order_id"]) == 24


def test_kline_rollover_sends_the_final_previous_bar_then_the_new_bar() -> None:
    model = MarketModel(["1"], seed=8)
    bucket = T0 - T0 % KLINE_BUCKET_NS
    first = model.step_kline("1", bucket + 1)
    assert len(first) == 1 and first[0]["open_timestamp_ns"] == bucket
    assert first[0]["close_timestamp_ns"] == bucket + KLINE_BUCKET_NS - 1
    for i in range(20):
        model.step_depth("1")
        update = model.step_kline("1", bucket + 2 + i)
    assert len(update) == 1 and Decimal(update[0]["volume"]) > 0
    assert Decimal(update[0]["low"]) <= Decimal(update[0]["close"]) <= Decimal(update[0]["high"])

    rolled = model.step_kline("1", bucket + KLINE_BUCKET_NS + 5)
    assert len(rolled) == 2
    previous, current = rolled
    assert previous == update[0]
    assert current["open_timestamp_ns"] == bucket + KLINE_BUCKET_NS
    assert current["open"] == current["close"] == current["low"] == current["high"]
    assert current["open"] == previous["close"]
    assert current["volume"] == "0"
    assert list(model.klines["1"]) == [first, *[model.klines["1"][i] for i in range(1, 21)], rolled]


def test_book_apply_sets_absolute_quantities_and_zero_deletes() -> None:
    book = book_from_levels([["10.0", "1"]], [["10.5", "2"]], 1)
    book.apply(DepthDiff(bids=((Decimal("10.0"), Decimal("0.0")),), asks=(), sequence_number=2))
    book.apply(DepthDiff(bids=((Decimal("9.9"), Decimal("3")),), asks=(), sequence_number=3))
    book.apply(DepthDiff(bids=(), asks=((Decimal("10.50"), Decimal("0.25")),), sequence_number=4))
    assert book.snapshot() == Snapshot(
        bids=((Decimal("9.9"), Decimal("3")),),
        asks=((Decimal("10.5"), Decimal("0.25")),),
        sequence_number=4,
    )
    assert book != book_from_levels([["9.9", "3"]], [["10.5", "0.25"]], 5)


def test_unknown_assets_and_bad_levels_are_refused() -> None:
    model = MarketModel(["1"], seed=1)
    with pytest.raises(KeyError):
        model.step_depth("404")
    with pytest.raises(KeyError):
        model.snapshot("404")
    with pytest.raises(TypeError):
        parse_depth('{"bids":[[true,1.0]],"asks":[],"sequence_number":1}')
    with pytest.raises(ValueError):
        parse_depth('{"bids":[[1.0,1.0,1.0]],"asks":[],"sequence_number":1}')
    with pytest.raises(ValueError):
        MarketModel(["1", "1"], seed=1)


def test_history_is_bounded() -> None:
    model = MarketModel(["1"], seed=1, max_history=10)
    last = [model.step_depth("1") for _ in range(25)][-10:]
    trades = [model.step_trade(T0) for _ in range(25)][-10:]
    assert list(model.diffs["1"]) == last
    assert list(model.trades.values()) == trades
