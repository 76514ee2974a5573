"""The pure book logic readers and the checkpoint writer share: the guide's rules, one by one."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.readers.depth_book import Applied, BookState, DepthBook, is_zero, price_key
from connector.simulators.book_model import MarketModel, render_depth, render_snapshot
from connector.venues import json_numbers
from connector.venues.tplus import market_data as md

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "tplus.depth.json"


def _examples() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    snapshot, diff, gap = json.loads(EXAMPLES.read_text(encoding="utf-8"))
    return snapshot, diff, gap


Pairs = tuple[tuple[str, str], ...]


def _diff(sequence: int, bids: Pairs, asks: Pairs = ()) -> Any:
    return {
        "kind": "DIFF",
        "sequence_number": sequence,
        "bids": [{"price": p, "quantity": q} for p, q in bids],
        "asks": [{"price": p, "quantity": q} for p, q in asks],
    }


def test_a_snapshot_replaces_the_book_and_diffs_that_follow_set_absolute_quantities() -> None:
    snapshot, diff, _ = _examples()
    book = DepthBook("1")
    assert book.apply(diff) is Applied.SKIPPED and book.state is BookState.EMPTY
    assert book.apply(snapshot) is Applied.REPLACED and book.valid
    assert book.apply(diff) is Applied.UPDATED
    bids, asks = book.quantities()
    assert book.sequence == diff["sequence_number"]
    assert bids[Decimal("3862.4")] == Decimal("1.75")
    assert asks[Decimal("3863.3")] == Decimal("1.2")


def test_levels_come_out_best_first_with_the_venues_exact_text() -> None:
    book = DepthBook("1")
    book.load(
        [{"price": "9.5", "quantity": "1"}, {"price": "10.25", "quantity": "2.50"}],
        [{"price": "11", "quantity": "3"}, {"price": "10.75", "quantity": "4"}],
        7,
    )
    assert [lv["price"] for lv in book.bids()] == ["10.25", "9.5"]
    assert [lv["price"] for lv in book.asks()] == ["10.75", "11"]
    assert book.best_bid() == {"price": "10.25", "quantity": "2.50"}
    assert book.best_ask() == {"price": "10.75", "quantity": "4"}


def test_a_zero_quantity_removes_a_level_whatever_its_spelling() -> None:
    book = DepthBook("1")
    book.load([{"price": "10.50", "quantity": "1"}, {"price": "10", "quantity": "1"}], [], 1)
    assert book.apply(_diff(2, (("10.5", "0.000"),))) is Applied.UPDATED
    assert book.apply(_diff(3, (("10.0", "0"),))) is Applied.UPDATED
    assert book.bids() == []
    assert [is_zero(q) for q in ("0", "0.0", "00.000", "0.01", "10", "1.0")] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert [price_key(p) for p in ("3862.40", "3862.4", "100", "100.0")] == [
        "3862.4",
        "3862.4",
        "100",
        "100",
    ]


_DECIMAL_TEXT = st.from_regex(r"\A(0|[1-9][0-9]{0,4})(\.[0-9]{1,6})?\Z")


@given(price=_DECIMAL_TEXT, quantity=_DECIMAL_TEXT)
def test_the_book_keys_and_removes_levels_as_price_key_and_is_zero_say(
    price: str, quantity: str
) -> None:
    book = DepthBook("1")
    book.load([{"price": "1", "quantity": "1"}], [], 1)
    book.apply(_diff(2, ((price, quantity),)))
    bids, _ = book.quantities()
    assert is_zero(quantity) == (Decimal(quantity) == 0)
    if is_zero(quantity):
        assert Decimal(price) not in bids
    else:
        assert bids[Decimal(price)] == Decimal(quantity)
        assert len(bids) == 1 + (Decimal(price) != 1)
        longer = price + "0" if "." in price else price + ".00"
        assert price_key(longer) == price_key(price)  # one level, however it is spelt


def test_duplicates_are_skipped_and_a_jump_or_a_gap_invalidates_until_a_snapshot() -> None:
    snapshot, _, gap = _examples()
    book = DepthBook("1")
    book.apply(snapshot)
    seq = snapshot["sequence_number"]
    assert book.apply(_diff(seq + 1, (("1", "1"),))) is Applied.UPDATED
    assert book.apply(_diff(seq + 1, (("1", "9"),))) is Applied.DUPLICATE
    assert book.quantities()[0][Decimal(1)] == Decimal(1)
    assert book.apply(_diff(seq + 3, (("2", "1"),))) is Applied.INVALIDATED
    assert book.state is BookState.INVALID and book.invalid_reason == "out_of_sequence"
    assert book.apply(_diff(seq + 4, (("3", "1"),))) is Applied.SKIPPED
    assert book.apply(snapshot) is Applied.REPLACED and book.valid
    assert book.apply(gap) is Applied.INVALIDATED
    assert book.invalid_reason == gap["gap_reason"]
    assert book.sequence == seq  # where the book stood when it stopped being valid


def test_the_sequence_step_is_the_configured_one() -> None:
    book = DepthBook("1", sequence_step=2)
    book.load([], [], 10)
    assert book.apply(_diff(11, (("1", "1"),))) is Applied.INVALIDATED
    book.load([], [], 10)
    assert book.apply(_diff(12, (("1", "1"),))) is Applied.UPDATED


def _record(text: str, kind: str) -> dict[str, Any]:
    levels = md.parse_book_levels(json_numbers.loads(text), snapshot=kind == "SNAPSHOT")
    return md.depth_record(kind, "1", 0, levels).value


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(1, 300))
def test_the_book_equals_the_venues_after_any_run_of_its_diffs(seed: int, steps: int) -> None:
    """Through the venue's own text, the connector's parser and its record values."""
    model = MarketModel(["1"], seed)
    book = DepthBook("1")
    book.apply(_record(render_snapshot(model.snapshot("1")), "SNAPSHOT"))
    for _ in range(steps):
        assert book.apply(_record(render_depth(model.step_depth("1")), "DIFF")) is Applied.UPDATED
    venue = model.book("1")
    assert book.quantities() == (venue.bids, venue.asks)
    assert book.sequence == venue.sequence_number
    assert [Decimal(lv["price"]) for lv in book.bids()] == sorted(venue.bids, reverse=True)
