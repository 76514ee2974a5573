"""T+ user trades and their REST baseline, from golden frames."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connector.venues import json_numbers
from connector.venues.errors import FrameError, Reason
from connector.venues.tplus import user_trades as ut
from tests.avro_check import roundtrip
from tests.golden import frames

ACCOUNT = "07174645dda5c7fa66ac240ecad7ea4c6e6bf13662057e9b413c97cf73a67016"


def _parse(frame: str | dict[str, Any]) -> dict[str, Any]:
    text = frame if isinstance(frame, str) else json.dumps(frame)
    record = ut.parse_user_trade(json_numbers.loads(text), ACCOUNT, 7)
    assert record.key == ACCOUNT and record.stream == "tplus.user-trades"
    return record.value


def test_every_golden_user_trade_becomes_a_valid_record() -> None:
    lines = frames("tplus", "user_trades.jsonl")
    values = [_parse(line) for line in lines]
    for value in values:
        assert roundtrip(ut.USER_TRADES_STREAM, value) == value
        assert value["source"] == "STREAM" and value["baseline_id"] is None
    assert [(v["trade_id"], v["status"]) for v in values] == [
        (122530, "Pending"),
        (122530, "Confirmed"),
        (122531, "Rollbacked"),
    ]
    pending, _, rolled = values
    assert (pending["price"], pending["quantity"], pending["trading_fee"]) == (
        "3861.80",
        "1.4000",
        "-0.5406",
    )
    assert pending["is_maker"] is True and pending["sub_account"] == 1
    assert pending["timestamp_ns"] == 1761283013889453220
    assert rolled["rollback_reason"] == "settlement rejected"


def _minimal(**change: Any) -> dict[str, Any]:
    return {
        "asset_id": "1",
        "trade_id": 1,
        "order_id": "o",
        "price": "1.5",
        "quantity": "2",
        "timestamp_ns": 3,
        "is_maker": False,
        "is_buyer": True,
        "status": "Confirmed",
        **change,
    }


def test_optional_fields_take_the_sdk_defaults() -> None:
    value = _parse(_minimal())
    assert (value["sub_account"], value["trading_fee"], value["rollback_reason"]) == (0, "0", None)
    assert value["is_liquidation"] is False and value["is_auto_deleverage"] is False
    assert roundtrip(ut.USER_TRADES_STREAM, value) == value


def test_numbers_keep_the_venues_text() -> None:
    value = _parse(
        '{"asset_id":"1","trade_id":1,"order_id":"o","price":3861.80,"quantity":1.4000,'
        '"timestamp_ns":3,"is_maker":true,"is_buyer":true,"status":"Pending"}'
    )
    assert (value["price"], value["quantity"]) == ("3861.80", "1.4000")


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ({"Pending": _minimal()}, Reason.WRONG_SHAPE),
        (_minimal(status="confirmed"), Reason.BAD_FIELD),
        (_minimal(is_maker="false"), Reason.BAD_FIELD),
        (_minimal(price="1,5"), Reason.BAD_FIELD),
        (_minimal(sub_account=-1), Reason.BAD_FIELD),
        ({k: v for k, v in _minimal().items() if k != "is_buyer"}, Reason.MISSING_FIELD),
        ([_minimal()], Reason.WRONG_SHAPE),
    ],
)
def test_frames_the_sdk_refuses_are_refused(frame: Any, reason: str) -> None:
    with pytest.raises(FrameError) as err:
        _parse(json.dumps(frame))
    assert err.value.reason == reason


def test_a_baseline_keeps_the_venues_order_and_rejects_bad_entries() -> None:
    body = [_minimal(trade_id=5), {"trade_id": 6}, _minimal(trade_id=7, status="Pending")]
    baseline = ut.parse_user_trades_baseline(body, ACCOUNT, 99)
    values = [roundtrip(ut.USER_TRADES_STREAM, r.value) for r in baseline.records]
    assert [v["trade_id"] for v in values] == [5, 7]
    assert {(v["source"], v["baseline_id"]) for v in values} == {("REST_BASELINE", 99)}
    assert all(r.event_ns is None for r in baseline.records)
    assert [(e.reason, raw) for e, raw in baseline.rejected] == [
        (Reason.MISSING_FIELD, '{"trade_id":6}')
    ]
    with pytest.raises(FrameError):
        ut.parse_user_trades_baseline({"trades": []}, ACCOUNT, 1)


def test_the_stream_path_names_the_account() -> None:
    assert ut.user_trades_path(ACCOUNT) == f"/trades/user/events/{ACCOUNT}"
