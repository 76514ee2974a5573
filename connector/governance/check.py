"""``connector schemas check``: can each schema file follow the versions already published?

A schema change that a consumer's reader cannot resolve breaks that consumer on
the first new record, so every ``.avsc`` file is compared before deploy with the
versions consumers may hold: those in git history (offline, for CI) and those
registered under the topic's subject (against a live registry). The rules are
Avro's own (:mod:`connector.governance.compat`); this module decides what to compare
with what and reports each problem with the field it concerns.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from connector.governance.compat import InvalidSchemaError, canonical_form, check_compatibility
from connector.governance.history import CommittedVersion, GitHistory
from connector.governance.inventory import SchemaFile


class Status(enum.Enum):
    COMPATIBLE = "compatible"
    UNCHANGED = "unchanged"
    NOTHING_TO_COMPARE = "nothing to compare"
    INCOMPATIBLE = "INCOMPATIBLE"
    INVALID = "INVALID"


_FAILED = (Status.INCOMPATIBLE, Status.INVALID)


@dataclass(frozen=True)
class PriorVersion:
    """An earlier published text of a schema and how to name it in a report."""

    label: str  # "version 3 (id 7)", "commit 1a2b3c4d5e6f"
    text: str


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing one schema file with one source of earlier versions."""

    source: str
    status: Status
    summary: str
    problems: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.status in _FAILED


def judge(current: str, prior: Sequence[PriorVersion], level: str, source: str) -> Verdict:
    """Whether ``current`` may follow ``prior`` (oldest first) under ``level``."""
    try:
        canonical_form(current)
    except InvalidSchemaError as exc:
        return Verdict(source, Status.INVALID, "not a valid Avro schema", (str(exc),))
    usable = []
    skipped = []
    for version in prior:
        try:
            canonical_form(version.text)
        except InvalidSchemaError:
            skipped.append(version.label)
            continue
        usable.append(version)
    note = f" (skipped, not valid Avro: {', '.join(skipped)})" if skipped else ""
    prior = usable
    if not prior:
        return Verdict(source, Status.NOTHING_TO_COMPARE, "no earlier version" + note)
    problems = check_compatibility(
        current, [p.text for p in prior], level, labels=[p.label for p in prior]
    )
    if level.upper() == "NONE":
        return Verdict(source, Status.COMPATIBLE, "level NONE accepts any change" + note)
    compared = prior if level.upper().endswith("_TRANSITIVE") else prior[-1:]
    names = ", ".join(p.label for p in compared)
    if problems:
        summary = f"{level} with {names}{note}"
        return Verdict(source, Status.INCOMPATIBLE, summary, tuple(problems))
    return Verdict(source, Status.COMPATIBLE, f"{level} with {names}{note}")


def git_verdict(history: GitHistory, schema: SchemaFile, current: str, level: str) -> Verdict:
    """Compare a file with its earlier committed versions.

    Consecutive commits with the same schema (up to layout) count as one version.
    When the newest committed version is the file as it is now, the version before
    it is the one to follow: so a check on a clean checkout still vets the last change.
    """
    source = f"git {history.rev}"
    versions: list[CommittedVersion] = history.versions(schema.path)
    if not versions:
        verdict = judge(current, [], level, source)
        if verdict.failed:
            return verdict
        return Verdict(source, Status.NOTHING_TO_COMPARE, f"not committed in {history.rev} yet")
    distinct: list[tuple[str | None, CommittedVersion]] = []
    for version in versions:
        form = _form(version.text)
        if not distinct or form is None or distinct[-1][0] != form:
            distinct.append((form, version))
    current_form = _form(current)
    since = None
    if current_form is not None and distinct[-1][0] == current_form:
        since = distinct.pop()[1].label
    verdict = judge(current, [PriorVersion(v.label, v.text) for _, v in distinct], level, source)
    if verdict.status is Status.NOTHING_TO_COMPARE:
        count = len(versions)
        earlier = f"no earlier version in {count} commit{'s' * (count != 1)}"
        if since is None:
            return Verdict(source, verdict.status, earlier)
        return Verdict(source, Status.UNCHANGED, f"since {since}; {earlier}")
    prefix = "" if since is None else f"unchanged since {since}; "
    return Verdict(source, verdict.status, prefix + verdict.summary, verdict.problems)


def registry_verdict(
    registered: Sequence[tuple[int, int, str]], subject: str, current: str, level: str
) -> Verdict:
    """Compare a file with the live versions of its subject, as registering it would."""
    source = f"registry {subject}"
    if not registered:
        verdict = judge(current, [], level, source)
        if verdict.status is Status.NOTHING_TO_COMPARE:
            return Verdict(source, verdict.status, "subject not registered yet")
        return verdict
    current_form = _form(current)
    for number, schema_id, text in registered:
        if current_form is not None and _form(text) == current_form:
            return Verdict(
                source, Status.UNCHANGED, f"registered as version {number} (id {schema_id})"
            )
    prior = [PriorVersion(f"version {n} (id {i})", text) for n, i, text in registered]
    return judge(current, prior, level, source)


def _form(text: str) -> str | None:
    """The layout-independent form of a schema text, None when it is not valid Avro."""
    try:
        return canonical_form(text)
    except InvalidSchemaError:
        return None


def report(
    schemas: Sequence[SchemaFile],
    checks: Sequence[Callable[[SchemaFile, str], list[Verdict]]],
    level: str,
    out: TextIO,
) -> bool:
    """Run every check on every file, print the per-field report; True when all pass."""
    failures = 0
    for schema in schemas:
        current = schema.path.read_text(encoding="utf-8")
        streams = ", ".join(
            f"{use.stream} → {use.topic or 'no topic configured'}" for use in schema.uses
        )
        print(f"{schema.relative} ({streams or 'not used by any stream'})", file=out)
        verdicts = [verdict for check in checks for verdict in check(schema, current)]
        if not verdicts:  # e.g. registry only, and no stream uses the file: still parse it
            verdicts = [judge(current, [], level, "schema")]
        for verdict in verdicts:
            print(f"  {verdict.source}: {verdict.status.value}: {verdict.summary}", file=out)
            for problem in verdict.problems:
                print(f"    - {problem}", file=out)
        failures += any(v.failed for v in verdicts)
    word = "schema" if len(schemas) == 1 else "schemas"
    outcome = f"{failures} failed" if failures else "all compatible"
    print(f"checked {len(schemas)} {word} at level {level}: {outcome}", file=out)
    return failures == 0
