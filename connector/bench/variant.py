"""One benchmark variant in its own process: the connector, the naive bridge or raw forward.

Run by the benchmark as ``python -m connector.bench.variant SPEC_JSON``; it
prints one JSON line with what it measured. A process per variant keeps
CPU time and peak RSS per variant, and keeps one variant's garbage and
threads out of another's figures.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from prometheus_client import CollectorRegistry
from websockets.asyncio.client import connect

from connector.app import Connector
from connector.bench import naive
from connector.bench.feed import DEPTH_PREFIX, STREAMER_PATH
from connector.bench.frames import ACCOUNT
from connector.bench.meter import Meter
from connector.delivery.serde import registry_client
from connector.delivery.sink import KafkaSink, producer_config
from connector.governance.catalog import schema_text
from connector.ops import process_policy
from connector.settings import SchemaRegistrySettings, Settings, parse_settings
from connector.venues.tastytrade.notifications import ORDERS
from connector.venues.tplus.market_data import DEPTH_STREAM

CONNECTOR = "connector"
NAIVE = "naive"
RAW = "raw"
VARIANTS = (CONNECTOR, NAIVE, RAW)

DEPTH = "depth"
ORDERS_STREAM = "orders"

RAW_TOPICS = {DEPTH: "bench.raw.depth", ORDERS_STREAM: "bench.raw.orders"}
NAIVE_TOPICS = {DEPTH: "bench.naive.depth", ORDERS_STREAM: "bench.naive.orders"}
CONNECTOR_TOPICS = {DEPTH: "tplus.depth", ORDERS_STREAM: "tastytrade.orders"}

_TOKEN_ENV = "BENCH_TASTYTRADE_TOKEN"
_BASELINE_RECORDS = 2
"""Records the tastytrade baseline adds (the balance and the trading status served)."""
_BASELINE_READINGS = 6
"""Receive clock readings before the first notification: the connect reply, five REST answers."""


@dataclass(frozen=True)
class VariantSpec:
    """What one variant process runs."""

    variant: str
    stream: str
    bootstrap: str
    registry_url: str
    base_url: str
    events: int
    """Venue events per asset (depth) or in total (orders)."""
    assets: list[str] = field(default_factory=lambda: ["1"])
    warmup: int = 0
    """Events per stream before ``events``, sent and delivered but not measured."""
    linger_ms: int = 1
    compression: str = "lz4"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> VariantSpec:
        return cls(**json.loads(text))


def kafka_conf(spec: VariantSpec) -> dict[str, Any]:
    """The same delivery settings for every variant: acks=all, idempotence, same batching."""
    return producer_config(
        spec.bootstrap,
        client_id=f"bench-{spec.variant}",
        compression=spec.compression,
        linger_ms=spec.linger_ms,
        delivery_timeout_ms=0,
    )


# --- the connector ------------------------------------------------------------------


def connector_settings(spec: VariantSpec) -> Settings:
    ws_url = spec.base_url.replace("http://", "ws://", 1)
    data: dict[str, Any] = {
        "name": "bench",
        "kafka": {
            "bootstrap_servers": spec.bootstrap,
            "linger_ms": spec.linger_ms,
            "compression": spec.compression,
        },
        "schema_registry": {"url": spec.registry_url, "auto_register": True},
        "metrics": {"host": "127.0.0.1", "port": 0},
        "logging": {"level": "WARNING", "json_format": False},
        "shutdown_grace_s": 10,
        "tplus": {
            "market_data": {
                "enabled": spec.stream == DEPTH,
                "base_url": spec.base_url,
                "assets": spec.assets,
                "trades": False,
                "klines": False,
            }
        },
    }
    if spec.stream == ORDERS_STREAM:
        data["tastytrade"] = {
            "account_streamer": {
                "enabled": True,
                "api_url": spec.base_url,
                "streamer_url": ws_url + STREAMER_PATH,
                "accounts": [ACCOUNT],
                "auth": {"scheme": "session", "session_token": {"env": _TOKEN_ENV}},
            }
        }
    return parse_settings(data)


class _MeteredConnector(Connector):
    """The connector as shipped, with the meter's clock and an ack observer."""

    def __init__(self, settings: Settings, meter: Meter) -> None:
        super().__init__(
            settings,
            registry=CollectorRegistry(),
            clock_ns=meter.clock_ns,
            environ={_TOKEN_ENV: "bench-session-token"},
        )
        self._meter = meter

    def _build_sink(self, client: Any, topics: dict[str, str]) -> KafkaSink:
        # The sink reads the clock at acknowledgements: those are not receive readings.
        meter_clock, self._clock_ns = self._clock_ns, time.time_ns
        try:
            sink = super()._build_sink(client, topics)
        finally:
            self._clock_ns = meter_clock
        sink.observe_acks(self._meter.ack)
        return sink


