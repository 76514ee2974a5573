"""The ``connector`` command: run, validate, dev, tail, schemas and config.

Every failure a person can cause or fix is one line on stderr, never a traceback.
Exit codes:

- 0: success (``run`` and ``dev``: stopped when asked).
- 1: runtime failure: start-up failed (Kafka or the registry not usable within
  their ``startup_timeout_s``, the metrics port taken, a schema refused);
  ``tail``: the topic does not exist or ``--idle-timeout`` passed without a
  record; ``schemas``: a schema incompatible, refused or stale.
- 2: bad configuration or usage: a bad key (named), an unreadable secret
  (``validate`` names every one), a bad option.
- 3: a peer could not be reached: ``tail`` with no broker or registry
  answering; ``schemas`` with the registry unavailable.
- 4: ``run`` stopped when asked but purged records the brokers had not
  acknowledged (only with ``spool.enabled: false``; they are counted and logged).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TypeVar

from connector import __version__
from connector.governance import cli as schema_cli
from connector.governance import config_example
from connector.ops import log_format
from connector.secrets import unresolved_secrets
from connector.settings import ConfigError, load_settings

log = logging.getLogger(__name__)

_N = TypeVar("_N", int, float)

#: Where ``dev`` writes its addresses for ``source`` in a second shell.
DEV_ENV_FILE = ".connector-dev.env"


def _assets(text: str) -> list[str]:
    assets = [a.strip() for a in text.split(",") if a.strip()]
    if not assets:
        raise argparse.ArgumentTypeError("give at least one asset id, e.g. --assets 1,2")
    return assets


def _ranged(
    convert: Callable[[str], _N], what: str, low: _N, high: _N, bounds: str
) -> Callable[[str], _N]:
    """An argparse type: ``convert``, then refuse values outside [low, high] (and NaN)."""

    def parse(text: str) -> _N:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not {what} ({bounds})")
        return value

    return parse


_seconds = _ranged(float, "a number of seconds", 0.0, sys.float_info.max, "finite, >= 0")
_port = _ranged(int, "a port number", 0, 65535, "0-65535")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (with where to look), not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _with_version(parser: argparse.ArgumentParser) -> None:
    """``--version`` on the command and on every subcommand, however deep."""
    parser.add_argument("--version", action="version", version=f"connector {__version__}")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _with_version(child)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="connector",
        description="Bridge trading-venue WebSocket streams into Avro-encoded Kafka topics.",
        epilog="Exit codes: 0 success, 1 runtime failure, 2 bad configuration or usage, "
        "3 a broker or the registry unreachable, 4 records purged at shutdown (no spool).",
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
        type=_seconds,
        default=None,
        help="stop after this many seconds (default: run until interrupted)",
    )
    dev.add_argument(
        "--assets",
        type=_assets,
        default=["1", "2"],
        help="comma-separated T+ asset ids to simulate (default: 1,2)",
    )
    dev.add_argument(
        "--metrics-port",
        type=_port,
        default=9108,
        help="port of /metrics, /healthz and /readyz (0 picks a free one)",
    )
    dev.add_argument(
        "--fault-interval",
        type=_seconds,
        default=0.0,
        help="inject a gap, a disconnect or a bad frame every N seconds (0: never)",
    )
    dev.add_argument(
        "--env-file",
        default=DEV_ENV_FILE,
        help=f"write the addresses here for `source` in another shell; '' for none "
        f"(default: {DEV_ENV_FILE})",
    )
    dev.add_argument("--seed", type=int, default=1, help="simulator random seed")
    dev.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    tail = sub.add_parser(
        "tail", help="print a topic's records decoded as JSON lines, or a book's top (--book)"
    )
    tail.add_argument("topic", nargs="?")
    tail.add_argument("--book", metavar="ASSET", help="print the live top of this asset's book")
    tail.add_argument("--books-topic", default="tplus.books", help="with --book: checkpoints")
    tail.add_argument("--depth-topic", default="tplus.depth", help="with --book: depth records")
    tail.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092"))
    tail.add_argument(
        "--registry", default=os.environ.get("SCHEMA_REGISTRY_URL", "http://localhost:8081")
    )
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--max-records", type=int, default=None)
    tail.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=None,
        help="exit after this many seconds without a record (exit 1 if none came at all)",
    )
    schema_cli.add_parser(sub)

    config = sub.add_parser("config", help="the configuration model")
    config_action = config.add_subparsers(dest="config_command", required=True)
    example = config_action.add_parser(
        "example",
        help="print the example configuration generated from the settings model",
        description="Every key with its default and description, as YAML. "
        "deploy/connector.example.yaml is this output.",
    )
    example.add_argument("--output", type=Path, default=None, help="write here, not to stdout")
    example.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if --output is stale"
    )
    _with_version(parser)
    return parser


def _install_stop(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


#: ``connector run`` stopped on request but purged records it could not deliver (no spool).
EXIT_RECORDS_LOST = 4


def _run(config: Path) -> int:
    from connector.app import Connector, StartupError, StoppedError
    from connector.delivery.serde import SchemaSetupError
    from connector.ops import process_policy, progress

    try:
        settings = load_settings(config, os.environ)
    except ConfigError as exc:
        print(f"connector: {exc}", file=sys.stderr)
        return 2
    log_format.configure(settings.logging.level, settings.logging.json_format)

    async def main() -> int:
        stop = asyncio.Event()
        _install_stop(asyncio.get_running_loop(), stop)
        connector = Connector(settings, environ=os.environ)
        every_s = settings.logging.status_interval_s
        reporter = (
            asyncio.create_task(
                progress.report(
                    connector.registry,
                    connector.health.ready,
                    every_s,
                    lambda status: log.info("status", extra=status.fields()),
                )
            )
            if every_s > 0
            else None
        )
        try:
            remaining = await connector.run(
                stop, on_started=lambda _info: process_policy.apply_after_startup()
            )
        finally:
            if reporter is not None:
                reporter.cancel()
                await asyncio.gather(reporter, return_exceptions=True)
        # With a spool, what the grace did not flush stays in it: nothing is lost.
        # Without one, the purged records are lost, and the exit code says so.
        log.info("stopped", extra={"unflushed_records": remaining})
        return 0 if remaining == 0 else EXIT_RECORDS_LOST

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
    problems = unresolved_secrets(settings, os.environ)
    if problems:
        print(f"connector: {config}: secrets that cannot be read:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    topics = ", ".join(f"{s} → {t}" for s, t in settings.topics().items()) or "none"
    print(f"{config}: valid (connector {settings.name}; streams: {topics})")
    return 0


def _config_example(output: Path | None, *, check: bool) -> int:
    text = config_example.render()
    if output is None:
        if check:
            print("connector config example: --check needs --output", file=sys.stderr)
            return 2
        sys.stdout.write(text)
        return 0
    if check:
        current = output.read_text(encoding="utf-8") if output.is_file() else ""
        if current != text:
            print(
                f"{output} is stale: run `connector config example --output {output}`",
                file=sys.stderr,
            )
            return 1
        print(f"{output} is up to date")
        return 0
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
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
        return run_dev(
            DevOptions(
                duration_s=args.duration,
                assets=args.assets,
                metrics_port=args.metrics_port,
                fault_interval_s=args.fault_interval,
                seed=args.seed,
                env_file=Path(args.env_file) if args.env_file else None,
            )
        )
    if args.command == "tail":
        from connector.tail import tail, tail_book

        if (args.topic is None) == (args.book is None):
            print("connector tail: give a topic or --book ASSET", file=sys.stderr)
            return 2
        if args.book is not None:
            return tail_book(
                args.book,
                args.bootstrap,
                args.registry,
                books_topic=args.books_topic,
                depth_topic=args.depth_topic,
                max_records=args.max_records,
                idle_timeout_s=args.idle_timeout,
            )
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
    if args.command == "config":
        return _config_example(args.output, check=args.check)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
