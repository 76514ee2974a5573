"""Every golden tastytrade frame becomes a valid record, or a DLQ letter for an unknown type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.records import Record, Stage
from connector.venues import json_numbers
from connector.venues.errors import FrameError, Reason
from connector.venues.tastytrade import notifications as n
from connector.venues.tastytrade.streamer import AccountStreamer, StreamerConfig
from tests.avro_check import roundtrip
from tests.golden import DATA, frames
from tests.venues.tastytrade.schema_shape import assert_fits_exactly

NOW = 1_773_160_000_000_000_000
MS = 1_000_000

NOTIFICATION_FILES = sorted(
    p.name for p in (DATA / "tastytrade").glob("*.jsonl") if p.stem[0].isupper()
)


def _record(line: str) -> Record:
    return n.parse_notification(json_numbers.loads(line), NOW)


def _live_streamer() -> AccountStreamer:
    """A streamer past its baseline, so notifications are published at once."""
    core = AccountStreamer(StreamerConfig(("5WT00001", "5WT00002")))
    core.open(0.0, "Bearer t")
    core.receive('{"status":"ok","action":"connect","request-id":1}', NOW, 0.1)
    core.baseline([])
    return core


def test_there_is_a_golden_file_for_every_notification_type() -> None:
    assert sorted(Path(f).stem for f in NOTIFICATION_FILES) == sorted(n.TYPES)


@pytest.mark.parametrize("name", NOTIFICATION_FILES)
def test_every_golden_frame_is_a_valid_record_of_its_stream(name: str) -> None:
    lines = frames("tastytrade", name)
    assert len(lines) >= 2
    for line in lines:
        envelope = json.loads(line)
        record = _record(line)
        kind = n.TYPES[envelope["type"]]
        assert record.stream == kind.stream
        assert_fits_exactly(record.stream, record.value)
        assert roundtrip(record.stream, record.value) == record.value
        assert record.value["origin"] == "STREAM"
        assert record.value["timestamp_ns"] == envelope["timestamp"] * MS
        assert record.event_ns == envelope["timestamp"] * MS
        assert record.value["received_ns"] == NOW
        assert record.value["extra"] == {}, "every golden field is modelled"
        data = envelope["data"]
        if kind.scope is n.Scope.ACCOUNT:
            assert record.key == data["account-number"]
        elif kind.scope is n.Scope.USER:
            assert record.key == data["user-external-id"]
        else:
            assert record.key == n.PUBLIC_KEY


def test_orders_keep_fills_prices_and_both_timestamp_encodings() -> None:
    routed, filled, spread = (_record(line) for line in frames("tastytrade", "Order.jsonl"))
    assert routed.value["status"] == "Routed"
    assert routed.value["legs"][0]["fills"] == []
    value = filled.value
    assert value["id"] == 412345678
    assert value["size"] == "100"
    assert value["updated_at_ns"] == 1773153065905 * MS  # epoch ms on the wire
    assert value["received_at_ns"] == 1773153065112 * MS  # ISO text on the wire
    leg = value["legs"][0]
    assert (leg["quantity"], leg["remaining_quantity"], leg["action"]) == (
        "100",
        "0",
        "Buy to Open",
    )
    assert [(f["fill_id"], f["quantity"], f["fill_price"]) for f in leg["fills"]] == [
        ("2_TW::XNAS1::20260310.1201-FILL", "60", "227.41"),
        ("2_TW::XNAS1::20260310.1202-FILL", "40", "227.42"),
    ]
    assert leg["fills"][1]["filled_at_ns"] == 1773153065899 * MS
    assert value["ext_global_order_number"] == 2121
    # A debit spread: the price stays unsigned, the effect carries the sign.
    assert (spread.value["price"], spread.value["price_effect"]) == ("1.35", "Debit")
    assert [leg["symbol"] for leg in spread.value["legs"]] == [
        "SPY   260417C00580000",
        "SPY   260417C00585000",
    ]
    assert spread.value["user_id"] == "99"
    assert spread.value["order_rule"] is None


def test_complex_orders_nest_their_orders() -> None:
    otoco, oco = (_record(line) for line in frames("tastytrade", "ComplexOrder.jsonl"))
    assert otoco.value["type"] == "OTOCO"
    trigger = otoco.value["trigger_order"]
    assert trigger["status"] == "Filled" and trigger["complex_order_id"] == "2000010530"
    assert trigger["legs"][0]["fills"][0]["fill_price"] == "6.49"
    assert [o["complex_order_tag"] for o in otoco.value["orders"]] == ["OTOCO::oco-1-order"] * 2
    assert otoco.value["orders"][1]["stop_trigger"] == "6.0"
    assert oco.value["trigger_order"] is None
    assert [o["status"] for o in oco.value["orders"]] == ["Filled", "Cancelled"]
    assert oco.value["terminal_at_ns"] == 1773338680300 * MS


def test_money_effects_are_kept_beside_unsigned_amounts() -> None:
    _, debit = (_record(line) for line in frames("tastytrade", "AccountBalance.jsonl"))
    assert (debit.value["pending_cash"], debit.value["pending_cash_effect"]) == ("1250.0", "Debit")
    assert debit.value["cash_balance"] == "17765.72"
    assert debit.value["snapshot_date"] == "2026-03-10"
    assert debit.value["currency"] == "USD"
    _, short = (_record(line) for line in frames("tastytrade", "CurrentPosition.jsonl"))
    assert (short.value["realized_day_gain"], short.value["realized_day_gain_effect"]) == (
        "31.0",
        "Debit",
    )
    assert (short.value["quantity"], short.value["quantity_direction"]) == ("1", "Short")
    assert short.value["multiplier"] == "100"
    _, loss = (_record(line) for line in frames("tastytrade", "UnderlyingYearGainSummary.jsonl"))
    assert (loss.value["yearly_realized_gain"], loss.value["yearly_realized_gain_effect"]) == (
        "412.0",
        "Debit",
    )
    assert loss.value["year"] == 2026


def test_user_level_and_global_types_are_keyed_as_documented() -> None:
    last, bid = (_record(line) for line in frames("tastytrade", "QuoteAlert.jsonl"))
    assert last.key == "U0001a2b3-c4d5-e6f7-8899-aabbccddeeff"
    assert last.value["expires_at_ns"] == 1775851200000 * MS
    assert last.value["threshold"] == "230.00"
    # A JSON number keeps its literal text.
    assert bid.value["threshold_numeric"] == "5500.0"
    lists = [_record(line) for line in frames("tastytrade", "PublicWatchlists.jsonl")]
    assert {r.key for r in lists} == {"public-watchlists"}
    assert [e["symbol"] for e in lists[0].value["watchlist_entries"]] == [
        "SPY",
        "AAPL",
        "NVDA",
        "/ES",
    ]


def test_order_chains_keep_their_string_id_and_computed_costs() -> None:
    vertical, closed = (_record(line) for line in frames("tastytrade", "OrderChain.jsonl"))
    assert vertical.value["id"] == "145048656"
    computed = vertical.value["computed_data"]
    assert (computed["total_cost"], computed["total_cost_effect"]) == ("270.0", "Debit")
    assert [e["quantity_numeric"] for e in computed["open_entries"]] == ["2.0", "-2.0"]
    node = closed.value["lite_nodes"][1]
    assert (node["id"], node["total_fill_cost_effect"]) == ("2002750868", "Credit")
    assert node["legs"][0]["fill_quantity"] == "100.0"


def test_the_batch_frame_becomes_its_three_records_in_order() -> None:
    core = _live_streamer()
    (line,) = frames("tastytrade", "results-batch.jsonl")
    step = core.receive(line, NOW, 1.0)
    assert step.rejected == []
    assert [r.stream for r in step.records] == [n.ORDERS, n.POSITIONS, n.BALANCES]
    assert {r.key for r in step.records} == {"5WT00001"}
    for record in step.records:
        assert roundtrip(record.stream, record.value) == record.value


def test_handshake_replies_are_protocol_messages_not_records() -> None:
    core = AccountStreamer(StreamerConfig(("5WT00001", "5WT00002")))
    core.open(0.0, "Bearer t")
    replies = [
        json.dumps(entry["msg"])
        for entry in map(json.loads, frames("tastytrade", "handshake.jsonl"))
        if entry["dir"] == "server->client"
    ]
    assert len(replies) == 7
    for reply in replies:
        step = core.receive(reply, NOW, 1.0)
        assert step.records == [] and step.rejected == []


def test_an_unknown_type_goes_to_the_dlq_whole_with_its_reason() -> None:
    core = _live_streamer()
    frame = '{"type":"UserMessage","data":{"account-number":"5WT00002","text":"hi"},"timestamp":1}'
    step = core.receive(frame, NOW, 1.0)
    assert step.records == []
    (letter,) = step.rejected
    assert letter.raw == frame
    assert (letter.error.stage, letter.error.reason) == (Stage.ROUTE, Reason.UNKNOWN_TYPE)
    assert letter.stream == n.STREAMER
    assert letter.key == "5WT00002"
    assert ("notification_type", "UserMessage") in letter.headers


def test_an_unknown_type_inside_a_batch_is_dead_lettered_and_the_rest_published() -> None:
    core = _live_streamer()
    (line,) = frames("tastytrade", "results-batch.jsonl")
    batch = json.loads(line)
    batch["results"].insert(1, {"type": "Brand New", "data": {}, "timestamp": 5})
    frame = json.dumps(batch)
    step = core.receive(frame, NOW, 1.0)
    assert [r.stream for r in step.records] == [n.ORDERS, n.POSITIONS, n.BALANCES]
    (letter,) = step.rejected
    assert letter.raw == frame
    assert letter.error.reason == Reason.UNKNOWN_TYPE
    assert dict(letter.headers) == {"results_index": "1", "notification_type": "Brand New"}


def test_fields_the_venue_adds_later_travel_in_extra_as_exact_json() -> None:
    line = frames("tastytrade", "Order.jsonl")[1]
    envelope = json.loads(line)
    envelope["data"]["brand-new"] = {"amount": 1.50, "flag": True}
    envelope["data"]["legs"][0]["leg-extra"] = "x"
    envelope["data"]["legs"][0]["fills"][0]["fill-fee"] = 0.10
    envelope["ws-sequence"] = 77
    text = json.dumps(envelope).replace("1.5,", "1.50,")
    record = n.parse_notification(json_numbers.loads(text), NOW)
    assert record.value["extra"] == {"brand-new": '{"amount":1.50,"flag":true}'}
    assert record.value["legs"][0]["extra"] == {"leg-extra": '"x"'}
    assert record.value["legs"][0]["fills"][0]["extra"] == {"fill-fee": "0.1"}
    assert record.value["ws_sequence"] == 77
    assert roundtrip(record.stream, record.value) == record.value


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.pop("account-number"), Reason.MISSING_FIELD),
        (lambda d: d.update({"account-number": " "}), Reason.BAD_KEY),
        (lambda d: d.update({"legs": "none"}), Reason.WRONG_SHAPE),
        (lambda d: d.update({"price": "1,35"}), Reason.BAD_FIELD),
        (lambda d: d.update({"updated-at": "yesterday"}), Reason.BAD_FIELD),
        (lambda d: d.update({"cancellable": "false"}), Reason.BAD_FIELD),
    ],
)
def test_a_bad_order_is_rejected_on_its_own_stream(mutate: object, reason: str) -> None:
    envelope = json.loads(frames("tastytrade", "Order.jsonl")[2])
    mutate(envelope["data"])  # type: ignore[operator]
    core = _live_streamer()
    frame = json.dumps(envelope)
    step = core.receive(frame, NOW, 1.0)
    assert step.records == []
    (letter,) = step.rejected
    assert (letter.stream, letter.error.reason, letter.raw) == (n.ORDERS, reason, frame)


def test_null_optional_fields_are_null_and_absent_lists_empty() -> None:
    record = n.parse_notification(
        {"type": "Order", "data": {"id": 1, "account-number": "A1", "price": None}}, NOW
    )
    assert record.value["price"] is None
    assert record.value["legs"] == []
    assert record.value["timestamp_ns"] is None
    assert roundtrip(n.ORDERS, record.value) == record.value


def test_a_notification_without_data_object_is_wrong_shape() -> None:
    with pytest.raises(FrameError) as info:
        n.parse_notification({"type": "Order", "data": []}, NOW)
    assert info.value.reason == Reason.WRONG_SHAPE
