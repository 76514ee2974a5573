"""The durable spool: every accepted record on local disk until the brokers acknowledge it.

A WebSocket cannot be replayed, so the only durable point is one the
connector makes. Records are rows of one SQLite table (standard library
``sqlite3``, WAL mode) keyed by a sequence number that only grows; a row is
deleted when its record is acknowledged, so what the file holds after a
crash is exactly what may not have reached Kafka.

One writer thread owns the connection; the event loop never runs SQLite.
The loop gathers appended rows for up to FLUSH_S (an account row: until the
end of the loop's current turn) and hands them over as one batch: one thread
wake-up and one transaction per batch, not per record. Acknowledged rows are
queued for deletion from any thread and deleted with the next batch. A batch
holding an account row commits with ``synchronous=FULL`` (an fsync), others
with the market-data level (``NORMAL`` by default: survives a process crash,
not an OS crash). Reads go through the same queue, after the pending batch,
so a read sees every append made before it.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from connector.ops.metrics import Metrics

log = logging.getLogger(__name__)

SyncLevel = Literal["off", "normal", "full"]
_LEVELS: dict[str, int] = {"off": 0, "normal": 1, "full": 2}
_LEVEL_NAMES = ("OFF", "NORMAL", "FULL")

#: Bytes a row costs beyond its key, value and headers (sequence, names, times, b-tree).
ROW_OVERHEAD = 64
#: Most rows one batch holds.
BATCH_MAX = 5000
#: How long market-data rows wait on the loop to be handed over with others: the
#: longest a process crash can take back from a market-data stream (depth: under
#: the restart GAP). Fewer, larger transactions cost less CPU per record.
FLUSH_S = 0.01
#: How often the writer applies deletions when nothing is appended.
IDLE_S = 0.05
#: Wait before a batch that failed (disk full, I/O error) is tried again.
RETRY_S = 1.0

Headers = list[tuple[str, str | bytes | None]]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    topic TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    headers BLOB,
    received_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_stream ON records (stream, seq);
CREATE TABLE IF NOT EXISTS high_water (id INTEGER PRIMARY KEY CHECK (id = 0), seq INTEGER NOT NULL);
"""


class SpoolError(Exception):
    """The spool file cannot be opened or used; the message names the path."""


@dataclass(frozen=True, slots=True)
class SpooledRecord:
    """One row: a record as it will be produced, and the sequence number that names it."""

    seq: int
    stream: str
    topic: str
    key: bytes
    value: bytes
    headers: bytes | None
    received_ns: int

    @property
    def size(self) -> int:
        return row_size(self.key, self.value, self.headers)


def row_size(key: bytes, value: bytes, headers: bytes | None) -> int:
    """What a row counts against ``spool.max_bytes``."""
    return len(key) + len(value) + (len(headers) if headers else 0) + ROW_OVERHEAD


def encode_headers(headers: Headers | None) -> bytes | None:
    """Kafka headers as stored: JSON pairs of name and hex value (a value may be any bytes)."""
    if not headers:
        return None
    pairs = [
        [k, None if v is None else (v.encode() if isinstance(v, str) else v).hex()]
        for k, v in headers
    ]
    return json.dumps(pairs, separators=(",", ":")).encode()


def decode_headers(stored: bytes | None) -> Headers:
    if not stored:
        return []
    return [(k, None if v is None else bytes.fromhex(v)) for k, v in json.loads(stored)]


@dataclass(frozen=True, slots=True)
class Held:
    """What a previous process left in the spool for one stream."""

    first_seq: int
    last_seq: int


