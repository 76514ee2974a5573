"""Value conversions, REST bodies and token answers of the tastytrade layer."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.venues import json_numbers
from connector.venues.errors import FrameError, Reason
from connector.venues.json_numbers import json_text
from connector.venues.tastytrade import notifications as n
from connector.venues.tastytrade.fields import date_text, id_text, timestamp_ns
from connector.venues.tastytrade.messages import auth_value
from connector.venues.tastytrade.rest import (
    baseline_items,
    baseline_requests,
    parse_token_response,
)

MS = 1_000_000


@pytest.mark.parametrize(
    ("wire", "ns"),
    [
        (1773153065905, 1773153065905 * MS),
        ("1773153065905", 1773153065905 * MS),
        ("2026-03-10T14:31:05.112+00:00", 1773153065112 * MS),
        ("2025-12-23T15:42:36.753Z", 1766504556753 * MS),
        ("2026-03-10T09:31:05.112-05:00", 1773153065112 * MS),
        ("2026-03-10T14:31:05.112", 1773153065112 * MS),
    ],
)
def test_both_timestamp_encodings_become_epoch_nanoseconds(wire: Any, ns: int) -> None:
    assert timestamp_ns(wire, "t") == ns


@pytest.mark.parametrize("wire", ["soon", True, 1.5, json_numbers.FloatText("1.5"), None, []])
def test_non_timestamps_are_refused(wire: Any) -> None:
    with pytest.raises(FrameError) as info:
        timestamp_ns(wire, "updated-at")
    assert info.value.reason == Reason.BAD_FIELD
    assert "updated-at" in info.value.detail


def test_dates_and_ids() -> None:
    assert date_text("2026-03-10", "d") == "2026-03-10"
    with pytest.raises(FrameError):
        date_text("10/03/2026", "d")
    assert id_text(145048656, "id") == "145048656"
    assert id_text("145048656", "id") == "145048656"
    with pytest.raises(FrameError):
        id_text(False, "id")


def test_json_text_keeps_numbers_exactly_as_written() -> None:
    value = json_numbers.loads('{"a": 1.50, "b": [1e-7, 2, null, true], "c": "é\\"x"}')
    assert json_text(value) == '{"a":1.50,"b":[1e-7,2,null,true],"c":"é\\"x"}'


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_json_text_round_trips_any_json_value(value: Any) -> None:
    assert json_numbers.loads(json_text(value)) == value


def test_auth_values_of_both_schemes() -> None:
    assert auth_value("oauth", "abc") == "Bearer abc"
    assert auth_value("session", "abc") == "abc"


def test_baseline_requests_cover_the_five_endpoints_in_order() -> None:
    requests = baseline_requests("5WT00001", "USD")
    assert [(r.path, r.type.name, r.many) for r in requests] == [
        ("/accounts/5WT00001/balances/USD", "AccountBalance", False),
        ("/accounts/5WT00001/positions", "CurrentPosition", True),
        ("/accounts/5WT00001/orders/live", "Order", True),
        ("/accounts/5WT00001/complex-orders/live", "ComplexOrder", True),
        ("/accounts/5WT00001/trading-status", "TradingStatus", False),
    ]
    assert {r.type.stream for r in requests} == {
        n.BALANCES,
        n.POSITIONS,
        n.ORDERS,
        n.COMPLEX_ORDERS,
        n.TRADING_STATUS,
    }


def test_baseline_bodies_unwrap_data_and_items() -> None:
    single, many = baseline_requests("A1", "USD")[:2]
    assert baseline_items(single, {"data": {"account-number": "A1"}}) == [{"account-number": "A1"}]
    assert baseline_items(many, {"data": {"items": [{"x": 1}, {"x": 2}]}}) == [{"x": 1}, {"x": 2}]
    bad_bodies: list[Any] = [{"items": []}, {"data": {"items": {}}}, [], {"data": []}]
    for body in bad_bodies:
        with pytest.raises(FrameError) as info:
            baseline_items(many, body)
        assert info.value.reason == Reason.WRONG_SHAPE


def test_token_answers() -> None:
    grant = parse_token_response({"access_token": "abc", "token_type": "Bearer", "expires_in": 900})
    assert (grant.access_token, grant.expires_in_s) == ("abc", 900.0)
    assert parse_token_response({"access_token": "abc"}).expires_in_s == 900.0
    parsed = json_numbers.loads('{"access_token": "abc", "expires_in": 1.5}')
    assert parse_token_response(parsed).expires_in_s == 1.5
    bad_answers: list[Any] = [{}, {"access_token": ""}, {"access_token": "a", "expires_in": 0}, []]
    for body in bad_answers:
        with pytest.raises(FrameError):
            parse_token_response(body)
    for lifetime in ("NaN", "inf", True):
        with pytest.raises(FrameError):
            parse_token_response({"access_token": "a", "expires_in": lifetime})


@pytest.mark.parametrize("text", ["²", "1773153066080²", "١٧٧٣"])
def test_a_timestamp_of_non_ascii_digits_is_a_bad_field_not_a_crash(text: str) -> None:
    with pytest.raises(FrameError) as caught:
        timestamp_ns(text, "updated-at")
    assert caught.value.reason == Reason.BAD_FIELD


def test_json_text_of_nesting_as_deep_as_the_decoder_accepts() -> None:
    nested = '{"x":[' * 450 + "1.50" + "]}" * 450
    assert json_text(json_numbers.loads(nested)) == nested
