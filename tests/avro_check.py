"""Validate values against the repository's schemas with fastavro, as a consumer would read them."""

from __future__ import annotations

import io
import json
from typing import Any, cast

import fastavro

from connector.governance import catalog


def roundtrip(stream: str, value: dict[str, Any]) -> dict[str, Any]:
    """Encode with the stream's schema and decode again; raises if the value does not fit."""
    schema = fastavro.parse_schema(json.loads(catalog.schema_text(stream)))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, value)
    buf.seek(0)
    return cast(dict[str, Any], fastavro.schemaless_reader(buf, schema, schema))
