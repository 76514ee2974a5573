"""``connector schemas check | register | docs`` end to end: real git, real registry."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.cli import main
from connector.delivery.serde import subject_for
from connector.embedded.registry import RegistryServer
from connector.governance import catalog
from connector.governance.cli import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from connector.governance.inventory import default_topics
from tests.git_repo import GitRepo

ROOT = Path(__file__).resolve().parents[2]
TRADE = "tplus/Trade.avsc"


@pytest.fixture
def registry() -> Iterator[RegistryServer]:
    with RegistryServer() as server:
        yield server


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """A repository holding a copy of the real schemas/, committed once."""
    repo = GitRepo(tmp_path / "repo")
    shutil.copytree(catalog.schemas_dir(), repo.path / "schemas")
    repo.commit("schemas")
    return repo


def trade(**changes: Any) -> dict[str, Any]:
    """The real Trade schema with some fields replaced or added."""
    schema = json.loads((catalog.schemas_dir() / TRADE).read_text())
    fields = {f["name"]: f for f in schema["fields"]}
    for name, field in changes.items():
        fields[name] = {"name": name, "doc": "changed", **field}
    return {**schema, "fields": list(fields.values())}


def write_trade(root: Path, schema: dict[str, Any]) -> None:
    (root / TRADE).write_text(json.dumps(schema, indent=2), encoding="utf-8")


# -- check: git ---------------------------------------------------------------------------


def test_check_passes_an_unchanged_and_a_compatible_working_tree(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    schemas = repo.path / "schemas"
    assert main(["schemas", "check", "--schemas", str(schemas)]) == EXIT_OK
    write_trade(schemas, trade(venue={"type": ["null", "string"], "default": None}))
    assert main(["schemas", "check", "--schemas", str(schemas)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "tplus/Trade.avsc (tplus.trades → tplus.trades)" in out
    assert "git HEAD: compatible: BACKWARD with commit" in out
    assert out.rstrip().endswith("all compatible")


def test_check_fails_an_incompatible_change_naming_the_field(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    schemas = repo.path / "schemas"
    write_trade(schemas, trade(venue={"type": "string"}))
    assert main(["schemas", "check", "--schemas", str(schemas)]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert "git HEAD: INCOMPATIBLE: BACKWARD with commit" in out
    assert "field 'Trade.venue'" in out and "has no default value" in out
    assert out.rstrip().endswith("1 failed")


def test_check_fails_a_committed_incompatible_change_in_ci(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    schemas = repo.path / "schemas"
    write_trade(schemas, trade(trade_id={"type": "string"}))
    last = repo.commit("breaking")
    assert main(["schemas", "check", "--schemas", str(schemas)]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert f"INCOMPATIBLE: unchanged since commit {last[:12]}; BACKWARD with commit" in out
    assert "'Trade.trade_id'" in out
    assert main(["schemas", "check", "--schemas", str(schemas), "--level", "none"]) == EXIT_OK


def test_check_against_an_older_revision(repo: GitRepo) -> None:
    schemas = repo.path / "schemas"
    base = repo.git("rev-parse", "HEAD").strip()
    write_trade(schemas, trade(venue={"type": "string", "default": "T+"}))
    repo.commit("add venue with a default")
    write_trade(schemas, trade(venue={"type": "string"}))  # drops the default
    args = ["schemas", "check", "--schemas", str(schemas)]
    assert main(args) == EXIT_OK  # HEAD's records all carry a venue
    assert main([*args, "--against-git", base]) == EXIT_FAILED  # base's records do not
    assert main([*args, "--level", "BACKWARD_TRANSITIVE"]) == EXIT_FAILED


def test_check_in_a_fresh_repository_without_commits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = GitRepo(tmp_path / "fresh")
    shutil.copytree(catalog.schemas_dir(), repo.path / "schemas")
    assert main(["schemas", "check", "--schemas", str(repo.path / "schemas")]) == EXIT_OK
    assert "nothing to compare: not committed in HEAD yet" in capsys.readouterr().out


def test_check_fails_a_file_that_is_not_valid_avro(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    schemas = repo.path / "schemas"
    write_trade(schemas, trade(trade_id={"type": "long", "default": "zero"}))
    assert main(["schemas", "check", "--schemas", str(schemas)]) == EXIT_FAILED
    assert "INVALID: not a valid Avro schema" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--against-git", "no-such-rev"], "unknown git revision"),
        (["--no-git"], "nothing to check against"),
    ],
)
def test_check_usage_errors_exit_2(
    repo: GitRepo, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["schemas", "check", "--schemas", str(repo.path / "schemas"), *extra]
    assert main(args) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_check_outside_git_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(catalog.schemas_dir(), schemas)
    assert main(["schemas", "check", "--schemas", str(schemas)]) == EXIT_USAGE
    assert "not inside a git work tree" in capsys.readouterr().err


def test_check_fails_when_a_catalogued_schema_file_is_missing(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    schemas = repo.path / "schemas"
    (schemas / TRADE).unlink()
    assert main(["schemas", "check", "--schemas", str(schemas)]) == EXIT_FAILED
    assert "missing schema file: tplus/Trade.avsc (stream tplus.trades)" in (
        capsys.readouterr().err
    )


def test_unknown_level_is_rejected_by_the_parser(repo: GitRepo) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["schemas", "check", "--level", "SIDEWAYS"])
    assert exited.value.code == EXIT_USAGE


def test_the_repository_schemas_pass_the_offline_check_as_ci_runs_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "connector", "schemas", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == EXIT_OK, result.stdout + result.stderr
    for relative in catalog.STREAM_SCHEMAS.values():
        assert f"{relative} (" in result.stdout
    assert "all compatible" in result.stdout


# -- check: registry ----------------------------------------------------------------------


def test_check_against_a_registry(
    registry: RegistryServer, capsys: pytest.CaptureFixture[str]
) -> None:
    subject = subject_for("tplus.trades")
    registry.store.register(subject, json.dumps(trade(trade_id={"type": "string"})))
    args = ["schemas", "check", "--no-git", "--registry", registry.url]
    assert main(args) == EXIT_FAILED
    out = capsys.readouterr().out
    at_global = "(level BACKWARD, global setting)"
    assert f"registry {subject} {at_global}: INCOMPATIBLE: BACKWARD with version 1 (id 1)" in out
    assert "'Trade.trade_id'" in out and "reader type: long not compatible" in out
    assert f"registry {subject_for('tplus.depth')} {at_global}: nothing to compare" in out

    registry.store.set_compatibility("NONE", subject)
    registry.store.register(subject, catalog.schema_text("tplus.trades"))
    assert main(args) == EXIT_OK
    at_subject = "(level NONE, subject setting)"
    assert f"registry {subject} {at_subject}: unchanged: registered as version 2 (id 2)" in (
        capsys.readouterr().out
    )


def test_check_uses_the_topic_names_of_a_configuration(
    registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "connector.yaml"
    config.write_text(
        f"schema_registry: {{url: '{registry.url}'}}\n"
        "tplus: {market_data: {topics: {trades: prod.trades}}}\n"
    )
    registry.store.register("prod.trades-value", json.dumps(trade(trade_id={"type": "string"})))
    assert main(["schemas", "check", "--no-git", "--config", str(config)]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert "registry prod.trades-value (level BACKWARD, global setting): INCOMPATIBLE" in out
    assert "tplus/Trade.avsc (tplus.trades → prod.trades)" in out


def test_check_exits_3_when_the_registry_is_unreachable(
    registry: RegistryServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The client's own retries take a few seconds; register shares the exit path.
    url = registry.url
    registry.stop()
    assert main(["schemas", "check", "--no-git", "--registry", url]) == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert f"{url}: schema registry unreachable (ConnectError)" in err


def test_check_applies_the_level_the_registry_enforces_on_the_subject(
    registry: RegistryServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # Registered: Trade with one more field and no default. Dropping it is BACKWARD
    # compatible (a new reader ignores it) but not FORWARD (an old reader needs it).
    subject = subject_for("tplus.trades")
    registry.store.register(subject, json.dumps(trade(venue={"type": "string"})))
    args = ["schemas", "check", "--no-git", "--registry", registry.url]
    assert main(args) == EXIT_OK
    assert f"registry {subject} (level BACKWARD, global setting): compatible" in (
        capsys.readouterr().out
    )
    registry.store.set_compatibility("FORWARD", subject)
    assert main(args) == EXIT_FAILED
    out = capsys.readouterr().out
    assert f"registry {subject} (level FORWARD, subject setting): INCOMPATIBLE: FORWARD" in out
    # ... and the registry agrees: register is refused.
    assert main(["schemas", "register", "--registry", registry.url]) == EXIT_FAILED
    assert "409" in capsys.readouterr().err

    registry.store.delete_compatibility(subject)
    registry.store.set_compatibility("FORWARD")
    assert main(args) == EXIT_FAILED
    assert f"registry {subject} (level FORWARD, global setting): INCOMPATIBLE" in (
        capsys.readouterr().out
    )


def test_a_registry_error_names_the_url_and_the_status_not_unreachable(
    registry: RegistryServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # More 500s than the client retries by itself.
    registry.fail_next("GET", 1000, 500, 50001, "Error in the backend data store")
    args = ["schemas", "check", "--no-git", "--registry", registry.url]
    assert main(args) == EXIT_UNAVAILABLE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unreachable" not in err
    assert err.startswith(f"connector schemas: {registry.url}: schema registry answered HTTP 500")
    assert "error 50001" in err


def test_schemas_default_to_the_folder_of_the_working_directory(
    registry: RegistryServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutil.copytree(catalog.schemas_dir(), tmp_path / "schemas")
    (tmp_path / "schemas" / TRADE).write_text("{not avro", encoding="utf-8")
    args = ["schemas", "check", "--no-git", "--registry", registry.url]
    monkeypatch.chdir(tmp_path)
    assert main(args) == EXIT_FAILED
    assert "INVALID" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path / "schemas")  # no ./schemas here: the installed ones
    assert main(args) == EXIT_OK


# -- register -----------------------------------------------------------------------------


def test_register_prints_every_subject_and_id(
    registry: RegistryServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schemas", "register", "--registry", registry.url]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    topics = default_topics()
    assert len(lines) == len(topics)
    for line in lines:
        subject, _, schema_id = line.partition(" → ")
        assert subject in {subject_for(t) for t in topics.values()}
        assert registry.store.get_version(subject, "latest").schema_id == int(schema_id)
    assert sorted(registry.store.subjects()) == sorted(subject_for(t) for t in topics.values())
    # Registering again is idempotent: same ids, no new versions.
    assert main(["schemas", "register", "--registry", registry.url]) == EXIT_OK
    assert capsys.readouterr().out.splitlines() == lines
    assert registry.store.versions(subject_for("tplus.trades")) == [1]


def test_register_reports_a_409_with_the_registry_message_and_goes_on(
    registry: RegistryServer, capsys: pytest.CaptureFixture[str]
) -> None:
    subject = subject_for("tplus.trades")
    registry.store.register(subject, json.dumps(trade(trade_id={"type": "string"})))
    assert main(["schemas", "register", "--registry", registry.url]) == EXIT_FAILED
    captured = capsys.readouterr()
    assert f"{subject}: refused:" in captured.err
    assert "HTTP 409" in captured.err and "'Trade.trade_id'" in captured.err
    assert f"{subject_for('tplus.depth')} → " in captured.out
    assert registry.store.versions(subject) == [1]


def test_register_reports_a_422_for_an_invalid_schema(
    registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(catalog.schemas_dir(), schemas)
    write_trade(schemas, trade(trade_id={"type": "long", "default": "zero"}))
    args = ["schemas", "register", "--registry", registry.url, "--schemas", str(schemas)]
    assert main(args) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "HTTP 422" in err and "'Trade.trade_id'" in err


def test_register_needs_a_registry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SCHEMA_REGISTRY_URL", raising=False)
    assert main(["schemas", "register"]) == EXIT_USAGE
    assert "give --registry URL" in capsys.readouterr().err


def test_register_with_a_bad_configuration_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("schema_registry: {nope: 1}\n")
    assert main(["schemas", "register", "--config", str(config)]) == EXIT_USAGE
    assert "schema_registry.nope: unknown key" in capsys.readouterr().err


# -- docs ---------------------------------------------------------------------------------


def test_docs_check_detects_a_stale_guide(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "consumers.md"
    examples = str(ROOT / "docs" / "examples")
    args = ["schemas", "docs", "--output", str(output), "--examples", examples]
    assert main([*args, "--check"]) == EXIT_FAILED
    assert main(args) == EXIT_OK
    assert main([*args, "--check"]) == EXIT_OK
    output.write_text(output.read_text() + "edited by hand\n")
    assert main([*args, "--check"]) == EXIT_FAILED
    assert "is stale: run `connector schemas docs`" in capsys.readouterr().err


def test_docs_without_the_examples_folder_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["schemas", "docs", "--output", str(tmp_path / "g.md"), "--examples", str(tmp_path)]
    assert main(args) == EXIT_USAGE
    assert "depth_consumer.py not found" in capsys.readouterr().err
