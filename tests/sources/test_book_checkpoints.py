"""The checkpoint writer: when it asks for an acknowledgement, and what it writes after one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connector.ops.metrics import Metrics
from connector.pipeline import Publisher, settle
from connector.records import Record
from connector.settings import TplusMarketDataSettings
from connector.sources.book_checkpoints import BOOKS_STREAM, depth_publisher
from connector.venues.tplus.market_data import BookLevels, depth_record
from tests.avro_check import roundtrip
from tests.fakes import RecordingSink

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
S = 1_000_000_000  # one second in ns
WRITTEN_NS = 99


def _rig(metrics: Metrics, **md: Any) -> tuple[RecordingSink, Publisher]:
    sink = RecordingSink()
    settings = TplusMarketDataSettings(book_checkpoint_s=10, **md)
    return sink, depth_publisher(settings, Publisher(sink, metrics), "1", lambda: WRITTEN_NS)


def _snapshot(seq: int, at_s: float) -> Record:
    levels = BookLevels((("10.5", "1"), ("10.0", "2")), (("11.0", "3"),), seq)
    return depth_record("SNAPSHOT", "1", int(at_s * S), levels)


def _diff(seq: int, at_s: float, bid: tuple[str, str] = ("10.5", "4")) -> Record:
    return depth_record("DIFF", "1", int(at_s * S), BookLevels((bid,), (), seq))


async def _publish(publisher: Publisher, *records: Record) -> None:
    for record in records:
        await settle(publisher.submit(record))


def _books(sink: RecordingSink) -> list[dict[str, Any]]:
    return [r.value for r in sink.records if r.stream == BOOKS_STREAM]


async def test_a_resync_and_each_interval_ask_for_an_ack_and_nothing_is_written_before_it(
    metrics: Metrics,
) -> None:
    sink, publisher = _rig(metrics)
    snapshot, early, due, after = _snapshot(5, 0), _diff(6, 9.9), _diff(7, 10), _diff(8, 11)
    await _publish(publisher, snapshot, early, due, after)
    assert [r.on_ack is not None for r in (snapshot, early, due, after)] == [
        True,
        False,
        True,
        False,
    ]
    assert _books(sink) == []  # only an acknowledgement writes one
    assert due.on_ack is not None
    due.on_ack(2, 41)
    (checkpoint,) = _books(sink)
    assert checkpoint == {
        "asset_id": "1",
        "sequence_number": 7,
        "bids": [{"price": "10.5", "quantity": "4"}, {"price": "10.0", "quantity": "2"}],
        "asks": [{"price": "11.0", "quantity": "3"}],
        "depth_topic": "tplus.depth",
        "depth_partition": 2,
        "depth_offset": 41,
        "reason": "interval",
        "received_ns": 10 * S,
        "written_ns": WRITTEN_NS,
    }
    assert roundtrip(BOOKS_STREAM, checkpoint) == checkpoint
    assert sink.records[-1].key == "1"


async def test_the_book_is_taken_when_the_record_is_published_not_when_it_is_acked(
    metrics: Metrics,
) -> None:
    sink, publisher = _rig(metrics)
    snapshot = _snapshot(5, 0)
    await _publish(publisher, snapshot, _diff(6, 1, ("10.0", "0")))
    assert snapshot.on_ack is not None
    snapshot.on_ack(0, 3)
    (checkpoint,) = _books(sink)
    assert (checkpoint["sequence_number"], checkpoint["reason"]) == (5, "resync")
    assert [lv["price"] for lv in checkpoint["bids"]] == ["10.5", "10.0"]


async def test_no_checkpoint_while_the_book_is_invalid_and_a_stale_ack_writes_nothing(
    metrics: Metrics,
) -> None:
    sink, publisher = _rig(metrics)
    first = _snapshot(5, 0)
    gap = depth_record("GAP", "1", 20 * S, gap_reason="sequence_gap")
    late_diff = _diff(6, 21)
    second = _snapshot(30, 22)
    await _publish(publisher, first, gap, late_diff, second)
    assert gap.on_ack is None and late_diff.on_ack is None
    assert first.on_ack is not None and second.on_ack is not None
    second.on_ack(1, 9)
    first.on_ack(1, 2)  # produced again after a failure: acknowledged after a later one
    assert [c["sequence_number"] for c in _books(sink)] == [30]


async def test_checkpoints_off_leave_the_publisher_as_it_is(metrics: Metrics) -> None:
    sink = RecordingSink()
    publisher = Publisher(sink, metrics)
    off = TplusMarketDataSettings(book_checkpoint_s=0)
    assert depth_publisher(off, publisher, "1", lambda: 0) is publisher
    assert "tplus.books" not in off.topic_map()
    assert TplusMarketDataSettings().topic_map()["tplus.books"] == "tplus.books"


async def test_the_guides_example_checkpoint_is_what_the_writer_makes_of_the_example_snapshot(
    metrics: Metrics,
) -> None:
    snapshot = json.loads((EXAMPLES / "tplus.depth.json").read_text(encoding="utf-8"))[0]
    example = json.loads((EXAMPLES / "tplus.books.json").read_text(encoding="utf-8"))
    sink = RecordingSink()
    settings = TplusMarketDataSettings()
    publisher = depth_publisher(
        settings, Publisher(sink, metrics), "1", lambda: int(example["written_ns"])
    )
    record = Record("tplus.depth", "1", snapshot, snapshot["received_ns"])
    await _publish(publisher, record)
    assert record.on_ack is not None
    record.on_ack(example["depth_partition"], example["depth_offset"])
    assert _books(sink) == [example]
