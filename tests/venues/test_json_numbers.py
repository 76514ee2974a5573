"""Numbers survive decoding exactly as the venue wrote them."""

from __future__ import annotations

import pytest

from connector.records import Stage
from connector.venues import json_numbers as jn
from connector.venues.errors import FrameError, Reason


def test_floats_keep_their_literal_text() -> None:
    value = jn.loads('{"p": 3862.4, "q": 0.10, "n": 1761283013888453220}')
    assert jn.decimal_text(value["p"], "p") == "3862.4"
    assert jn.decimal_text(value["q"], "q") == "0.10"
    assert value["n"] == 1761283013888453220


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1e-5", "0.00001"), ("1.5E3", "1500"), ("-2.50", "-2.50"), ("7", "7")],
)
def test_decimal_text_normalises_only_exponents(raw: str, expected: str) -> None:
    assert jn.decimal_text(jn.loads(raw), "x") == expected


@pytest.mark.parametrize("bad", [True, None, "abc", "1.2.3", "NaN", "Infinity", [], {}])
def test_decimal_text_rejects_non_numbers(bad: object) -> None:
    with pytest.raises(FrameError) as info:
        jn.decimal_text(bad, "price")
    assert info.value.reason == Reason.BAD_FIELD
    assert "price" in info.value.detail


def test_non_json_and_non_utf8_are_decode_errors() -> None:
    with pytest.raises(FrameError) as info:
        jn.loads(b"\xff\xfe")
    assert (info.value.stage, info.value.reason) == (Stage.DECODE, Reason.NOT_UTF8)
    with pytest.raises(FrameError) as info:
        jn.loads("{not json")
    assert (info.value.stage, info.value.reason) == (Stage.DECODE, Reason.NOT_JSON)
    with pytest.raises(FrameError) as info:
        jn.loads('{"p": NaN}')
    assert info.value.reason == Reason.NOT_JSON


def test_deeply_nested_json_is_a_decode_error_not_a_crash() -> None:
    with pytest.raises(FrameError):
        jn.loads("[" * 100_000)


def test_integers_accept_numeric_strings_but_not_floats_or_bools() -> None:
    assert jn.integer("42", "n") == 42
    for bad in (True, jn.loads("1.0"), "4 2", None):
        with pytest.raises(FrameError):
            jn.integer(bad, "n")
