"""Configuration loading: YAML, environment overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.settings import ConfigError, SecretRef, load_settings, parse_settings

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "connector.example.yaml"


def test_the_example_config_is_valid() -> None:
    settings = load_settings(EXAMPLE, {})
    assert settings.tplus.market_data.assets == ["1"]
    assert settings.topics() == {
        "tplus.depth": "tplus.depth",
        "tplus.trades": "tplus.trades",
        "tplus.klines": "tplus.klines",
        "tplus.books": "tplus.books",
    }


def test_environment_overrides_nested_keys_with_types() -> None:
    settings = load_settings(
        EXAMPLE,
        {
            "CONNECTOR__KAFKA__BOOTSTRAP_SERVERS": "b1:9092,b2:9092",
            "CONNECTOR__TPLUS__MARKET_DATA__ASSETS": '["7"]',
            "CONNECTOR__TPLUS__MARKET_DATA__KLINES": "false",
            "UNRELATED": "x",
        },
    )
    assert settings.kafka.bootstrap_servers == "b1:9092,b2:9092"
    assert settings.tplus.market_data.assets == ["7"]
    assert "tplus.klines" not in settings.topics()


def test_unknown_keys_are_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("kafka:\n  bootstrap_server: x:9092\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    assert "kafka.bootstrap_server: unknown key" in str(info.value)


def test_unknown_environment_key_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, {"CONNECTOR__KAFKA__BOOTSTRAP": "x"})
    assert "kafka.bootstrap: unknown key" in str(info.value)


def test_errors_from_a_variable_blame_the_variable_and_others_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("metrics:\n  prot: 1\n")
    env = {"CONNECTOR__KAFKA__LINGER_MS": "soon", "CONNECTOR__KAFKA__BOOTSTRAP": "x"}
    with pytest.raises(ConfigError) as info:
        load_settings(path, env)
    lines = str(info.value).splitlines()
    assert lines[0] == f"invalid configuration in {path}:"
    assert "  metrics.prot: unknown key" in lines
    assert (
        "  kafka.bootstrap: unknown key (set by environment variable CONNECTOR__KAFKA__BOOTSTRAP)"
        in lines
    )
    linger = [line for line in lines if line.startswith("  kafka.linger_ms:")]
    assert linger and linger[0].endswith(
        "(set by environment variable CONNECTOR__KAFKA__LINGER_MS)"
    )
    assert "soon" not in str(info.value)


def test_bad_values_are_named_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(
            {
                "schema_registry": {"password": ["hunter2"]},
                "tplus": {"market_data": {"websocket": {"ping_interval_s": -1}}},
            }
        )
    message = str(info.value)
    assert "schema_registry.password" in message
    assert "tplus.market_data.websocket.ping_interval_s" in message
    assert "hunter2" not in message


def test_inline_registry_and_kafka_secrets_are_refused_by_key_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(
            {
                "schema_registry": {
                    "url": "https://registry:8081",
                    "username": "u",
                    "password": "s3cret-pw",
                },
                "kafka": {"security": {"sasl.password": "kafka-s3cret"}},
            }
        )
    message = str(info.value)
    assert "schema_registry.password: Value error, a secret is given as {file" in message
    assert "kafka.security: Value error, refused: sasl.password: a secret is given" in message
    assert "s3cret-pw" not in message and "kafka-s3cret" not in message


def test_registry_and_kafka_secrets_are_references() -> None:
    settings = parse_settings(
        {
            "schema_registry": {
                "url": "https://registry:8081",
                "username": "u",
                "password": {"file": "/run/secrets/registry"},
            },
            "kafka": {"security": {"sasl.password": {"env": "KAFKA_PASSWORD"}}},
        }
    )
    assert settings.schema_registry.password == SecretRef(file=Path("/run/secrets/registry"))
    assert settings.kafka.security["sasl.password"] == SecretRef(env="KAFKA_PASSWORD")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"kafka": {"dlq_topic": "bad topic!"}}, "kafka"),
        ({"tplus": {"market_data": {"topics": {"depth": "a/b"}}}}, "topic name"),
        ({"tplus": {"market_data": {"assets": ["1", "1"]}}}, "tplus.market_data"),
        ({"tplus": {"market_data": {"base_url": "ftp://x"}}}, "tplus.market_data"),
        ({"name": "Has Spaces"}, "name"),
    ],
)
def test_invalid_values(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(data)
    assert key in str(info.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml", {})
    bad = tmp_path / "bad.yaml"
    bad.write_text("kafka: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad, {})
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(listy, {})


def test_string_and_secret_overrides_are_taken_verbatim() -> None:
    settings = load_settings(
        EXAMPLE,
        {
            "CONNECTOR__SCHEMA_REGISTRY__URL": "https://registry:8081",
            "CONNECTOR__KAFKA__SECURITY__SECURITY.PROTOCOL": "SASL_SSL",
            "CONNECTOR__SCHEMA_REGISTRY__USERNAME": "007",
            "CONNECTOR__SCHEMA_REGISTRY__PASSWORD__ENV": "REGISTRY_PASSWORD",
            "CONNECTOR__KAFKA__SECURITY__SASL.USERNAME": "0123 #not a comment",
            "CONNECTOR__KAFKA__SECURITY__SASL.PASSWORD__FILE": "/run/secrets/kafka",
            "CONNECTOR__KAFKA__LINGER_MS": "7",
        },
    )
    assert settings.schema_registry.username == "007"
    assert settings.schema_registry.password == SecretRef(env="REGISTRY_PASSWORD")
    assert settings.kafka.security["sasl.username"] == "0123 #not a comment"
    assert settings.kafka.security["sasl.password"] == SecretRef(file=Path("/run/secrets/kafka"))
    assert settings.kafka.linger_ms == 7


def test_market_data_sockets_reconnect_on_silence_only_where_a_stream_asks() -> None:
    md = parse_settings({}).tplus.market_data
    assert [md.websocket_for(s).silence_timeout_s for s in ("depth", "trades", "klines")] == [
        None,
        None,
        None,
    ]
    md = parse_settings(
        {
            "tplus": {
                "market_data": {
                    "silence_reconnect_s": {"trades": 30},
                    "websocket": {"silence_timeout_s": 90, "ping_interval_s": 5},
                }
            }
        }
    ).tplus.market_data
    assert md.websocket_for("trades").silence_timeout_s == 30
    assert md.websocket_for("depth").silence_timeout_s == 90  # the section-wide fallback
    assert md.websocket_for("klines").ping_interval_s == 5
    accounts = parse_settings({}).tastytrade.account_streamer.websocket
    assert accounts.silence_timeout_s == 60  # account streams keep their rules


def test_a_silence_reconnect_that_is_not_positive_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings({"tplus": {"market_data": {"silence_reconnect_s": {"depth": 0}}}})
    assert "tplus.market_data.silence_reconnect_s.depth" in str(info.value)
