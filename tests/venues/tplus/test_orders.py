"""T+ order events and the open-orders baseline, from golden frames and every wire form."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from connector.venues import json_numbers
from connector.venues.errors import FrameError, Reason
from connector.venues.tplus import orders as od
from tests import golden
from tests.avro_check import roundtrip
from tests.golden import frames

ACCOUNT = "07174645dda5c7fa66ac240ecad7ea4c6e6bf13662057e9b413c97cf73a67016"
EXAMPLE_KEY = Ed25519PrivateKey.from_private_bytes(
    hashlib.sha256(b"tplus-bridge-example-user").digest()
)
VARIANT_FIELD = {
    "Created": "created",
    "Replaced": "replaced",
    "Amended": "amended",
    "Removed": "removed",
    "Canceled": "canceled",
    "Triggered": "triggered",
    "CreateFailed": "failure",
    "ReplaceFailed": "failure",
    "AmendFailed": "failure",
    "CancelFailed": "failure",
    "Updated": "updated",
    "OpenOrder": "open_order",
}
ALL_FIELDS = set(VARIANT_FIELD.values())


def _parse(
    frame: str | dict[str, Any], decimals: od.OrderDecimals | None = None
) -> od.ParsedOrderEvent:
    text = frame if isinstance(frame, str) else json.dumps(frame)
    return od.parse_order_event(
        json_numbers.loads(text),
        ACCOUNT,
        42,
        decimals if decimals is not None else od.OrderDecimals(),
    )


def _check_variant_fields(value: dict[str, Any]) -> None:
    """Exactly the variant's own field is set (none for BaselineEnd)."""
    own = VARIANT_FIELD.get(value["event_type"])
    for name in ALL_FIELDS:
        assert (value[name] is not None) == (name == own), name


def test_every_golden_order_frame_becomes_a_valid_record() -> None:
    decimals = od.OrderDecimals()
    lines = frames("tplus", "orders.jsonl")
    assert len(lines) == 8
    types = []
    for line in lines:
        parsed = _parse(line, decimals)
        record = parsed.record
        assert record.stream == od.ORDERS_STREAM == "tplus.orders"
        assert record.key == ACCOUNT
        assert parsed.named_account == ACCOUNT
        value = roundtrip(od.ORDERS_STREAM, record.value)
        assert value == record.value
        assert value["source"] == "STREAM" and value["baseline"] is None
        _check_variant_fields(value)
        types.append(value["event_type"])
    assert types == [
        "Created",
        "Replaced",
        "Amended",
        "Removed",
        "Created",
        "Canceled",
        "Triggered",
        "CreateFailed",
    ]


def test_golden_values_are_scaled_losslessly_with_their_decimals() -> None:
    decimals = od.OrderDecimals()
    values = [_parse(line, decimals).record.value for line in frames("tplus", "orders.jsonl")]
    created, replaced, amended, removed, market, canceled, triggered, failed = values
    limit = created["created"]["limit"]
    assert limit["limit_price"] == {"units": "386240", "decimals": 2, "value": "3862.40"}
    assert limit["quantity"] == {"units": "12500", "decimals": 4, "value": "1.2500"}
    assert (limit["time_in_force"], limit["post_only"]) == ("GTC", False)
    assert created["timestamp_ns"] == 1761283013884253220
    assert created["created"]["sub_account"] == 1 and created["created"]["is_spot"] is True
    # Replaced carries no decimals: they come from the order's Created event.
    assert replaced["replaced"]["new_price"]["value"] == "3861.80"
    assert replaced["replaced"]["new_quantity"]["value"] == "1.5000"
    assert amended["amended"]["remaining_quantity"]["value"] == "1.4000"
    assert removed["removed"]["reason"] == "Completed"
    assert removed["removed"]["filled_quantity"]["value"] == "1.4000"
    # The quote amount's scale is not documented: the integer travels, undivided.
    assert removed["removed"]["filled_amount"] == {
        "units": "540652000",
        "decimals": None,
        "value": None,
    }
    assert market["created"]["market"]["quantity"]["value"] == "0.2500"
    assert market["created"]["market"]["quantity_kind"] == "BaseAsset"
    assert canceled["canceled"] == {"reason": None} and canceled["asset_id"] == "1"
    # Triggered names an order this stream never created: its market's decimals scale it.
    assert triggered["asset_id"] == created["asset_id"]
    assert triggered["triggered"]["quantity"] == {"units": "5000", "decimals": 4, "value": "0.5000"}
    alone = _parse(frames("tplus", "orders.jsonl")[6], od.OrderDecimals()).record.value
    assert alone["triggered"]["quantity"] == {"units": "5000", "decimals": None, "value": None}
    assert failed["failure"] == {"reason": "INSUFFICIENT_MARGIN"}
    assert failed["asset_id"] is None and failed["timestamp_ns"] is None


