"""No ``extra=`` key anywhere in the package collides with a LogRecord attribute.

``logging`` raises KeyError for such a key at the moment the line is logged,
so a collision on a rarely taken path (an error reply, say) ends whatever
task logged it. Every call is checked here, statically, whether or not a
test reaches it.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "connector"

RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
"""Every attribute a LogRecord has, plus the two ``Formatter`` adds."""


LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical", "log"})


def _extras(tree: ast.AST) -> list[tuple[int, ast.expr]]:
    """``extra=`` of every call of a logger method (``log.warning(..., extra=...)``)."""
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LOG_METHODS
        ):
            for keyword in node.keywords:
                if keyword.arg == "extra":
                    found.append((node.lineno, keyword.value))
    return found


def _collisions(source: str, name: str) -> list[str]:
    problems = []
    for line, value in _extras(ast.parse(source)):
        where = f"{name}:{line}"
        if not isinstance(value, ast.Dict):
            problems.append(f"{where}: extra= must be a dict literal, so its keys can be checked")
            continue
        for key in value.keys:
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                problems.append(f"{where}: extra= keys must be string literals")
            elif key.value in RESERVED:
                problems.append(f"{where}: extra key {key.value!r} is a LogRecord attribute")
    return problems


def test_no_extra_key_collides_with_a_log_record_attribute() -> None:
    problems = []
    checked = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        checked += len(_extras(ast.parse(source)))
        problems += _collisions(source, str(path.relative_to(PACKAGE.parent)))
    assert checked > 30, "the scan found too few extra= calls: is it reading the package?"
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_collision_and_a_key_it_cannot_read() -> None:
    source = (
        'log.warning("x", extra={"message": "m", "venue": "v"})\n'
        'log.info("y", extra=fields)\n'
        'log.info("z", extra={"ok": 1, name: 2})\n'
    )
    problems = _collisions(source, "m.py")
    assert problems == [
        "m.py:1: extra key 'message' is a LogRecord attribute",
        "m.py:2: extra= must be a dict literal, so its keys can be checked",
        "m.py:3: extra= keys must be string literals",
    ]
    assert {"message", "msg", "args", "name", "levelname", "exc_info"} <= RESERVED
