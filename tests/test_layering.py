"""Parsing and mapping stay pure: no event loop, socket or Kafka client in them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "connector"
PURE = [
    *sorted((ROOT / "venues").rglob("*.py")),
    ROOT / "records.py",
    ROOT / "avro_writer.py",
    ROOT / "bench" / "frames.py",
    ROOT / "bench" / "stats.py",
    ROOT / "backoff.py",
    ROOT / "schema_compat.py",
    ROOT / "settings.py",
    ROOT / "simulators" / "book_model.py",
    ROOT / "simulators" / "oms_model.py",
    ROOT / "simulators" / "tastytrade_accounts.py",
]
FORBIDDEN = ("asyncio", "websockets", "confluent_kafka", "httpx", "socket", "threading")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_modules_import_no_io(path: Path) -> None:
    bad = sorted(n for n in _imports(path) if n.split(".")[0] in FORBIDDEN)
    assert bad == [], f"{path.name} imports {bad}"


def test_the_pure_module_list_is_not_empty() -> None:
    assert len([p for p in PURE if p.exists()]) >= 6