def test_the_created_signature_is_carried_and_verifies() -> None:
    line = frames("tplus", "orders.jsonl")[0]
    value = _parse(line).record.value
    user_order = json.loads(line)["Created"]["user_order"]
    signed = json.dumps(user_order, separators=(",", ":")).encode()
    EXAMPLE_KEY.public_key().verify(bytes.fromhex(value["created"]["signature_hex"]), signed)


def _payloads() -> dict[str, dict[str, Any]]:
    base = {"order_id": "b2lk", "asset_id": "1", "user_id": ACCOUNT}
    return {
        "Replaced": {**base, "new_quantity": 15000, "new_price": 386180},
        "Amended": {**base, "new_quantity": 14000, "remaining_quantity": 9000},
        "Removed": {**base, "timestamp_ns": 5, "reason": "Expired"},
        "Canceled": {**base, "timestamp_ns": 5, "reason": "user"},
        "Triggered": {**base, "timestamp_ns": 5, "quantity": 500, "trigger_touched": True},
        "CreateFailed": {"order_id": "b2lk", "user_id": ACCOUNT, "reason": "X"},
        "ReplaceFailed": {"order_id": "b2lk", "user_id": ACCOUNT},
        "AmendFailed": {"order_id": "b2lk", "user_id": ACCOUNT, "reason": None},
        "CancelFailed": {"order_id": "b2lk", "user_id": ACCOUNT, "reason": "gone"},
        "Updated": {
            "order_id": "b2lk",
            "status": "PartiallyFilled",
            "filled_quantity": 1,
            "remaining_quantity": 2,
            "update_timestamp_ns": 9,
        },
    }


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


@pytest.mark.parametrize("variant", sorted(_payloads()))
@pytest.mark.parametrize("form", ["one_key", "upper_key", "lower_key", "type_snake", "type_upper"])
def test_every_variant_parses_in_every_wire_form(variant: str, form: str) -> None:
    payload = _payloads()[variant]
    frame: dict[str, Any] = {
        "one_key": {variant: payload},
        "upper_key": {variant.upper(): payload},
        "lower_key": {variant.lower(): payload},
        "type_snake": {"type": _snake(variant), **payload},
        "type_upper": {"type": variant.upper(), **payload},
    }[form]
    value = _parse(frame).record.value
    assert value["event_type"] == variant
    assert value["order_id"] == "b2lk"
    _check_variant_fields(value)
    assert roundtrip(od.ORDERS_STREAM, value) == value


def test_a_string_type_wins_over_a_variant_key() -> None:
    frame = {
        "type": "canceled",
        "order_id": "o",
        "asset_id": "1",
        "user_id": ACCOUNT,
        "timestamp_ns": 1,
    }
    assert _parse(frame).record.value["event_type"] == "Canceled"


@pytest.mark.parametrize(
    "frame",
    [
        {"Cancelled": {"order_id": "o"}},
        {"type": "settled", "order_id": "o"},
        {"Filled": {}},
        {"type": {"order_id": "o"}},
    ],
)
def test_unknown_variants_are_refused_as_unknown_type(frame: dict[str, Any]) -> None:
    with pytest.raises(FrameError) as err:
        _parse(frame)
    assert err.value.reason == Reason.UNKNOWN_TYPE


@pytest.mark.parametrize(
    "frame",
    [
        [1, 2],
        {"Created": {}, "Removed": {}},
        {"Removed": "not an object"},
        {"type": 5},
        {},
    ],
)
def test_frames_that_are_not_one_event_are_the_wrong_shape(frame: Any) -> None:
    with pytest.raises(FrameError) as err:
        _parse(frame)
    assert err.value.reason == Reason.WRONG_SHAPE


