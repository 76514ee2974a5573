"""The package map, enforced: which part may import which, and where I/O may live.

The rules are data (``MAY_IMPORT``, ``PURE``, ``PRODUCER_IMPORTERS``); the tests
only read them. A part is a top-level module (``app``) or a package
(``sources``); a rule names a part or one module of it (``delivery.serde``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "connector"

# What every part may import: the shared types at the top level.
SHARED = frozenset({"settings", "secrets", "records", "pipeline"})
ANYTHING = frozenset({"*"})

# Each part, and what it may import besides itself and SHARED.
MAY_IMPORT: dict[str, frozenset[str]] = {
    # entry points and the one composition root
    "__init__": frozenset(),
    "__main__": frozenset({"cli"}),
    "app": ANYTHING,
    "dev": ANYTHING,
    "bench": ANYTHING,
    "cli": frozenset(
        {"app", "dev", "tail", "governance.cli", "ops.log_format", "ops.process_policy"}
        | {"ops.progress", "governance.config_example", "__version__"}
        | {"delivery.serde"}
    ),
    "tail": frozenset({"delivery.serde", "readers"}),
    # shared types
    "settings": frozenset(),
    "secrets": frozenset(),
    "records": frozenset(),
    "pipeline": frozenset({"ops.metrics", "venues.errors"}),
    # packages
    "venues": frozenset(),
    "ops": frozenset(),
    "delivery": frozenset({"ops", "venues.errors", "sources.backoff"}),
    "governance": frozenset({"delivery.serde", "venues"}),
    "sources": frozenset({"ops", "venues", "readers.depth_book"}),
    "readers": frozenset(),
    "embedded": frozenset({"governance.compat"}),
    "simulators": frozenset({"ops.wire_log"}),
}

# Modules that hold pure logic: no event loop, socket, thread or client in them.
PURE = [
    *sorted((ROOT / "venues").rglob("*.py")),
    ROOT / "records.py",
    ROOT / "settings.py",
    ROOT / "delivery" / "avro_writer.py",
    ROOT / "governance" / "compat.py",
    ROOT / "sources" / "backoff.py",
    ROOT / "readers" / "depth_book.py",
    ROOT / "bench" / "frames.py",
    ROOT / "bench" / "stats.py",
    ROOT / "simulators" / "book_model.py",
    ROOT / "simulators" / "oms_model.py",
    ROOT / "simulators" / "tastytrade_accounts.py",
]
IO_MODULES = ("asyncio", "websockets", "confluent_kafka", "httpx", "socket", "threading")

# Only these parts may hold a Kafka producer (bench: its naive and raw-forward bridges).
PRODUCER_IMPORTERS = frozenset({"delivery", "bench"})
PRODUCERS = frozenset({"Producer", "SerializingProducer"})

MODULES = sorted(ROOT.rglob("*.py"))


def _part(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    return rel[0] if len(rel) > 1 else rel[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """Each import as (module, names imported from it)."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def _targets(module: str, names: list[str]) -> set[str]:
    """The internal modules an import reaches, as dotted paths below ``connector``."""
    if module != "connector" and not module.startswith("connector."):
        return set()
    base = module.removeprefix("connector").lstrip(".")
    if not names:  # import connector.x
        return {base}
    return {f"{base}.{name}".lstrip(".") for name in names}  # from connector.x import name


def _allowed(target: str, rules: frozenset[str]) -> bool:
    head = target.split(".")[0]
    if rules is ANYTHING or head in SHARED:
        return True
    return any(target == rule or target.startswith(rule + ".") for rule in rules)


def violations(path: Path, part: str | None = None) -> list[str]:
    """The imports of one module that break the map, as if it stood in ``part``."""
    part = part or _part(path)
    allowed = MAY_IMPORT[part]
    bad: list[str] = []
    for module, names in _imports(path):
        for target in _targets(module, names):
            if target.split(".")[0] != part and not _allowed(target, allowed):
                bad.append(target)
        kafka = module.split(".")[0] == "confluent_kafka"
        if kafka and PRODUCERS & set(names) and part not in PRODUCER_IMPORTERS:
            bad.append(f"{module}.{sorted(PRODUCERS & set(names))[0]}")
    return sorted(bad)


def test_every_part_has_a_rule() -> None:
    assert sorted({_part(p) for p in MODULES} - set(MAY_IMPORT)) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_follow_the_map(path: Path) -> None:
    assert violations(path) == [], f"{path.relative_to(ROOT)} breaks the package map"


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_modules_import_no_io(path: Path) -> None:
    bad = sorted(m for m, _ in _imports(path) if m.split(".")[0] in IO_MODULES)
    assert bad == [], f"{path.name} imports {bad}"


def test_the_rules_catch_a_break(tmp_path: Path) -> None:
    """The checker itself fails on the imports it forbids."""
    fake = tmp_path / "fake.py"
    fake.write_text(
        "from connector.sources.ws_session import x\n"
        "from connector.delivery import sink\n"
        "from connector import app\n"
        "from confluent_kafka import Producer\n",
        encoding="utf-8",
    )
    everything = ["app", "confluent_kafka.Producer", "delivery.sink", "sources.ws_session.x"]
    assert violations(fake, part="ops") == everything
    assert violations(fake, part="governance") == everything
    assert violations(fake, part="cli") == ["confluent_kafka.Producer", *everything[2:]]
    assert violations(fake, part="app") == ["confluent_kafka.Producer"]


def test_top_level_holds_only_entry_points_and_shared_types() -> None:
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(top) <= 10, top


def test_every_package_says_what_it_holds() -> None:
    for init in sorted(ROOT.rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"{init.relative_to(ROOT)} has no docstring"
