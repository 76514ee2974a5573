"""Transport security in the settings: the kafka.security allow-list, references, cleartext."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connector.settings import ConfigError, load_settings, parse_settings

WEAKENING = {
    "acks": "0",
    "enable.idempotence": False,
    "message.timeout.ms": 1,
    "request.timeout.ms": 1,
    "enable.ssl.certificate.verification": False,
    "ssl.endpoint.identification.algorithm": "none",
    "bootstrap.servers": "elsewhere:9092",
    "sasl.password": "hunter2",
}
OMS_ACCOUNT = {"name": "desk-a", "private_key": {"file": "/run/secrets/desk-a"}}
TT_AUTH = {"refresh_token": {"env": "R"}, "client_secret": {"env": "S"}}


def _refused(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_settings(data)
    return str(info.value)


def test_every_refused_kafka_security_key_is_named() -> None:
    message = _refused({"kafka": {"security": WEAKENING}})
    for key in WEAKENING:
        assert f"{key}:" in message, key
    assert "hunter2" not in message


def test_allowed_kafka_security_passes_with_its_values_as_text() -> None:
    settings = parse_settings(
        {
            "kafka": {
                "bootstrap_servers": "broker-0.kafka:9093",
                "security": {
                    "security.protocol": "SASL_SSL",
                    "sasl.mechanism": "SCRAM-SHA-512",
                    "sasl.username": {"file": "/run/kafka/username"},
                    "sasl.password": {"file": "/run/kafka/password"},
                    "ssl.ca.location": "/run/kafka/ca.crt",
                    "sasl.kerberos.min.time.before.relogin": 60000,
                },
            }
        }
    )
    assert settings.kafka.security["sasl.kerberos.min.time.before.relogin"] == "60000"


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", None])
def test_sasl_credentials_over_cleartext_to_a_remote_broker_are_refused(
    protocol: str | None,
) -> None:
    security: dict[str, Any] = {"sasl.password": {"env": "P"}, "sasl.username": "svc"}
    if protocol is not None:
        security["security.protocol"] = protocol
    kafka = {"bootstrap_servers": "broker-0.kafka:9092", "security": security}
    assert "kafka: Value error, security.protocol: SASL credentials over cleartext" in _refused(
        {"kafka": kafka}
    )
    parse_settings({"kafka": {**kafka, "allow_insecure_transport": True}})
    parse_settings({"kafka": {**kafka, "bootstrap_servers": "127.0.0.1:9092,localhost:9093"}})


@pytest.mark.parametrize(
    ("registry", "complaint"),
    [
        ({"url": "https://u:p@registry:8081"}, "no user:password@ in the URL"),
        ({"url": "https://registry", "username": "u"}, "username and password go together"),
        (
            {"url": "https://registry", "password": {"env": "P"}},
            "username and password go together",
        ),
        ({"url": "https://registry", "password": "hunter2"}, "never inline"),
        ({"url": "https://registry", "bearer_token": "hunter2"}, "never inline"),
        (
            {"url": "https://registry", "bearer_token": {"env": "T"}},
            "bearer_token and bearer_logical_cluster go together",
        ),
        (
            {
                "url": "https://registry",
                "username": "u",
                "password": {"env": "P"},
                "bearer_token": {"env": "T"},
                "bearer_logical_cluster": "lsrc-1",
            },
            "not both",
        ),
        ({"url": "https://registry", "client_key_file": "/k.pem"}, "needs client_cert_file"),
        (
            {"url": "http://registry:8081", "username": "u", "password": {"env": "P"}},
            "url: credentials over cleartext",
        ),
        ({"url": "ftp://registry"}, "http:// or https://"),
    ],
)
def test_registry_settings_refused(registry: dict[str, Any], complaint: str) -> None:
    message = _refused({"schema_registry": registry})
    assert "schema_registry" in message and complaint in message
    assert "hunter2" not in message and ":p@" not in message


def test_registry_credentials_over_cleartext_pass_to_loopback_or_when_allowed() -> None:
    auth = {"username": "u", "password": {"env": "P"}}
    parse_settings({"schema_registry": {"url": "http://127.0.0.1:8081", **auth}})
    parse_settings(
        {
            "schema_registry": {
                "url": "http://registry:8081",
                "allow_insecure_transport": True,
                **auth,
            }
        }
    )


def test_oms_sign_in_over_cleartext_to_a_remote_host_is_refused_unless_allowed() -> None:
    oms = {"enabled": True, "base_url": "http://oms.example.com", "accounts": [OMS_ACCOUNT]}
    assert "tplus.oms: Value error, base_url: credentials over cleartext" in _refused(
        {"tplus": {"oms": oms}}
    )
    parse_settings({"tplus": {"oms": {**oms, "allow_insecure_transport": True}}})
    parse_settings({"tplus": {"oms": {**oms, "base_url": "http://127.0.0.1:3032"}}})


@pytest.mark.parametrize(
    ("urls", "key"),
    [
        ({"api_url": "http://api.example.com"}, "api_url"),
        ({"streamer_url": "ws://streamer.example.com"}, "streamer_url"),
    ],
)
def test_tastytrade_tokens_over_cleartext_are_refused_unless_allowed(
    urls: dict[str, str], key: str
) -> None:
    streamer = {"enabled": True, "accounts": ["5WT00001"], "auth": TT_AUTH, **urls}
    message = _refused({"tastytrade": {"account_streamer": streamer}})
    assert f"{key}: credentials over cleartext" in message
    allowed = {**streamer, "allow_insecure_transport": True}
    parse_settings({"tastytrade": {"account_streamer": allowed}})


def test_a_yaml_error_names_line_and_column_but_never_the_text(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kafka:\n  security:\n    sasl.password: [hunter2-secret\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    message = str(info.value)
    assert message.startswith(f"{path} is not valid YAML at line ")
    assert ", column " in message
    assert "hunter2" not in message and "sasl" not in message
