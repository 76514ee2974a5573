"""JSON decoding that keeps every number exactly as the venue wrote it.

Venues send prices as JSON numbers (``3862.4``); through ``float`` they would
pick up binary noise. Floats are kept as their literal text (normalised to
plain notation when written with an exponent) so a price stays byte-for-byte
what the venue meant. Integers stay ``int`` for sequence numbers and
timestamps.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from connector.records import Stage
from connector.venues.errors import FrameError, Reason

_PLAIN_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$")
_LOOSE_DECIMAL = re.compile(r"^[+-]?[0-9]*\.?[0-9]+([eE][+-]?[0-9]+)?$|^[+-]?[0-9]+\.$")


class FloatText(str):
    """The literal text of a JSON number that had a fraction or exponent."""

    __slots__ = ()


# msgspec's decoder hands every literal with a fraction or exponent to the
# hook as its text; it refuses NaN and Infinity, which JSON does not have. It
# decodes in well under half the time of the json module, on every frame.
_DECODE = msgspec.json.Decoder(float_hook=FloatText).decode


def loads(raw: bytes | str) -> Any:
    """Decode one frame; raise FrameError(decode) for bytes that are not JSON text."""
    try:
        return _DECODE(raw)
    except (msgspec.DecodeError, RecursionError, ValueError) as exc:
        # ValueError: an integer too long to convert; RecursionError: nesting too deep.
        reason = exc
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError(Reason.NOT_UTF8, "frame is not UTF-8 text", Stage.DECODE) from None
    raise FrameError(Reason.NOT_JSON, f"frame is not JSON ({reason})", Stage.DECODE)


def decimal_text(value: Any, field: str) -> str:
    """A lossless decimal string for a JSON number or numeric string.

    Plain decimals are returned unchanged (``"3862.40"`` keeps its trailing
    zero); exponent forms are rewritten in plain notation without changing
    the value. Booleans, NaN and anything else are rejected.
    """
    if type(value) is FloatText and "e" not in value and "E" not in value:
        # A JSON literal with a fraction and no exponent is already plain decimal text.
        return value
    if isinstance(value, bool):
        raise FrameError(Reason.BAD_FIELD, f"{field} must be a decimal number, not a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        text = value.strip() if not isinstance(value, FloatText) else value
        if _PLAIN_DECIMAL.match(text):
            return text
        if _LOOSE_DECIMAL.match(text):
            try:
                number = Decimal(text)
            except InvalidOperation:
                number = None
            if number is not None and number.is_finite():
                return format(number, "f")
    raise FrameError(Reason.BAD_FIELD, f"{field} must be a decimal number")


def integer(value: Any, field: str) -> int:
    """An integer field; numeric strings are accepted as the venue SDKs accept them."""
    if isinstance(value, bool):
        raise FrameError(Reason.BAD_FIELD, f"{field} must be an integer, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and not isinstance(value, FloatText):
        text = value.strip()
        if re.fullmatch(r"-?[0-9]{1,20}", text):
            return int(text)
    raise FrameError(Reason.BAD_FIELD, f"{field} must be an integer")


def long_value(value: Any, field: str) -> int:
    """An integer that must fit Avro's signed 64-bit ``long``."""
    number = integer(value, field)
    if not -(2**63) <= number < 2**63:
        raise FrameError(Reason.BAD_FIELD, f"{field} does not fit in 64 bits")
    return number


def boolean(value: Any, field: str) -> bool:
    """A real JSON boolean; the string ``"false"`` is refused rather than read as true."""
    if isinstance(value, bool):
        return value
    raise FrameError(Reason.BAD_FIELD, f"{field} must be a boolean")


def string(value: Any, field: str) -> str:
    if isinstance(value, str) and not isinstance(value, FloatText):
        return value
    raise FrameError(Reason.BAD_FIELD, f"{field} must be a string")


def require(obj: dict[str, Any], field: str) -> Any:
    if field not in obj:
        raise FrameError(Reason.MISSING_FIELD, f"{field} is missing")
    return obj[field]


def expect_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FrameError(Reason.WRONG_SHAPE, f"{what} must be a JSON object")
    return value


def json_text(value: Any) -> str:
    """Compact JSON text of a decoded value, numbers exactly as the venue wrote them.

    Iterative, not recursive: the decoder accepts nesting close to Python's
    recursion limit, and a frame that deep must become a value, not a
    RecursionError.
    """
    out: list[str] = []
    # A stack of pending work: values still to write and literal text to emit.
    stack: list[tuple[bool, Any]] = [(False, value)]
    while stack:
        literal, item = stack.pop()
        if literal:
            out.append(item)
        elif isinstance(item, FloatText):
            out.append(str(item))
        elif isinstance(item, str):
            out.append(json.dumps(item, ensure_ascii=False))
        elif item is None or isinstance(item, bool | int):
            out.append(json.dumps(item))
        elif isinstance(item, list):
            out.append("[")
            stack.append((True, "]"))
            for index in range(len(item) - 1, -1, -1):
                stack.append((False, item[index]))
                if index:
                    stack.append((True, ","))
        elif isinstance(item, dict):
            out.append("{")
            stack.append((True, "}"))
            entries = list(item.items())
            for index in range(len(entries) - 1, -1, -1):
                key, inner = entries[index]
                stack.append((False, inner))
                stack.append((True, json.dumps(str(key), ensure_ascii=False) + ":"))
                if index:
                    stack.append((True, ","))
        else:
            raise TypeError(f"not a decoded JSON value: {type(item).__name__}")
    return "".join(out)
