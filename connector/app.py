"""The one place that wires settings, registry, producer, sources and the ops port together.

Everything else receives its collaborators; only this module decides which
concrete ones exist. Start-up order is chosen so that nothing reads from a
venue before its records can be encoded and delivered: ops port, schemas,
producer, then the sockets.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from prometheus_client import CollectorRegistry

from connector import __version__
from connector.delivery.serde import (
    AvroEncoder,
    RegistryUnavailable,
    SchemaSetupError,
    pin_schemas,
    registry_client,
)
from connector.delivery.sink import (
    Encoder,
    KafkaSink,
    SinkConfig,
    SinkError,
    producer_config,
    producer_factory,
)
from connector.delivery.spool import Spool, SpoolError
from connector.delivery.startup import KafkaUnavailable, wait_for_brokers
from connector.governance import catalog
from connector.ops.health import Health
from connector.ops.http_server import OpsServer
from connector.ops.metrics import Metrics
from connector.pipeline import DeadLetterLimiter, Publisher, preset_dead_letters
from connector.secrets import resolve_kafka_security
from connector.settings import ConfigError, Settings
from connector.sources import book_checkpoints, tastytrade_account, tplus_market, tplus_oms
from connector.sources.backoff import Backoff
from connector.sources.context import Service, SourceContext
from connector.sources.supervisor import Supervisor, Unrecoverable

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The connector cannot start; the message says what to fix."""


class StoppedError(Exception):
    """The connector had to stop while running; the message says why."""


@dataclass(frozen=True, slots=True)
class RuntimeInfo:
    """Where a started connector can be reached."""

    metrics_url: str
    schema_ids: dict[str, int]


