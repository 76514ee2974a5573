"""The consumers' guide is generated from the schemas, covers every topic and never goes stale."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import fastavro
import pytest

from connector.delivery.serde import subject_for
from connector.governance import catalog
from connector.governance.consumer_guide import (
    TopicDoc,
    baseline_markers,
    example_value,
    generate,
    key_text,
    load_topics,
    render,
    type_text,
)
from connector.governance.inventory import default_topics
from connector.settings import KafkaSettings
from connector.venues import json_numbers
from connector.venues.tplus import market_data
from tests import golden
from tests.avro_check import roundtrip

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "consumers.md"
EXAMPLES = ROOT / "docs" / "examples"
DLQ = KafkaSettings().dlq_topic


def _fresh() -> str:
    return generate(catalog.schemas_dir(), EXAMPLES, default_topics(), DLQ)


def test_the_checked_in_guide_is_what_the_schemas_generate() -> None:
    assert GUIDE.read_text(encoding="utf-8") == _fresh(), (
        "docs/consumers.md is stale: run `connector schemas docs`"
    )


@pytest.mark.parametrize("stream", sorted(catalog.STREAM_SCHEMAS))
def test_the_guide_covers_every_topic_with_key_record_and_fields(stream: str) -> None:
    guide = _fresh()
    topic = default_topics()[stream]
    heading = f"### `{topic}`\n"
    assert heading in guide
    section = guide.split(heading, 1)[1].split("\n### ", 1)[0]
    schema = json.loads(catalog.schema_text(stream))
    assert f"- key: {key_text(schema)}" in section
    assert f"`{schema['namespace']}.{schema['name']}`" in section
    assert f"registry subject `{subject_for(topic)}`" in section
    for field in schema["fields"]:
        assert f"| `{field['name']}` |" in section
    assert "```json" in section
    assert f"| [`{topic}`](#" in guide  # in the topic table too


def test_the_guide_covers_the_dead_letter_topic_and_the_promises() -> None:
    guide = _fresh()
    for heading in (
        "## Decoding",
        "## Ordering and delivery",
        "## Rebuilding an order book from `tplus.depth`",
        "## Baseline records",
        "## Joining at any time",
        "### Order books: the latest checkpoint, then `tplus.depth`",
        "### Account topics: the latest baseline, then everything after it",
        "### Duplicates: the `event-id` header",
        "## Dead letters",
        "## Schema evolution",
    ):
        assert f"\n{heading}\n" in guide
    assert f"| [`{DLQ}`](#dead-letters) |" in guide
    assert (EXAMPLES / "depth_consumer.py").read_text(encoding="utf-8") in guide


def test_the_joining_section_names_the_checkpoint_fields_and_every_baseline_topic() -> None:
    guide = _fresh()
    joining = guide.split("\n## Joining at any time\n", 1)[1].split("\n## ", 1)[0]
    books = json.loads(catalog.schema_text("tplus.books"))
    for name in ("depth_topic", "depth_partition", "depth_offset", "written_ns", "sequence_number"):
        assert name in {f["name"] for f in books["fields"]}
        assert f"`{name}" in joining
    accounts = joining.split("### Account topics", 1)[1].split("###", 1)[0]
    for doc in load_topics(catalog.schemas_dir(), EXAMPLES, default_topics()):
        assert (f"`{doc.topic}`" in accounts) == bool(doc.markers()), doc.topic


@pytest.mark.parametrize(
    "doc",
    load_topics(catalog.schemas_dir(), EXAMPLES, default_topics()),
    ids=lambda d: d.stream,
)
def test_every_example_record_fits_its_schema(doc: TopicDoc) -> None:
    assert doc.examples
    for example in doc.examples:
        assert roundtrip(doc.stream, example) == example


def test_every_example_file_belongs_to_a_stream() -> None:
    for path in EXAMPLES.glob("*.json"):
        assert path.stem in catalog.STREAM_SCHEMAS, path.name


def test_the_tplus_examples_are_what_the_parsers_write() -> None:
    """The curated examples are real: golden frames through the real parsers."""
    received = 1761283014012345678
    snapshot = market_data.parse_book_levels(
        json_numbers.loads(golden.text("tplus", "snapshot.json")), snapshot=True
    )
    diff = market_data.parse_book_levels(
        json_numbers.loads(golden.frames("tplus", "depth.jsonl")[0])
    )
    depth = [
        market_data.depth_record("SNAPSHOT", "1", received, snapshot).value,
        market_data.depth_record("DIFF", "1", received + 9_800_000, diff).value,
        market_data.depth_record(
            "GAP",
            "1",
            received + 20_100_000,
            gap_expected=1043,
            gap_received=1045,
            gap_reason="sequence_gap",
        ).value,
    ]
    trade = market_data.parse_trade(
        json_numbers.loads(golden.frames("tplus", "trades.jsonl")[0]), received
    ).value
    [kline, *_] = market_data.parse_klines(
        json_numbers.loads(golden.frames("tplus", "klines.jsonl")[0]), "1", "1m", received
    )
    expected = {"tplus.depth": depth, "tplus.trades": trade, "tplus.klines": kline.value}
    for stream, value in expected.items():
        assert json.loads((EXAMPLES / f"{stream}.json").read_text()) == value, stream


# -- the data-driven parts, on schemas made up for the purpose --------------------------


def record(doc: str, *fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "R", "namespace": "x", "doc": doc, "fields": list(fields)}


def test_the_key_comes_from_the_schema_docs() -> None:
    by_field = record(
        "", {"name": "acct", "type": "string", "doc": "The account; also the record key."}
    )
    constant = record('A feed, all under the one key "feed" so it keeps its order.')
    keyed_by = record("Bars, keyed by asset id. More text.")
    assert key_text(by_field) == "`acct`, as a UTF-8 string"
    assert key_text(constant) == 'always `"feed"`'
    assert key_text(keyed_by) == "asset id"
    assert key_text(record("Nothing said.")) == "not stated in the schema"


def test_baseline_markers_are_found_by_name_type_and_symbol() -> None:
    origin = {"type": "enum", "name": "Origin", "symbols": ["STREAM", "REST_BASELINE"]}
    kind = {"type": "enum", "name": "Kind", "symbols": ["Created", "BaselineEnd"]}
    schema = record(
        "",
        {"name": "origin", "type": origin, "doc": "Where it came from."},
        {"name": "kind", "type": kind, "doc": "Variant; BaselineEnd closes a baseline."},
        {"name": "from_rest", "type": "boolean", "doc": "True for baseline records."},
        {"name": "baseline_id", "type": ["null", "long"], "default": None},
        {"name": "note", "type": "string", "doc": "Unrelated."},
    )
    assert [m.when for m in baseline_markers(schema)] == [
        "`origin` = `REST_BASELINE`",
        "`from_rest` = `true`",
        "`baseline_id` is set",
    ]
    assert baseline_markers(record("", {"name": "n", "type": "long"})) == []


def test_type_text_is_compact() -> None:
    assert type_text(["null", "long"]) == "[null, long]"
    assert type_text({"type": "array", "items": "x.PriceLevel"}) == "array<PriceLevel>"
    assert type_text({"type": "map", "values": {"type": "enum", "name": "a.B", "symbols": []}}) == (
        "map<B>"
    )
    assert type_text({"type": "long", "logicalType": "timestamp-micros"}) == (
        "long (timestamp-micros)"
    )


def test_placeholder_examples_fit_every_kind_of_type() -> None:
    schema = record(
        "",
        {"name": "a", "type": "boolean"},
        {"name": "b", "type": "int"},
        {"name": "c_ns", "type": "long"},
        {"name": "d", "type": "float"},
        {"name": "e", "type": "double"},
        {"name": "f", "type": "bytes"},
        {"name": "g", "type": "string", "doc": "exact decimal text"},
        {"name": "h", "type": {"type": "fixed", "name": "H", "size": 4}},
        {"name": "i", "type": {"type": "enum", "name": "I", "symbols": ["P", "Q"]}},
        {"name": "j", "type": {"type": "array", "items": "H"}},
        {"name": "k", "type": {"type": "map", "values": ["null", "I"]}},
        {
            "name": "l",
            "type": {"type": "record", "name": "L", "fields": [{"name": "m", "type": "x.I"}]},
        },
        {"name": "n", "type": ["null", "string"], "default": None},
        {"name": "o", "type": "null"},
    )
    value = example_value(schema)
    assert value["g"] == "1.5" and value["c_ns"] > 10**18 and value["n"] is None
    assert value["j"] == [b"\x00" * 4] and value["k"] == {"key": "P"} and value["l"] == {"m": "P"}
    parsed = fastavro.parse_schema(schema)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, value)
    buffer.seek(0)
    assert fastavro.schemaless_reader(buffer, parsed, parsed) == value


def test_a_new_topic_appears_with_placeholder_examples_when_regenerated() -> None:
    schema = record(
        "Balances, keyed by account.",
        {"name": "account", "type": "string", "doc": "The account; also the record key."},
        {"name": "baseline", "type": "boolean", "default": False, "doc": "From the REST baseline."},
    )
    doc = TopicDoc(
        "v.balances",
        "v.balances",
        "v/Balance.avsc",
        schema,
        (example_value(schema),),
        False,
        publishes_baseline=True,
    )
    guide = render([doc], "print('hi')\n", "dlq")
    assert "### `v.balances`" in guide
    row = "| [`v.balances`](#vbalances) | `account`, as a UTF-8 string | `x.R` |"
    assert f"{row} `baseline` = `true` |" in guide
    # The same schema on a stream that never gets a baseline documents no marker.
    quiet = render([replace(doc, publishes_baseline=False)], "print('hi')\n", "dlq")
    assert f"{row} none |" in quiet and "- baseline records:" not in quiet
    assert "placeholder values derived from the schema" in guide
    assert "| `v.balances` | `baseline` = `true` | From the REST baseline. |" in guide
    assert "Rebuilding an order book" not in guide  # no depth topic, no depth section
