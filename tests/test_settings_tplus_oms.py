"""The ``tplus.oms`` settings section: accounts, baselines, topics."""

from __future__ import annotations

from typing import Any

import pytest

from connector.settings import ConfigError, parse_settings

ACCOUNT = {"name": "desk-a", "private_key": {"file": "/run/secrets/desk-a"}}


def _oms(**section: Any) -> dict[str, Any]:
    return {"tplus": {"market_data": {"enabled": False}, "oms": section}}


def test_off_by_default_and_topics_when_on() -> None:
    market_data = {"tplus.depth", "tplus.trades", "tplus.klines", "tplus.books"}
    assert parse_settings({}).topics().keys() == market_data
    settings = parse_settings(_oms(enabled=True, accounts=[ACCOUNT]))
    assert settings.topics() == {
        "tplus.orders": "tplus.orders",
        "tplus.user-trades": "tplus.user-trades",
    }
    oms = settings.tplus.oms
    assert oms.refresh_margin_s == 60 and oms.websocket.silence_timeout_s == 3600
    assert oms.baseline.open_orders_path == "/orders/user/{account}"
    custom = parse_settings(
        _oms(enabled=True, accounts=[ACCOUNT], user_trades=False, topics={"orders": "risk.orders"})
    )
    assert custom.topics() == {"tplus.orders": "risk.orders"}


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"enabled": True}, "tplus.oms"),
        ({"accounts": [ACCOUNT, ACCOUNT]}, "tplus.oms"),
        ({"accounts": [{"name": "Desk A", "private_key": {"env": "K"}}]}, "accounts.0.name"),
        ({"accounts": [{"name": "a", "private_key": "deadbeef"}]}, "accounts.0.private_key"),
        (
            {"accounts": [{"name": "a", "private_key": {"env": "K"}, "public_key": "0xAB"}]},
            "public_key",
        ),
        ({"baseline": {"open_orders_path": "/orders/mine"}}, "tplus.oms.baseline"),
        ({"base_url": "oms.example.com"}, "tplus.oms"),
        ({"accounts": [ACCOUNT], "token": "x"}, "tplus.oms.token"),
    ],
)
def test_bad_sections_are_refused_naming_the_key(section: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(_oms(**section))
    assert key in str(err.value)
    assert "deadbeef" not in str(err.value)
