"""The container image's Dockerfile: hadolint-clean, and built the way the chart runs it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from connector.ops.health import Health
from connector.ops.http_server import OpsServer
from connector.settings import Settings
from tests.deploy.artefacts import DOCKERFILE

IGNORE_FILE = DOCKERFILE.with_name(DOCKERFILE.name + ".dockerignore")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _stages() -> list[Stage]:
    """The Dockerfile's stages, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            image, *alias = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
            stages.append(Stage(image, alias[1] if alias else None))
        else:
            stages[-1].instructions.append((keyword, rest))
    return stages


def test_hadolint_finds_nothing(hadolint: str) -> None:
    version = subprocess.run([hadolint, "--version"], capture_output=True, text=True, check=True)
    assert "Haskell Dockerfile Linter" in version.stdout
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_on_a_slim_python_and_only_the_virtualenv_copied() -> None:
    build, runtime = _stages()
    for stage in (build, runtime):
        # By digest: the tag only says which image the digest was read from.
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?@sha256:[0-9a-f]{64}", stage.base), stage.base
    assert runtime.all("COPY") == [f"--from={build.name} /opt/connector /opt/connector"]
    assert all("pip" not in run for run in runtime.all("RUN"))
    assert not any(kw == "ADD" for stage in (build, runtime) for kw, _ in stage.instructions)


def test_runs_as_a_numeric_non_root_user_matching_the_chart() -> None:
    runtime = _stages()[-1]
    [user] = runtime.all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit()
    values = (DOCKERFILE.parents[1] / "helm" / "connector" / "values.yaml").read_text()
    assert f"runAsUser: {uid}" in values and f"runAsGroup: {gid}" in values


def test_entrypoint_is_the_connector_and_the_port_its_default() -> None:
    runtime = _stages()[-1]
    assert runtime.all("ENTRYPOINT") == ['["connector"]']
    assert json.loads(runtime.all("CMD")[0])[0] == "run"
    assert runtime.all("EXPOSE") == [str(Settings().metrics.port)]


def test_nothing_is_written_outside_tmp_at_run_time() -> None:
    build, runtime = _stages()
    env = " ".join(runtime.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HOME=/tmp" in env
    assert runtime.all("WORKDIR") == ["/tmp"]
    assert any("compileall" in run for run in build.all("RUN")), "bytecode is built ahead"


def test_build_context_filter_admits_every_copied_path() -> None:
    ignore = IGNORE_FILE.read_text(encoding="utf-8").splitlines()
    assert "*" in ignore, "the filter is an allow-list"
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    build = _stages()[0]
    for copy in build.all("COPY"):
        *sources, _ = copy.split()
        assert set(sources) <= allowed, copy


def _healthcheck() -> list[str]:
    [check] = _stages()[-1].all("HEALTHCHECK")
    command: list[str] = json.loads(check[check.index("CMD") + 3 :].strip())
    assert command[0] == "python", "slim images have no curl"
    return [sys.executable, *command[1:]]


async def _run(command: list[str], port: int) -> int:
    env = {**os.environ, "CONNECTOR__METRICS__PORT": str(port)}
    process = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(process.wait(), timeout=30)


async def test_healthcheck_passes_while_healthz_answers_and_fails_after() -> None:
    command = _healthcheck()
    server = OpsServer(CollectorRegistry(), Health(), "127.0.0.1", 0)
    port = await server.start()
    try:
        assert await _run(command, port) == 0
    finally:
        await server.stop()
    assert await _run(command, port) != 0


def test_the_spool_is_a_volume_at_its_default_path_owned_by_the_runtime_user() -> None:
    runtime = _stages()[-1]
    path = Settings().spool.path
    assert [json.loads(v) for v in runtime.all("VOLUME")] == [[path]]
    [user] = runtime.all("USER")
    assert any(f"chown {user} {path}" in run for run in runtime.all("RUN"))


def test_dependencies_come_from_the_hashed_lock_and_the_package_alone_after() -> None:
    build = _stages()[0]
    installs = [run for run in build.all("RUN") if "pip install" in run]
    assert "--require-hashes -r requirements/runtime.lock" in installs[0]
    assert all("--no-deps" in run for run in installs[1:]), installs
    lock = (DOCKERFILE.parents[1] / "requirements" / "runtime.lock").read_text(encoding="utf-8")
    pins = re.findall(r"^([a-z0-9._-]+)==\S+ \\$", lock, re.MULTILINE)
    assert {"confluent-kafka", "websockets", "pydantic", "hatchling"} <= set(pins)
    assert all(
        "--hash=sha256:" in block for block in re.split(r"\n(?=[a-z0-9])", lock) if "==" in block
    )
