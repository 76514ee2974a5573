"""Credential-shaped values leave a dead letter's body; everything else stays byte for byte."""

from __future__ import annotations

import pytest

from connector.security.redaction import REDACTED, redact


@pytest.mark.parametrize(
    ("body", "expected", "keys"),
    [
        (
            b'{"action":"connect","auth-token":"sess-123","value":["5WT1"]}',
            b'{"action":"connect","auth-token":"[REDACTED]","value":["5WT1"]}',
            ["auth-token"],
        ),
        (
            b'{"Authorization" : "Bearer abc.def", "refresh_token": "r-1", "n": 2}',
            b'{"Authorization" : "[REDACTED]", "refresh_token": "[REDACTED]", "n": 2}',
            ["Authorization", "refresh_token"],
        ),
        (
            b'{"password": 123456, "client_secret":"s\\"q", "SECRET":null}',
            b'{"password": "[REDACTED]", "client_secret":"[REDACTED]", "SECRET":"[REDACTED]"}',
            ["SECRET", "client_secret", "password"],
        ),
        # Not JSON at all (why it was dead-lettered), or cut short by the DLQ size cap.
        (b'{"token": "abc', b'{"token": "[REDACTED]"', ["token"]),
        (
            b"GET / Authorization: Bearer eyJ0.x-y_z",
            b"GET / Authorization: Bearer [REDACTED]",
            ["Bearer"],
        ),
    ],
)
def test_credential_values_are_replaced(body: bytes, expected: bytes, keys: list[str]) -> None:
    assert redact(body) == (expected, keys)


def test_a_body_without_credentials_comes_back_unchanged_even_undecodable() -> None:
    body = b'{"price":"1.5","tok":"x","pass":1}\xff\xfe'
    out, keys = redact(body)
    assert out is body and keys == []


def test_undecodable_bytes_around_a_redaction_survive() -> None:
    out, keys = redact(b'\xff{"secret":"s"}\xfe')
    assert out == b'\xff{"secret":"' + REDACTED.encode() + b'"}\xfe' and keys == ["secret"]