class Spool:
    """The spool file, its writer thread and its accounting. Build with :meth:`open`."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        reader: sqlite3.Connection,
        path: Path,
        *,
        max_bytes: int,
        market_level: SyncLevel,
        account_level: SyncLevel,
        metrics: Metrics,
        existed: bool,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.restarted = existed
        """True when the file was there before this process: a previous one ran."""
        self._conn = conn
        self._reader = reader
        self._reader_lock = threading.Lock()
        self._market_level = _LEVELS[market_level]
        self._account_level = _LEVELS[account_level]
        self._metrics = metrics
        self._ops: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._deletes: collections.deque[tuple[int]] = collections.deque()
        # The batch being gathered on the loop.
        self._rows: list[tuple[Any, ...]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._batch_level = 0
        self._batch_since = 0.0
        self._flush_at: asyncio.TimerHandle | asyncio.Handle | None = None
        self._flush_soon = False
        count, size = conn.execute(
            "SELECT count(*), coalesce(sum(length(key) + length(value)"
            " + coalesce(length(headers), 0)), 0) FROM records"
        ).fetchone()
        (top,) = conn.execute("SELECT coalesce(max(seq), 0) FROM high_water").fetchone()
        # Added to on the loop (appends) and by one thread at a time (deletions, under
        # the sink's ledger lock): each total has one writer, so no lock is needed.
        self._appended: tuple[int, int] = (count, size + count * ROW_OVERHEAD)
        self._deleted: tuple[int, int] = (0, 0)
        # Never reused, even after the newest rows were deleted: consumers drop
        # duplicates by the event id made from it.
        self._next_seq: int = top + 1
        # Writer thread only: rows below this are in the file; a deletion of a row
        # not yet inserted (acknowledged before its batch was handed over) waits.
        self._inserted_below = self._next_seq
        self._deferred: list[int] = []
        self.held: dict[str, Held] = {
            stream: Held(first, last)
            for stream, first, last in conn.execute(
                "SELECT stream, min(seq), max(seq) FROM records GROUP BY stream"
            )
        }
        """Per stream, the rows a previous process left: drained before new records."""
        self._level = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        metrics.spool_budget_bytes.set(max_bytes)
        metrics.spool_bytes.set_function(lambda: float(self.used_bytes))
        metrics.spool_records.set_function(lambda: float(self.records))
        metrics.spool_oldest.set_function(self.oldest_age_s)

    @classmethod
    def open(
        cls,
        directory: str,
        name: str,
        *,
        max_bytes: int,
        market_level: SyncLevel,
        account_level: SyncLevel,
        metrics: Metrics,
    ) -> Spool:
        """Open (or create) ``<directory>/<name>.sqlite``; blocking, run it off the loop."""
        path = Path(directory) / f"{name}.sqlite"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            existed = path.exists()
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"spool.path: cannot open {path} ({exc})") from None
        return cls(
            conn,
            reader,
            path,
            max_bytes=max_bytes,
            market_level=market_level,
            account_level=account_level,
            metrics=metrics,
            existed=existed,
        )

    # --- lifecycle ----------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Commit what is queued, then close the file."""
        if self._thread is not None:
            self._flush()
            self._ops.put(("stop",))
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        with self._reader_lock:
            self._reader.close()
        self._conn.close()

    # --- state ----------------------------------------------------------------------

    @property
    def used_bytes(self) -> int:
        """What the rows held count against ``max_bytes``."""
        return self._appended[1] - self._deleted[1]

    @property
    def records(self) -> int:
        return self._appended[0] - self._deleted[0]

    def oldest_age_s(self) -> float:
        """Age of the oldest row, read from the file (a scrape-time query)."""
        with self._reader_lock:
            try:
                row = self._reader.execute(
                    "SELECT received_ns FROM records ORDER BY seq LIMIT 1"
                ).fetchone()
            except sqlite3.Error:
                return 0.0
        return 0.0 if row is None else max(0.0, (time.time_ns() - row[0]) / 1e9)

    # --- operations (event loop; delete also from the poll thread) ------------------

    def append(
        self,
        stream: str,
        topic: str,
        key: bytes,
        value: bytes,
        headers: bytes | None,
        received_ns: int,
        *,
        account: bool,
    ) -> tuple[int, asyncio.Future[None] | None]:
        """Hand one row to the writer; return its sequence number and, for an account
        record, a future done when it is committed (the caller reads on after it)."""
        seq = self._next_seq
        self._next_seq += 1
        count, size = self._appended
        self._appended = (count + 1, size + row_size(key, value, headers))
        rows = self._rows
        if not rows:
            self._batch_since = time.perf_counter()
        rows.append((seq, stream, topic, key, value, headers, received_ns))
        waiter: asyncio.Future[None] | None = None
        if account:
            assert self._loop is not None
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            if self._account_level > self._batch_level:
                self._batch_level = self._account_level
            if not self._flush_soon:
                # Its reader waits for the commit: hand the batch over this turn.
                self._flush_soon = True
                if self._flush_at is not None:
                    self._flush_at.cancel()
                self._flush_at = self._loop.call_soon(self._flush)
        else:
            if self._market_level > self._batch_level:
                self._batch_level = self._market_level
            if self._flush_at is None:
                assert self._loop is not None
                self._flush_at = self._loop.call_later(FLUSH_S, self._flush)
        if len(rows) >= BATCH_MAX:
            self._flush()
        return seq, waiter

    def delete(self, seq: int, size: int) -> None:
        """The record is acknowledged (or dead-lettered): its row may go.

        Called by one thread at a time (the sink holds its ledger lock).
        """
        count, total = self._deleted
        self._deleted = (count + 1, total + size)
        self._deletes.append((seq,))

    def read(self, stream: str, from_seq: int, limit: int) -> asyncio.Future[list[SpooledRecord]]:
        """Rows of ``stream`` from ``from_seq`` on, in order, after every append made before."""
        assert self._loop is not None
        self._flush()
        future: asyncio.Future[list[SpooledRecord]] = self._loop.create_future()
        self._ops.put(("read", stream, from_seq, limit, future))
        return future

    def _flush(self) -> None:
        """Hand the gathered rows to the writer as one batch (on the loop)."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        self._flush_soon = False
        if not self._rows:
            return
        self._ops.put(("append", self._rows, self._batch_level, self._waiters, self._batch_since))
        self._rows, self._waiters, self._batch_level = [], [], 0

    # --- the writer thread ------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            try:
                batch = [self._ops.get(timeout=IDLE_S)]
            except queue.Empty:
                batch = []  # nothing appended: apply the deletions that piled up
            while len(batch) < 64:
                try:
                    batch.append(self._ops.get_nowait())
                except queue.Empty:
                    break
            stop = self._apply(batch)

    def _apply(self, batch: Sequence[tuple[Any, ...]]) -> bool:
        rows: list[tuple[Any, ...]] = []
        reads: list[tuple[Any, ...]] = []
        waiters: list[asyncio.Future[None]] = []
        level = 0
        oldest: float | None = None
        stop = False
        for op in batch:
            kind = op[0]
            if kind == "append":
                rows += op[1]
                level = max(level, op[2])
                waiters += op[3]
                if oldest is None:
                    oldest = op[4]
            elif kind == "read":
                reads.append(op)
            else:
                stop = True
        if rows:
            self._inserted_below = rows[-1][0] + 1
        deletes = self._drain_deletes()
        if rows or deletes:
            self._commit(rows, deletes, level)
            if oldest is not None:
                self._metrics.spool_append.observe(time.perf_counter() - oldest)
        results = [(op[4], self._select(op[1], op[2], op[3])) for op in reads]
        if self._loop is not None and (waiters or results):
            self._loop.call_soon_threadsafe(_resolve, waiters, results)
        return stop

    def _drain_deletes(self) -> list[tuple[int, int]]:
        """The rows acknowledged since the last batch, as ranges of consecutive sequences.

        Acknowledgements come nearly in order, so a few range deletions replace
        one statement per row.
        """
        pending = self._deletes
        seqs = sorted([*self._deferred, *(pending.popleft()[0] for _ in range(len(pending)))])
        below = self._inserted_below
        self._deferred = [seq for seq in seqs if seq >= below]
        ranges: list[tuple[int, int]] = []
        for seq in seqs:
            if seq >= below:
                break
            if ranges and ranges[-1][1] == seq - 1:
                ranges[-1] = (ranges[-1][0], seq)
            else:
                ranges.append((seq, seq))
        return ranges

    def _commit(
        self, rows: list[tuple[Any, ...]], deletes: list[tuple[int, int]], level: int
    ) -> None:
        while True:
            try:
                if level != self._level:
                    self._conn.execute(f"PRAGMA synchronous={_LEVEL_NAMES[level]}")
                    self._level = level
                started = time.perf_counter()
                self._conn.execute("BEGIN")
                self._conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                if rows:
                    self._conn.execute(
                        "INSERT OR REPLACE INTO high_water VALUES (0, ?)", (rows[-1][0],)
                    )
                self._conn.executemany("DELETE FROM records WHERE seq BETWEEN ? AND ?", deletes)
                self._conn.execute("COMMIT")
                if level == _LEVELS["full"]:
                    self._metrics.spool_fsync.observe(time.perf_counter() - started)
                return
            except sqlite3.Error as exc:
                # Nothing is acknowledged to a source until its row is committed:
                # waiting (and saying so) is the only safe answer to a failing disk.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                log.error(
                    "spool write failed; retrying",
                    extra={"error": type(exc).__name__, "path": str(self.path)},
                )
                time.sleep(RETRY_S)  # the writer thread's own pace, never the loop's

    def _select(self, stream: str, from_seq: int, limit: int) -> list[SpooledRecord]:
        return [
            SpooledRecord(*row)
            for row in self._conn.execute(
                "SELECT seq, stream, topic, key, value, headers, received_ns FROM records"
                " WHERE stream = ? AND seq >= ? ORDER BY seq LIMIT ?",
                (stream, from_seq, limit),
            )
        ]


def _resolve(
    waiters: list[asyncio.Future[None]],
    results: list[tuple[asyncio.Future[list[SpooledRecord]], list[SpooledRecord]]],
) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
    for future, rows in results:
        if not future.done():
            future.set_result(rows)
