"""The one module that talks to Kafka: records and dead letters out, acknowledgements in.

confluent-kafka's ``Producer`` is driven without blocking the event loop:
``produce()`` only enqueues, a dedicated thread runs ``poll()`` to fire
delivery reports, and anything that must change pipeline state is marshalled
back onto the loop with ``call_soon_threadsafe``. A full producer queue makes
``send`` wait for acknowledgements instead of buffering without bound, which
is what pushes back on the WebSocket readers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from connector.health import Health
from connector.metrics import Metrics
from connector.records import DeadLetter, Record, Stage
from connector.venues.errors import Reason

log = logging.getLogger(__name__)

Encoder = Callable[[dict[str, Any]], bytes]


Headers = list[tuple[str, str | bytes | None]]
DeliveryCallback = Callable[[KafkaError | None, Message], None]


class ProducerLike(Protocol):
    """The part of confluent-kafka's Producer the sink uses (a fake can stand in)."""

    def produce(
        self,
        topic: str,
        value: str | bytes | None = ...,
        key: str | bytes | None = ...,
        partition: int = ...,
        callback: DeliveryCallback | None = ...,
        on_delivery: DeliveryCallback | None = ...,
        timestamp: int = ...,
        headers: dict[str, str | bytes | None] | Headers | None = ...,
    ) -> None: ...
    def poll(self, timeout: float = ...) -> int: ...
    def flush(self, timeout: float = ...) -> int: ...
    def list_topics(self, topic: str | None = ..., timeout: float = ...) -> Any: ...
    def close(self) -> bool: ...
    def purge(self, in_queue: bool = ..., in_flight: bool = ..., blocking: bool = ...) -> None: ...
    def __len__(self) -> int: ...


@dataclass(frozen=True, slots=True)
class SinkConfig:
    """What the sink needs beyond the producer itself."""

    connector_name: str
    topics: Mapping[str, str]
    dlq_topic: str


def producer_config(
    bootstrap: str,
    *,
    client_id: str,
    compression: str,
    linger_ms: int,
    delivery_timeout_ms: int,
    extra: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """librdkafka settings that make delivery safe and partitioning Java-compatible."""
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        # murmur2_random is the Java client's default partitioner: the same key
        # lands on the same partition whichever client wrote it.
        "partitioner": "murmur2_random",
        "compression.type": compression,
        "linger.ms": linger_ms,
        "message.timeout.ms": delivery_timeout_ms,
        # Bounded queue: when it fills, produce() raises BufferError and the
        # pipeline waits, rather than growing memory without limit.
        "queue.buffering.max.messages": 100_000,
        "queue.buffering.max.kbytes": 262_144,
    }
    if extra:
        conf.update(extra)
    return conf


