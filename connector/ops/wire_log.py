"""A logger for the websockets library that never writes credential headers.

At DEBUG, websockets logs every handshake header line (``> Authorization:
Bearer …`` on a client, ``< Authorization: …`` on a server). Handing it this
adapter instead of a plain logger replaces the value of credential headers
with ``[redacted]`` before the record exists, whatever level or handler
someone configures later; the header name stays, so a handshake can still be
debugged. Data frames, which carry tokens and account data on some venues,
are logged by opcode and size only.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from websockets.frames import Frame, Opcode

REDACTED = "[redacted]"
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_HEADER_LINES = frozenset({"> %s: %s", "< %s: %s"})
_FRAME_LINES = frozenset({"> %s", "< %s"})
_DATA_OPCODES = frozenset({Opcode.TEXT, Opcode.BINARY, Opcode.CONT})


class RedactingAdapter(logging.LoggerAdapter[logging.Logger]):
    """Passes records through, with credential header values replaced."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if msg in _HEADER_LINES and len(args) == 2 and str(args[0]).lower() in SENSITIVE_HEADERS:
            args = (args[0], REDACTED)
        elif msg in _FRAME_LINES and len(args) == 1 and isinstance(args[0], Frame):
            # Data frames carry credentials (tastytrade sends its token in every
            # message) and account data: log their size, never their content.
            frame = args[0]
            if frame.opcode in _DATA_OPCODES:
                args = (f"{frame.opcode.name} {REDACTED} [{len(frame.data)} bytes]",)
        super().log(level, msg, *args, **kwargs)


def wire_logger(name: str) -> RedactingAdapter:
    """The adapter to pass as ``logger=`` to websockets' ``connect`` or ``serve``."""
    return RedactingAdapter(logging.getLogger(name))
