"""Credential-shaped values taken out of a dead letter's body before it is produced.

A dead letter keeps the venue's frame for whoever diagnoses it, but a frame
that echoes a credential (an ``auth-token`` in a tastytrade message, an
``Authorization`` value, a ``password`` or ``secret`` field) must not reach
the DLQ with it. The body is often not valid JSON (that may be why it was
rejected), so fields are found by pattern rather than parsed: any
``"…key…": value`` whose key contains one of the credential words, and any
``Bearer <token>``. The rest of the body is kept byte for byte.
"""

from __future__ import annotations

import re

REDACTED = "[REDACTED]"

CREDENTIAL_WORDS = ("auth-token", "authorization", "token", "password", "secret")

_WORDS = "|".join(re.escape(w) for w in CREDENTIAL_WORDS)
_FIELD = re.compile(
    r'"(?P<key>[^"\\]{0,64}?(?:' + _WORDS + r')[^"\\]{0,64}?)"(?P<sep>\s*:\s*)'
    r'(?P<value>"(?:[^"\\]|\\.)*"?|[^\s,}\]]+)',
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<scheme>Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def redact(body: bytes) -> tuple[bytes, list[str]]:
    """``body`` with credential values replaced, and the keys that were (sorted, unique).

    Undecodable bytes survive unchanged (``surrogateescape``), so only the
    replaced values differ from the input.
    """
    text = body.decode("utf-8", "surrogateescape")
    keys: set[str] = set()

    def field(match: re.Match[str]) -> str:
        keys.add(match["key"])
        return f'"{match["key"]}"{match["sep"]}"{REDACTED}"'

    def bearer(match: re.Match[str]) -> str:
        keys.add("Bearer")
        return match["scheme"] + REDACTED

    # Most bodies name no credential: a lower-cased scan (C speed) skips the patterns.
    lowered = text.lower()
    if any(word in lowered for word in CREDENTIAL_WORDS):
        text = _FIELD.sub(field, text)
    if "bearer" in lowered:
        text = _BEARER.sub(bearer, text)
    if not keys:
        return body, []
    return text.encode("utf-8", "surrogateescape"), sorted(keys)
