"""``connector dev``: the whole product on one machine with nothing installed.

Starts an in-process Kafka-protocol cluster (librdkafka's mock cluster), a
Confluent-compatible schema registry, a T+ market-data simulator and the
connector wired to them, then prints where each listens in ``NAME=value``
lines that scripts can parse, and writes them to an env file a second shell
can ``source``. A status line follows every few seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import shlex
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from connector.app import Connector, RuntimeInfo, StartupError, StoppedError
from connector.delivery.serde import SchemaSetupError
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.ops import process_policy, progress
from connector.settings import Settings, parse_settings
from connector.simulators import tastytrade as tastytrade_sim
from connector.simulators import tplus_oms as tplus_oms_sim
from connector.simulators.tplus_market import TplusMarketSimulator
from connector.venues.errors import FrameError
from connector.venues.tplus.asset_ids import canonical_asset

log = logging.getLogger(__name__)

DEV_PARTITIONS = 3

#: Seconds between status lines.
STATUS_INTERVAL_S = 5.0


@dataclass(frozen=True)
class DevOptions:
    duration_s: float | None = None
    assets: list[str] = field(default_factory=lambda: ["1", "2"])
    metrics_port: int = 9108
    fault_interval_s: float = 0.0
    seed: int = 1
    env_file: Path | None = None  # None: do not write one


def dev_settings(
    bootstrap: str,
    registry_url: str,
    venue_url: str,
    assets: list[str],
    metrics_port: int,
    tastytrade: dict[str, Any] | None = None,
    tplus_oms: dict[str, Any] | None = None,
    spool_path: Path | None = None,
) -> Settings:
    """The connector's configuration against the embedded stack.

    ``spool_path`` is a directory for this run's spool, new with the run: a
    spool left by an earlier run would replay records framed with another
    registry's schema ids. Without one the spool is off.

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
            "spool": (
                {"path": str(spool_path), "max_bytes": 256 << 20}
                if spool_path is not None
                else {"enabled": False}
            ),
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


def _canonical_assets(assets: list[str]) -> list[str]:
    """Simulate each market under the id the connector subscribes with, the SDK's canonical
    form; an id that has none stays as typed, for the connector's start-up to refuse."""
    out = []
    for asset in assets:
        try:
            out.append(canonical_asset(asset))
        except FrameError:
            out.append(asset)
    return out


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


def write_env_file(path: Path, addresses: dict[str, str]) -> bool:
    """``export NAME=value`` lines, quoted for the shell; False (and a warning) if not written."""
    lines = [f"export {name}={shlex.quote(value)}" for name, value in addresses.items()]
    try:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as exc:
        log.warning("env file not written", extra={"path": str(path), "error": exc.strerror})
        return False
    return True


async def run_dev_async(options: DevOptions, stop: asyncio.Event, out: TextIO = sys.stdout) -> int:
    with (
        MockCluster(brokers=3) as cluster,
        RegistryServer() as registry_server,
        tempfile.TemporaryDirectory(prefix="connector-dev-spool-") as spool_dir,
    ):
        registry_url = registry_server.start()
        assets = _canonical_assets(options.assets)
        sim = TplusMarketSimulator(assets, seed=options.seed)
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
                assets,
                options.metrics_port,
                tastytrade=tastytrade_sim.connector_section(tastytrade),
                tplus_oms=tplus_oms_sim.connector_section(oms),
                spool_path=Path(spool_dir),
            )
            for topic in [*settings.topics().values(), settings.kafka.dlq_topic]:
                cluster.create_topic(topic, partitions=DEV_PARTITIONS)
            environ = {
                **tastytrade_sim.connector_environ(tastytrade),
                **tplus_oms_sim.connector_environ(oms),
            }
            connector = Connector(settings, environ=environ)

            written: list[Path] = []

            def started(info: RuntimeInfo) -> None:
                process_policy.apply_after_startup()
                addresses = {
                    "KAFKA_BOOTSTRAP": cluster.bootstrap_servers,
                    "SCHEMA_REGISTRY_URL": registry_url,
                    "METRICS_URL": info.metrics_url,
                    "TPLUS_MDS_URL": venue_url,
                    "TPLUS_OMS_URL": oms.base_url,
                    "TASTYTRADE_API_URL": tastytrade.api_url,
                    "TASTYTRADE_STREAMER_URL": tastytrade.streamer_url,
                    "TOPICS": ",".join([*settings.topics().values(), settings.kafka.dlq_topic]),
                }
                for name, value in addresses.items():
                    print(f"{name}={value}", file=out)
                tail = "connector tail tplus.trades --from-beginning"
                if options.env_file is not None and write_env_file(options.env_file, addresses):
                    written.append(options.env_file)
                    # tail reads KAFKA_BOOTSTRAP and SCHEMA_REGISTRY_URL from the environment.
                    source = shlex.quote(str(options.env_file))
                    hint = f"in another shell: source {source}; {tail}"
                else:
                    where = f"--bootstrap {cluster.bootstrap_servers} --registry {registry_url}"
                    hint = f"try: {tail} {where}"
                print(hint, file=out, flush=True)

            def show(status: progress.Status) -> None:
                print(status.line(), file=out, flush=True)

            helpers = [
                asyncio.create_task(
                    progress.report(
                        connector.registry, connector.health.ready, STATUS_INTERVAL_S, show
                    )
                )
            ]
            if options.fault_interval_s > 0:
                helpers.append(
                    asyncio.create_task(_inject_faults(sim, assets, options.fault_interval_s))
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
                for path in written:
                    # The addresses die with the stack; a stale file would point at nothing.
                    path.unlink(missing_ok=True)
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
