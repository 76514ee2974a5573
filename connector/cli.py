"""The ``connector`` command: run, validate, dev, tail and schemas.

Exit codes: 0 success, 1 runtime failure, 2 bad configuration or usage
(``schemas`` also uses 3: registry unavailable; see connector/governance/cli.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from connector.governance import cli as schema_cli
from connector.ops import log_format
from connector.settings import ConfigError, load_settings

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="connector",
        description="Bridge trading-venue WebSocket streams into Avro-encoded Kafka topics.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the connector with a configuration file")
    run.add_argument(
        "config", type=Path, help="YAML configuration (see deploy/connector.example.yaml)"
    )

    validate = sub.add_parser("validate", help="check a configuration file and exit")
    validate.add_argument("config", type=Path)

    dev = sub.add_parser(
        "dev",
        help="embedded Kafka cluster, schema registry, venue simulator and the connector",
    )
    dev.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: run until interrupted)",
    )
    dev.add_argument("--assets", default="1,2", help="comma-separated T+ asset ids to simulate")
    dev.add_argument(
        "--metrics-port",
        type=int,
        default=9108,
        help="port of /metrics, /healthz and /readyz (0 picks a free one)",
    )
    dev.add_argument(
        "--fault-interval",
        type=float,
        default=0.0,
        help="inject a gap, a disconnect or a bad frame every N seconds (0: never)",
    )
    dev.add_argument("--seed", type=int, default=1, help="simulator random seed")
    dev.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    tail = sub.add_parser("tail", help="print a topic's records decoded as JSON lines")
    tail.add_argument("topic")
    tail.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092"))
    tail.add_argument(
        "--registry", default=os.environ.get("SCHEMA_REGISTRY_URL", "http://localhost:8081")
    )
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--max-records", type=int, default=None)
    tail.add_argument(
        "--idle-timeout",
        type=float,
        default=None,
        help="exit after this many seconds without a record",
    )
    schema_cli.add_parser(sub)
    return parser


def _install_stop(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def _run(config: Path) -> int:
    from connector.app import Connector, StartupError, StoppedError
    from connector.delivery.serde import SchemaSetupError
    from connector.ops import process_policy

    try:
        settings = load_settings(config, os.environ)
    except ConfigError as exc:
        print(f"connector: {exc}", file=sys.stderr)
        return 2
    log_format.configure(settings.logging.level, settings.logging.json_format)

    async def main() -> int:
        stop = asyncio.Event()
        _install_stop(asyncio.get_running_loop(), stop)
        remaining = await Connector(settings, environ=os.environ).run(
            stop, on_started=lambda _info: process_policy.apply_after_startup()
        )
        # A requested stop is a clean exit even when the grace period ran out;
        # the count was logged and is in the delivery contract.
        log.info("stopped", extra={"unflushed_records": remaining})
        return 0

    try:
        return asyncio.run(main())
    except (StartupError, SchemaSetupError) as exc:
        log.error("start-up failed: %s", exc)
        return 1
    except StoppedError as exc:
        log.error("stopped: %s", exc)
        return 1


def _validate(config: Path) -> int:
    try:
        settings = load_settings(config, os.environ)
    except ConfigError as exc:
        print(f"connector: {exc}", file=sys.stderr)
        return 2
    topics = ", ".join(f"{s} → {t}" for s, t in settings.topics().items()) or "none"
    print(f"{config}: valid (connector {settings.name}; streams: {topics})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "validate":
        return _validate(args.config)
    if args.command == "run":
        return _run(args.config)
    if args.command == "dev":
        from connector.dev import DevOptions, run_dev

        log_format.configure(args.log_level, json_format=False)
        assets = [a.strip() for a in args.assets.split(",") if a.strip()]
        return run_dev(
            DevOptions(
                duration_s=args.duration,
                assets=assets,
                metrics_port=args.metrics_port,
                fault_interval_s=args.fault_interval,
                seed=args.seed,
            )
        )
    if args.command == "tail":
        from connector.tail import tail

        return tail(
            args.topic,
            args.bootstrap,
            args.registry,
            from_beginning=args.from_beginning,
            max_records=args.max_records,
            idle_timeout_s=args.idle_timeout,
        )
    if args.command == "schemas":
        return schema_cli.run(args)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
