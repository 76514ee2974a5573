"""The tastytrade configuration section: safe defaults, clear errors, secrets by reference."""

from __future__ import annotations

from typing import Any

import pytest

from connector.settings import ConfigError, load_settings, parse_settings

SECRETS = {"refresh_token": {"env": "TT_REFRESH"}, "client_secret": {"file": "/run/tt/secret"}}


def _section(**streamer: Any) -> dict[str, Any]:
    return {"tastytrade": {"account_streamer": streamer}}


def test_the_section_is_off_by_default_and_adds_no_topic() -> None:
    settings = parse_settings({})
    assert not settings.tastytrade.account_streamer.enabled
    assert not any(s.startswith("tastytrade.") for s in settings.topics())


def test_an_enabled_section_maps_every_account_stream_and_the_opt_in_ones() -> None:
    base = {"enabled": True, "accounts": ["5WT00001"], "auth": SECRETS}
    topics = parse_settings(_section(**base)).topics()
    assert {s: t for s, t in topics.items() if s.startswith("tastytrade.")} == {
        "tastytrade.orders": "tastytrade.orders",
        "tastytrade.complex-orders": "tastytrade.complex-orders",
        "tastytrade.balances": "tastytrade.balances",
        "tastytrade.positions": "tastytrade.positions",
        "tastytrade.trading-status": "tastytrade.trading-status",
        "tastytrade.external-transactions": "tastytrade.external-transactions",
        "tastytrade.year-gain-summaries": "tastytrade.year-gain-summaries",
        "tastytrade.order-chains": "tastytrade.order-chains",
    }
    opted = parse_settings(
        _section(**base, quote_alerts=True, public_watchlists=True, topics={"orders": "tt-orders"})
    ).topics()
    assert opted["tastytrade.quote-alerts"] == "tastytrade.quote-alerts"
    assert opted["tastytrade.public-watchlists"] == "tastytrade.public-watchlists"
    assert opted["tastytrade.orders"] == "tt-orders"


@pytest.mark.parametrize(
    ("streamer", "message"),
    [
        ({"enabled": True, "auth": SECRETS}, "at least one account"),
        ({"enabled": True, "accounts": ["5WT00001"]}, "auth needs refresh_token"),
        (
            {"enabled": True, "accounts": ["5WT00001"], "auth": {"scheme": "session"}},
            "session_token",
        ),
        ({"accounts": ["5WT00001", "5WT00001"]}, "must not repeat"),
        ({"accounts": ["5WT 0001"]}, "letters, digits and dashes"),
        ({"heartbeat_interval_s": 1}, "heartbeat_interval_s"),
        ({"heartbeat_interval_s": 61}, "heartbeat_interval_s"),
        ({"streamer_url": "https://streamer"}, "ws:// or wss://"),
        ({"auth": {"scheme": "session", **SECRETS}}, "only used with scheme: oauth"),
        ({"auth": {"session_token": {"env": "X"}}}, "only used with scheme: session"),
        ({"auth": {"refresh_token": "inline-secret"}}, "auth.refresh_token"),
        ({"bogus": 1}, "bogus: unknown key"),
    ],
)
def test_bad_sections_name_the_problem(streamer: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_settings(_section(**streamer))
    assert "inline-secret" not in str(info.value)


def test_the_environment_can_enable_the_section() -> None:
    settings = load_settings(
        None,
        {
            "CONNECTOR__TASTYTRADE__ACCOUNT_STREAMER__ENABLED": "true",
            "CONNECTOR__TASTYTRADE__ACCOUNT_STREAMER__ACCOUNTS": '["5WT00001", "5WT00002"]',
            "CONNECTOR__TASTYTRADE__ACCOUNT_STREAMER__AUTH__SCHEME": "session",
            "CONNECTOR__TASTYTRADE__ACCOUNT_STREAMER__AUTH__SESSION_TOKEN__ENV": "TT_SESSION",
            "CONNECTOR__TASTYTRADE__ACCOUNT_STREAMER__HEARTBEAT_INTERVAL_S": "15",
        },
    )
    section = settings.tastytrade.account_streamer
    assert section.enabled and section.accounts == ["5WT00001", "5WT00002"]
    assert section.auth.session_token is not None and section.auth.session_token.env == "TT_SESSION"
    assert section.heartbeat_interval_s == 15