def test_control_frames_are_recognised_before_the_type_form() -> None:
    for kind in ("ping", "pong", "subscriptions"):
        assert od.is_control({"type": kind})
    assert not od.is_control({"type": "removed"})


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"new_price": 3861.8}, Reason.BAD_FIELD),
        ({"new_price": True}, Reason.BAD_FIELD),
        ({"new_quantity": "12a"}, Reason.BAD_FIELD),
        ({"order_id": ""}, Reason.BAD_FIELD),
        ({"order_id": None}, Reason.BAD_FIELD),
        ({"asset_id": "ETH"}, Reason.BAD_FIELD),
    ],
)
def test_bad_fields_are_refused(change: dict[str, Any], reason: str) -> None:
    payload = {**_payloads()["Replaced"], **change}
    with pytest.raises(FrameError) as err:
        _parse({"Replaced": payload})
    assert err.value.reason == reason


def test_missing_required_fields_are_named() -> None:
    payload = dict(_payloads()["Removed"])
    del payload["reason"]
    with pytest.raises(FrameError) as err:
        _parse({"Removed": payload})
    assert err.value.reason == Reason.MISSING_FIELD and "reason" in err.value.detail


def _created(details: dict[str, Any], **extra: Any) -> dict[str, Any]:
    order = {
        "signer": "0x" + ACCOUNT.upper(),
        "order_id": "bmV3",
        "base_asset": "1",
        "book_price_decimals": 2,
        "book_quantity_decimals": 4,
        "details": details,
        "side": "ask",
        "creation_timestamp_ns": 1,
        **extra,
    }
    return {"Created": {"user_order": order, "signature": [1] * 64, "book_timestamp_ns": 2}}


def test_created_forms_defaults_and_passthrough() -> None:
    gtd = {
        "Limit": {
            "limit_price": 5,
            "quantity": 7,
            "time_in_force": {"GTD": {"post_only": True, "timestamp_ns": 99}},
        }
    }
    # A JSON number in passed-through JSON keeps its exact text (1.50, not 1.5).
    frame = json.dumps(_created(gtd, trigger={"parent_order_id": "p", "trigger": {"price": "P"}}))
    value = _parse(frame.replace('"P"', "1.50")).record.value
    c = value["created"]
    assert c["signer"] == ACCOUNT and value["user_id"] == ACCOUNT
    assert c["side"] == "Sell"
    assert (c["sub_account"], c["is_spot"]) == (1, True)  # the SDK's default target
    assert (c["reduce_only"], c["max_trading_fees_rate"], c["protocol_version"]) == (
        False,
        50000,
        1,
    )
    assert c["limit"]["limit_price"]["value"] == "0.05"
    assert c["limit"]["quantity"]["value"] == "0.0007"
    assert (c["limit"]["time_in_force"], c["limit"]["good_till_timestamp_ns"]) == ("GTD", 99)
    assert c["trigger_json"] == '{"parent_order_id":"p","trigger":{"price":1.50}}'
    assert c["signature_hex"] == "01" * 64
    assert roundtrip(od.ORDERS_STREAM, value) == value

    ioc = {
        "Limit": {"limit_price": 5, "quantity": 7, "time_in_force": {"IOC": {"fill_or_kill": True}}}
    }
    limit = _parse(_created(ioc)).record.value["created"]["limit"]
    assert (limit["post_only"], limit["fill_or_kill"]) == (None, True)

    quote = {
        "Market": {
            "quantity": {"QuoteAsset": {"quantity": 1000, "max_sellable_quantity": 300}},
            "fill_or_kill": True,
        }
    }
    market = _parse(_created(quote)).record.value["created"]["market"]
    assert market["quantity"] == {"units": "1000", "decimals": None, "value": None}
    assert market["max_sellable"] == {"units": "300", "decimals": 4, "value": "0.0300"}


def test_decimals_learnt_from_created_scale_later_events() -> None:
    decimals = od.OrderDecimals()
    details = {
        "Limit": {"limit_price": 5, "quantity": 7, "time_in_force": {"GTC": {"post_only": False}}}
    }
    _parse(_created(details), decimals)
    replaced = {
        "order_id": "bmV3",
        "asset_id": "1",
        "user_id": ACCOUNT,
        "new_quantity": 25000,
        "new_price": 386180,
    }
    value = _parse({"Replaced": replaced}, decimals).record.value["replaced"]
    assert value["new_price"]["value"] == "3861.80" and value["new_quantity"]["value"] == "2.5000"
    # Another connector (empty memory) still carries the integers, without a scale.
    cold = _parse({"Replaced": replaced}).record.value["replaced"]
    assert cold["new_price"] == {"units": "386180", "decimals": None, "value": None}


