"""Asset ids: every wire form the venue SDK accepts keys one market once; its refusals hold."""

from __future__ import annotations

import json

import pytest

from connector.venues import json_numbers
from connector.venues.errors import FrameError, Reason
from connector.venues.tplus import market_data as md
from connector.venues.tplus.asset_ids import canonical_asset
from tests.golden import frames

WETH = "82af49447d8a07e3bd95bd0d56f35241523fbab1"
ARBITRUM = "00000000000000a4b1"
PADDED = f"{WETH}{'0' * 24}@{ARBITRUM}"


def test_every_address_form_of_the_golden_trades_keys_the_same_market() -> None:
    records = [
        md.parse_trade(json_numbers.loads(f), 1) for f in frames("tplus", "address_forms.jsonl")
    ]
    forms = [json.loads(f)["asset_id"] for f in frames("tplus", "address_forms.jsonl")]
    assert PADDED in forms and f"{WETH}@{ARBITRUM}" in forms  # padded and unpadded both there
    assert {r.key for r in records} == {PADDED}
    assert {r.value["asset_id"] for r in records} == {PADDED}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", "1"),
        ("0001", "1"),
        (7, "7"),
        ({"Index": 1}, "1"),
        ({"Index": "200"}, "200"),
        (PADDED, PADDED),
        (f"{WETH}@{ARBITRUM}", PADDED),
        (f"0x{WETH.upper()}@0x{ARBITRUM.upper()}", PADDED),
        ({"Address": f"0x{WETH}@{ARBITRUM}"}, PADDED),
        ({"chainId": 42161, "address": f"0x{WETH}"}, PADDED),
        (
            {"chainId": 1, "address": f"0x{WETH}", "routingId": 2},
            f"{WETH}{'0' * 24}@020000000000000001",
        ),
        ("ab" * 32 + "@" + "00" * 9, "ab" * 32 + "@" + "00" * 9),
    ],
)
def test_accepted_forms_become_the_sdk_canonical_text(raw: object, expected: str) -> None:
    assert canonical_asset(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        f"{WETH}@000000000000a4b1",  # the older 16-hex chain id the SDK refuses
        f"{WETH}@{ARBITRUM}00",
        f"{WETH}@",
        f"@{ARBITRUM}",
        f"{WETH}0@{ARBITRUM}",  # not whole bytes
        f"{WETH}zz@{ARBITRUM}",
        "ab" * 33 + f"@{ARBITRUM}",  # longer than 32 bytes
        "ETH",
        "",
        "١٢",  # digits, but not ASCII ones
        "9" * 40,
        -1,
        True,
        json_numbers.FloatText("1.0"),
        {"Index": -1},
        {"Index": 1, "extra": 2},
        {"Address": {"address": [1, 256], "chain": [0] * 9}},
        {"Address": {"address": [1] * 20, "chain": [0] * 8}},
        {"Symbol": "ETH"},
        {"chainId": 2**64, "address": f"0x{WETH}"},
        [1],
        None,
    ],
)
def test_refused_forms_are_frame_errors(raw: object) -> None:
    with pytest.raises(FrameError) as err:
        canonical_asset(raw)
    assert err.value.reason == Reason.BAD_FIELD
