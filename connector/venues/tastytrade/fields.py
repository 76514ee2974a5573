"""Conversions for the values inside tastytrade objects.

The venue writes timestamps two ways (ISO-8601 text with an offset, or
integer epoch milliseconds, even within one object), money as decimal text
or JSON numbers, and ids as integers or strings. These helpers turn each
into one Avro-friendly form without losing anything, and render values the
connector does not model as exact JSON text so they still reach consumers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from connector.venues.errors import FrameError, Reason
from connector.venues.json_numbers import FloatText, json_text, long_value

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_NS_PER_MS = 1_000_000
_EPOCH_MS = re.compile(r"[0-9]{1,20}")


def avro_name(wire: str) -> str:
    """``account-number`` → ``account_number``: Avro names allow no hyphens."""
    return wire.replace("-", "_")


def timestamp_ns(value: Any, field: str) -> int:
    """Unix epoch nanoseconds from ISO-8601 text or integer epoch milliseconds.

    Text without an offset is read as UTC, the zone every observed payload uses.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return long_value(value * _NS_PER_MS, field)
    if isinstance(value, str) and not isinstance(value, FloatText):
        text = value.strip()
        if _EPOCH_MS.fullmatch(text):
            # Not str.isdigit(): that accepts "²", which int() refuses.
            return long_value(int(text) * _NS_PER_MS, field)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise FrameError(Reason.BAD_FIELD, f"{field} is not an ISO-8601 timestamp") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        delta = parsed - _EPOCH
        return long_value(
            (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000,
            field,
        )
    raise FrameError(Reason.BAD_FIELD, f"{field} must be epoch milliseconds or ISO-8601 text")


def date_text(value: Any, field: str) -> str:
    """A calendar date kept as ``YYYY-MM-DD`` text."""
    if isinstance(value, str) and not isinstance(value, FloatText) and _DATE.match(value):
        return value
    raise FrameError(Reason.BAD_FIELD, f"{field} must be a YYYY-MM-DD date")


def id_text(value: Any, field: str) -> str:
    """An identifier the venue sends as an integer or a string, kept as text."""
    if isinstance(value, bool):
        raise FrameError(Reason.BAD_FIELD, f"{field} must be an id, not a boolean")
    if isinstance(value, int | str):
        return str(value)
    raise FrameError(Reason.BAD_FIELD, f"{field} must be an integer or string id")


def scalar_text(value: Any) -> str:
    """A string as itself, anything else as its JSON text (for open string maps)."""
    if isinstance(value, str) and not isinstance(value, FloatText):
        return value
    return json_text(value)
