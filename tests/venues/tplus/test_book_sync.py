"""The order-book sequencing rules, exercised without a socket."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.records import Record
from connector.venues.tplus.book_sync import BookSync, ResyncReason, SyncState
from connector.venues.tplus.market_data import BookLevels
from tests.depth_book import apply_levels

NS = 1


def diff(
    seq: int, bids: tuple[tuple[str, str], ...] = (), asks: tuple[tuple[str, str], ...] = ()
) -> BookLevels:
    return BookLevels(bids, asks, seq)


def kinds(records: list[Record]) -> list[tuple[str, int | None]]:
    return [(r.value["kind"], r.value["sequence_number"]) for r in records]


def test_connect_requests_a_snapshot_and_buffers_diffs() -> None:
    sync = BookSync("1")
    assert sync.on_connected().request_snapshot == ResyncReason.CONNECT
    assert sync.on_diff(diff(5), NS).records == []
    assert sync.on_diff(diff(6), NS).records == []
    out = sync.on_snapshot(diff(5), NS)
    assert kinds(out.records) == [("SNAPSHOT", 5), ("DIFF", 6)]
    assert sync.state is SyncState.LIVE and sync.last_sequence == 6


def test_snapshot_older_than_the_buffer_is_fetched_again() -> None:
    sync = BookSync("1")
    sync.on_connected()
    sync.on_diff(diff(10), NS)
    out = sync.on_snapshot(diff(7), NS)
    assert out.records == [] and out.request_snapshot == ResyncReason.STALE_SNAPSHOT
    out = sync.on_snapshot(diff(9), NS)
    assert kinds(out.records) == [("SNAPSHOT", 9), ("DIFF", 10)]


def test_snapshot_without_sequence_is_refused() -> None:
    sync = BookSync("1")
    sync.on_connected()
    out = sync.on_snapshot(diff(0), NS)
    assert out.records == [] and out.request_snapshot == ResyncReason.UNKNOWN_SEQUENCE


def test_gap_is_announced_and_resynced() -> None:
    sync = BookSync("1")
    sync.on_connected()
    sync.on_snapshot(diff(1), NS)
    assert kinds(sync.on_diff(diff(2), NS).records) == [("DIFF", 2)]
    out = sync.on_diff(diff(5), NS)
    assert out.gaps == 1 and out.request_snapshot == ResyncReason.GAP
    (gap,) = out.records
    assert gap.value["kind"] == "GAP"
    assert (gap.value["gap_expected"], gap.value["gap_received"]) == (3, 5)
    assert gap.value["gap_reason"] == "sequence_gap"
    sync.on_diff(diff(6), NS)
    out = sync.on_snapshot(diff(5), NS)
    assert kinds(out.records) == [("SNAPSHOT", 5), ("DIFF", 6)]


def test_stale_and_duplicate_diffs_are_dropped_and_counted() -> None:
    sync = BookSync("1")
    sync.on_connected()
    sync.on_snapshot(diff(3), NS)
    out = sync.on_diff(diff(3), NS)
    assert out.records == [] and out.stale_dropped == 1


def test_disconnect_announces_a_gap_only_for_a_live_book() -> None:
    sync = BookSync("1")
    assert sync.on_disconnected(NS).records == []
    sync.on_connected()
    sync.on_snapshot(diff(3), NS)
    (gap,) = sync.on_disconnected(NS).records
    assert gap.value["gap_reason"] == "disconnected" and gap.value["gap_expected"] == 4
    assert sync.on_snapshot(diff(9), NS).records == []  # a late response is ignored


def test_a_lost_diff_is_announced_by_a_live_book_and_resynced() -> None:
    sync = BookSync("1")
    sync.on_connected()
    assert sync.on_lost(NS, "dead_lettered").records == []  # awaiting: sequence numbers tell
    sync.on_snapshot(diff(3), NS)
    sync.on_diff(diff(4), NS)
    out = sync.on_lost(NS, "dead_lettered")
    (gap,) = out.records
    assert (gap.value["kind"], gap.value["gap_reason"], gap.value["gap_expected"]) == (
        "GAP",
        "dead_lettered",
        5,
    )
    assert out.request_snapshot == ResyncReason.LOST and sync.state is SyncState.AWAITING_SNAPSHOT
    assert sync.on_lost(NS, "dead_lettered").records == []  # announced once
    sync.on_diff(diff(6), NS)
    assert kinds(sync.on_snapshot(diff(5), NS).records) == [("SNAPSHOT", 5), ("DIFF", 6)]


def test_buffer_overflow_drops_oldest_and_a_later_snapshot_still_aligns() -> None:
    sync = BookSync("1", max_buffered=3)
    sync.on_connected()
    dropped = sum(sync.on_diff(diff(s), NS).buffer_dropped for s in range(1, 7))
    assert dropped == 3 and sync.buffered == 3
    out = sync.on_snapshot(diff(4), NS)
    assert kinds(out.records) == [("SNAPSHOT", 4), ("DIFF", 5), ("DIFF", 6)]


def test_gap_inside_the_buffer_keeps_the_rest_for_the_next_snapshot() -> None:
    sync = BookSync("1")
    sync.on_connected()
    for s in (2, 3, 6, 7):
        sync.on_diff(diff(s), NS)
    out = sync.on_snapshot(diff(1), NS)
    assert kinds(out.records) == [("SNAPSHOT", 1), ("DIFF", 2), ("DIFF", 3), ("GAP", None)]
    assert out.request_snapshot == ResyncReason.GAP
    out = sync.on_snapshot(diff(6), NS)
    assert kinds(out.records) == [("SNAPSHOT", 6), ("DIFF", 7)]


def test_step_size_is_configurable() -> None:
    sync = BookSync("1", step=10)
    sync.on_connected()
    sync.on_snapshot(diff(100), NS)
    assert kinds(sync.on_diff(diff(110), NS).records) == [("DIFF", 110)]
    assert sync.on_diff(diff(115), NS).stale_dropped == 1
    assert sync.on_diff(diff(130), NS).gaps == 1


def _apply(book: dict[str, dict[Decimal, Decimal]], record: Record) -> bool:
    """A consumer's rebuild: returns whether the book is valid afterwards."""
    value = record.value
    if value["kind"] == "GAP":
        return False
    if value["kind"] == "SNAPSHOT":
        book["bids"].clear()
        book["asks"].clear()
    apply_levels(book, value)
    return True


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    drops=st.sets(st.integers(1, 59), max_size=6),
    snapshot_delays=st.lists(st.integers(0, 5), min_size=1, max_size=10),
)
def test_rebuilt_book_always_equals_the_venue_book(
    seed: int, drops: set[int], snapshot_delays: list[int]
) -> None:
    """Whatever diffs go missing, a consumer applying the records ends with the venue's book.

    The last diff always arrives: a diff lost with nothing after it is
    invisible to any client until the next one.
    """
    rng = random.Random(seed)
    venue: dict[str, dict[Decimal, Decimal]] = {"bids": {}, "asks": {}}
    history: list[BookLevels] = []
    for seq in range(1, 61):
        side = rng.choice(("bids", "asks"))
        price = Decimal(rng.randint(1, 8))
        qty = Decimal(rng.choice([0, 1, 2, 3]))
        if qty == 0:
            venue[side].pop(price, None)
        else:
            venue[side][price] = qty
        change = ((str(price), str(qty)),)
        history.append(
            BookLevels(change if side == "bids" else (), change if side == "asks" else (), seq)
        )

    snapshots = {}
    state: dict[str, dict[Decimal, Decimal]] = {"bids": {}, "asks": {}}
    for d in history:
        for side in ("bids", "asks"):
            for p, q in getattr(d, side):
                if Decimal(q) == 0:
                    state[side].pop(Decimal(p), None)
                else:
                    state[side][Decimal(p)] = Decimal(q)
        snapshots[d.sequence_number] = BookLevels(
            tuple((str(p), str(q)) for p, q in state["bids"].items()),
            tuple((str(p), str(q)) for p, q in state["asks"].items()),
            d.sequence_number,
        )

    sync = BookSync("1")
    consumer: dict[str, dict[Decimal, Decimal]] = {"bids": {}, "asks": {}}
    valid = False
    pending_snapshot: int | None = None
    delays = iter(snapshot_delays * 100)

    def feed(records: list[Record]) -> None:
        nonlocal valid
        for r in records:
            valid = (
                _apply(consumer, r)
                if r.value["kind"] != "DIFF"
                else (valid and _apply(consumer, r))
            )

    out = sync.on_connected()
    pending_snapshot = next(delays)
    for d in history:
        if d.sequence_number not in drops:
            out = sync.on_diff(d, NS)
            feed(out.records)
            if out.request_snapshot is not None and pending_snapshot is None:
                pending_snapshot = next(delays)
        if pending_snapshot is not None:
            if pending_snapshot == 0:
                pending_snapshot = None
                out = sync.on_snapshot(snapshots[d.sequence_number], NS)
                feed(out.records)
                if out.request_snapshot is not None:
                    pending_snapshot = next(delays)
            else:
                pending_snapshot -= 1
    # Finally let the venue answer one more snapshot, as it eventually would.
    if sync.state is not SyncState.LIVE:
        feed(sync.on_snapshot(snapshots[60], NS).records)
    assert valid
    assert consumer == venue


