"""Read topics back the way other teams will: confluent-kafka's own deserializers.

Blocking (librdkafka); async tests call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, DeserializingConsumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import StringDeserializer


@dataclass(frozen=True)
class Consumed:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: Any
    headers: dict[str, bytes]


class TopicReader:
    """Reads whole topics from the beginning, Avro-decoded or raw."""

    def __init__(self, bootstrap: str, registry_url: str | None, topics: list[str]) -> None:
        conf: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
        self._consumer: Consumer | DeserializingConsumer
        self._client: SchemaRegistryClient | None = None
        if registry_url is not None:
            self._client = SchemaRegistryClient({"url": registry_url})
            conf["key.deserializer"] = StringDeserializer("utf_8")
            conf["value.deserializer"] = AvroDeserializer(self._client)
            self._consumer = DeserializingConsumer(conf)
        else:
            self._consumer = Consumer(conf)
        self.records: dict[str, list[Consumed]] = {t: [] for t in topics}
        assignment = []
        for topic in topics:
            meta = self._consumer.list_topics(topic, timeout=10).topics[topic]
            for partition in meta.partitions:
                assignment.append(TopicPartition(topic, partition, OFFSET_BEGINNING))
        self._consumer.assign(assignment)

    def poll_until(
        self, done: Callable[[dict[str, list[Consumed]]], bool], timeout_s: float = 30.0
    ) -> dict[str, list[Consumed]]:
        """Consume until ``done(records)`` holds; raise TimeoutError with what was read."""
        deadline = time.monotonic() + timeout_s
        while not done(self.records):
            if time.monotonic() > deadline:
                counts = {t: len(v) for t, v in self.records.items()}
                raise TimeoutError(f"condition not met in {timeout_s} s; read {counts}")
            msg = self._consumer.poll(0.2)
            if msg is None or msg.error() is not None:
                continue
            raw_key = msg.key()
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            raw_headers = msg.headers() or []
            pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
            headers = {k: v.encode() if isinstance(v, str) else (v or b"") for k, v in pairs}
            topic = msg.topic() or ""
            self.records[topic].append(
                Consumed(topic, msg.partition() or 0, msg.offset() or 0, key, msg.value(), headers)
            )
        return self.records

    def close(self) -> None:
        self._consumer.close()
        if self._client is not None:
            self._client.close()