class Connector:
    """One connector process: its streams, its producer and its ops port."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        rng: random.Random | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = Metrics(self.registry, version=__version__)
        self.health = Health()
        self.metrics.ready.set_function(lambda: 1.0 if self.health.ready() else 0.0)
        self._rng = rng if rng is not None else random.Random()
        self._clock_ns = clock_ns
        self._environ: Mapping[str, str] = {} if environ is None else environ
        self._kafka_security: dict[str, str] = {}
        """``kafka.security`` with its references read, at the start of run()."""

    async def run(
        self,
        stop: asyncio.Event,
        on_started: Callable[[RuntimeInfo], None] | None = None,
    ) -> int:
        """Run until ``stop`` is set; return the number of records left unflushed."""
        s = self.settings
        ops = OpsServer(
            self.registry,
            self.health,
            s.metrics.host,
            s.metrics.port,
            refused=self.metrics.ops_connections_refused,
        )
        try:
            port = await ops.start()
        except OSError as exc:
            raise StartupError(
                f"cannot serve metrics on {s.metrics.host}:{s.metrics.port} "
                f"(metrics.port): {exc.strerror or exc}"
            ) from None
        try:
            client = registry_client(s.schema_registry, self._environ)
            self._kafka_security = resolve_kafka_security(s.kafka.security, self._environ)
        except ConfigError as exc:  # a secret file or variable that cannot be read
            await ops.stop()
            raise StartupError(str(exc)) from None
        try:
            topics = s.topics()
            self.health.set("schemas", False, "registering")
            schema_ids = await self._pin_schemas(client, topics)
            self.health.set("schemas", True, "")
            spool = await self._open_spool()
            sink = self._build_sink(client, topics, spool)
            await self._wait_for_brokers(sink)
            if s.kafka.create_topics:
                await asyncio.to_thread(self._create_topics, [*topics.values(), s.kafka.dlq_topic])
            preset_dead_letters(self.metrics, list(topics))
            await sink.start()
            host = "127.0.0.1" if s.metrics.host in ("0.0.0.0", "") else s.metrics.host
            if on_started is not None:
                on_started(RuntimeInfo(f"http://{host}:{port}/metrics", schema_ids))
            restarted = spool is not None and spool.restarted
            remaining = await self._run_sources(sink, stop, restarted)
        finally:
            client.close()
            await ops.stop()
        return remaining

    async def _pin_schemas(
        self, client: SchemaRegistryClient, topics: dict[str, str]
    ) -> dict[str, int]:
        s = self.settings.schema_registry
        schemas = {topic: catalog.schema_text(stream) for stream, topic in topics.items()}
        backoff = Backoff(0.5, 10.0, 2.0, self._rng)
        deadline = time.monotonic() + s.startup_timeout_s
        while True:
            try:
                return await asyncio.to_thread(
                    pin_schemas, client, schemas, auto_register=s.auto_register
                )
            except SchemaSetupError:
                raise
            except RegistryUnavailable as exc:
                # Unreachable, a 5xx, or (pinned mode) a schema not registered yet.
                self.metrics.registry_errors.labels("startup").inc()
                self.health.set("schemas", False, f"{s.url}: {exc}")
                if time.monotonic() >= deadline:
                    raise StartupError(
                        f"schema registry at {s.url} not usable for {s.startup_timeout_s:g} s "
                        f"(schema_registry.startup_timeout_s): {exc}"
                    ) from None
                delay = backoff.next_delay()
                log.warning(
                    "schema registry not usable; retrying",
                    extra={"url": s.url, "error": str(exc), "delay_s": round(delay, 3)},
                )
                await asyncio.sleep(delay)

    async def _wait_for_brokers(self, sink: KafkaSink) -> None:
        k = self.settings.kafka
        try:
            await wait_for_brokers(
                sink.probe, k.bootstrap_servers, k.startup_timeout_s, self.health, self._rng
            )
        except KafkaUnavailable as exc:
            await sink.close(0)
            raise StartupError(str(exc)) from None

    def new_topics(self, names: list[str]) -> list[NewTopic]:
        """The topics to create: the books topic compacted, the rest with the cluster's defaults."""
        k = self.settings.kafka
        compacted = {self.settings.topics().get(book_checkpoints.BOOKS_STREAM)}
        return [
            NewTopic(
                n,
                num_partitions=k.topic_partitions,
                replication_factor=k.topic_replication,
                config=dict(book_checkpoints.TOPIC_CONFIG) if n in compacted else {},
            )
            for n in names
        ]

    def _create_topics(self, names: list[str]) -> None:
        """Create missing topics; a cluster that forbids it is not an error."""
        k = self.settings.kafka
        admin = AdminClient(
            {
                "bootstrap.servers": k.bootstrap_servers,
                **self._kafka_security,
            }
        )
        futures = admin.create_topics(self.new_topics(names), request_timeout=15)
        for name, future in futures.items():
            try:
                future.result()
                log.info("topic created", extra={"topic": name})
            except KafkaException as exc:
                err = exc.args[0]
                if err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                log.warning("topic not created", extra={"topic": name, "error": err.name()})

    async def _open_spool(self) -> Spool | None:
        s = self.settings.spool
        if not s.enabled:
            return None
        try:
            return await asyncio.to_thread(
                Spool.open,
                s.path,
                self.settings.name,
                max_bytes=s.max_bytes,
                market_level=s.sync.market_data,
                account_level=s.sync.account,
                metrics=self.metrics,
            )
        except SpoolError as exc:
            raise StartupError(str(exc)) from None

    def _build_sink(
        self, client: SchemaRegistryClient, topics: dict[str, str], spool: Spool | None
    ) -> KafkaSink:
        s = self.settings
        encoders: dict[str, Encoder] = {
            stream: AvroEncoder(
                client,
                topic,
                catalog.schema_text(stream),
                auto_register=s.schema_registry.auto_register,
            )
            for stream, topic in topics.items()
        }
        conf = producer_config(
            s.kafka.bootstrap_servers,
            client_id=f"{s.kafka.client_id}-{s.name}",
            compression=s.kafka.compression,
            linger_ms=s.kafka.linger_ms,
            delivery_timeout_ms=s.kafka.delivery_timeout_ms,
            queue_max_messages=s.kafka.queue_max_messages,
            queue_max_kbytes=s.kafka.queue_max_kbytes,
            extra={
                "max.in.flight.requests.per.connection": str(s.kafka.max_in_flight),
                **self._kafka_security,
            },
        )
        return KafkaSink(
            producer_factory(conf),
            SinkConfig(
                s.name,
                topics,
                s.kafka.dlq_topic,
                queue_max_messages=s.kafka.queue_max_messages,
                congestion_watermark=s.kafka.congestion_watermark,
                dlq_max_bytes=s.kafka.dlq_max_bytes,
                spool_shed_watermark=s.spool.shed_watermark,
                dlq_max_pending_bytes=s.kafka.dlq_max_pending_bytes,
            ),
            encoders,
            self.metrics,
            self.health,
            self._clock_ns,
            spool=spool,
        )

    def _services(self, ctx: SourceContext) -> list[Service]:
        """Every source's long-running parts, one builder per venue section."""
        s = self.settings
        return [
            *tplus_market.build(s.tplus.market_data, ctx),
            *tplus_oms.build(s.tplus.oms, ctx),
            *tastytrade_account.build(s.tastytrade.account_streamer, ctx),
        ]

    async def _run_sources(self, sink: KafkaSink, stop: asyncio.Event, restarted: bool) -> int:
        k = self.settings.kafka
        limiter = DeadLetterLimiter(self.metrics, k.dlq_rate_per_s, k.dlq_burst)
        publisher = Publisher(sink, self.metrics, limiter)
        async with httpx.AsyncClient(timeout=10.0) as http:
            ctx = SourceContext(
                publisher,
                self.metrics,
                self.health,
                http,
                self._rng,
                self._clock_ns,
                self._environ,
                restarted=restarted,
            )
            try:
                services = self._services(ctx)
            except ConfigError as exc:  # e.g. a secret that cannot be read
                await sink.close(0)
                raise StartupError(str(exc)) from None
            supervisor = Supervisor(self.metrics, self.health, self._rng, fatal=(SinkError,))
            sources = asyncio.create_task(supervisor.run(services), name="sources")
            stopper = asyncio.create_task(stop.wait(), name="stop")
            try:
                await asyncio.wait([stopper, sources], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (stopper, sources):
                    task.cancel()
                _, ended = await asyncio.gather(stopper, sources, return_exceptions=True)
        if isinstance(ended, Unrecoverable):
            await sink.close(self.settings.shutdown_grace_s)
            raise StoppedError(str(ended))
        log.info(
            "stopping: flushing the producer", extra={"grace_s": self.settings.shutdown_grace_s}
        )
        return await sink.close(self.settings.shutdown_grace_s)
