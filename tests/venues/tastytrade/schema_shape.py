"""Checks that a value has exactly the fields of its Avro schema, at every depth.

fastavro writes a dict by the schema's field names and silently ignores any
other key, so a mapped field the schema forgot would vanish on the way to
Kafka. These checks catch that, and a schema field the mapper never fills.
"""

from __future__ import annotations

import json
from typing import Any

from connector.governance import catalog


def _named(schema: Any, out: dict[str, Any]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _named(branch, out)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum") and "name" in schema:
            out[schema["name"]] = schema
        for field in schema.get("fields", []):
            _named(field["type"], out)
        for key in ("items", "values"):
            if key in schema:
                _named(schema[key], out)


def _check(schema: Any, value: Any, named: dict[str, Any], path: str) -> None:
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, list):
        if value is None:
            assert "null" in schema, f"{path} is null but not nullable"
            return
        branches = [b for b in schema if b != "null"]
        assert len(branches) == 1, f"{path}: unexpected union {schema}"
        _check(branches[0], value, named, path)
        return
    if isinstance(schema, dict):
        kind = schema["type"]
        if kind == "record":
            assert isinstance(value, dict), f"{path} is not a record"
            names = [f["name"] for f in schema["fields"]]
            assert sorted(value) == sorted(names), (
                f"{path}: value keys {sorted(set(value) ^ set(names))} differ from the schema"
            )
            for field in schema["fields"]:
                _check(field["type"], value[field["name"]], named, f"{path}.{field['name']}")
        elif kind == "array":
            assert isinstance(value, list), f"{path} is not a list"
            for i, item in enumerate(value):
                _check(schema["items"], item, named, f"{path}[{i}]")
        elif kind == "map":
            assert isinstance(value, dict), f"{path} is not a map"
            for k, v in value.items():
                _check(schema["values"], v, named, f"{path}[{k}]")
        elif kind == "enum":
            assert value in schema["symbols"], f"{path}={value!r} is not a symbol"
        else:
            _check(kind, value, named, path)
        return
    expected = {"string": str, "long": int, "boolean": bool}[schema]
    assert isinstance(value, expected), f"{path}={value!r} is not {schema}"
    if schema == "long":
        assert not isinstance(value, bool)


def assert_fits_exactly(stream: str, value: dict[str, Any]) -> None:
    """Every key of ``value`` (recursively) is a schema field and every field is present."""
    schema = json.loads(catalog.schema_text(stream))
    named: dict[str, Any] = {}
    _named(schema, named)
    _check(schema, value, named, stream)