async def run_connector(spec: VariantSpec) -> dict[str, Any]:
    if spec.stream == DEPTH:
        streams = len(spec.assets)
        readings = acks = streams * (1 + spec.warmup)  # a snapshot per asset, then the warm-up
    else:
        streams = 1
        readings, acks = _BASELINE_READINGS + spec.warmup, _BASELINE_RECORDS + spec.warmup
    events = spec.events * streams
    meter = Meter(events + acks, skip_readings=readings, skip_acks=acks)
    meter.bind(asyncio.get_running_loop())
    connector = _MeteredConnector(connector_settings(spec), meter)
    stop = asyncio.Event()
    # As ``connector run`` does once started (see process_policy).
    task = asyncio.create_task(
        connector.run(stop, on_started=lambda _info: process_policy.apply_after_startup())
    )
    done = asyncio.create_task(meter.done.wait())
    await asyncio.wait([task, done], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    left = await task
    if not meter.done.is_set():
        raise RuntimeError(f"the connector stopped after {meter.acked} acknowledgements")
    done.cancel()
    out = _result(meter, events)
    out["undelivered"] = left
    discarded = connector.registry.get_sample_value(
        "connector_events_discarded_total",
        {"venue": "tplus", "stream": "tplus.depth", "reason": "backpressure"},
    )
    out["shed"] = int(discarded or 0)
    return out


# --- raw forward --------------------------------------------------------------------


class _RawForwarder:
    """Frame bytes to Kafka untouched; one bound delivery callback, FIFO receive times.

    All frames of a run share one key, hence one partition, whose delivery
    reports arrive in production order: a queue of receive times is enough.
    """

    def __init__(self, spec: VariantSpec, meter: Meter) -> None:
        self._meter = meter
        self._producer = Producer(kafka_conf(spec))
        self._received: deque[int] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def report(self, err: KafkaError | None, msg: Message) -> None:
        received = self._received.popleft()
        if err is None:
            self._meter.ack(received, time.time_ns())

    async def run(self, url: str, topic: str, key: bytes, count: int) -> None:
        self._thread.start()
        produce, received, clock = self._producer.produce, self._received, self._meter.clock_ns
        try:
            async with connect(url, compression=None, max_size=None) as ws:
                for _ in range(count):
                    data = await ws.recv(decode=False)
                    received.append(clock())
                    while True:
                        try:
                            produce(topic, data, key, on_delivery=self.report)
                            break
                        except BufferError:
                            await asyncio.sleep(0.001)
                await self._meter.done.wait()
        finally:
            self._stop.set()
            self._thread.join()
            self._producer.flush(10)


async def run_raw(spec: VariantSpec) -> dict[str, Any]:
    meter = _single_stream_meter(spec)
    url, key = _venue(spec)
    count = spec.warmup + spec.events
    await _RawForwarder(spec, meter).run(url, RAW_TOPICS[spec.stream], key, count)
    return _result(meter, spec.events)


# --- naive bridge -------------------------------------------------------------------


async def run_naive(spec: VariantSpec) -> dict[str, Any]:
    meter = _single_stream_meter(spec)
    url, _key = _venue(spec)
    count = spec.warmup + spec.events
    stream = DEPTH_STREAM if spec.stream == DEPTH else ORDERS
    client = registry_client(SchemaRegistrySettings(url=spec.registry_url))
    try:
        bridge = naive.NaiveBridge(
            kafka_conf(spec),
            client,
            schema_text(stream),
            NAIVE_TOPICS[spec.stream],
            meter,
        )
        if spec.stream == DEPTH:
            await bridge.run(url, count, naive.depth_value(spec.assets[0]), spec.assets[0])
        else:
            await bridge.run(url, count, naive.order_value, ACCOUNT)
    finally:
        client.close()
    return _result(meter, spec.events)


# --- common -------------------------------------------------------------------------


def _single_stream_meter(spec: VariantSpec) -> Meter:
    meter = Meter(spec.warmup + spec.events, skip_readings=spec.warmup, skip_acks=spec.warmup)
    meter.bind(asyncio.get_running_loop())
    return meter


def _venue(spec: VariantSpec) -> tuple[str, bytes]:
    ws = spec.base_url.replace("http://", "ws://", 1)
    if spec.stream == DEPTH:
        return ws + DEPTH_PREFIX + spec.assets[0], spec.assets[0].encode()
    return ws + STREAMER_PATH, ACCOUNT.encode()


def _result(meter: Meter, events: int) -> dict[str, Any]:
    result = meter.result(events)
    out = asdict(result)
    out["latency"] = asdict(result.latency) if result.latency is not None else None
    return out


RUNNERS = {CONNECTOR: run_connector, NAIVE: run_naive, RAW: run_raw}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = VariantSpec.from_json(args[0])
    result = asyncio.run(RUNNERS[spec.variant](spec))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
