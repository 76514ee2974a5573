"""``connector dev``: the whole product on one machine with nothing installed.

Starts an in-process Kafka-protocol cluster (librdkafka's mock cluster), a
Confluent-compatible schema registry, a T+ market-data simulator and the
connector wired to them, then prints where each listens in ``NAME=value``
lines that scripts can parse.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from prometheus_client import CollectorRegistry

from connector.app import Connector, RuntimeInfo, StartupError, StoppedError
from connector.delivery.serde import SchemaSetupError
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.ops import process_policy
from connector.settings import Settings, parse_settings
from connector.simulators import tastytrade as tastytrade_sim
from connector.simulators import tplus_oms as tplus_oms_sim
from connector.simulators.tplus_market import TplusMarketSimulator

log = logging.getLogger(__name__)

DEV_PARTITIONS = 3


@dataclass(frozen=True)
class DevOptions:
    duration_s: float | None = None
    assets: list[str] = field(default_factory=lambda: ["1", "2"])
    metrics_port: int = 9108
    fault_interval_s: float = 0.0
    seed: int = 1


def dev_settings(
    bootstrap: str,
    registry_url: str,
    venue_url: str,
    assets: list[str],
    metrics_port: int,
    tastytrade: dict[str, Any] | None = None,
    tplus_oms: dict[str, Any] | None = None,
) -> Settings:
    """The connector's configuration against the embedded stack.

    ``tastytrade`` is the section for a running tastytrade simulator
    (``connector.simulators.tastytrade.connector_section``); without it that
    source stays off. ``tplus_oms`` likewise is the ``tplus.oms`` section
    for a running OMS simulator (``connector.simulators.tplus_oms.connector_section``).
    """
    return parse_settings(
        {
            **({"tastytrade": tastytrade} if tastytrade is not None else {}),
            "name": "dev",
            "kafka": {"bootstrap_servers": bootstrap, "create_topics": False, "linger_ms": 2},
            "schema_registry": {"url": registry_url, "auto_register": True},
            "metrics": {"host": "127.0.0.1", "port": metrics_port},
            "logging": {"level": "INFO", "json_format": False},
            "shutdown_grace_s": 10,
            "tplus": {
                "market_data": {
                    "base_url": venue_url,
                    "assets": assets,
                    "kline_interval": "1m",
                    "websocket": {
                        "silence_timeout_s": 15,
                        "backoff": {"initial_s": 0.2, "max_s": 5},
                    },
                },
                **({"oms": tplus_oms} if tplus_oms is not None else {}),
            },
        },
        origin="connector dev",
    )


async def _inject_faults(sim: TplusMarketSimulator, assets: list[str], every_s: float) -> None:
    """Round-robin faults, so the gap, reconnect and DLQ paths show in the metrics."""
    kinds = itertools.cycle(("gap", "bad_frame", "disconnect"))
    asset_cycle = itertools.cycle(assets)
    while True:
        await asyncio.sleep(every_s)
        kind = next(kinds)
        if kind == "gap":
            asset = next(asset_cycle)
            sim.skip_sequence(asset, 2)
            log.info("fault injected: sequence gap", extra={"asset": asset})
        elif kind == "bad_frame":
            sim.send_garbage("depth", '{"bids": "not a list"}')
            log.info("fault injected: bad depth frame")
        else:
            await sim.disconnect_all(1011)
            log.info("fault injected: venue disconnect")


async def _report(registry: CollectorRegistry, out: TextIO, every_s: float = 5.0) -> None:
    """Print delivered counts per topic so a person sees records flowing."""
    while True:
        await asyncio.sleep(every_s)
        counts: dict[str, float] = {}
        for metric in registry.collect():
            if metric.name == "connector_records_delivered":
                for sample in metric.samples:
                    if sample.name.endswith("_total"):
                        counts[sample.labels["topic"]] = sample.value
        summary = " ".join(f"{t}={int(v)}" for t, v in sorted(counts.items())) or "none yet"
        print(f"delivered: {summary}", file=out, flush=True)


async def run_dev_async(options: DevOptions, stop: asyncio.Event, out: TextIO = sys.stdout) -> int:
    with MockCluster(brokers=3) as cluster, RegistryServer() as registry_server:
        registry_url = registry_server.start()
        sim = TplusMarketSimulator(options.assets, seed=options.seed)
        venue_url = await sim.start()
        tastytrade = tastytrade_sim.TastytradeSimulator(
            tastytrade_sim.DEV_ACCOUNTS, seed=options.seed, event_interval_s=0.5
        )
        oms = tplus_oms_sim.dev_simulator(seed=options.seed)
        try:
            await tastytrade.start()
            await oms.start()
            settings = dev_settings(
                cluster.bootstrap_servers,
                registry_url,
                venue_url,
                options.assets,
                options.metrics_port,
                tastytrade=tastytrade_sim.connector_section(tastytrade),
                tplus_oms=tplus_oms_sim.connector_section(oms),
            )
            for topic in [*settings.topics().values(), settings.kafka.dlq_topic]:
                cluster.create_topic(topic, partitions=DEV_PARTITIONS)
            environ = {
                **tastytrade_sim.connector_environ(tastytrade),
                **tplus_oms_sim.connector_environ(oms),
            }
            connector = Connector(settings, environ=environ)

            def started(info: RuntimeInfo) -> None:
                process_policy.apply_after_startup()
                topics = ",".join([*settings.topics().values(), settings.kafka.dlq_topic])
                print(f"KAFKA_BOOTSTRAP={cluster.bootstrap_servers}", file=out)
                print(f"SCHEMA_REGISTRY_URL={registry_url}", file=out)
                print(f"METRICS_URL={info.metrics_url}", file=out)
                print(f"TPLUS_MDS_URL={venue_url}", file=out)
                print(f"TPLUS_OMS_URL={oms.base_url}", file=out)
                print(f"TASTYTRADE_API_URL={tastytrade.api_url}", file=out)
                print(f"TASTYTRADE_STREAMER_URL={tastytrade.streamer_url}", file=out)
                print(f"TOPICS={topics}", file=out)
                print(
                    "try: connector tail tplus.trades --from-beginning "
                    f"--bootstrap {cluster.bootstrap_servers} --registry {registry_url}",
                    file=out,
                    flush=True,
                )

            helpers = [asyncio.create_task(_report(connector.registry, out))]
            if options.fault_interval_s > 0:
                helpers.append(
                    asyncio.create_task(
                        _inject_faults(sim, options.assets, options.fault_interval_s)
                    )
                )
                helpers.append(
                    asyncio.create_task(
                        tastytrade_sim.inject_faults(tastytrade, options.fault_interval_s)
                    )
                )
                helpers.append(
                    asyncio.create_task(tplus_oms_sim.inject_faults(oms, options.fault_interval_s))
                )
            try:
                remaining = await connector.run(stop, on_started=started)
            finally:
                for task in helpers:
                    task.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
        finally:
            await oms.stop()
            await tastytrade.stop()
            await sim.stop()
    print(f"stopped; records left undelivered: {remaining}", file=out, flush=True)
    return 0


def run_dev(options: DevOptions) -> int:
    # The simulator's per-connection and per-request lines drown the connector's own.
    for noisy in (
        "connector.simulators.tplus_market.wire",
        "connector.simulators.tastytrade.wire",
        "connector.simulators.tplus_oms.wire",
        "httpx",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if options.duration_s is not None:
            loop.call_later(options.duration_s, stop.set)
        return await run_dev_async(options, stop)

    try:
        return asyncio.run(main())
    except (StartupError, SchemaSetupError) as exc:
        print(f"connector dev: start-up failed: {exc}", file=sys.stderr)
        return 1
    except StoppedError as exc:
        print(f"connector dev: stopped: {exc}", file=sys.stderr)
        return 1
