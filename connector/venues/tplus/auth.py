"""T+ sign-in, as pure request building and response parsing (no HTTP here).

An account is an Ed25519 key pair; its id is the raw public key as 64
lower-case hex. Signing in is three steps: ``GET /nonce/{account}``, an
Ed25519 signature of the nonce (spaces and line breaks removed), and
``POST /auth`` with that signature as a list of byte values, which answers
a bearer token and its expiry. The I/O lives in ``connector.sources``.

Nothing here puts key material, a signature or a token into an exception
message or a ``repr``: these values travel only inside request bodies and
headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connector.venues.errors import FrameError, Reason
from connector.venues.json_numbers import FloatText, expect_object, long_value, require, string

AUTH_PATH = "/auth"
"""Where the signed nonce is exchanged for a token."""

REFRESH_MARGIN_NS = 60 * 1_000_000_000
"""The venue SDK re-authenticates once a token has less than 60 s left."""

_HEX_RE = re.compile(r"^[0-9a-f]+$")
_NONCE_STRIP = str.maketrans("", "", " \r\n")


class KeyFormatError(ValueError):
    """Private key text in no supported form; the message never contains the text."""


def nonce_path(account: str) -> str:
    return f"/nonce/{account}"


def account_id(key: Ed25519PrivateKey) -> str:
    """The account id of a key: its raw 32-byte public key as lower-case hex."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def normalise_account(text: str) -> str | None:
    """A public key in the venue's canonical form, or None when it is not hex.

    As the SDK does for ``signer``: ``0x`` dropped, lower-cased, left-padded
    with zeros to 32 bytes when shorter.
    """
    value = text.strip().lower().removeprefix("0x")
    if not value or len(value) > 64 or not _HEX_RE.match(value):
        return None
    return value.rjust(64, "0")


def private_key_from_text(text: str) -> Ed25519PrivateKey:
    """Read a private key from a secret's text.

    Accepted: the 32-byte seed as 64 hex digits (optionally ``0x``-prefixed),
    the 64-byte ``seed || public key`` form as 128 hex digits (its public
    half must match), or an unencrypted PKCS#8 PEM block.
    """
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(stripped.encode("ascii"), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeEncodeError):
            raise KeyFormatError("the PEM block is not an unencrypted private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFormatError("the PEM block holds a key of another type than Ed25519")
        return key
    value = stripped.lower().removeprefix("0x")
    if not _HEX_RE.match(value) or len(value) not in (64, 128):
        raise KeyFormatError(
            "expected 64 hex digits (seed), 128 hex digits (seed and public key) or a PEM block"
        )
    raw = bytes.fromhex(value)
    key = Ed25519PrivateKey.from_private_bytes(raw[:32])
    if len(raw) == 64 and account_id(key) != raw[32:].hex():
        raise KeyFormatError("the public half of the 64-byte key does not match its seed")
    return key


def parse_nonce(body: Any) -> str:
    """The nonce from a ``/nonce`` answer: an object's ``value``, else the value itself."""
    value = body.get("value") if isinstance(body, dict) else body
    if value is None or isinstance(value, dict | list):
        raise FrameError(Reason.WRONG_SHAPE, "nonce answer carries no value")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def compact_nonce(nonce: str) -> str:
    """What is signed: the nonce without spaces, carriage returns or newlines."""
    return nonce.translate(_NONCE_STRIP)


def auth_request(account: str, nonce: str, key: Ed25519PrivateKey) -> dict[str, Any]:
    """The ``POST /auth`` body: the nonce as received, signed in its compact form.

    The signature is plain Ed25519 over the UTF-8 bytes of the compacted
    nonce (no hashing, no prefix); the body carries the nonce unchanged, as
    the SDK sends it.
    """
    signature = key.sign(compact_nonce(nonce).encode("utf-8"))
    return {
        "user_id": account,
        "nonce": nonce,
        "signature": list(signature),
        "additional_signers": [],
    }


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token and its expiry; ``repr`` never shows the token."""

    value: str = field(repr=False)
    expiry_ns: int
    generation: int = 0
    """Counts sign-ins of one account, so a stale rejection can be told from a fresh one."""


def refresh_at(issued_ns: int, expiry_ns: int, margin_ns: int = REFRESH_MARGIN_NS) -> int:
    """When to sign in again: ``margin_ns`` before expiry, as the SDK does.

    A token that lives no longer than twice the margin is renewed halfway
    through its life instead, so a short-lived token is not renewed in a
    loop the moment it arrives.
    """
    lifetime = max(0, expiry_ns - issued_ns)
    return expiry_ns - min(margin_ns, lifetime // 2)


def parse_token(body: Any, generation: int = 0) -> Token:
    """The ``/auth`` answer ``{"token": str, "expiry_ns": int}``."""
    obj = expect_object(body, "auth answer")
    token = string(require(obj, "token"), "token")
    if not token or any(c in token for c in "\r\n"):
        raise FrameError(Reason.BAD_FIELD, "token is empty or spans lines")
    expiry = require(obj, "expiry_ns")
    if isinstance(expiry, FloatText):
        raise FrameError(Reason.BAD_FIELD, "expiry_ns must be an integer")
    return Token(token, long_value(expiry, "expiry_ns"), generation)


def auth_headers(token: Token, account: str) -> dict[str, str]:
    """The headers of every authenticated request and WebSocket upgrade."""
    return {"Authorization": f"Bearer {token.value}", "User-Id": account}
