"""Book checkpoints: each depth book's full state on a compacted topic, so consumers can join late.

Each asset's depth publisher shows a :class:`BookCheckpointer` every record
on its way to the sink; it keeps the book those records build (the same
:class:`~connector.readers.depth_book.DepthBook` a reader builds). Every
``book_checkpoint_s`` while the book changes, and at every SNAPSHOT, it asks
the sink for that record's partition and offset once the brokers
acknowledge it (``Record.on_ack``) and only then writes the checkpoint: a
consumer that starts from one never needs a depth record that may not exist.

The book is taken when the record is handed over, the offset when it is
acknowledged; the two agree because one asset's records are produced in
order to one partition. A record the sink had to produce again after a
failed delivery can land after later ones: if it is one the checkpoint
includes, a reader meets it again as a duplicate; if it is the checkpoint's
own record, the reader finds the next DIFF out of sequence and waits for a
SNAPSHOT. Either way no wrong book.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence

from connector.pipeline import Publisher
from connector.readers.depth_book import Applied, DepthBook, Level
from connector.records import Record
from connector.settings import TplusMarketDataSettings

log = logging.getLogger(__name__)

BOOKS_STREAM = "tplus.books"
TOPIC_CONFIG = {"cleanup.policy": "compact"}
"""How the connector creates the books topic: the latest checkpoint per asset is what counts."""


class Reason:
    INTERVAL = "interval"
    RESYNC = "resync"


class BookCheckpointer:
    """One asset's book, and its checkpoints written after the records they include."""

    def __init__(
        self,
        asset: str,
        publisher: Publisher,
        *,
        depth_topic: str,
        interval_s: float,
        sequence_step: int,
        clock_ns: Callable[[], int],
    ) -> None:
        self._asset = asset
        self._publisher = publisher
        self._depth_topic = depth_topic
        self._interval_ns = int(interval_s * 1e9)
        self._clock_ns = clock_ns
        self._book = DepthBook(asset, sequence_step=sequence_step)
        self._due_ns = 0
        self._taken = 0
        self._written = 0
        self._writing: asyncio.Future[None] | None = None

    def observe(self, record: Record) -> None:
        """Apply a depth record; when a checkpoint is due, ask to hear of its acknowledgement."""
        book = self._book
        applied = book.apply(record.value)
        if applied is Applied.UPDATED:
            if record.received_ns < self._due_ns:
                return  # nearly every diff: its cost is the book's
            reason = Reason.INTERVAL
        elif applied is Applied.REPLACED:
            reason = Reason.RESYNC
        else:
            return  # the book did not move, or is not valid
        assert book.sequence is not None
        self._due_ns = record.received_ns + self._interval_ns
        self._taken += 1
        record.on_ack = functools.partial(
            self._acknowledged,
            self._taken,
            reason,
            book.sequence,
            book.bids(),
            book.asks(),
            record.received_ns,
        )

    def _acknowledged(
        self,
        index: int,
        reason: str,
        sequence: int,
        bids: Sequence[Level],
        asks: Sequence[Level],
        received_ns: int,
        partition: int,
        offset: int,
    ) -> None:
        """The record a checkpoint ends with is acknowledged: write the checkpoint."""
        if index <= self._written:
            return  # a later checkpoint is out already (this record was produced again)
        if self._writing is not None and not self._writing.done():
            # The sink is full and the previous checkpoint still waits: the next one will do.
            return
        self._written = index
        value = {
            "asset_id": self._asset,
            "sequence_number": sequence,
            "bids": bids,
            "asks": asks,
            "depth_topic": self._depth_topic,
            "depth_partition": partition,
            "depth_offset": offset,
            "reason": reason,
            "received_ns": received_ns,
            "written_ns": self._clock_ns(),
        }
        waiting = self._publisher.submit(Record(BOOKS_STREAM, self._asset, value, received_ns))
        if waiting is not None:
            self._writing = asyncio.ensure_future(waiting)
            self._writing.add_done_callback(self._write_done)

    def _write_done(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.warning(
                "book checkpoint not written",
                extra={"subscription": self._asset, "error": type(future.exception()).__name__},
            )


def depth_publisher(
    md: TplusMarketDataSettings,
    publisher: Publisher,
    asset: str,
    clock_ns: Callable[[], int],
) -> Publisher:
    """The publisher for one asset's depth records: checkpointed unless checkpoints are off."""
    if md.book_checkpoint_s <= 0:
        return publisher
    checkpointer = BookCheckpointer(
        asset,
        publisher,
        depth_topic=md.topics.depth,
        interval_s=md.book_checkpoint_s,
        sequence_step=md.sequence_step,
        clock_ns=clock_ns,
    )
    return publisher.observing(checkpointer.observe)
