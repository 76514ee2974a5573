"""One virtual environment per official SDK, built once and cached by its pins.

The SDKs cannot share the project's environment (``tpluspy`` needs
``websockets<14``), nor each other's. Each is built under the user cache
directory in a folder named for its requirements and the Python version, so
a run reuses what an earlier run built and a changed pin builds afresh. A
build goes to a temporary folder renamed into place, so parallel runs never
see half an environment.

``python -m tests.conformance.sdk_venvs`` builds them all (``.ci/run`` does).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PINS = Path(__file__).resolve().parent / "sdks.txt"
_READY = "ready"


@dataclass(frozen=True, slots=True)
class SdkEnv:
    """A built environment: its name, requirements and interpreter."""

    name: str
    requirements: tuple[str, ...]
    python: Path


def pins(path: Path = PINS) -> dict[str, tuple[str, ...]]:
    """Environment name → pip requirements, as ``sdks.txt`` lists them."""
    found: dict[str, tuple[str, ...]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            found[words[0]] = tuple(words[1:])
    return found


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "connector" / "sdk-venvs"


def _folder(name: str, requirements: tuple[str, ...]) -> Path:
    key = "\n".join([f"python{sys.version_info[0]}.{sys.version_info[1]}", *requirements])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_root() / f"{name}-{digest}"


def ensure(name: str, timeout_s: float = 600) -> SdkEnv:
    """The environment ``name`` of ``sdks.txt``, built now unless cached."""
    requirements = pins()[name]
    folder = _folder(name, requirements)
    if not (folder / _READY).exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
        try:
            _build(scratch, requirements, timeout_s)
            if not (folder / _READY).exists():  # a build that never became ready
                shutil.rmtree(folder, ignore_errors=True)
            try:
                scratch.rename(folder)
            except OSError:
                if not (folder / _READY).exists():  # another run's rename won only if ready
                    raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return SdkEnv(name, requirements, folder / "bin" / "python")


def _build(folder: Path, requirements: tuple[str, ...], timeout_s: float) -> None:
    """A fresh venv in ``folder`` with ``requirements`` installed (run as ``python -m pip``:
    the environment is renamed afterwards, which breaks its scripts but not its interpreter)."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=timeout_s)
    install = [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run(
        [*install, "--disable-pip-version-check", *requirements], check=True, timeout=timeout_s
    )
    (folder / _READY).write_text("\n".join(requirements) + "\n", encoding="utf-8")


def main() -> int:
    for name in pins():
        env = ensure(name)
        print(f"{env.name}: {' '.join(env.requirements)} -> {env.python}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
