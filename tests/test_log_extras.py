"""No ``extra=`` key anywhere in the package collides with a LogRecord attribute.

``logging`` raises KeyError for such a key at the moment the line is logged,
so a collision on a rarely taken path (an error reply, say) ends whatever
task logged it. Every logger call is checked here, statically, whether or
not a test reaches it: a dict literal's keys; for a variable, the dict
literals assigned to it and the keys set on it in the same function; for a
call (``status.fields()``), the dict literal every function of that name
returns.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "connector"

RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
"""Every attribute a LogRecord has, plus the two ``Formatter`` adds."""

LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical", "log"})


def _calls_with_extra(tree: ast.AST) -> Iterator[tuple[ast.AST | None, ast.Call, ast.expr]]:
    """(enclosing function, call, ``extra=`` value) of every logger method call."""

    def walk(
        node: ast.AST, function: ast.AST | None
    ) -> Iterator[tuple[ast.AST | None, ast.Call, ast.expr]]:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Attribute)
                and child.func.attr in LOG_METHODS
            ):
                for keyword in child.keywords:
                    if keyword.arg == "extra":
                        yield function, child, keyword.value
            yield from walk(child, inner)

    yield from walk(tree, None)


def _returned_dicts(trees: list[ast.AST], name: str) -> list[ast.Dict]:
    found = []
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
                found += [
                    r.value
                    for r in ast.walk(node)
                    if isinstance(r, ast.Return) and isinstance(r.value, ast.Dict)
                ]
    return found


def _keys(
    value: ast.expr, function: ast.AST | None, trees: list[ast.AST]
) -> tuple[list[ast.expr | None], str | None]:
    """The key expressions ``value`` can hold, or why they cannot be known."""
    if isinstance(value, ast.Dict):
        return list(value.keys), None
    if isinstance(value, ast.Constant) and value.value is None:
        return [], None
    if isinstance(value, ast.IfExp):
        body, why = _keys(value.body, function, trees)
        orelse, why_else = _keys(value.orelse, function, trees)
        return body + orelse, why or why_else
    if isinstance(value, ast.Name) and function is not None:
        keys: list[ast.expr | None] = []
        assigned = False
        for node in ast.walk(function):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id == value.id:
                        assigned = True
                        more, why = _keys(node.value, None, trees) if node.value else ([], None)
                        if why:
                            return [], why
                        keys += more
                    if (
                        isinstance(target, ast.Subscript)
                        and isinstance(target.value, ast.Name)
                        and target.value.id == value.id
                    ):
                        keys.append(target.slice)
        if assigned:
            return keys, None
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        returned = _returned_dicts(trees, name) if name else []
        if returned:
            return [k for d in returned for k in d.keys], None
    return [], "extra= must be a dict its keys can be read from"


def _collisions(sources: dict[str, str]) -> list[str]:
    trees = {name: ast.parse(source) for name, source in sources.items()}
    problems = []
    for name, tree in trees.items():
        for function, call, value in _calls_with_extra(tree):
            where = f"{name}:{call.lineno}"
            keys, why = _keys(value, function, list(trees.values()))
            if why:
                problems.append(f"{where}: {why}")
            for key in keys:
                if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                    problems.append(f"{where}: extra= keys must be string literals")
                elif key.value in RESERVED:
                    problems.append(f"{where}: extra key {key.value!r} is a LogRecord attribute")
    return problems


def _package() -> dict[str, str]:
    return {
        str(path.relative_to(PACKAGE.parent)): path.read_text()
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_no_extra_key_collides_with_a_log_record_attribute() -> None:
    sources = _package()
    checked = sum(len(list(_calls_with_extra(ast.parse(s)))) for s in sources.values())
    assert checked > 30, "the scan found too few extra= calls: is it reading the package?"
    problems = _collisions(sources)
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_collision_however_the_extra_is_built() -> None:
    source = (
        'log.warning("x", extra={"message": "m", "venue": "v"})\n'
        "def f(fields):\n"
        '    log.info("y", extra=fields)\n'
        '    log.info("z", extra={"ok": 1, name: 2})\n'
        "def g():\n"
        '    extra = {"ok": 1}\n'
        '    extra["args"] = 2\n'
        '    log.info("w", extra=extra if x else None)\n'
        "def fields():\n"
        '    return {"levelname": 1}\n'
        'log.info("v", extra=status.fields())\n'
        'log.info("u", extra=unknown())\n'
    )
    assert _collisions({"m.py": source}) == [
        "m.py:1: extra key 'message' is a LogRecord attribute",
        "m.py:3: extra= must be a dict its keys can be read from",
        "m.py:4: extra= keys must be string literals",
        "m.py:8: extra key 'args' is a LogRecord attribute",
        "m.py:11: extra key 'levelname' is a LogRecord attribute",
        "m.py:12: extra= must be a dict its keys can be read from",
    ]
    assert {"message", "msg", "args", "name", "levelname", "exc_info"} <= RESERVED
