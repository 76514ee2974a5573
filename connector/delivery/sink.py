"""The one module that talks to Kafka: records and dead letters out, acknowledgements in.

confluent-kafka's ``Producer`` is driven without blocking the event loop:
``produce()`` only enqueues, a dedicated thread runs ``poll()`` to fire
delivery reports, and anything that changes pipeline state is marshalled back
onto the loop with ``call_soon_threadsafe``.

Nothing handed to the sink is lost while the process lives. Every record
stays in an in-flight ledger, in production order, until the brokers
acknowledge it:

* the producer never times a record out by default (``message.timeout.ms=0``),
  so a broker outage only delays records, in order, behind librdkafka's
  own idempotent retries;
* a record whose delivery still fails is produced again, or after repeated
  permanent failures sent to the dead-letter topic with the reason;
* a fatal producer error (lost idempotence state) replaces the producer and
  re-produces every unacknowledged record from the ledger, in order;
* a full producer queue makes ``send`` wait, which stops the WebSocket reader
  that called it instead of buffering without bound.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from connector.ops.health import Health
from connector.ops.log_throttle import RateLimitedLog, Throttle
from connector.ops.metrics import Metrics, TopicInstruments, preset
from connector.pipeline import Waiting, settle
from connector.records import AckHook, DeadLetter, DeadLetterHeader, OptionalHeader, Record, Stage
from connector.venues.errors import Reason

log = logging.getLogger(__name__)

Encoder = Callable[[dict[str, Any]], bytes]
Headers = list[tuple[str, str | bytes | None]]
DeliveryCallback = Callable[[KafkaError | None, Message], None]
AckObserver = Callable[[int, int], None]
"""Told ``(received_ns, acked_ns)`` of every acknowledged record."""

#: Delivery attempts for a record the brokers refuse permanently before it is dead-lettered.
PERMANENT_FAILURE_ATTEMPTS = 3

#: Delivery errors that mean the idempotent producer's state is lost: the
#: producer is replaced and the record re-produced from the ledger, in order.
_PRODUCER_FATAL = frozenset(
    {
        KafkaError._FATAL,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.UNKNOWN_PRODUCER_ID,
    }
)


class ProducerLike(Protocol):
    """The part of confluent-kafka's Producer the sink uses."""

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


ProducerFactory = Callable[[Callable[[KafkaError], None]], ProducerLike]


@dataclass(frozen=True, slots=True)
class SinkConfig:
    """What the sink needs beyond the producer itself."""

    connector_name: str
    topics: Mapping[str, str]
    dlq_topic: str
    queue_max_messages: int = 100_000
    congestion_watermark: float = 0.9
    dlq_max_bytes: int = 900_000


@dataclass(slots=True)
class _Pending:
    """A record handed to the producer and not yet acknowledged."""

    topic: str
    key: bytes
    value: bytes
    headers: Headers | None
    received_ns: int
    enqueued: float
    instruments: TopicInstruments
    attempts: int = 0
    on_ack: AckHook | None = None


class SinkError(Exception):
    """The sink cannot go on (it is closed)."""


def producer_config(
    bootstrap: str,
    *,
    client_id: str,
    compression: str,
    linger_ms: int,
    delivery_timeout_ms: int,
    queue_max_messages: int = 100_000,
    queue_max_kbytes: int = 262_144,
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
        # 0 = never give up on a record: outages delay, they do not drop.
        "message.timeout.ms": delivery_timeout_ms,
        # Bounded queue: when it fills, produce() raises BufferError and the
        # pipeline waits, rather than growing memory without limit.
        "queue.buffering.max.messages": queue_max_messages,
        "queue.buffering.max.kbytes": queue_max_kbytes,
    }
    if extra:
        conf.update(extra)
    return conf


def producer_factory(conf: Mapping[str, Any]) -> ProducerFactory:
    """A factory the sink calls with its error callback to build (and rebuild) the producer."""

    # librdkafka's own log lines go through logging, in the same format as ours,
    # throttled: an outage logs a line per connection attempt.
    librdkafka_log = RateLimitedLog(logging.getLogger("librdkafka"))

    def build(on_error: Callable[[KafkaError], None]) -> ProducerLike:
        full = dict(conf)
        full["error_cb"] = on_error
        full["logger"] = librdkafka_log
        producer: ProducerLike = Producer(full)
        return producer

    return build