def test_the_decimals_memory_is_bounded_and_forgets_the_oldest() -> None:
    memory = od.OrderDecimals(max_orders=2)
    memory.remember("a", 2, 4)
    memory.remember("b", 2, 4)
    assert memory.get("a") == (2, 4)  # now the most recent
    memory.remember("c", 1, None)
    assert len(memory) == 2
    assert memory.get("b") == (None, None)
    assert memory.get("c") == (1, None)
    memory.remember("c", None, 3)
    assert memory.get("c") == (1, 3)


@given(st.integers(min_value=-(10**30), max_value=10**30), st.integers(min_value=0, max_value=20))
def test_scaled_text_is_exact(units: int, decimals: int) -> None:
    text = od.scaled_text(str(units), decimals)
    # Exact, in integers: Decimal arithmetic would round at 28 digits.
    assert int(text.replace(".", "")) == units
    assert Decimal(text).is_finite()
    if decimals:
        assert len(text.split(".")[1]) == decimals
    else:
        assert "." not in text


def test_an_event_naming_another_account_is_reported_for_the_cross_check() -> None:
    payload = {**_payloads()["Canceled"], "user_id": "0xABC"}
    parsed = _parse({"Canceled": payload})
    assert parsed.named_account == "abc".rjust(64, "0")
    assert parsed.record.key == ACCOUNT  # still keyed by the connection's account
    odd = _parse({"Canceled": {**payload, "user_id": "desk-7"}})
    assert odd.named_account == "desk-7"


def _open_order(order_id: str, **change: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "base_asset": "1",
        "side": "Buy",
        "limit_price": 386180,
        "quantity": "1.5000",
        "confirmed_filled_quantity": 0,
        "pending_filled_quantity": 0,
        "confirmed_filled_amount": 0,
        "pending_filled_amount": 0,
        "timestamp_ns": 10,
        "status": "Open",
        "last_update_timestamp_ns": 12,
        **change,
    }


def test_open_orders_become_a_closed_baseline() -> None:
    body = json_numbers.loads(json.dumps([_open_order("a"), _open_order("b", side="sell")]))
    baseline = od.parse_open_orders(body, ACCOUNT, 777)
    assert baseline.rejected == []
    values = [roundtrip(od.ORDERS_STREAM, r.value) for r in baseline.records]
    assert [v["event_type"] for v in values] == ["OpenOrder", "OpenOrder", "BaselineEnd"]
    for v, r in zip(values, baseline.records, strict=True):
        assert v["source"] == "REST_BASELINE" and r.key == ACCOUNT and r.event_ns is None
        assert v["baseline"] == {"id": 777, "size": 2, "complete": True}
        _check_variant_fields(v)
    first = values[0]["open_order"]
    assert (first["limit_price"], first["quantity"], first["status"]) == (
        "386180",
        "1.5000",
        "Open",
    )
    assert values[0]["timestamp_ns"] == 12 and values[1]["open_order"]["side"] == "Sell"
    assert values[2]["order_id"] == ""


def test_a_bad_baseline_entry_is_rejected_and_the_baseline_marked_incomplete() -> None:
    body = [_open_order("a"), {"order_id": "x"}, 5]
    baseline = od.parse_open_orders(body, ACCOUNT, 1)
    assert [e.reason for e, _ in baseline.rejected] == [Reason.MISSING_FIELD, Reason.WRONG_SHAPE]
    assert [raw for _, raw in baseline.rejected] == ['{"order_id":"x"}', "5"]
    assert baseline.records[-1].value["baseline"] == {"id": 1, "size": 1, "complete": False}
    empty = od.parse_open_orders([], ACCOUNT, 2)
    assert [r.value["event_type"] for r in empty.records] == ["BaselineEnd"]
    wrongs: list[object] = [{"data": []}, {"orders": {}}, "[]", None]
    for wrong in wrongs:
        with pytest.raises(FrameError) as err:
            od.parse_open_orders(wrong, ACCOUNT, 3)
        assert err.value.reason == Reason.WRONG_SHAPE


def _golden_baseline(name: str, decimals: od.OrderDecimals | None = None) -> od.Baseline:
    body = json_numbers.loads(golden.text("tplus", name))
    return od.parse_open_orders(body, ACCOUNT, 777, decimals)


