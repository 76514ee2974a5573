"""The benchmark's traffic is what the venues send, and the meter counts what it should."""

from __future__ import annotations

import asyncio
import struct

import pytest

from connector.bench.frames import (
    ACCOUNT,
    chunks,
    depth_feed,
    due,
    order_frames,
    sequence_of,
    ws_text_frame,
)
from connector.bench.meter import Meter
from connector.venues import json_numbers
from connector.venues.tastytrade.notifications import ORDERS, parse_notification
from connector.venues.tplus import market_data as md


def test_depth_diffs_follow_their_snapshot_without_a_gap() -> None:
    feed = depth_feed("1", 500, pool=50)
    snapshot = md.parse_book_levels(json_numbers.loads(feed.snapshot), snapshot=True)
    sequences = [sequence_of(f) for f in feed.frames]
    assert sequences == list(range(snapshot.sequence_number + 1, snapshot.sequence_number + 501))
    for frame in feed.frames[:60]:
        diff = md.parse_book_levels(json_numbers.loads(frame))
        assert 1 <= len(diff.bids) + len(diff.asks) <= 3
        for price, _quantity in diff.bids + diff.asks:
            assert f"[{price}," in frame.decode()  # prices travel as exact JSON numbers


def test_the_same_seed_gives_the_same_frames() -> None:
    assert depth_feed("2", 20, seed=3).frames == depth_feed("2", 20, seed=3).frames
    assert depth_feed("2", 20, seed=3).frames != depth_feed("2", 20, seed=4).frames


def test_order_frames_are_valid_notifications_with_fresh_ids() -> None:
    frames = order_frames(6)
    records = [parse_notification(json_numbers.loads(f), 1) for f in frames]
    assert {r.stream for r in records} == {ORDERS}
    assert {r.key for r in records} == {ACCOUNT}
    assert [r.value["status"] for r in records] == ["Routed", "Filled"] * 3
    assert len({r.value["id"] for r in records}) == 3
    filled = records[1].value
    assert [f["fill_price"] for f in filled["legs"][0]["fills"]] == ["227.41", "227.42"]


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (5, b"\x81\x05"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e" + struct.pack("!H", 126)),
        (70_000, b"\x81\x7f" + struct.pack("!Q", 70_000)),
    ],
)
def test_server_frames_are_unmasked_final_text_frames(size: int, header: bytes) -> None:
    payload = b"x" * size
    assert ws_text_frame(payload) == header + payload


def test_chunks_join_consecutive_frames() -> None:
    assert list(chunks([b"a", b"b", b"c"], 2)) == [b"ab", b"c"]
    with pytest.raises(ValueError):
        list(chunks([b"a"], 0))


def test_a_paced_sender_is_due_its_rate_times_elapsed() -> None:
    assert due(5_000, 0.0, 100) == 1
    assert due(5_000, 0.01, 100) == 51
    assert due(5_000, 10.0, 100) == 100
    with pytest.raises(ValueError):
        due(0, 1.0, 10)


async def test_the_meter_skips_the_warm_up_and_closes_at_the_last_ack() -> None:
    meter = Meter(5, skip_readings=2, skip_acks=2)
    meter.bind(asyncio.get_running_loop())
    readings = [meter.clock_ns() for _ in range(5)]
    for i, received in enumerate(readings):
        meter.ack(received, received + (i + 1) * 1_000_000)
    await asyncio.wait_for(meter.done.wait(), 5)
    result = meter.result(3)
    assert result.events == 3
    assert result.start_ns == readings[2]
    assert result.end_ns == readings[4] + 5_000_000
    assert result.latency is not None
    assert (result.latency.p50_ms, result.latency.p999_ms) == (4.0, 5.0)
    assert result.peak_rss_kb > 0


def test_an_unfinished_run_has_no_result() -> None:
    with pytest.raises(RuntimeError):
        Meter(3).result(3)
