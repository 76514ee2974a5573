"""Secrets come from files or the environment, and errors name the config key."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.secrets import mask_account, resolve_secret, secret_refs, unresolved_secrets
from connector.settings import ConfigError, SecretRef, parse_settings


def test_secret_from_env_and_file(tmp_path: Path) -> None:
    assert (
        resolve_secret(SecretRef(env="TOK"), "x.token", {"TOK": " abc\n"}).get_secret_value()
        == "abc"
    )
    path = tmp_path / "token"
    path.write_text("s3cret\n")
    secret = resolve_secret(SecretRef(file=path), "x.token", {})
    assert secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(secret)


def test_missing_secrets_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"accounts\[0\].key: environment variable K"):
        resolve_secret(SecretRef(env="K"), "accounts[0].key", {})
    with pytest.raises(ConfigError, match=r"a\.b: cannot read secret file"):
        resolve_secret(SecretRef(file=tmp_path / "nope"), "a.b", {})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        resolve_secret(SecretRef(file=empty), "a.b", {})


def test_a_secret_ref_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SecretRef()
    with pytest.raises(ValueError, match="exactly one"):
        SecretRef(env="A", file=Path("/x"))
    assert parse_settings({}).name == "connector"


@pytest.mark.parametrize(("account", "masked"), [("5WT00001", "…0001"), ("abcd", "…"), ("", "…")])
def test_mask_account_keeps_only_the_last_four(account: str, masked: str) -> None:
    assert mask_account(account) == masked


def test_every_secret_reference_in_use_is_found_and_checked(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("00" * 32)
    settings = parse_settings(
        {
            "tplus": {
                "oms": {
                    "enabled": True,
                    "accounts": [
                        {"name": "a", "private_key": {"file": str(key)}},
                        {"name": "b", "private_key": {"env": "KEY_B"}},
                    ],
                }
            },
            "tastytrade": {
                # Disabled: its references are not needed, so not listed.
                "account_streamer": {"auth": {"refresh_token": {"env": "NEVER"}}}
            },
        }
    )
    assert [k for k, _ in secret_refs(settings)] == [
        "tplus.oms.accounts[0].private_key",
        "tplus.oms.accounts[1].private_key",
    ]
    assert unresolved_secrets(settings, {"KEY_B": "x"}) == []
    assert unresolved_secrets(settings, {}) == [
        "tplus.oms.accounts[1].private_key: environment variable KEY_B is not set or empty"
    ]
