"""The transport rules on their own: allow-listed Kafka keys, loopback hosts, cleartext URLs."""

from __future__ import annotations

import pytest

from connector.security import transport
from connector.settings import SecretRef

REF = SecretRef(env="X")


def test_only_protocol_sasl_and_ssl_keys_pass() -> None:
    allowed = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "sasl.password": REF,
        "ssl.ca.location": "/etc/ca.pem",
        "ssl.endpoint.identification.algorithm": "https",
    }
    assert transport.refused_security_keys(allowed) == []


def test_every_refused_key_is_named_with_its_reason() -> None:
    refused = transport.refused_security_keys(
        {
            "acks": "0",
            "enable.idempotence": "false",
            "message.timeout.ms": "1",
            "enable.ssl.certificate.verification": "false",
            "ssl.endpoint.identification.algorithm": "none",
            "sasl.password": "inline",
            "ssl.key.password": "inline",
            "sasl.oauthbearer.client.secret": "inline",
        }
    )
    keys = [line.split(":", 1)[0] for line in refused]
    assert keys == [
        "acks",
        "enable.idempotence",
        "enable.ssl.certificate.verification",
        "message.timeout.ms",
        "sasl.oauthbearer.client.secret",
        "sasl.password",
        "ssl.endpoint.identification.algorithm",
        "ssl.key.password",
    ]
    assert all("inline" not in line.split(":", 1)[1] or "never inline" in line for line in refused)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("[::1]", True),
        ("10.0.0.1", False),
        ("registry.internal", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert transport.is_loopback(host) is loopback


def test_bootstrap_hosts_are_split_from_their_ports() -> None:
    hosts = transport.bootstrap_hosts("127.0.0.1:9092, [::1]:9093,broker-0.kafka:9092,SSL://b:9")
    assert hosts == ["127.0.0.1", "::1", "broker-0.kafka", "b"]


def test_cleartext_urls_to_other_hosts_are_found() -> None:
    urls = [
        "http://127.0.0.1:8081",
        "ws://localhost:1",
        "https://oms.example.com",
        "wss://streamer.example.com",
        "http://oms.example.com",
        "ws://10.1.2.3:80/x",
    ]
    assert transport.remote_cleartext(urls) == ["http://oms.example.com", "ws://10.1.2.3:80/x"]


def test_userinfo_is_found_in_any_form() -> None:
    assert transport.has_userinfo("https://user:pass@registry:8081")
    assert transport.has_userinfo("https://token@registry")
    assert not transport.has_userinfo("https://registry:8081/path@x")