class KafkaSink:
    """Produces records and dead letters, and accounts for every acknowledgement."""

    def __init__(
        self,
        producer_factory: Callable[[Callable[[KafkaError], None]], ProducerLike],
        config: SinkConfig,
        encoders: Mapping[str, Encoder],
        metrics: Metrics,
        health: Health,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._producer = producer_factory(self.on_error)
        self._config = config
        self._encoders = encoders
        self._metrics = metrics
        self._health = health
        self._clock_ns = clock_ns
        self._loop: asyncio.AbstractEventLoop | None = None
        self._space = asyncio.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_tasks: set[asyncio.Future[None]] = set()
        self._closing = False

    # --- lifecycle -----------------------------------------------------------------

    async def start(self, metadata_timeout_s: float = 10.0) -> None:
        """Start the delivery thread and wait until the brokers answer."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._poll_loop, name="kafka-poll", daemon=True)
        self._thread.start()
        self._health.set("kafka", False, "connecting")
        await asyncio.to_thread(self._producer.list_topics, None, metadata_timeout_s)
        self._health.set("kafka", True, "")

    async def close(self, timeout_s: float) -> int:
        """Flush within ``timeout_s``; return how many records were left undelivered.

        Records still queued after the grace period are purged (so closing
        cannot hang on an unreachable cluster) and reported by count only.
        """
        if self._closing:
            return 0
        remaining = await asyncio.to_thread(self._producer.flush, timeout_s)
        self._closing = True
        if remaining:
            log.error("records left undelivered at shutdown", extra={"count": remaining})
            self._producer.purge(True, True, False)
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        await asyncio.to_thread(self._producer.close)
        return remaining

    def on_error(self, err: KafkaError) -> None:
        """librdkafka's error callback (runs on the poll thread)."""
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._health.set("kafka", False, "all brokers down")
        log.warning("kafka client error", extra={"error": err.name()})

    # --- producing -----------------------------------------------------------------

    async def send(self, record: Record) -> None:
        """Encode and enqueue one record; dead-letter it if it cannot be encoded."""
        topic = self._config.topics.get(record.stream)
        encoder = self._encoders.get(record.stream)
        if topic is None or encoder is None:
            await self.dead_letter(
                DeadLetter(
                    record.stream,
                    Stage.ROUTE,
                    Reason.UNKNOWN_TYPE,
                    "no topic is configured for this stream",
                    b"",
                    record.received_ns,
                    key=record.key,
                )
            )
            return
        try:
            value = encoder(record.value)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            # fastavro reports schema mismatches as ValueError/TypeError; the
            # record's own text goes in the DLQ, never in the log line.
            raw = json.dumps(record.value, default=str).encode()
            await self.dead_letter(
                DeadLetter(
                    record.stream,
                    Stage.ENCODE,
                    Reason.ENCODE_FAILED,
                    f"value does not match the schema ({type(exc).__name__})",
                    raw,
                    record.received_ns,
                    key=record.key,
                )
            )
            return
        await self._produce(topic, record.key.encode("utf-8"), value, None, record.received_ns)

    async def dead_letter(self, letter: DeadLetter) -> None:
        """Send a frame that cannot be a record to the DLQ with headers saying why."""
        headers: Headers = [
            ("connector", self._config.connector_name.encode()),
            ("stream", letter.stream.encode()),
            ("stage", letter.stage.encode()),
            ("reason", letter.reason.encode()),
            ("detail", letter.detail.encode()),
            ("received_ns", str(letter.received_ns).encode()),
            *((k, v.encode()) for k, v in letter.extra_headers),
        ]
        self._metrics.dlq_records.labels(letter.stream, letter.stage, letter.reason).inc()
        key = letter.key.encode() if letter.key is not None else letter.stream.encode()
        await self._produce(self._config.dlq_topic, key, letter.raw, headers, letter.received_ns)

    async def _produce(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        headers: Headers | None,
        received_ns: int,
    ) -> None:
        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            self._on_delivery(err, msg, received_ns)

        refusals = 0
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=on_delivery
                )
                break
            except BufferError:
                # The producer queue is full: wait for acknowledgements to make room.
                self._space.clear()
                try:
                    await asyncio.wait_for(self._space.wait(), timeout=1.0)
                except TimeoutError:
                    log.debug("producer queue still full")
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if err.fatal():
                    raise SinkError(f"producer failed fatally: {err.name()}") from None
                # A refusal such as a topic-level error cached from the last
                # metadata response: the record is kept and offered again.
                self._metrics.delivery_failures.labels(topic, err.name()).inc()
                refusals += 1
                delay = min(5.0, 0.05 * 2**refusals)
                log.warning(
                    "producer refused a record; retrying",
                    extra={"topic": topic, "error": err.name(), "delay_s": delay},
                )
                await asyncio.sleep(delay)
        self._metrics.records_produced.labels(topic).inc()

    # --- delivery reports (poll thread) --------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)
            self._metrics.producer_queue.set(len(self._producer))
            if self._loop is not None and not self._space.is_set():
                self._loop.call_soon_threadsafe(self._space.set)

    def _on_delivery(self, err: KafkaError | None, msg: Message, received_ns: int) -> None:
        topic = msg.topic() or ""
        if err is None:
            self._metrics.records_delivered.labels(topic).inc()
            latency = (self._clock_ns() - received_ns) / 1e9
            self._metrics.delivery_latency.labels(topic).observe(max(0.0, latency))
            self._health.set("kafka", True, "")
            return
        self._metrics.delivery_failures.labels(topic, err.name()).inc()
        if self._closing:
            return  # purged at shutdown: already counted in close()'s result
        log.warning("delivery failed; producing again", extra={"topic": topic, "error": err.name()})
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._reproduce, msg, received_ns)

    def _reproduce(self, msg: Message, received_ns: int) -> None:
        """Produce a failed record again so a delivery timeout never loses it."""
        topic = msg.topic() or ""
        key = msg.key()
        value = msg.value()
        raw_headers = msg.headers()
        headers: Headers | None = (
            list(raw_headers.items()) if isinstance(raw_headers, dict) else raw_headers
        )
        task = asyncio.ensure_future(
            self._produce(
                topic,
                key if isinstance(key, bytes) else b"",
                value if isinstance(value, bytes) else b"",
                headers,
                received_ns,
            )
        )
        self._retry_tasks.add(task)
        task.add_done_callback(self._retry_tasks.discard)


class SinkError(Exception):
    """The producer is unusable; the pipeline must stop or rebuild it."""


def producer_factory(
    conf: Mapping[str, Any],
) -> Callable[[Callable[[KafkaError], None]], ProducerLike]:
    """A factory the sink calls with its error callback to build the real producer."""

    def build(on_error: Callable[[KafkaError], None]) -> ProducerLike:
        full = dict(conf)
        full["error_cb"] = on_error
        # librdkafka's own log lines go through logging, in the same format as ours.
        full["logger"] = logging.getLogger("librdkafka")
        producer: ProducerLike = Producer(full)
        return producer

    return build
