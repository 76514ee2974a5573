"""``connector schemas check | register | docs``: schema governance from the command line.

Exit codes, meant for CI and deploy pipelines:

- 0: every schema is compatible / registered / the guide is up to date.
- 1: a schema is incompatible or not valid Avro, the registry refused a schema
  (HTTP 409 incompatible, 422 invalid, or another refusal such as 401), or the
  guide is stale (``docs --check``).
- 2: usage or configuration error: bad options or configuration file, no schema
  files, schema files named in the catalog but missing, git unavailable, the
  folder outside a git work tree, or an unknown revision.
- 3: the registry could not be reached or kept failing (transport errors, HTTP
  408, 429 or 5xx after the client's retries; retrying later may succeed), or it
  would not let ``check`` read a subject's versions or level (e.g. HTTP 401).
  The message names the registry URL and the HTTP status.

``check --registry`` judges each subject at the level the registry enforces on it
(its own, else the global one), as ``register`` will be judged; ``--level`` is
the level of the git check.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient

from connector.delivery.serde import (
    RegistryUnavailable,
    SchemaSetupError,
    compatibility_level,
    registered_versions,
    registry_client,
)
from connector.governance import catalog
from connector.governance.check import Verdict, git_verdict, registry_verdict, report
from connector.governance.compat import LEVELS
from connector.governance.consumer_guide import CONSUMER_EXAMPLE, generate
from connector.governance.history import GitError, GitHistory
from connector.governance.inventory import SchemaFile, default_topics, inventory, missing_files
from connector.governance.register import register_all
from connector.settings import ConfigError, KafkaSettings, SchemaRegistrySettings, load_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

_Check = Callable[[SchemaFile, str], list[Verdict]]


class _UsageError(Exception):
    pass


class _RegistryFailed(Exception):
    """A registry error, with the registry's URL in front."""


@contextmanager
def _at(url: str) -> Iterator[None]:
    try:
        yield
    except (RegistryUnavailable, SchemaSetupError) as exc:
        raise _RegistryFailed(f"{url}: {exc}") from None


def add_parser(sub: Any) -> None:
    """Add ``schemas`` and its subcommands to the ``connector`` command's subparsers."""
    schemas = sub.add_parser(
        "schemas",
        help="check, register and document the Avro value schemas",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    action = schemas.add_subparsers(dest="schemas_command", required=True)

    check = action.add_parser(
        "check",
        help="check every schema against git history and, optionally, a registry",
        description="Check every .avsc file against its earlier committed versions (git, "
        "offline) and, with --registry or --config, against the versions registered under "
        "its topic's subject. Prints a per-field report.",
    )
    _common(check)
    check.add_argument(
        "--level",
        type=str.upper,
        choices=LEVELS,
        default="BACKWARD",
        help="compatibility level of the git check (default: BACKWARD); the registry check "
        "applies the level the registry enforces on each subject",
    )
    check.add_argument(
        "--against-git",
        metavar="REV",
        default="HEAD",
        help="compare with the versions committed up to this revision (default: HEAD)",
    )
    check.add_argument("--no-git", action="store_true", help="skip the git history check")
    check.add_argument("--registry", metavar="URL", help="also compare with this registry")

    register = action.add_parser(
        "register",
        help="register every value schema (for deploy pipelines)",
        description="Register each stream's value schema under its topic's subject and print "
        "subject → schema id. The connector can then run with "
        "schema_registry.auto_register: false.",
    )
    _common(register)
    register.add_argument(
        "--registry",
        metavar="URL",
        default=os.environ.get("SCHEMA_REGISTRY_URL"),
        help="registry URL (default: $SCHEMA_REGISTRY_URL, else the configuration's)",
    )

    docs = action.add_parser(
        "docs",
        help="write the consumers' guide generated from the schemas",
        description="Render docs/consumers.md from the schemas and docs/examples/.",
    )
    docs.add_argument("--output", type=Path, default=Path("docs/consumers.md"))
    docs.add_argument("--examples", type=Path, default=Path("docs/examples"))
    docs.add_argument("--schemas", type=Path, default=None, help="folder of .avsc files")
    docs.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the file is stale"
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schemas",
        type=Path,
        default=None,
        help="folder of .avsc files (default: ./schemas if it exists, else the installed ones)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="take topic names and registry settings (credentials) from this configuration",
    )


