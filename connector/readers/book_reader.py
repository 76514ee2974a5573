"""``BookReader``: one asset's order book from the books and depth topics, joined at any time.

A consumer that starts from the latest depth offset would wait for the next
SNAPSHOT, which on a healthy stream may be hours away; one that starts from
the beginning replays the whole retention. The reader instead loads the
asset's latest checkpoint from the compacted books topic, then reads the
depth partition the checkpoint names from the offset after the last record
it includes, applying records with the guide's rules
(:mod:`connector.readers.depth_book`). Without a checkpoint it reads the depth
topic from its oldest retained record and waits for a SNAPSHOT. A checkpoint
whose following records are no longer retained raises
:class:`CheckpointExpired` rather than building a wrong book.

Blocking, like the librdkafka consumer it wraps: call it from a thread in
asyncio programs.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    DeserializingConsumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.error import ConsumeError, KeyDeserializationError, ValueDeserializationError
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import StringDeserializer

from connector.readers.depth_book import Applied, DepthBook

log = logging.getLogger(__name__)

DEPTH_TOPIC = "tplus.depth"
BOOKS_TOPIC = "tplus.books"


class CheckpointExpired(Exception):
    """The depth records that follow the asset's checkpoint are no longer retained.

    Applying what is left would skip changes and build a wrong book. A fresh
    checkpoint (the connector writes one every ``book_checkpoint_s`` while the
    book changes) or the next SNAPSHOT is needed.
    """

    def __init__(self, asset: str, topic: str, partition: int, wanted: int, earliest: int) -> None:
        super().__init__(
            f"the checkpoint of asset {asset} continues at {topic} partition {partition} offset "
            f"{wanted}, but the oldest retained offset is {earliest}: the records in between "
            "are gone, so no book is built from it"
        )
        self.asset = asset
        self.topic = topic
        self.partition = partition
        self.wanted = wanted
        self.earliest = earliest


class BookReader:
    """Keeps one asset's book from the books topic and ``tplus.depth``.

    ``start()`` loads the checkpoint and positions the consumer; each ``poll()``
    applies at most one depth record of the asset. ``book`` holds the levels,
    its ``sequence`` and whether it is ``valid`` (false after a GAP until the
    next SNAPSHOT). Use it as a context manager to start and close it.
    """

    def __init__(
        self,
        asset: str,
        bootstrap: str,
        registry_url: str,
        *,
        books_topic: str = BOOKS_TOPIC,
        depth_topic: str = DEPTH_TOPIC,
        sequence_step: int = 1,
        timeout_s: float = 10.0,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """``config`` adds librdkafka consumer properties (security, client.id, ...)."""
        self.asset = asset
        self.books_topic = books_topic
        self.depth_topic = depth_topic
        self.book = DepthBook(asset, sequence_step=sequence_step)
        self.checkpoint: dict[str, Any] | None = None
        """The checkpoint the book started from; None when it started from the oldest record."""
        self._timeout_s = timeout_s
        self._registry = SchemaRegistryClient({"url": registry_url})
        self._consumer = DeserializingConsumer(
            {
                "bootstrap.servers": bootstrap,
                # Partitions are assigned, never subscribed: the group only names the client.
                "group.id": f"connector-book-reader-{uuid.uuid4().hex[:12]}",
                "enable.auto.commit": False,
                # An offset that retention removed must fail, never silently jump ahead.
                "auto.offset.reset": "error",
                # Tells when the books topic has been read to its end.
                "enable.partition.eof": True,
                **(config or {}),
                "key.deserializer": StringDeserializer("utf_8"),
                "value.deserializer": AvroDeserializer(self._registry),
            }
        )
        self._position: tuple[str, int, int] | None = None

    # --- starting -------------------------------------------------------------------

    def start(self) -> None:
        """Load the latest checkpoint of the asset and position the depth consumer after it."""
        checkpoint = self._latest_checkpoint()
        self.checkpoint = checkpoint
        if checkpoint is None:
            log.info("no book checkpoint; reading depth from its oldest record")
            partitions = self._partitions(self.depth_topic)
            self._consumer.assign(
                [TopicPartition(self.depth_topic, p, OFFSET_BEGINNING) for p in partitions]
            )
            return
        topic: str = checkpoint["depth_topic"]
        partition: int = checkpoint["depth_partition"]
        wanted = checkpoint["depth_offset"] + 1
        low, _ = self._watermarks(topic, partition)
        if wanted < low:
            raise CheckpointExpired(self.asset, topic, partition, wanted, low)
        self.depth_topic = topic
        self.book.load(checkpoint["bids"], checkpoint["asks"], checkpoint["sequence_number"])
        self._position = (topic, partition, wanted - 1)
        self._consumer.assign([TopicPartition(topic, partition, wanted)])

    def _latest_checkpoint(self) -> dict[str, Any] | None:
        """The newest checkpoint of the asset on the books topic, read to its end."""
        ends: dict[int, int] = {}
        for partition in self._partitions(self.books_topic):
            low, high = self._watermarks(self.books_topic, partition)
            if high > low:
                ends[partition] = high
        if not ends:
            return None
        self._consumer.assign(
            [TopicPartition(self.books_topic, p, OFFSET_BEGINNING) for p in sorted(ends)]
        )
        latest: dict[str, Any] | None = None
        deadline = time.monotonic() + self._timeout_s
        try:
            while ends:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{self.books_topic} not read to its end in {self._timeout_s} s"
                    )
                msg = self._next(0.2)
                if msg is None:
                    continue
                at, offset = msg.partition() or 0, msg.offset() or 0
                if _at_end(msg):
                    ends.pop(at, None)
                    continue
                if not self._usable(msg):
                    continue
                if self._ours(msg):
                    value = _decoded(msg)
                    if latest is None or value["written_ns"] >= latest["written_ns"]:
                        latest = value
                if offset >= ends.get(at, 0) - 1:
                    ends.pop(at, None)
        finally:
            self._consumer.unassign()
        return latest

    def _partitions(self, topic: str) -> list[int]:
        meta = self._consumer.list_topics(topic, timeout=self._timeout_s).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        return sorted(meta.partitions)

    def _watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        marks = self._consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=self._timeout_s
        )
        if marks is None:
            raise TimeoutError(f"no offsets for {topic} partition {partition}")
        low, high = marks
        return int(low), int(high)

    # --- following ------------------------------------------------------------------

    def poll(self, timeout_s: float = 1.0) -> Applied | None:
        """Apply the next depth record of the asset, if one arrives within ``timeout_s``.

        Returns what it did to the book, or None (no record, or another asset's).
        Raises :class:`CheckpointExpired` when retention removed the records
        the reader was about to read.
        """
        msg = self._next(timeout_s)
        if msg is None or not self._usable(msg) or not self._ours(msg):
            return None
        self._position = (msg.topic() or self.depth_topic, msg.partition() or 0, msg.offset() or 0)
        return self.book.apply(_decoded(msg))

    def _next(self, timeout_s: float) -> Message | None:
        """The next record or error event; DeserializingConsumer raises the latter."""
        try:
            return self._consumer.poll(timeout_s)
        except (KeyDeserializationError, ValueDeserializationError):
            raise  # not a record of the connector's: say so rather than skip it
        except ConsumeError as exc:
            if exc.kafka_message is None:
                raise
            return exc.kafka_message

    def _ours(self, msg: Message) -> bool:
        """Whether a record is keyed by this reader's asset (keys are decoded to str)."""
        key: object = msg.key()
        return key == self.asset

    def _usable(self, msg: Message) -> bool:
        """Whether ``msg`` is a record; raises for errors the reader cannot go on from."""
        err = msg.error()
        if err is None:
            return True
        if err.code() == KafkaError._PARTITION_EOF:
            return False
        if err.code() == KafkaError._AUTO_OFFSET_RESET:
            topic, partition = msg.topic() or self.depth_topic, msg.partition() or 0
            wanted = -1 if self._position is None else self._position[2] + 1
            low, _ = self._watermarks(topic, partition)
            self.book.invalidate("expired")
            raise CheckpointExpired(self.asset, topic, partition, wanted, low)
        if err.fatal():
            raise KafkaException(err)
        log.warning("book reader: consumer error", extra={"error": err.name()})
        return False

    @property
    def position(self) -> tuple[str, int, int] | None:
        """(topic, partition, offset) of the last depth record in the book, when known."""
        return self._position

    # --- closing --------------------------------------------------------------------

    def close(self) -> None:
        self._consumer.close()
        self._registry.close()

    def __enter__(self) -> BookReader:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _at_end(msg: Message) -> bool:
    """Whether ``msg`` says its partition has been read to its end."""
    err = msg.error()
    return err is not None and err.code() == KafkaError._PARTITION_EOF


def _decoded(msg: Message) -> dict[str, Any]:
    """The value AvroDeserializer made of a record (the stubs type it as bytes)."""
    value: object = msg.value()
    if not isinstance(value, dict):
        raise TypeError(f"{msg.topic()} holds a record that is not an Avro record")
    return value