def test_overflow_announces_one_gap_then_resyncs_when_room_returns() -> None:
    sync = BookSync("1")
    sync.on_connected()
    sync.on_snapshot(diff(10), NS)
    first = sync.on_overflow(NS)
    assert first.shed == 1
    (gap,) = first.records
    assert gap.value["gap_reason"] == "backpressure" and gap.value["gap_expected"] == 11
    second = sync.on_overflow(NS)
    assert second.shed == 1 and second.records == []
    out = sync.on_diff(diff(14), NS)
    assert out.request_snapshot == ResyncReason.BACKPRESSURE and out.records == []
    assert kinds(sync.on_snapshot(diff(13), NS).records) == [("SNAPSHOT", 13), ("DIFF", 14)]


def test_overflow_before_the_book_is_live_announces_nothing() -> None:
    sync = BookSync("1")
    sync.on_connected()
    assert sync.on_overflow(NS).records == []
    assert sync.on_diff(diff(3), NS).request_snapshot == ResyncReason.BACKPRESSURE


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("diff"), st.integers(min_value=95, max_value=115)),
            st.tuples(st.just("snapshot"), st.integers(min_value=95, max_value=115)),
            st.tuples(st.sampled_from(["connect", "disconnect", "overflow"]), st.just(0)),
        ),
        max_size=60,
    )
)
def test_the_live_fast_path_publishes_exactly_what_on_diff_would(
    events: list[tuple[str, int]],
) -> None:
    """Two machines fed the same inputs, one through step_live first, stay identical."""
    plain, fast = BookSync("1", max_buffered=5), BookSync("1", max_buffered=5)
    for ns, (event, seq) in enumerate(events):
        if event == "diff":
            expected = plain.on_diff(diff(seq), ns).records
            record = fast.step_live(diff(seq), ns)
            got = [record] if record is not None else fast.on_diff(diff(seq), ns).records
            assert got == expected
        elif event == "snapshot":
            assert fast.on_snapshot(diff(seq), ns) == plain.on_snapshot(diff(seq), ns)
        elif event == "connect":
            assert fast.on_connected() == plain.on_connected()
        elif event == "disconnect":
            assert fast.on_disconnected(ns) == plain.on_disconnected(ns)
        else:
            assert fast.on_overflow(ns) == plain.on_overflow(ns)
        assert (fast.state, fast.last_sequence, fast.buffered) == (
            plain.state,
            plain.last_sequence,
            plain.buffered,
        )


def test_the_live_fast_path_leaves_every_other_case_to_on_diff() -> None:
    sync = BookSync("1")
    assert sync.step_live(diff(1), 1) is None  # not connected
    sync.on_connected()
    assert sync.step_live(diff(1), 1) is None  # awaiting the snapshot
    sync.on_snapshot(diff(10), 2)
    assert sync.step_live(diff(12), 3) is None  # a gap
    assert sync.step_live(diff(10), 3) is None  # stale
    assert (sync.state, sync.last_sequence) == (SyncState.LIVE, 10)
    record = sync.step_live(diff(11), 4)
    assert record is not None and record.value["sequence_number"] == 11
    assert sync.last_sequence == 11


def test_after_a_restart_the_first_snapshot_follows_a_restart_gap() -> None:
    sync = BookSync("1", restarted=True)
    sync.on_connected()
    gap, snapshot = sync.on_snapshot(diff(3), NS).records
    assert gap.value["kind"] == "GAP" and gap.value["gap_reason"] == "restart"
    assert snapshot.value["kind"] == "SNAPSHOT"
    sync.on_disconnected(NS)
    sync.on_connected()
    assert kinds(sync.on_snapshot(diff(9), NS).records) == [("SNAPSHOT", 9)]  # once per process
