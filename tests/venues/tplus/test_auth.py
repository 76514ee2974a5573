"""T+ sign-in requests and answers, and private keys in every accepted form."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connector.venues import json_numbers
from connector.venues.errors import FrameError, Reason
from connector.venues.tplus import auth

SEED = hashlib.sha256(b"tplus-bridge-example-user").digest()
ACCOUNT = "07174645dda5c7fa66ac240ecad7ea4c6e6bf13662057e9b413c97cf73a67016"


def test_the_example_account_is_derived_from_its_seed() -> None:
    key = auth.private_key_from_text(SEED.hex())
    assert auth.account_id(key) == ACCOUNT


def _pem(key: Ed25519PrivateKey | Ed448PrivateKey, password: bytes | None = None) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if password is None
        else serialization.BestAvailableEncryption(password)
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()


@pytest.mark.parametrize(
    "text",
    [
        SEED.hex(),
        "0x" + SEED.hex().upper(),
        f"  {SEED.hex()}\n",
        SEED.hex() + ACCOUNT,
        _pem(Ed25519PrivateKey.from_private_bytes(SEED)),
    ],
    ids=["hex", "0x-upper", "padded", "seed+public", "pem"],
)
def test_every_accepted_key_form_gives_the_account(text: str) -> None:
    assert auth.account_id(auth.private_key_from_text(text)) == ACCOUNT


@pytest.mark.parametrize(
    "text",
    [
        SEED.hex()[:-2],
        SEED.hex() + "00" * 32,
        "zz" * 32,
        _pem(Ed448PrivateKey.generate()),
        _pem(Ed25519PrivateKey.from_private_bytes(SEED), b"pw"),
        "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----",
    ],
    ids=["short", "wrong-public-half", "not-hex", "ed448", "encrypted", "broken-pem"],
)
def test_unusable_keys_are_refused_without_echoing_them(text: str) -> None:
    with pytest.raises(auth.KeyFormatError) as err:
        auth.private_key_from_text(text)
    message = str(err.value)
    assert SEED.hex() not in message.lower() and text.strip()[:20] not in message


def test_the_auth_request_signs_the_compacted_nonce() -> None:
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    nonce = "challenge 12\r\nab"
    body = auth.auth_request(ACCOUNT, nonce, key)
    assert body["user_id"] == ACCOUNT and body["nonce"] == nonce
    assert body["additional_signers"] == []
    signature = body["signature"]
    assert isinstance(signature, list) and len(signature) == 64
    assert all(isinstance(b, int) and 0 <= b <= 255 for b in signature)
    key.public_key().verify(bytes(signature), b"challenge12ab")


@pytest.mark.parametrize(
    ("body", "nonce"),
    [({"value": "n 1"}, "n 1"), ("plain", "plain"), (12345, "12345"), ({"value": 7}, "7")],
)
def test_the_nonce_is_read_as_the_sdk_reads_it(body: object, nonce: str) -> None:
    assert auth.parse_nonce(body) == nonce


@pytest.mark.parametrize("body", [{}, {"value": None}, {"value": {"a": 1}}, None])
def test_a_nonce_answer_without_a_value_is_refused(body: object) -> None:
    with pytest.raises(FrameError):
        auth.parse_nonce(body)


def test_the_token_answer_and_the_headers_it_gives() -> None:
    body = json_numbers.loads('{"token":"abc.def","expiry_ns":1761283073883453220}')
    token = auth.parse_token(body, generation=3)
    assert (token.expiry_ns, token.generation) == (1761283073883453220, 3)
    assert "abc.def" not in repr(token)
    assert auth.auth_headers(token, ACCOUNT) == {
        "Authorization": "Bearer abc.def",
        "User-Id": ACCOUNT,
    }


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"expiry_ns":1}', Reason.MISSING_FIELD),
        ('{"token":"t","expiry_ns":1.5}', Reason.BAD_FIELD),
        ('{"token":"","expiry_ns":1}', Reason.BAD_FIELD),
        ('{"token":"a\\nb","expiry_ns":1}', Reason.BAD_FIELD),
        ('{"token":5,"expiry_ns":1}', Reason.BAD_FIELD),
        ("[]", Reason.WRONG_SHAPE),
    ],
)
def test_bad_token_answers_are_refused(text: str, reason: str) -> None:
    with pytest.raises(FrameError) as err:
        auth.parse_token(json_numbers.loads(text))
    assert err.value.reason == reason


def test_tokens_are_renewed_a_margin_before_expiry_or_halfway_when_short() -> None:
    s = 1_000_000_000
    assert auth.refresh_at(0, 3600 * s, 60 * s) == 3540 * s
    assert auth.refresh_at(0, 30 * s, 60 * s) == 15 * s
    assert auth.refresh_at(10 * s, 5 * s, 60 * s) == 5 * s


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ACCOUNT, ACCOUNT),
        ("0x" + ACCOUNT.upper(), ACCOUNT),
        ("0xabc", "abc".rjust(64, "0")),
        ("desk-7", None),
        ("", None),
        ("a" * 65, None),
    ],
)
def test_public_keys_are_normalised_as_the_sdk_does(text: str, expected: str | None) -> None:
    assert auth.normalise_account(text) == expected
