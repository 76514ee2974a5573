"""Compatibility levels decide which schema changes a subject accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connector.governance.compat import (
    LEVELS,
    InvalidSchemaError,
    canonical_form,
    check_compatibility,
    parse_schema,
)


def record(*fields: dict[str, Any], name: str = "Trade", **extra: Any) -> str:
    return json.dumps(
        {"type": "record", "name": name, "namespace": "test", "fields": list(fields), **extra}
    )


def enum_field(*symbols: str) -> dict[str, Any]:
    return {"name": "side", "type": {"type": "enum", "name": "Side", "symbols": list(symbols)}}


ID = {"name": "id", "type": "long"}
PRICE_INT = {"name": "price", "type": "int"}
PRICE_LONG = {"name": "price", "type": "long"}
VENUE = {"name": "venue", "type": "string"}
VENUE_DEFAULT = {"name": "venue", "type": "string", "default": "unknown"}
OPTIONAL_NOTE = {"name": "note", "type": ["null", "string"], "default": None}

BASE = record(ID, PRICE_INT)
WITH_VENUE = record(ID, PRICE_INT, VENUE)
SIDES_2 = record(ID, enum_field("BUY", "SELL"))
SIDES_3 = record(ID, enum_field("BUY", "SELL", "CROSS"))
PX_RENAMED = record(ID, {"name": "px", "type": "int"})
PX_ALIASED = record(ID, {"name": "px", "type": "int", "aliases": ["price"]})
RECORD_RENAMED = record(ID, PRICE_INT, name="Print")
RECORD_ALIASED = record(ID, PRICE_INT, name="Print", aliases=["test.Trade"])
# Three versions: v1 has no venue, v2 adds it with a default, v3 drops that default.
# Only v1 data lacks the field, so v3 passes a check against v2 but not against v1.
V1, V2, V3 = record(ID), record(ID, VENUE_DEFAULT), record(ID, VENUE)

# (case id, new schema, previous versions oldest first, level, compatible?)
CASES: list[tuple[str, str, list[str], str, bool]] = [
    ("add-field-with-default", record(ID, PRICE_INT, VENUE_DEFAULT), [BASE], "BACKWARD", True),
    ("add-field-without-default", WITH_VENUE, [BASE], "BACKWARD", False),
    ("add-field-without-default-forward", WITH_VENUE, [BASE], "FORWARD", True),
    ("remove-field", record(ID), [BASE], "BACKWARD", True),
    ("remove-field-without-default-forward", record(ID), [BASE], "FORWARD", False),
    ("remove-field-with-default-forward", V1, [V2], "FORWARD", True),
    ("promote-int-to-long", record(ID, PRICE_LONG), [BASE], "BACKWARD", True),
    ("promote-int-to-long-forward", record(ID, PRICE_LONG), [BASE], "FORWARD", False),
    ("narrow-long-to-int", BASE, [record(ID, PRICE_LONG)], "BACKWARD", False),
    ("enum-symbol-added", SIDES_3, [SIDES_2], "BACKWARD", True),
    ("enum-symbol-added-forward", SIDES_3, [SIDES_2], "FORWARD", False),
    ("rename-field-without-alias", PX_RENAMED, [BASE], "BACKWARD", False),
    ("rename-field-with-alias", PX_ALIASED, [BASE], "BACKWARD", True),
    ("rename-record-without-alias", RECORD_RENAMED, [BASE], "BACKWARD", False),
    ("rename-record-with-alias", RECORD_ALIASED, [BASE], "BACKWARD", True),
    ("full-optional-field", record(ID, PRICE_INT, OPTIONAL_NOTE), [BASE], "FULL", True),
    ("full-required-field", WITH_VENUE, [BASE], "FULL", False),
    ("full-type-promotion", record(ID, PRICE_LONG), [BASE], "FULL", False),
    ("backward-non-transitive", V3, [V1, V2], "BACKWARD", True),
    ("backward-transitive", V3, [V1, V2], "BACKWARD_TRANSITIVE", False),
    ("forward-non-transitive", V1, [V3, V2], "FORWARD", True),
    ("forward-transitive", V1, [V3, V2], "FORWARD_TRANSITIVE", False),
    ("full-transitive", record(ID, OPTIONAL_NOTE), [V1, V2], "FULL_TRANSITIVE", True),
    ("none-accepts-anything", '"string"', [BASE, record(ID, PRICE_LONG)], "NONE", True),
    ("first-version-always-ok", BASE, [], "FULL_TRANSITIVE", True),
]


@pytest.mark.parametrize(
    ("new", "previous", "level", "compatible"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_compatibility_table(new: str, previous: list[str], level: str, compatible: bool) -> None:
    messages = check_compatibility(new, previous, level)
    assert (messages == []) is compatible, messages


def test_every_level_is_covered_by_the_table() -> None:
    assert {case[3] for case in CASES} == set(LEVELS)


def test_message_names_the_field_and_the_version() -> None:
    [message] = check_compatibility(WITH_VENUE, [BASE, BASE], "BACKWARD", versions=[3, 5])
    assert "version 5" in message
    assert "'Trade.venue'" in message
    assert "/fields/2" in message
    assert "no default" in message


def test_messages_pair_each_problem_with_its_field() -> None:
    new = record(ID, PRICE_LONG, enum_field("BUY", "SELL", "CROSS"))
    old = record(ID, PRICE_INT, enum_field("BUY", "SELL"))
    messages = check_compatibility(new, [old], "FORWARD")
    assert len(messages) == 2
    price, side = sorted(messages, key=lambda m: "Trade.side" in m)
    assert "'Trade.price'" in price and "long" in price
    assert "'Trade.side'" in side and "CROSS" in side


def test_level_is_case_insensitive_and_validated() -> None:
    assert check_compatibility(BASE, [BASE], "backward") == []
    with pytest.raises(ValueError, match="unknown compatibility level"):
        check_compatibility(BASE, [BASE], "SIDEWAYS")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "Error parsing JSON"),
        ('{"type": "nope"}', "nope"),
        (record({"name": "x", "type": "int", "default": "zero"}), "'Trade.x'"),
        (record({"name": "x", "type": "int", "default": 2**40}), "'Trade.x'"),
        (record({"name": "x", "type": ["null", "int"], "default": "zero"}), "'Trade.x'"),
        (record({**enum_field("A"), "default": "B"}), "'Trade.side'"),
    ],
)
def test_invalid_schemas_are_rejected_with_a_reason(text: str, problem: str) -> None:
    with pytest.raises(InvalidSchemaError, match="invalid Avro schema") as raised:
        parse_schema(text)
    assert problem in str(raised.value)


def test_valid_defaults_are_accepted() -> None:
    parse_schema(
        record(
            {"name": "n", "type": ["null", "int"], "default": None},
            {"name": "b", "type": "bytes", "default": "\u00ff"},
            {"name": "d", "type": "double", "default": 1},
            {"name": "a", "type": {"type": "array", "items": "long"}, "default": [1, 2]},
        )
    )


def test_canonical_form_ignores_layout_but_not_meaning() -> None:
    spaced = json.dumps(json.loads(BASE), indent=4)
    reordered = json.dumps(dict(reversed(list(json.loads(BASE).items()))))
    assert canonical_form(spaced) == canonical_form(reordered) == canonical_form(BASE)
    assert canonical_form(record(ID, VENUE_DEFAULT)) != canonical_form(record(ID, VENUE))


def test_labels_name_the_earlier_versions_in_messages() -> None:
    [message] = check_compatibility(WITH_VENUE, [BASE], "BACKWARD", labels=["commit 1a2b3c4"])
    assert message.startswith("new schema cannot read data written with commit 1a2b3c4:")


def test_labels_and_versions_must_match_the_previous_schemas() -> None:
    with pytest.raises(ValueError, match="not both"):
        check_compatibility(BASE, [BASE], "BACKWARD", versions=[1], labels=["a"])
    with pytest.raises(ValueError, match="one entry per previous schema"):
        check_compatibility(BASE, [BASE], "BACKWARD", labels=["a", "b"])
