"""The T+ MDS simulator over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from connector.simulators.book_model import Book, DepthDiff, parse_depth, parse_snapshot
from connector.simulators.tplus_market import TplusMarketSimulator, depth_path, klines_path
from tests.golden import frames

TIMEOUT_S = 5.0


@pytest.fixture
async def sim() -> AsyncIterator[TplusMarketSimulator]:
    simulator = TplusMarketSimulator(
        ["1", "2"],
        seed=7,
        depth_interval_s=0.005,
        trade_interval_s=0.005,
        kline_interval_s=0.01,
    )
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


def _client(sim: TplusMarketSimulator, path: str) -> connect:
    return connect(sim.ws_url(path), proxy=None, open_timeout=TIMEOUT_S)


def _http(sim: TplusMarketSimulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=sim.base_url, trust_env=False, timeout=TIMEOUT_S)


async def _text(ws: ClientConnection) -> str:
    async with asyncio.timeout(TIMEOUT_S):
        message = await ws.recv()
    assert isinstance(message, str), "venue frames are text frames"
    return message


async def _diffs_until(
    ws: ClientConnection, last: int, received: list[DepthDiff] | None = None
) -> list[DepthDiff]:
    """``received`` extended with depth diffs from the socket up to sequence ``last``."""
    diffs = list(received or [])
    while not diffs or diffs[-1].sequence_number < last:
        diffs.append(parse_depth(await _text(ws)))
    return diffs


async def test_depth_frames_have_the_protocol_shape(sim: TplusMarketSimulator) -> None:
    example = json.loads(frames("tplus", "depth.jsonl")[0])
    async with _client(sim, depth_path("1")) as ws:
        message = json.loads(await _text(ws))
    assert list(message) == list(example)
    assert isinstance(message["sequence_number"], int)
    for level in message["bids"] + message["asks"]:
        assert len(level) == 2 and all(isinstance(v, float) for v in level)


async def test_trades_stream_carries_every_emitted_trade_in_order(
    sim: TplusMarketSimulator,
) -> None:
    example = json.loads(frames("tplus", "trades.jsonl")[0])
    async with _client(sim, "/trades") as ws:
        await sim.wait_connected("/trades")
        received = [json.loads(await _text(ws)) for _ in range(5)]
        sim.pause()
        last = sim.emitted.trades[-1]["trade_id"]
        while received[-1]["trade_id"] < last:
            received.append(json.loads(await _text(ws)))
    assert all(list(trade) == list(example) for trade in received)
    assert {trade["asset_id"] for trade in received} <= {"1", "2"}
    ids = [trade["trade_id"] for trade in received]
    assert ids == list(range(ids[0], last + 1))
    assert received == [sim.model.trades[trade_id] for trade_id in ids]


async def test_klines_stream_sends_arrays_of_timebars(sim: TplusMarketSimulator) -> None:
    example = json.loads(frames("tplus", "klines.jsonl")[0])[0]
    async with _client(sim, klines_path("2")) as ws:
        message = json.loads(await _text(ws))
    assert isinstance(message, list) and message
    for bar in message:
        assert list(bar) == list(example)
        assert all(isinstance(bar[key], str) for key in ("open", "close", "low", "high", "volume"))


async def test_kline_bucket_rollover_reaches_the_wire() -> None:
    now = [1_761_283_000_000_000_000]
    simulator = TplusMarketSimulator(["1"], kline_interval_s=0.005, clock_ns=lambda: now[0])
    async with simulator as sim, _client(sim, klines_path("1")) as ws:
        first = json.loads(await _text(ws))
        assert len(first) == 1
        now[0] += 60_000_000_000
        message = first
        while len(message) == 1:
            message = json.loads(await _text(ws))
    previous, current = message
    assert previous["open_timestamp_ns"] == first[0]["open_timestamp_ns"]
    assert current["open_timestamp_ns"] == previous["close_timestamp_ns"] + 1
    assert current["open"] == previous["close"] and current["volume"] == "0"


async def test_snapshot_is_json_and_matches_the_model(sim: TplusMarketSimulator) -> None:
    sim.pause()
    async with _http(sim) as http:
        response = await http.get("/marketdepth/1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    snapshot = parse_snapshot(response.content)
    assert snapshot == sim.snapshot("1")
    assert [p for p, _ in snapshot.bids] == sorted((p for p, _ in snapshot.bids), reverse=True)
    assert snapshot.bids[0][0] < snapshot.asks[0][0]


async def test_snapshot_plus_later_diffs_rebuilds_the_model_book(
    sim: TplusMarketSimulator,
) -> None:
    async with _client(sim, depth_path("1")) as ws, _client(sim, depth_path("1")) as twin:
        await sim.wait_connected(depth_path("1"), 2)
        async with _http(sim) as http:
            response = await http.get("/marketdepth/1")
        snapshot = parse_snapshot(response.content)
        # let the market move well past the snapshot before freezing it
        seen = await _diffs_until(ws, snapshot.sequence_number + 20)
        sim.pause()
        last = sim.emitted.depth["1"][-1].sequence_number
        seen = await _diffs_until(ws, last, seen)
        seen_by_twin = await _diffs_until(twin, last)
    book = Book.from_snapshot(snapshot)
    later = [d for d in seen_by_twin if d.sequence_number > snapshot.sequence_number]
    assert later[0].sequence_number == snapshot.sequence_number + 1
    for diff in later:
        assert diff.sequence_number == book.sequence_number + 1
        book.apply(diff)
    assert book == sim.book("1")
    # one generated diff, the same frame to every client on the path (from when both listen)
    both = max(seen[0].sequence_number, seen_by_twin[0].sequence_number)
    assert [d for d in seen if d.sequence_number >= both] == [
        d for d in seen_by_twin if d.sequence_number >= both
    ]
    assert list(sim.emitted.depth["1"])[-len(later) :] == later


async def test_skip_sequence_makes_a_gap_that_only_a_resync_repairs(
    sim: TplusMarketSimulator,
) -> None:
    async with _client(sim, depth_path("2")) as ws, _http(sim) as http:
        await sim.wait_connected(depth_path("2"))
        start = parse_snapshot((await http.get("/marketdepth/2")).content)
        await _text(ws)
        sim.skip_sequence("2", 3)
        before = sim.emitted.depth["2"][-1].sequence_number
        received = await _diffs_until(ws, before + 1)
        sim.pause()
        resynced = parse_snapshot((await http.get("/marketdepth/2")).content)
    jumped = received[-1]
    assert jumped.sequence_number == before + 4
    assert all(d.sequence_number <= before for d in received[:-1])
    skipped = [d for d in sim.model.diffs["2"] if before < d.sequence_number < before + 4]
    assert [d.sequence_number for d in skipped] == [before + 1, before + 2, before + 3]
    assert not any(d in sim.emitted.depth["2"] for d in skipped)
    # the venue's book did apply the skipped diffs: the snapshot after the gap includes them
    venue = Book.from_snapshot(start)
    for diff in sim.model.diffs["2"]:
        if diff.sequence_number > start.sequence_number:
            venue.apply(diff)
    assert resynced.sequence_number >= jumped.sequence_number
    assert Book.from_snapshot(resynced) == venue == sim.book("2")


async def test_disconnect_all_closes_every_client_with_the_code(
    sim: TplusMarketSimulator,
) -> None:
    async with _client(sim, depth_path("1")) as depth, _client(sim, "/trades") as trades:
        await sim.wait_connected(depth_path("1"))
        await sim.wait_connected("/trades")
        await sim.disconnect_all(1011)
        assert sim.connected(depth_path("1")) == 0
        for ws in (depth, trades):
            with pytest.raises(ConnectionClosedError) as closed:
                async with asyncio.timeout(TIMEOUT_S):
                    async for _ in ws:
                        pass
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    async with _client(sim, depth_path("1")) as again:
        await sim.wait_connected(depth_path("1"))
        assert parse_depth(await _text(again)).sequence_number > 0


async def test_send_garbage_adds_one_extra_frame_before_the_next_event(
    sim: TplusMarketSimulator,
) -> None:
    async with _client(sim, "/trades") as trades, _client(sim, depth_path("1")) as depth:
        trade_frames = [await _text(trades)]
        depth_frames: list[str | bytes] = [await _text(depth)]
        sim.send_garbage("trades", "{not json")
        sim.send_garbage("depth", b"\x00\xff")
        while trade_frames[-1] != "{not json":
            trade_frames.append(await _text(trades))
        after_garbage = json.loads(await _text(trades))
        async with asyncio.timeout(TIMEOUT_S):
            while not isinstance(depth_frames[-1], bytes):
                depth_frames.append(await depth.recv())
        after_binary = parse_depth(await _text(depth))
    # an extra frame: the next real event follows its predecessor without a hole
    assert after_garbage["trade_id"] == json.loads(trade_frames[-2])["trade_id"] + 1
    assert depth_frames[-1] == b"\x00\xff"
    previous = depth_frames[-2]
    assert isinstance(previous, str)
    assert after_binary.sequence_number == parse_depth(previous).sequence_number + 1
    assert sorted(sim.emitted.garbage, key=lambda g: g[0]) == [
        ("depth", b"\x00\xff"),
        ("trades", "{not json"),
    ]


@pytest.mark.parametrize("path", ["/marketdepth/diff/404", "/klines/diff/404", "/nope"])
async def test_unknown_websocket_paths_are_refused_with_404(
    sim: TplusMarketSimulator, path: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with _client(sim, path):
            pass
    assert refused.value.response.status_code == 404


async def test_unknown_snapshot_asset_is_a_json_404(sim: TplusMarketSimulator) -> None:
    async with _http(sim) as http:
        response = await http.get("/marketdepth/404")
    assert response.status_code == 404
    assert response.json() == {"error": "unknown asset"}


async def test_pause_stops_every_generator(sim: TplusMarketSimulator) -> None:
    async with _client(sim, depth_path("1")) as ws:
        await _text(ws)
        sim.pause()
        counts = _counts(sim)
        await asyncio.sleep(0.05)  # several intervals: proves nothing was generated
        assert _counts(sim) == counts
        assert sim.paused
        sim.resume()
        # frames written before the pause are still queued; a newer one proves the restart
        while parse_depth(await _text(ws)).sequence_number <= counts["seq"]:
            pass
    assert not sim.paused
    assert len(sim.emitted.depth["1"]) > counts["depth"]


def _counts(sim: TplusMarketSimulator) -> dict[str, Any]:
    return {
        "depth": len(sim.emitted.depth["1"]),
        "model": len(sim.model.diffs["1"]),
        "trades": len(sim.emitted.trades),
        "klines": len(sim.emitted.klines["1"]),
        "seq": sim.book("1").sequence_number,
    }


async def test_send_garbage_can_send_bytes_as_a_text_frame_that_is_not_utf8(
    sim: TplusMarketSimulator,
) -> None:
    async with _client(sim, "/trades") as trades:
        await _text(trades)
        sim.send_garbage("trades", b"\xff\xfe", as_text=True)
        # The client's protocol layer refuses it as a text frame: invalid UTF-8 closes with 1007.
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(TIMEOUT_S):
                while True:
                    await trades.recv()
        assert trades.protocol.close_sent is not None
        assert trades.protocol.close_sent.code == 1007
    assert sim.emitted.garbage == [("trades", b"\xff\xfe")]