def run(args: argparse.Namespace) -> int:
    """Run a ``schemas`` subcommand; returns the exit code."""
    try:
        if args.schemas_command == "check":
            return _check(args)
        if args.schemas_command == "register":
            return _register(args)
        if args.schemas_command == "docs":
            return _docs(args)
    except (_UsageError, ConfigError, GitError) as exc:
        print(f"connector schemas: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (_RegistryFailed, RegistryUnavailable, SchemaSetupError) as exc:
        print(f"connector schemas: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    raise AssertionError(args.schemas_command)


#: The folder of a source checkout, preferred to the installed package's copy.
LOCAL_SCHEMAS = Path("schemas")


def _schemas_root(args: argparse.Namespace) -> Path:
    if args.schemas is not None:
        root: Path = args.schemas
    elif LOCAL_SCHEMAS.is_dir():
        root = LOCAL_SCHEMAS
    else:
        root = catalog.schemas_dir()
    if not root.is_dir():
        raise _UsageError(f"schema folder {root} does not exist")
    return root


def _topics_and_registry(
    args: argparse.Namespace,
) -> tuple[dict[str, str], SchemaRegistrySettings | None]:
    """Topics and registry settings from --config and --registry (registry None: not asked)."""
    if args.config is None:
        registry = SchemaRegistrySettings(url=args.registry) if args.registry else None
        return default_topics(), registry
    settings = load_settings(args.config, os.environ)
    registry = settings.schema_registry
    if args.registry:
        registry = registry.model_copy(update={"url": args.registry})
    return settings.topics(), registry


def _check(args: argparse.Namespace) -> int:
    root = _schemas_root(args)
    topics, registry = _topics_and_registry(args)
    schemas = inventory(root, topics)
    if not schemas:
        raise _UsageError(f"no .avsc files under {root}")
    missing = missing_files(root)
    if args.no_git and registry is None:
        raise _UsageError("nothing to check against: give --registry or leave the git check on")
    level: str = args.level
    checks: list[_Check] = []
    if not args.no_git:
        history = GitHistory(root, args.against_git)
        checks.append(lambda schema, text: [git_verdict(history, schema, text, level)])
    client = registry_client(registry) if registry is not None else None
    if client is not None:
        checks.append(functools.partial(_against_registry, client))
    try:
        with _at(registry.url) if registry is not None else nullcontext():
            passed = report(schemas, checks, level, sys.stdout)
    finally:
        if client is not None:
            client.close()
    for name in missing:
        print(f"missing schema file: {name}", file=sys.stderr)
    return EXIT_OK if passed and not missing else EXIT_FAILED


def _against_registry(client: SchemaRegistryClient, schema: SchemaFile, text: str) -> list[Verdict]:
    """One verdict per subject written with the file (usually one), at the subject's level."""
    subjects = sorted({use.subject for use in schema.uses if use.subject is not None})
    verdicts = []
    for subject in subjects:
        level, where = compatibility_level(client, subject)
        verdict = registry_verdict(registered_versions(client, subject), subject, text, level)
        source = f"{verdict.source} (level {level}, {where} setting)"
        verdicts.append(dataclasses.replace(verdict, source=source))
    return verdicts


def _register(args: argparse.Namespace) -> int:
    root = _schemas_root(args)
    topics, registry = _topics_and_registry(args)
    if registry is None:
        raise _UsageError("give --registry URL (or SCHEMA_REGISTRY_URL, or --config)")
    missing = missing_files(root)
    if missing:
        raise _UsageError("missing schema files: " + ", ".join(missing))
    schemas = {topic: catalog.schema_text(stream, root) for stream, topic in topics.items()}
    client = registry_client(registry)
    try:
        with _at(registry.url):
            refused = register_all(client, schemas, sys.stdout, sys.stderr)
    finally:
        client.close()
    return EXIT_FAILED if refused else EXIT_OK


def _docs(args: argparse.Namespace) -> int:
    root = _schemas_root(args)
    missing = missing_files(root)
    if missing:
        raise _UsageError("missing schema files: " + ", ".join(missing))
    consumer = args.examples / CONSUMER_EXAMPLE
    if not consumer.is_file():
        raise _UsageError(f"{consumer} not found: run from a source checkout or give --examples")
    text = generate(root, args.examples, default_topics(), KafkaSettings().dlq_topic)
    output: Path = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.is_file() else ""
        if current != text:
            print(f"{output} is stale: run `connector schemas docs`", file=sys.stderr)
            return EXIT_FAILED
        print(f"{output} is up to date")
        return EXIT_OK
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return EXIT_OK
