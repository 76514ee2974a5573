"""Avro schema parsing, identity and compatibility rules, as a Schema Registry applies them.

Kept free of I/O so that the embedded registry and ``connector schemas check`` (schema
files against the versions in a registry or in git history) give the same verdicts.
The schema-resolution rules themselves are Apache Avro's
``ReaderWriterCompatibilityChecker``; this module only decides which (reader, writer)
pairs a compatibility level implies and turns the checker's result into messages that
name the offending field.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import avro.errors
import avro.schema
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityType,
    lookup_writer_field,
    schema_name_equals,
)

__all__ = [
    "LEVELS",
    "InvalidSchemaError",
    "canonical_form",
    "check_compatibility",
    "parse_schema",
]

LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)

_INT_RANGE = (-(2**31), 2**31 - 1)
_LONG_RANGE = (-(2**63), 2**63 - 1)

# What avro.schema.parse raises for malformed input besides its own exception types.
_PARSE_ERRORS = (
    avro.errors.AvroException,
    avro.errors.IgnoredLogicalType,  # only raised when warnings are turned into errors
    json.JSONDecodeError,
    TypeError,
    AttributeError,
    KeyError,
)


class InvalidSchemaError(ValueError):
    """The text is not a valid Avro schema (bad JSON, unknown type, bad default, ...)."""


def parse_schema(text: str) -> Any:
    """Parse Avro schema JSON into an ``avro.schema.Schema``.

    Field defaults are validated too, because the Avro library accepts any JSON value as
    a default and the mistake would otherwise only surface when a reader needs it.
    """
    try:
        schema = avro.schema.parse(text)
    except _PARSE_ERRORS as exc:
        raise InvalidSchemaError(f"invalid Avro schema: {exc}") from exc
    problems: list[str] = []
    _check_defaults(schema, [], set(), problems)
    if problems:
        raise InvalidSchemaError("invalid Avro schema: " + "; ".join(problems))
    return schema


def canonical_form(text: str) -> str:
    """Return the form used to decide whether two schema texts are "the same schema".

    Key order and whitespace are normalised away, but docs, defaults and aliases are kept:
    unlike Avro's Parsing Canonical Form, which drops them, these change how data is
    resolved or documented, so a schema differing in them deserves a new version.
    """
    parse_schema(text)
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


def check_compatibility(
    new_schema: str,
    previous: Sequence[str],
    level: str,
    *,
    versions: Sequence[int] | None = None,
    labels: Sequence[str] | None = None,
) -> list[str]:
    """List why ``new_schema`` may not follow ``previous`` under ``level`` (empty = ok).

    ``previous`` holds the earlier schemas oldest first; non-transitive levels compare
    with the latest one only. ``versions`` optionally gives their registry version
    numbers, or ``labels`` any other names (``"commit 1a2b3c4"``), so that messages can
    say which one is in the way (by default they are numbered from 1).
    """
    normalized = level.upper()
    if normalized not in LEVELS:
        raise ValueError(f"unknown compatibility level {level!r}; expected one of {LEVELS}")
    if versions is not None and labels is not None:
        raise ValueError("give versions or labels, not both")
    names = list(labels) if labels is not None else None
    if names is None:
        names = [f"version {v}" for v in (versions or range(1, len(previous) + 1))]
    if len(names) != len(previous):
        raise ValueError("versions or labels must have one entry per previous schema")
    if normalized == "NONE" or not previous:
        return []
    candidates = list(zip(names, previous, strict=True))
    if not normalized.endswith("_TRANSITIVE"):
        candidates = candidates[-1:]
    new = parse_schema(new_schema)
    messages: list[str] = []
    for label, text in reversed(candidates):
        old = parse_schema(text)
        if normalized.startswith(("BACKWARD", "FULL")):
            context = f"new schema cannot read data written with {label}"
            messages.extend(f"{context}: {m}" for m in _incompatibilities(new, old))
        if normalized.startswith(("FORWARD", "FULL")):
            context = f"{label} cannot read data written with the new schema"
            messages.extend(f"{context}: {m}" for m in _incompatibilities(old, new))
    return messages


def _incompatibilities(reader: Any, writer: Any) -> list[str]:
    """Explain why ``reader`` cannot read ``writer`` data; empty when it can.

    The verdict is always the Avro checker's on the whole pair. The checker merges the
    locations and messages of all problems into unordered sets, so when it reports a
    problem the records are walked field by field here to pair each message with its
    field; anything that is not a record-to-record step is again left to the checker.
    """
    verdict = _checker().get_compatibility(reader, writer)
    if verdict.compatibility is not SchemaCompatibilityType.incompatible:
        return []
    messages: list[str] = []
    _explain(reader, writer, [], "", set(), messages)
    return messages or [_describe(verdict, [], "")]


def _checker() -> Any:
    """A fresh checker; it memoizes per pair, so one instance per comparison."""
    return ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]


def _explain(
    reader: Any,
    writer: Any,
    path: list[str],
    location: str,
    seen: set[tuple[int, int]],
    out: list[str],
) -> None:
    pair = (id(reader), id(writer))
    if pair in seen:
        return
    seen.add(pair)
    is_record_pair = reader.type == "record" and writer.type == "record"
    if not (is_record_pair and schema_name_equals(reader, writer)):
        result = _checker().get_compatibility(reader, writer)
        if result.compatibility is SchemaCompatibilityType.incompatible:
            out.append(_describe(result, path, location))
        return
    record_path = path or [reader.name]
    for index, field in enumerate(reader.fields):
        field_path = [*record_path, field.name]
        field_location = f"{location}/fields/{index}"
        writer_field = lookup_writer_field(writer_schema=writer, reader_field=field)
        if writer_field is None:
            if not field.has_default:
                out.append(
                    f"field '{'.'.join(field_path)}' ({field_location}) has no default value"
                    " and is missing from the writer's schema"
                )
            continue
        _explain(field.type, writer_field.type, field_path, f"{field_location}/type", seen, out)


_KIND_TEXT = {
    "name_mismatch": "name mismatch",
    "fixed_size_mismatch": "fixed size mismatch",
    "missing_enum_symbols": "writer enum symbols unknown to the reader",
    "reader_field_missing_default_value": "reader field without default missing from writer",
    "type_mismatch": "type mismatch",
    "missing_union_branch": "writer type missing from the reader's union",
}


def _describe(result: Any, path: list[str], location: str) -> str:
    kinds = ", ".join(
        sorted({_KIND_TEXT.get(kind.value, kind.value) for kind in result.incompatibilities})
    )
    where = ", ".join(
        sorted(f"{location}{loc}" if loc != "/" else location or "/" for loc in result.locations)
    )
    target = f"'{'.'.join(path)}'" if path else "the schema root"
    details = "; ".join(sorted(result.messages))
    return f"{kinds} at {target} ({where}): {details}"


def _check_defaults(schema: Any, path: list[str], seen: set[int], problems: list[str]) -> None:
    """Collect fields whose default does not match their type, walking nested types."""
    if id(schema) in seen:
        return
    seen.add(id(schema))
    kind = schema.type
    if kind == "record":
        for field in schema.fields:
            field_path = [*(path or [schema.name]), field.name]
            if field.has_default and not _default_matches(field.type, field.default):
                problems.append(
                    f"default {json.dumps(field.default)} of field '{'.'.join(field_path)}'"
                    f" does not match its type {_type_name(field.type)}"
                )
            _check_defaults(field.type, field_path, seen, problems)
    elif kind == "array":
        _check_defaults(schema.items, path, seen, problems)
    elif kind == "map":
        _check_defaults(schema.values, path, seen, problems)
    elif kind == "union":
        for branch in schema.schemas:
            _check_defaults(branch, path, seen, problems)


def _type_name(schema: Any) -> str:
    if schema.type == "union":
        return "[" + ", ".join(_type_name(branch) for branch in schema.schemas) + "]"
    return str(getattr(schema, "fullname", None) or schema.type)


def _default_matches(schema: Any, value: Any) -> bool:
    """Whether a JSON default value is valid for ``schema``, per the Avro specification.

    A union's default may match any branch (Avro 1.12 relaxed the older "first branch"
    rule); bytes and fixed defaults are JSON strings whose code points are the bytes.
    """
    kind = schema.type
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("int", "long"):
        low, high = _INT_RANGE if kind == "int" else _LONG_RANGE
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if kind in ("float", "double"):
        if isinstance(value, str):
            return value in ("NaN", "Infinity", "-Infinity")
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "bytes":
        return isinstance(value, str) and all(ord(char) < 256 for char in value)
    if kind == "fixed":
        return (
            isinstance(value, str)
            and len(value) == schema.size
            and all(ord(char) < 256 for char in value)
        )
    if kind == "enum":
        return isinstance(value, str) and value in schema.symbols
    if kind == "array":
        return isinstance(value, list) and all(_default_matches(schema.items, v) for v in value)
    if kind == "map":
        return isinstance(value, dict) and all(
            _default_matches(schema.values, v) for v in value.values()
        )
    if kind == "record":
        if not isinstance(value, dict):
            return False
        return all(
            _default_matches(field.type, value[field.name])
            if field.name in value
            else field.has_default
            for field in schema.fields
        )
    if kind == "union":
        return any(_default_matches(branch, value) for branch in schema.schemas)
    return False
