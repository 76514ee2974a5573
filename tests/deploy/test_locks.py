"""The hashed lock files cover pyproject.toml: every dependency pinned, by hash, within its range.

A dependency added to pyproject.toml without regenerating the locks (see
requirements/README.md) fails here instead of at the next image build.
"""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.artefacts import ROOT

LOCKS = ROOT / "requirements"
PIN = re.compile(
    r"^([A-Za-z0-9._-]+)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", re.M
)


def _pins(name: str) -> dict[str, str]:
    text = (LOCKS / name).read_text(encoding="utf-8")
    pins: dict[str, str] = {canonicalize_name(m[1]): m[2] for m in PIN.finditer(text)}
    # Every requirement line of the lock is a hashed pin.
    lines = [line for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert len(lines) == len(pins), [line for line in lines if "==" not in line]
    return pins


def _project() -> dict[str, list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {"runtime": project["dependencies"], "dev": project["optional-dependencies"]["dev"]}


@pytest.mark.parametrize(
    ("lock", "groups"), [("runtime.lock", ["runtime"]), ("dev.lock", ["runtime", "dev"])]
)
def test_every_dependency_is_pinned_within_its_range(lock: str, groups: list[str]) -> None:
    pins = _pins(lock)
    for group in groups:
        for line in _project()[group]:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{name} is not in requirements/{lock}"
            assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])


def test_the_dev_lock_runs_what_the_image_runs() -> None:
    runtime, dev = _pins("runtime.lock"), _pins("dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime
    assert "hatchling" in runtime, "the build backend is locked too"
