"""The spool file: rows survive the process, are deleted on acknowledgement, read in order."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from connector.delivery.spool import (
    ROW_OVERHEAD,
    Spool,
    SpoolError,
    decode_headers,
    encode_headers,
)
from connector.ops.metrics import Metrics
from tests.conftest import sample

Opener = Callable[[], Spool]


@pytest.fixture
def opener(tmp_path: Path) -> Opener:
    def open_spool() -> Spool:
        return Spool.open(
            str(tmp_path / "spool"),
            "unit",
            max_bytes=1 << 20,
            market_level="normal",
            account_level="full",
            metrics=Metrics(CollectorRegistry()),
        )

    return open_spool


@pytest.fixture
async def spool(opener: Opener) -> AsyncIterator[Spool]:
    opened = opener()
    opened.start(asyncio.get_running_loop())
    try:
        yield opened
    finally:
        await opened.close()


def _append(
    spool: Spool, stream: str, n: int, *, account: bool = False
) -> tuple[int, asyncio.Future[None] | None]:
    return spool.append(
        stream, stream, f"k{n}".encode(), f"v{n}".encode(), None, 1000 + n, account=account
    )


async def test_an_account_append_is_committed_before_its_future_resolves(
    spool: Spool, opener: Opener
) -> None:
    seq, committed = _append(spool, "tastytrade.orders", 1, account=True)
    assert isinstance(committed, asyncio.Future)
    await asyncio.wait_for(committed, timeout=10)
    # Another connection sees the committed row: it is in the file, not only in memory.
    other = sqlite3.connect(spool.path)
    try:
        assert other.execute("SELECT seq, value FROM records").fetchall() == [(seq, b"v1")]
    finally:
        other.close()
    assert sample(spool._metrics, "connector_spool_fsync_seconds_count") >= 1


async def test_market_data_does_not_wait_and_reads_come_back_in_order_per_stream(
    spool: Spool,
) -> None:
    seqs = []
    for n in range(10):
        seq, committed = _append(spool, "tplus.depth" if n % 2 else "tplus.trades", n)
        assert committed is None
        seqs.append(seq)
    rows = await asyncio.wait_for(spool.read("tplus.depth", 0, 100), timeout=10)
    assert [r.seq for r in rows] == seqs[1::2]
    assert [r.value for r in rows] == [f"v{n}".encode() for n in range(1, 10, 2)]
    later = await spool.read("tplus.depth", seqs[5] + 1, 2)
    assert [r.seq for r in later] == [seqs[7], seqs[9]]


async def test_rows_survive_a_restart_until_deleted_and_sequence_numbers_only_grow(
    opener: Opener,
) -> None:
    first = opener()
    assert not first.restarted
    first.start(asyncio.get_running_loop())
    kept, _ = _append(first, "tplus.orders", 1, account=True)
    gone, committed = _append(first, "tplus.orders", 2, account=True)
    assert committed is not None
    await committed
    first.delete(gone, 2 + 2 + ROW_OVERHEAD)
    await first.close()

    second = opener()
    try:
        assert second.restarted
        assert second.records == 1 and second.used_bytes == 2 + 2 + ROW_OVERHEAD
        assert {s: (h.first_seq, h.last_seq) for s, h in second.held.items()} == {
            "tplus.orders": (kept, kept)
        }
        second.start(asyncio.get_running_loop())
        seq, _ = _append(second, "tplus.orders", 3)
        assert seq > gone
    finally:
        await second.close()


async def test_accounting_follows_appends_and_deletes(spool: Spool) -> None:
    seq, _ = _append(spool, "tplus.trades", 1)
    assert spool.records == 1 and spool.used_bytes == 4 + ROW_OVERHEAD
    assert sample(spool._metrics, "connector_spool_bytes") == 4 + ROW_OVERHEAD
    assert sample(spool._metrics, "connector_spool_budget_bytes") == 1 << 20
    await spool.read("tplus.trades", 0, 1)  # the append is applied before the read
    assert sample(spool._metrics, "connector_spool_oldest_seconds") > 0
    spool.delete(seq, 4 + ROW_OVERHEAD)
    assert spool.records == 0 and spool.used_bytes == 0
    assert await spool.read("tplus.trades", 0, 1) == []
    assert sample(spool._metrics, "connector_spool_oldest_seconds") == 0


def test_headers_round_trip_any_bytes() -> None:
    headers: list[tuple[str, str | bytes | None]] = [("a", b"\xff\x00"), ("b", "text"), ("c", None)]
    assert decode_headers(encode_headers(headers)) == [
        ("a", b"\xff\x00"),
        ("b", b"text"),
        ("c", None),
    ]
    assert encode_headers([]) is None and decode_headers(None) == []


def test_an_unusable_path_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SpoolError, match=r"spool.path: cannot open .*file/unit.sqlite"):
        Spool.open(
            str(blocker),
            "unit",
            max_bytes=1 << 20,
            market_level="normal",
            account_level="full",
            metrics=Metrics(CollectorRegistry()),
        )


async def test_a_row_acknowledged_before_its_batch_is_written_is_still_deleted(
    opener: Opener,
) -> None:
    # The writer thread's steps, run here one by one: the producer may acknowledge a
    # record while its row still waits on the loop to be handed over.
    spool = opener()
    spool._loop = asyncio.get_running_loop()
    try:
        seq, _ = _append(spool, "tplus.depth", 1)
        spool.delete(seq, 4 + ROW_OVERHEAD)
        spool._apply([])  # the writer wakes on its idle timer: the row is not in the file yet
        spool._flush()
        spool._apply([spool._ops.get_nowait()])  # the batch: inserted, then deleted
        other = sqlite3.connect(spool.path)
        try:
            assert other.execute("SELECT count(*) FROM records").fetchone() == (0,)
        finally:
            other.close()
    finally:
        spool._reader.close()
        spool._conn.close()