def test_both_golden_open_orders_shapes_give_the_same_baseline() -> None:
    array = _golden_baseline("open_orders.json")
    page = _golden_baseline("open_orders_page.json")
    assert array.rejected == page.rejected == []
    assert [r.value for r in array.records] == [r.value for r in page.records]
    values = [roundtrip(od.ORDERS_STREAM, r.value) for r in page.records]
    assert [v["event_type"] for v in values] == ["OpenOrder", "OpenOrder", "BaselineEnd"]
    first = values[0]["open_order"]
    assert (first["confirmed_trading_fees_amount"], first["pending_trading_fees_amount"]) == (
        "-19312",
        "-3862",
    )
    # Nothing seen of this market yet: the baseline states no decimals, so none are claimed.
    assert (first["book_price_decimals"], first["book_quantity_decimals"]) == (None, None)


def test_a_baseline_takes_its_markets_decimals_and_seeds_its_orders_later_events() -> None:
    decimals = od.OrderDecimals()
    # An earlier connection saw a Created of another order on the same market.
    created = frames("tplus", "orders.jsonl")[0]
    _parse(created, decimals)
    baseline = _golden_baseline("open_orders_page.json", decimals)
    opened = baseline.records[0].value
    assert opened["asset_id"] == "1"
    assert opened["open_order"]["book_price_decimals"] == 2
    assert opened["open_order"]["book_quantity_decimals"] == 4
    assert opened["open_order"]["limit_price"] == "386240"  # the venue's text, as before
    # Triggered for that baseline-only order: no Created of it was ever seen.
    triggered = {
        "Triggered": {
            "order_id": opened["order_id"],
            "asset_id": "1",
            "user_id": ACCOUNT,
            "timestamp_ns": 1761283013990000000,
            "quantity": 12500,
            "trigger_touched": True,
        }
    }
    value = _parse(triggered, decimals).record.value
    assert value["triggered"]["quantity"] == {"units": "12500", "decimals": 4, "value": "1.2500"}
    # Updated names no asset: the order's own seeded decimals scale it.
    updated = {
        "Updated": {
            "order_id": opened["order_id"],
            "update_timestamp_ns": 1761283013990000001,
            "status": "PartiallyFilled",
            "filled_quantity": 6000,
            "remaining_quantity": 6500,
        }
    }
    value = _parse(updated, decimals).record.value
    assert value["updated"]["filled_quantity"]["value"] == "0.6000"


def test_a_golden_baseline_names_the_markets_to_describe_and_a_description_scales_it() -> None:
    decimals = od.OrderDecimals()
    body = json_numbers.loads(golden.text("tplus", "open_orders_page.json"))
    assert od.markets_to_learn(body, decimals) == ["1"]
    assert od.markets_to_learn({"wrong": "shape"}, decimals) == []
    assert od.markets_to_learn([{"order_id": "x"}, 5], decimals) == []
    market = {"asset_id": "1", "book_price_decimals": 2, "book_quantity_decimals": 4}
    decimals.remember_market(*od.parse_market(market))
    assert od.markets_to_learn(body, decimals) == []
    opened = od.parse_open_orders(body, ACCOUNT, 1, decimals).records[0].value["open_order"]
    assert (opened["book_price_decimals"], opened["book_quantity_decimals"]) == (2, 4)
    bads: list[object] = [{**market, "book_price_decimals": -1}, {"asset_id": "ETH"}, []]
    for bad in bads:
        with pytest.raises(FrameError):
            od.parse_market(bad)


@pytest.mark.parametrize("kind", [[], ["ping"], {}, {"a": 1}])
def test_an_order_event_whose_type_is_a_list_or_object_is_dead_lettered(kind: Any) -> None:
    message = {"type": kind, "order_id": "o", "user_id": ACCOUNT}
    assert not od.is_control(message)
    with pytest.raises(FrameError) as caught:
        od.parse_order_event(message, ACCOUNT, 1, od.OrderDecimals())
    assert caught.value.reason == Reason.WRONG_SHAPE


def test_a_created_order_with_a_deeply_nested_trigger_keeps_it_as_json_text() -> None:
    # The decoder accepts nesting close to the recursion limit; writing it back must not recurse.
    nested = "[" * 900 + "]" * 900
    created = json_numbers.loads(frames("tplus", "orders.jsonl")[0])
    created["Created"]["user_order"]["trigger"] = json_numbers.loads(nested)
    created["Created"]["limit_overrides"] = json_numbers.loads('{"a":' * 900 + "1" + "}" * 900)
    value = od.parse_order_event(created, ACCOUNT, 1, od.OrderDecimals()).record.value
    assert value["created"]["trigger_json"] == nested
    assert value["created"]["limit_overrides_json"] == '{"a":' * 900 + "1" + "}" * 900
