"""The registry reached over TLS with its own CA, a client certificate and a bearer token.

A real HTTPS registry on 127.0.0.1 (the embedded one, wrapped in an SSL context
that demands a client certificate signed by a throw-away CA) and
confluent-kafka's own registry client, configured only through the settings.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.delivery.serde import (
    RegistryUnavailable,
    SchemaSetupError,
    pin_schemas,
    registry_client,
)
from connector.embedded.registry import RegistryServer
from connector.governance import catalog
from connector.settings import ConfigError, SchemaRegistrySettings
from tests.tls_certs import Pki, make_pki

TOKEN = "registry-bearer-token-7"
SCHEMAS = {"tplus.trades": catalog.schema_text("tplus.trades")}


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
def tls_registry(pki: Pki) -> Iterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    context.load_cert_chain(pki.server.cert, pki.server.key)
    context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no answer
    with RegistryServer(tls=context, authorization=f"Bearer {TOKEN}") as server:
        yield server.url


def _settings(url: str, pki: Pki, token_file: Path, **overrides: Any) -> SchemaRegistrySettings:
    values: dict[str, Any] = {
        "url": url,
        "ca_file": pki.ca,
        "client_cert_file": pki.client.cert,
        "client_key_file": pki.client.key,
        "bearer_token": {"file": token_file},
        "bearer_logical_cluster": "lsrc-test",
        **overrides,
    }
    return SchemaRegistrySettings.model_validate(values)


def _pin(settings: SchemaRegistrySettings) -> dict[str, int]:
    """Pin SCHEMAS through a client built from ``settings`` alone."""
    client = registry_client(settings)
    try:
        return pin_schemas(client, SCHEMAS, auto_register=True)
    finally:
        client.close()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "registry-token"
    path.write_text(TOKEN + "\n")
    return path


def test_a_tls_registry_is_reached_with_the_ca_file_client_certificate_and_bearer_token(
    tls_registry: str, pki: Pki, token_file: Path
) -> None:
    assert tls_registry.startswith("https://127.0.0.1:")
    ids = _pin(_settings(tls_registry, pki, token_file))
    assert set(ids) == {"tplus.trades"} and ids["tplus.trades"] > 0


@pytest.mark.parametrize(
    "missing", ["ca_file", "client_cert_file"], ids=["no CA", "no client certificate"]
)
def test_without_the_ca_or_the_client_certificate_the_handshake_fails(
    tls_registry: str, pki: Pki, token_file: Path, missing: str
) -> None:
    overrides: dict[str, Any] = {missing: None}
    if missing == "client_cert_file":
        overrides["client_key_file"] = None
    with pytest.raises(RegistryUnavailable):
        _pin(_settings(tls_registry, pki, token_file, **overrides))


def test_a_wrong_bearer_token_is_refused_by_the_registry(
    tls_registry: str, pki: Pki, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token")
    with pytest.raises(SchemaSetupError, match="HTTP 401"):
        _pin(_settings(tls_registry, pki, wrong))


def test_unusable_tls_files_and_unreadable_secrets_are_configuration_errors(
    pki: Pki, token_file: Path, tmp_path: Path
) -> None:
    url = "https://127.0.0.1:9"
    with pytest.raises(ConfigError, match="ca_file, client_cert_file or client_key_file"):
        registry_client(_settings(url, pki, token_file, ca_file=tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match=r"schema_registry\.bearer_token"):
        registry_client(_settings(url, pki, tmp_path / "no-token"))
