"""The compiled Avro writer writes fastavro's bytes, and refuses what fastavro refuses."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.delivery.avro_writer import Unsupported, compile_schema
from connector.delivery.serde import NORMALIZE_SCHEMAS, AvroEncoder, registry_client
from connector.embedded.registry import RegistryServer
from connector.governance import catalog
from connector.settings import SchemaRegistrySettings

STREAMS = sorted(catalog.STREAM_SCHEMAS)


def _fastavro(schema: Any, value: Any) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), value)
    return out.getvalue()


class _Values:
    """Hypothesis strategies for the values of an Avro schema."""

    def __init__(self) -> None:
        self.named: dict[str, st.SearchStrategy[Any]] = {}

    def of(self, schema: Any, namespace: str = "") -> st.SearchStrategy[Any]:
        primitives: dict[str, st.SearchStrategy[Any]] = {
            "null": st.none(),
            "boolean": st.booleans(),
            "int": st.integers(-(2**31), 2**31 - 1),
            "long": st.integers(-(2**63), 2**63 - 1),
            "float": st.floats(allow_nan=False, width=32),
            "double": st.floats(allow_nan=False),
            "bytes": st.binary(max_size=80),
            "string": st.text(max_size=80),
        }
        if isinstance(schema, str):
            if schema in primitives:
                return primitives[schema]
            full = f"{namespace}.{schema}" if namespace and "." not in schema else schema
            return st.deferred(
                lambda: self.named[full] if full in self.named else self.named[schema]
            )
        if isinstance(schema, list):
            return st.one_of([self.of(b, namespace) for b in schema])
        kind = schema["type"]
        if kind in primitives:
            return primitives[kind]
        if kind == "array":
            return st.lists(self.of(schema["items"], namespace), max_size=4)
        if kind == "map":
            return st.dictionaries(
                st.text(max_size=10), self.of(schema["values"], namespace), max_size=3
            )
        space = schema.get("namespace", namespace)
        full = f"{space}.{schema['name']}" if space else schema["name"]
        if kind == "enum":
            self.named[full] = st.sampled_from(schema["symbols"])
        elif kind == "record":
            # Fields are walked now, so every named type is known before any draw.
            built: list[st.SearchStrategy[Any]] = []
            self.named[full] = st.deferred(lambda: built[0])
            fields = {f["name"]: self.of(f["type"], space) for f in schema["fields"]}
            built.append(st.fixed_dictionaries(fields))
        return self.named[full]


@pytest.mark.parametrize("stream", STREAMS)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_connector_schema_writes_fastavros_bytes(stream: str, data: st.DataObject) -> None:
    schema = json.loads(catalog.schema_text(stream))
    value = data.draw(_Values().of(schema))
    assert compile_schema(schema)(value) == _fastavro(schema, value)


SHAPES: dict[str, Any] = {
    "type": "record",
    "name": "Shapes",
    "namespace": "test",
    "fields": [
        {
            "name": "inner",
            "type": {
                "type": "record",
                "name": "Inner",
                "fields": [
                    {"name": "next", "type": ["null", "Inner"], "default": None},
                    {"name": "tag", "type": {"type": "enum", "name": "Tag", "symbols": ["A", "B"]}},
                ],
            },
        },
        {"name": "choice", "type": ["string", "long", "boolean", "null", "Inner"]},
        {"name": "optional_first", "type": ["long", "null"], "default": 1},
        {"name": "many", "type": {"type": "map", "values": {"type": "array", "items": "double"}}},
        {"name": "fixed", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {"name": "count", "type": "int"},
        {"name": "ratio", "type": "float"},
    ],
}


@settings(max_examples=100, deadline=None)
@given(
    choice=st.one_of(
        st.text(max_size=5),
        st.integers(-(2**63), 2**63 - 1),
        st.booleans(),
        st.none(),
        st.just({"next": None, "tag": "B"}),
    ),
    optional=st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    many=st.dictionaries(st.text(max_size=3), st.lists(st.floats(allow_nan=False), max_size=70)),
    count=st.integers(-(2**31), 2**31 - 1),
    depth=st.integers(0, 3),
)
def test_unions_recursion_maps_fixed_and_long_blocks_match_fastavro(
    choice: Any, optional: int | None, many: dict[str, list[float]], count: int, depth: int
) -> None:
    inner: dict[str, Any] = {"next": None, "tag": "A"}
    for _ in range(depth):
        inner = {"next": inner, "tag": "B"}
    value = {
        "choice": choice,
        "optional_first": optional,
        "many": many,
        "fixed": b"abcd",
        "count": count,
        "ratio": 0.5,
        "inner": inner,
    }
    assert compile_schema(SHAPES)(value) == _fastavro(SHAPES, value)


def test_a_missing_field_takes_its_default_or_null_as_in_fastavro() -> None:
    value = {"choice": "x", "many": {}, "fixed": b"abcd", "count": 0, "ratio": 1.0}
    value["inner"] = {"tag": "A"}
    assert compile_schema(SHAPES)(value) == _fastavro(SHAPES, value)


DEPTH = json.loads(catalog.schema_text("tplus.depth"))
GOOD_DEPTH: dict[str, Any] = {
    "kind": "DIFF",
    "asset_id": "1",
    "sequence_number": 1042,
    "bids": [{"price": "3862.4", "quantity": "1.75"}],
    "asks": [],
    "gap_expected": None,
    "gap_received": None,
    "gap_reason": None,
    "received_ns": 1_773_153_065_220_000_000,
}


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("kind", "SIDEWAYS"),
        ("asset_id", 1),
        ("asset_id", None),
        ("sequence_number", "1042"),
        ("sequence_number", 2**63),
        ("sequence_number", True),
        ("received_ns", None),
        ("received_ns", 1.5),
        ("bids", "not a list"),
        ("bids", [{"price": 1, "quantity": "1"}]),
        ("bids", [{"quantity": "1"}]),
        ("gap_reason", 7),
    ],
)
def test_values_that_do_not_fit_the_schema_raise(field: str, bad: Any) -> None:
    encode = compile_schema(DEPTH)
    assert encode(GOOD_DEPTH) == _fastavro(DEPTH, GOOD_DEPTH)
    with pytest.raises((TypeError, ValueError, KeyError, AttributeError)):
        encode({**GOOD_DEPTH, field: bad})


def test_a_boolean_field_takes_only_booleans() -> None:
    schema = {"type": "record", "name": "B", "fields": [{"name": "b", "type": "boolean"}]}
    assert compile_schema(schema)({"b": False}) == b"\x00"
    with pytest.raises(TypeError):
        compile_schema(schema)({"b": 1})


def test_logical_types_are_left_to_fastavro() -> None:
    schema = {
        "type": "record",
        "name": "T",
        "fields": [{"name": "d", "type": {"type": "int", "logicalType": "date"}}],
    }
    with pytest.raises(Unsupported):
        compile_schema(schema)


def test_the_encoder_writes_what_confluents_serializer_writes() -> None:
    stream = "tplus.depth"
    text = catalog.schema_text(stream)
    with RegistryServer() as registry:
        client = registry_client(SchemaRegistrySettings(url=registry.start()))
        try:
            serializer = AvroSerializer(
                client,
                text,
                conf={"auto.register.schemas": True, "normalize.schemas": NORMALIZE_SCHEMAS},
            )
            expected = serializer(GOOD_DEPTH, SerializationContext(stream, MessageField.VALUE))
            encoded = AvroEncoder(client, stream, text, auto_register=True)(GOOD_DEPTH)
        finally:
            client.close()
    assert expected is not None
    assert encoded == expected
    assert encoded[:1] == b"\x00" and len(encoded) > 5