class KafkaSink:
    """Produces records and dead letters, and accounts for every acknowledgement."""

    def __init__(
        self,
        factory: ProducerFactory,
        config: SinkConfig,
        encoders: Mapping[str, Encoder],
        metrics: Metrics,
        health: Health,
        clock_ns: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self._config = config
        self._metrics = metrics
        self._health = health
        self._clock_ns = clock_ns
        self._monotonic = monotonic
        self._producer = factory(self.on_error)
        self._generation = 0
        # Guards the producer swap against the poll thread, and the ledger.
        self._producer_lock = threading.Lock()
        self._ledger_lock = threading.Lock()
        # Insertion-ordered: the rebuild re-produces it in production order.
        self._pending: dict[int, _Pending] = {}
        self._next_id = 0
        self._routes = {
            stream: (topic, encoders[stream], metrics.topic(topic))
            for stream, topic in config.topics.items()
            if stream in encoders
        }
        # A record the brokers refuse is dead-lettered under its stream's name, the DLQ
        # metrics' and headers' vocabulary, not its topic's.
        self._streams = {topic: stream for stream, topic in config.topics.items()}
        metrics.topic(config.dlq_topic)
        preset(metrics.producer_rebuilds, *((KafkaError(c).name(),) for c in _PRODUCER_FATAL))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._space = asyncio.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._rebuilding: asyncio.Task[None] | None = None
        # Closed while a rebuild re-produces the ledger, so new records cannot overtake it.
        self._open = asyncio.Event()
        self._open.set()
        self._closing = False
        self._congested_at = int(config.queue_max_messages * config.congestion_watermark)
        self._ack_observer: AckObserver | None = None
        self._kafka_ok = False
        self._error_throttle = Throttle()
        metrics.oldest_undelivered.set_function(self.oldest_undelivered_s)
        metrics.producer_queue.set_function(lambda: float(self.pending))
        metrics.producer_queue_capacity.set(config.queue_max_messages)

    # --- lifecycle -----------------------------------------------------------------

    async def start(self, metadata_timeout_s: float = 10.0) -> None:
        """Start the delivery thread and wait until the brokers answer."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._poll_loop, name="kafka-poll", daemon=True)
        self._thread.start()
        self._kafka_health(False, "connecting")
        await asyncio.to_thread(self._producer.list_topics, None, metadata_timeout_s)
        self._kafka_health(True, "")

    def probe(self, timeout_s: float) -> None:
        """Ask the brokers for metadata (blocking, before ``start``); raise if none answers."""
        try:
            self._producer.list_topics(None, timeout_s)
        finally:
            # Nothing polls before start(): serve the log lines and errors the attempt queued.
            self._producer.poll(0)

    async def close(self, timeout_s: float) -> int:
        """Flush within ``timeout_s``; return how many records were left undelivered.

        Records still unacknowledged after the grace period are purged (so
        closing cannot hang on an unreachable cluster) and reported by count.
        """
        if self._closing:
            return 0
        deadline = self._monotonic() + timeout_s
        while self.pending and self._monotonic() < deadline:
            # Re-produce tasks and a rebuild may still be adding to the queue.
            await asyncio.to_thread(self._flush, min(0.5, deadline - self._monotonic()))
        self._closing = True
        remaining = self.pending
        if remaining:
            log.error("records left undelivered at shutdown", extra={"count": remaining})
            with self._producer_lock:
                self._producer.purge(True, True, False)
        for task in list(self._tasks):
            task.cancel()
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        await asyncio.to_thread(self._producer.close)
        return remaining

    def _flush(self, timeout_s: float) -> None:
        with self._producer_lock:
            producer, generation = self._producer, self._generation
        try:
            producer.flush(max(0.0, timeout_s))
        except (KafkaException, SystemError) as exc:
            self._on_poll_exception(exc, generation)

    def _kafka_health(self, ok: bool, detail: str) -> None:
        # Acknowledgements only ever report "healthy": checking a flag first
        # keeps the health lock out of the per-record path.
        self._kafka_ok = ok
        self._health.set("kafka", ok, detail)

    def observe_acks(self, observer: AckObserver | None) -> None:
        """Tell ``observer`` each acknowledged record's receive and ack times (poll thread).

        For exact latency percentiles (the benchmark); the histogram only has buckets.
        """
        self._ack_observer = observer

    # --- state other parts read ------------------------------------------------------

    @property
    def pending(self) -> int:
        """Records handed to the sink and not yet acknowledged."""
        with self._ledger_lock:
            return len(self._pending)

    def congested(self) -> bool:
        """True when the producer queue is nearly full: sources that may shed should."""
        # Asked for every depth diff; len() of the ledger needs no lock to be read.
        return len(self._pending) >= self._congested_at

    def oldest_undelivered_s(self) -> float:
        with self._ledger_lock:
            if not self._pending:
                return 0.0
            first = next(iter(self._pending.values()))
        return max(0.0, self._monotonic() - first.enqueued)

    # --- producing -----------------------------------------------------------------

    async def send(self, record: Record) -> None:
        """Encode and enqueue one record; dead-letter it if it cannot be encoded."""
        await settle(self.submit(record))

    def submit(self, record: Record) -> Waiting | None:
        """Produce ``record`` now if the producer can take it, else return what to await.

        Every record takes this path, so the common case makes no coroutine:
        only a record that must wait (a full queue, a producer being replaced)
        or must be dead-lettered returns one. The caller awaits it before
        submitting anything that must follow the record.
        """
        if self._closing:
            raise SinkError("the sink is closed")
        route = self._routes.get(record.stream)
        if route is None:
            return self.dead_letter(
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
        topic, encoder, instruments = route
        try:
            value = encoder(record.value)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            # fastavro reports schema mismatches as ValueError/TypeError; the
            # record's own text goes to the DLQ, never to the log line.
            raw = json.dumps(record.value, default=str).encode()
            return self.dead_letter(
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
        entry = _Pending(
            topic,
            record.key.encode("utf-8"),
            value,
            None,
            record.received_ns,
            self._monotonic(),
            instruments,
            on_ack=record.on_ack,
        )
        if self._open.is_set():
            try:
                self._produce(entry)
            except (BufferError, KafkaException):
                # Offered again, with waiting and error handling, on the slow path.
                return self._enqueue(entry)
            self._produced(entry)
            return None
        return self._enqueue(entry)

    async def dead_letter(self, letter: DeadLetter) -> None:
        """Send a frame that cannot be a record to the DLQ with headers saying why."""
        raw = letter.raw
        headers: Headers = [
            (DeadLetterHeader.CONNECTOR, self._config.connector_name.encode()),
            (DeadLetterHeader.STREAM, letter.stream.encode()),
            (DeadLetterHeader.STAGE, letter.stage.encode()),
            (DeadLetterHeader.REASON, letter.reason.encode()),
            (DeadLetterHeader.DETAIL, letter.detail.encode()),
            (DeadLetterHeader.RECEIVED_NS, str(letter.received_ns).encode()),
            *((k, v.encode()) for k, v in letter.extra_headers),
        ]
        if len(raw) > self._config.dlq_max_bytes:
            # Larger than the brokers accept: keep the head and say so.
            headers.append((OptionalHeader.TRUNCATED_FROM_BYTES, str(len(raw)).encode()))
            raw = raw[: self._config.dlq_max_bytes]
        self._metrics.dlq_records.labels(letter.stream, letter.stage, letter.reason).inc()
        key = letter.key.encode() if letter.key is not None else letter.stream.encode()
        await self._enqueue(
            _Pending(
                self._config.dlq_topic,
                key,
                raw,
                headers,
                letter.received_ns,
                self._monotonic(),
                self._metrics.topic(self._config.dlq_topic),
            )
        )

    async def _enqueue(self, entry: _Pending) -> None:
        if self._closing:
            raise SinkError("the sink is closed")
        while True:
            await self._open.wait()
            try:
                self._produce(entry)
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
                if err.code() == KafkaError._FATAL or err.fatal():
                    await asyncio.shield(self._start_rebuild(err.name()))
                    continue
                # A refusal such as a topic error cached from the last metadata
                # response: the record is kept and offered again.
                entry.attempts += 1
                self._metrics.delivery_failures.labels(entry.topic, err.name()).inc()
                delay = min(5.0, 0.05 * 2**entry.attempts)
                log.warning(
                    "producer refused a record; retrying",
                    extra={"topic": entry.topic, "error": err.name(), "delay_s": delay},
                )
                await asyncio.sleep(delay)
        self._produced(entry)

    def _produced(self, entry: _Pending) -> None:
        entry.instruments.produced.value += 1
        self._serve_reports()

    def _serve_reports(self) -> None:
        """Serve ready delivery reports here, on the loop, as records are produced.

        Under load the loop holds the GIL almost all the time and the poll
        thread, which needs it for every report, falls behind: the ledger
        then grows until sheddable streams shed. Serving reports where the
        records are produced keeps acknowledgements in step with production;
        the poll thread still serves them while the loop is idle. After
        every record, not every few: the poll also lets the poll thread have
        the GIL, and waiting for it (up to the switch interval) was the
        p99 receive → ack latency at 5,000 events/s (docs/benchmarks.md).
        """
        generation = self._generation
        try:
            self._producer.poll(0)
        except (KafkaException, SystemError) as exc:
            self._on_poll_exception(exc, generation)

    def _produce(self, entry: _Pending) -> None:
        """Hand one entry to the current producer and record it in the ledger."""
        # Only this (the loop's) thread adds to the ledger, and a dict's item
        # assignment is atomic against the poll thread's pop: no lock needed.
        ident = self._next_id
        self._next_id += 1
        self._pending[ident] = entry
        on_delivery = functools.partial(self._on_delivery, ident, self._generation)
        try:
            # No producer lock: the producer is only ever replaced on this (the
            # loop's) thread, so it cannot change under this call.
            if entry.headers is None:
                # Positional arguments: keyword parsing is a third of produce()'s cost.
                self._producer.produce(entry.topic, entry.value, entry.key, on_delivery=on_delivery)
            else:
                self._producer.produce(
                    entry.topic,
                    value=entry.value,
                    key=entry.key,
                    headers=entry.headers,
                    on_delivery=on_delivery,
                )
        except BaseException:
            self._pending.pop(ident, None)
            raise

    # --- delivery reports (poll thread) --------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            with self._producer_lock:
                producer, generation = self._producer, self._generation
            try:
                producer.poll(0.1)
            except (KafkaException, SystemError) as exc:
                # A fatal error surfaces here, not in a callback; recovery runs on the loop.
                self._on_poll_exception(exc, generation)
            if self._loop is not None and not self._space.is_set():
                self._loop.call_soon_threadsafe(self._space.set)

    def _on_poll_exception(self, exc: BaseException, generation: int) -> None:
        cause = exc.__cause__ if isinstance(exc, SystemError) else exc
        err = cause.args[0] if isinstance(cause, KafkaException) and cause.args else None
        name = err.name() if isinstance(err, KafkaError) else type(exc).__name__
        log.error("kafka producer failed", extra={"error": name})
        if self._loop is not None and not self._closing:
            self._loop.call_soon_threadsafe(self._schedule_rebuild, generation, name)

    def on_error(self, err: KafkaError) -> None:
        """librdkafka's error callback (runs on the poll thread)."""
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._kafka_health(False, "all brokers down")
        if err.fatal() and self._loop is not None and not self._closing:
            self._loop.call_soon_threadsafe(self._schedule_rebuild, self._generation, err.name())
        suppressed = self._error_throttle.admit(err.code())
        if suppressed is not None:
            extra: dict[str, object] = {"error": err.name()}
            if suppressed:
                extra["suppressed"] = suppressed
            log.warning("kafka client error", extra=extra)

    def _on_delivery(
        self, ident: int, generation: int, err: KafkaError | None, msg: Message
    ) -> None:
        """A delivery report: on the poll thread, or on the loop in ``_serve_reports``."""
        if generation != self._generation:
            return  # a replaced producer's report: the ledger re-produced the record
        if err is None:
            now_ns = self._clock_ns()
            # The tallies are plain numbers: both threads count under the ledger lock.
            with self._ledger_lock:
                entry = self._pending.pop(ident, None)
                if entry is None:
                    return
                instruments = entry.instruments
                instruments.delivered.value += 1
                instruments.latency.observe(max(0.0, (now_ns - entry.received_ns) / 1e9))
            if not self._kafka_ok:
                self._kafka_health(True, "")
            if self._ack_observer is not None:
                self._ack_observer(entry.received_ns, now_ns)
            if entry.on_ack is not None:
                self._report_ack(entry.on_ack, msg)
            return
        name = err.name()
        with self._ledger_lock:
            topic = self._pending[ident].topic if ident in self._pending else ""
        self._metrics.delivery_failures.labels(topic, name).inc()
        if self._closing:
            return  # purged at shutdown: counted in close()'s result
        if err.code() in (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT):
            return  # purged by a rebuild, which re-produces from the ledger
        assert self._loop is not None
        if err.fatal() or err.code() in _PRODUCER_FATAL:
            # Keep the record in the ledger: the rebuild re-produces it in order.
            self._loop.call_soon_threadsafe(self._schedule_rebuild, generation, name)
            return
        self._loop.call_soon_threadsafe(self._retry, ident, name, err.retriable())

    def _report_ack(self, hook: AckHook, msg: Message) -> None:
        """Run a record's ``on_ack`` with its partition and offset, on the loop, unless closed."""
        partition, offset = msg.partition(), msg.offset()
        if self._loop is not None and partition is not None and offset is not None:
            self._loop.call_soon_threadsafe(self._run_ack_hook, hook, partition, offset)

    def _run_ack_hook(self, hook: AckHook, partition: int, offset: int) -> None:
        if not self._closing:
            hook(partition, offset)

    # --- recovery (event loop) -------------------------------------------------------

    def _retry(self, ident: int, error: str, retriable: bool) -> None:
        """Produce a failed record again, or dead-letter one the brokers keep refusing."""
        with self._ledger_lock:
            entry = self._pending.pop(ident, None)
        if entry is None:
            return
        entry.attempts += 1
        permanent = not retriable and error != "_MSG_TIMED_OUT"
        if (
            permanent
            and entry.attempts >= PERMANENT_FAILURE_ATTEMPTS
            and entry.topic != self._config.dlq_topic
        ):
            log.error(
                "brokers refuse a record; dead-lettering it",
                extra={"topic": entry.topic, "error": error},
            )
            letter = DeadLetter(
                self._streams.get(entry.topic, entry.topic),
                Stage.DELIVER,
                Reason.DELIVERY_FAILED,
                f"the brokers refused the record {entry.attempts} times ({error})",
                entry.value,
                entry.received_ns,
                key=entry.key.decode("utf-8", "replace"),
            )
            self._spawn(self.dead_letter(letter))
            return
        log.warning(
            "delivery failed; producing again",
            extra={"topic": entry.topic, "error": error, "attempt": entry.attempts},
        )
        self._spawn(self._enqueue_again(entry))

    async def _enqueue_again(self, entry: _Pending) -> None:
        if entry.attempts > 1:
            await asyncio.sleep(min(5.0, 0.05 * 2**entry.attempts))
        await self._enqueue(entry)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("re-producing a record failed", exc_info=task.exception())

    def _schedule_rebuild(self, generation: int, reason: str) -> None:
        """A report from the poll thread; stale ones (an already replaced producer) are ignored."""
        if not self._closing and generation == self._generation:
            self._start_rebuild(reason)

    def _start_rebuild(self, reason: str) -> asyncio.Task[None]:
        if self._rebuilding is None or self._rebuilding.done():
            self._rebuilding = asyncio.create_task(self._rebuild(reason), name="producer-rebuild")
        return self._rebuilding

    async def _rebuild(self, reason: str) -> None:
        """Replace a producer that failed fatally; re-produce the ledger in order."""
        log.error("replacing the kafka producer", extra={"reason": reason})
        self._metrics.producer_rebuilds.labels(reason).inc()
        self._kafka_health(False, f"producer replaced after {reason}")
        self._open.clear()
        try:
            fresh = await asyncio.to_thread(self._factory, self.on_error)
            with self._producer_lock:
                old, self._producer = self._producer, fresh
                self._generation += 1
            with self._ledger_lock:
                entries = list(self._pending.values())
                self._pending.clear()
            await asyncio.to_thread(self._retire, old)
            for entry in entries:
                while True:
                    try:
                        self._produce(entry)
                        break
                    except BufferError:
                        await asyncio.to_thread(self._flush, 0.5)
        finally:
            self._open.set()

    def _retire(self, producer: ProducerLike) -> None:
        try:
            producer.purge(True, True, False)
            producer.close()
        except (KafkaException, RuntimeError) as exc:
            log.warning("closing the failed producer raised", extra={"error": str(exc)})
