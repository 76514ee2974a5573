"""The verdicts of ``connector schemas check``: the Avro resolution rules, git and registry."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from connector.governance.check import (
    PriorVersion,
    Status,
    git_verdict,
    judge,
    registry_verdict,
    report,
)
from connector.governance.history import GitHistory
from connector.governance.inventory import SchemaFile, StreamTopic
from tests.git_repo import GitRepo

NS = "test"


def record(*fields: dict[str, Any], name: str = "Event", **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": NS, "fields": list(fields), **extra}


def one(field_type: Any, **extra: Any) -> dict[str, Any]:
    """A record with an id and one field ``x`` of ``field_type``."""
    return record({"name": "id", "type": "long"}, {"name": "x", "type": field_type, **extra})


def enum(*symbols: str, **extra: Any) -> dict[str, Any]:
    return {"type": "enum", "name": "Side", "symbols": list(symbols), **extra}


def fixed(size: int) -> dict[str, Any]:
    return {"type": "fixed", "name": "Hash", "size": size}


def inner(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "Inner", "fields": list(fields)}


def array(items: Any) -> dict[str, Any]:
    return {"type": "array", "items": items}


def map_of(values: Any) -> dict[str, Any]:
    return {"type": "map", "values": values}


ID = {"name": "id", "type": "long"}
N_INT = {"name": "n", "type": "int"}
N_LONG = {"name": "n", "type": "long"}
TAG = {"name": "tag", "type": "string"}
TAG_DEFAULT = {"name": "tag", "type": "string", "default": ""}
NOTE = {"name": "note", "type": ["null", "string"], "default": None}
BASE = record(ID)
PAIR = record(ID, {"name": "venue", "type": "string"})
PAIR_DEFAULT = record(ID, {"name": "venue", "type": "string", "default": "T+"})

# Each change: (id, writer schema = the earlier version, reader schema = the new version,
# level, accepted?). Drawn from the Avro specification's "Schema Resolution" rules.
RULES: list[tuple[str, dict[str, Any], dict[str, Any], str, bool]] = [
    # Promotions: the writer's type may be promoted to the reader's.
    ("promote int to long", one("int"), one("long"), "BACKWARD", True),
    ("promote int to float", one("int"), one("float"), "BACKWARD", True),
    ("promote int to double", one("int"), one("double"), "BACKWARD", True),
    ("promote long to float", one("long"), one("float"), "BACKWARD", True),
    ("promote long to double", one("long"), one("double"), "BACKWARD", True),
    ("promote float to double", one("float"), one("double"), "BACKWARD", True),
    ("promote string to bytes", one("string"), one("bytes"), "BACKWARD", True),
    ("promote bytes to string", one("bytes"), one("string"), "BACKWARD", True),
    ("narrow long to int", one("long"), one("int"), "BACKWARD", False),
    ("narrow double to float", one("double"), one("float"), "BACKWARD", False),
    ("change int to string", one("int"), one("string"), "BACKWARD", False),
    ("change boolean to int", one("boolean"), one("int"), "BACKWARD", False),
    ("promotion is one-way under FORWARD", one("int"), one("long"), "FORWARD", False),
    ("promotion is one-way under FULL", one("float"), one("double"), "FULL", False),
    # Fields: a reader field missing from the writer needs a default; extra writer
    # fields are ignored.
    ("add field with default", BASE, record(ID, TAG_DEFAULT), "BACKWARD", True),
    ("add field without default", BASE, record(ID, TAG), "BACKWARD", False),
    ("add optional field under FULL", BASE, record(ID, NOTE), "FULL", True),
    ("add required field under FORWARD", BASE, record(ID, TAG), "FORWARD", True),
    ("remove field", record(ID, TAG), BASE, "BACKWARD", True),
    ("remove field without default under FORWARD", record(ID, TAG), BASE, "FORWARD", False),
    ("remove field with default under FORWARD", record(ID, TAG_DEFAULT), BASE, "FORWARD", True),
    (
        "rename field without alias",
        record(ID, N_INT),
        record(ID, {"name": "count", "type": "int"}),
        "BACKWARD",
        False,
    ),
    (
        "rename field with alias",
        record(ID, N_INT),
        record(ID, {"name": "count", "type": "int", "aliases": ["n"]}),
        "BACKWARD",
        True,
    ),
    # Enums: a writer symbol unknown to the reader fails unless the reader has a default.
    ("add enum symbol", one(enum("BUY", "SELL")), one(enum("BUY", "SELL", "X")), "BACKWARD", True),
    ("remove enum symbol", one(enum("BUY", "SELL")), one(enum("BUY")), "BACKWARD", False),
    (
        "remove enum symbol, reader has enum default",
        one(enum("BUY", "SELL")),
        one(enum("BUY", "OTHER", default="OTHER")),
        "BACKWARD",
        True,
    ),
    ("add enum symbol under FORWARD", one(enum("A")), one(enum("A", "B")), "FORWARD", False),
    (
        "add enum symbol under FORWARD, old reader has enum default",
        one(enum("A", "Z", default="Z")),
        one(enum("A", "Z", "B")),
        "FORWARD",
        True,
    ),
    ("rename enum", one(enum("A")), one({**enum("A"), "name": "Way"}), "BACKWARD", False),
    # Unions: every writer branch must resolve in the reader.
    (
        "add union branch",
        one(["null", "string"]),
        one(["null", "string", "long"]),
        "BACKWARD",
        True,
    ),
    (
        "remove union branch",
        one(["null", "string", "long"]),
        one(["null", "string"]),
        "BACKWARD",
        False,
    ),
    (
        "add union branch under FORWARD",
        one(["null", "string"]),
        one(["null", "string", "long"]),
        "FORWARD",
        False,
    ),
    ("make field optional", one("string"), one(["null", "string"]), "BACKWARD", True),
    ("make optional field required", one(["null", "string"]), one("string"), "BACKWARD", False),
    ("promote inside a union", one(["null", "int"]), one(["null", "long"]), "BACKWARD", True),
    # Named types: records match by unqualified name or alias; fixed by name and size.
    ("rename record without alias", BASE, record(ID, name="Renamed"), "BACKWARD", False),
    (
        "rename record with alias",
        BASE,
        record(ID, name="Renamed", aliases=[f"{NS}.Event"]),
        "BACKWARD",
        True,
    ),
    (
        "change namespace (names compare unqualified)",
        BASE,
        {**BASE, "namespace": "other"},
        "BACKWARD",
        True,
    ),
    ("change fixed size", one(fixed(16)), one(fixed(32)), "BACKWARD", False),
    ("keep fixed size", one(fixed(16)), one(fixed(16)), "FULL", True),
    # Nested records, arrays and maps resolve recursively.
    (
        "nested: add field with default",
        one(inner(N_INT)),
        one(inner(N_INT, TAG_DEFAULT)),
        "BACKWARD",
        True,
    ),
    (
        "nested: add field without default",
        one(inner(N_INT)),
        one(inner(N_INT, TAG)),
        "BACKWARD",
        False,
    ),
    ("nested: promote int to long", one(inner(N_INT)), one(inner(N_LONG)), "BACKWARD", True),
    ("array items int to long", one(array("int")), one(array("long")), "BACKWARD", True),
    ("array items long to int", one(array("long")), one(array("int")), "BACKWARD", False),
    ("map values string to bytes", one(map_of("string")), one(map_of("bytes")), "BACKWARD", True),
    ("map values int to string", one(map_of("int")), one(map_of("string")), "BACKWARD", False),
    ("array to map", one(array("int")), one(map_of("int")), "BACKWARD", False),
    # A default must be a value of the field's type (a union's: of one of its branches).
    (
        "add field whose default has the wrong type",
        BASE,
        record(ID, {"name": "n", "type": "int", "default": "zero"}),
        "BACKWARD",
        False,
    ),
    (
        "add field with null default for a non-null type",
        BASE,
        record(ID, {"name": "tag", "type": "string", "default": None}),
        "BACKWARD",
        False,
    ),
    (
        "add optional field with a default of its first branch",
        BASE,
        record(ID, NOTE),
        "BACKWARD",
        True,
    ),
    (
        "add array field with empty default",
        BASE,
        record(ID, {"name": "xs", "type": array("long"), "default": []}),
        "BACKWARD",
        True,
    ),
]


@pytest.mark.parametrize(
    ("writer", "reader", "level", "accepted"),
    [pytest.param(*rule[1:], id=rule[0]) for rule in RULES],
)
def test_schema_resolution_rules(
    writer: dict[str, Any], reader: dict[str, Any], level: str, accepted: bool
) -> None:
    verdict = judge(json.dumps(reader), [PriorVersion("version 1", json.dumps(writer))], level, "t")
    assert verdict.failed is not accepted, verdict
    assert bool(verdict.problems) is not accepted
    if not accepted:
        assert verdict.status in (Status.INCOMPATIBLE, Status.INVALID)


def test_the_table_covers_the_rules_it_claims() -> None:
    assert len(RULES) >= 20
    assert {level for *_, level, _ in RULES} >= {"BACKWARD", "FORWARD", "FULL"}
    assert {accepted for *_, accepted in RULES} == {True, False}


def test_a_failing_field_is_named_in_the_report() -> None:
    verdict = judge(
        json.dumps(one(inner(N_INT, TAG))),
        [PriorVersion("commit abc", json.dumps(one(inner(N_INT))))],
        "BACKWARD",
        "git HEAD",
    )
    assert verdict.status is Status.INCOMPATIBLE
    [problem] = verdict.problems
    assert "commit abc" in problem and "'Event.x.tag'" in problem and "no default" in problem


def test_non_transitive_levels_compare_with_the_latest_version_only() -> None:
    v1, v2 = json.dumps(BASE), json.dumps(PAIR_DEFAULT)
    v3 = json.dumps(PAIR)  # drops the default: only v1 data lacks "venue"
    prior = [PriorVersion("v1", v1), PriorVersion("v2", v2)]
    assert judge(v3, prior, "BACKWARD", "t").status is Status.COMPATIBLE
    transitive = judge(v3, prior, "BACKWARD_TRANSITIVE", "t")
    assert transitive.status is Status.INCOMPATIBLE
    assert all("v1" in p for p in transitive.problems)


def test_invalid_earlier_versions_are_skipped_and_said_so() -> None:
    prior = [PriorVersion("v1", "{broken"), PriorVersion("v2", json.dumps(BASE))]
    verdict = judge(json.dumps(record(ID, TAG_DEFAULT)), prior, "BACKWARD", "t")
    assert verdict.status is Status.COMPATIBLE
    assert "skipped, not valid Avro: v1" in verdict.summary


def test_an_invalid_schema_fails_even_with_nothing_to_compare() -> None:
    verdict = judge(
        '{"type": "record", "name": "X", "fields": [{"name": "a"}]}', [], "BACKWARD", "t"
    )
    assert verdict.status is Status.INVALID and verdict.failed


# -- git history --------------------------------------------------------------------------


def _schema_file(repo: GitRepo, relative: str = "schemas/v/Event.avsc") -> SchemaFile:
    return SchemaFile(repo.path / relative, relative, (StreamTopic("v.events", "v.events"),))


def test_git_compares_the_working_file_with_the_last_committed_change(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    path = repo.write("schemas/v/Event.avsc", json.dumps(BASE))
    first = repo.commit("first")
    schema = _schema_file(repo)
    history = GitHistory(path.parent)
    verdict = git_verdict(history, schema, json.dumps(record(ID, TAG)), "BACKWARD")
    assert verdict.status is Status.INCOMPATIBLE
    assert f"commit {first[:12]}" in verdict.problems[0]
    assert git_verdict(history, schema, json.dumps(record(ID, NOTE)), "BACKWARD").status is (
        Status.COMPATIBLE
    )


def test_a_clean_checkout_still_vets_the_last_committed_change(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    path = repo.write("schemas/v/Event.avsc", json.dumps(BASE))
    repo.commit("first")
    repo.write("schemas/v/Event.avsc", json.dumps(BASE, indent=4))  # layout only
    repo.commit("reformat")
    repo.write("schemas/v/Event.avsc", json.dumps(record(ID, TAG)))
    last = repo.commit("breaking change")
    verdict = git_verdict(GitHistory(path.parent), _schema_file(repo), path.read_text(), "BACKWARD")
    assert verdict.status is Status.INCOMPATIBLE
    assert verdict.summary.startswith(f"unchanged since commit {last[:12]}")


def test_a_single_commit_is_nothing_to_compare_and_passes(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    path = repo.write("schemas/v/Event.avsc", json.dumps(BASE))
    repo.commit("only")
    verdict = git_verdict(GitHistory(path.parent), _schema_file(repo), path.read_text(), "FULL")
    assert verdict.status is Status.UNCHANGED and not verdict.failed
    assert "no earlier version in 1 commit" in verdict.summary


def test_an_uncommitted_file_passes_and_says_so(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write("README", "x")
    repo.commit("unrelated")
    path = repo.write("schemas/v/Event.avsc", json.dumps(BASE))
    verdict = git_verdict(GitHistory(path.parent), _schema_file(repo), path.read_text(), "FULL")
    assert verdict.status is Status.NOTHING_TO_COMPARE and not verdict.failed
    assert verdict.summary == "not committed in HEAD yet"


def test_an_uncommitted_invalid_file_fails(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    path = repo.write("schemas/v/Event.avsc", '{"type": "nope"}')
    verdict = git_verdict(GitHistory(path.parent), _schema_file(repo), path.read_text(), "FULL")
    assert verdict.status is Status.INVALID


# -- registry -----------------------------------------------------------------------------


def test_registry_accepts_a_schema_already_registered() -> None:
    registered = [(1, 4, json.dumps(BASE)), (2, 9, json.dumps(PAIR_DEFAULT))]
    verdict = registry_verdict(registered, "v-value", json.dumps(BASE, indent=2), "BACKWARD")
    assert verdict.status is Status.UNCHANGED
    assert verdict.summary == "registered as version 1 (id 4)"


def test_registry_compares_with_the_latest_live_version() -> None:
    registered = [(1, 4, json.dumps(BASE)), (3, 9, json.dumps(PAIR_DEFAULT))]
    verdict = registry_verdict(registered, "v-value", json.dumps(record(ID, TAG)), "BACKWARD")
    assert verdict.status is Status.INCOMPATIBLE
    assert "version 3 (id 9)" in verdict.problems[0]
    assert "'Event.tag'" in verdict.problems[0]


def test_an_unregistered_subject_is_nothing_to_compare() -> None:
    verdict = registry_verdict([], "v-value", json.dumps(BASE), "BACKWARD")
    assert (verdict.status, verdict.summary) == (
        Status.NOTHING_TO_COMPARE,
        "subject not registered yet",
    )


def test_report_prints_each_problem_and_a_summary(tmp_path: Path) -> None:
    good = tmp_path / "Good.avsc"
    good.write_text(json.dumps(BASE))
    bad = tmp_path / "Bad.avsc"
    bad.write_text(json.dumps(record(ID, TAG)))
    files = [SchemaFile(good, "Good.avsc", ()), SchemaFile(bad, "Bad.avsc", ())]
    out = io.StringIO()

    def against_base(schema: SchemaFile, text: str) -> list[Any]:
        return [judge(text, [PriorVersion("version 1", json.dumps(BASE))], "BACKWARD", "fake")]

    assert report(files, [against_base], "BACKWARD", out) is False
    lines = out.getvalue().splitlines()
    assert lines[0] == "Good.avsc (not used by any stream)"
    assert lines[1] == "  fake: compatible: BACKWARD with version 1"
    assert lines[3] == "  fake: INCOMPATIBLE: BACKWARD with version 1"
    assert lines[4].startswith("    - new schema cannot read data written with version 1:")
    assert lines[-1] == "checked 2 schemas at level BACKWARD: 1 failed"
