"""Account Streamer messages: what the client sends and how server frames are sorted.

Every client message carries the credential in ``auth-token``, exactly the
value the REST ``Authorization`` header would carry: ``Bearer <access token>``
for OAuth, the bare session token for the legacy scheme. The server answers
an action with ``{"status", "action", "request-id"?, ...}``; errors do not
always echo ``request-id`` (the observed ``connect`` failure does not), so
replies are matched by action when the id is missing.

A server frame is one of: a batch ``{"results": [...]}`` (each element is
handled like a frame of its own), a notification (``type``), or a reply
(``action``/``status``). Anything else is dead-lettered, never dropped.

Example frames::

    {"action":"connect","value":["5WT00001"],"auth-token":"Bearer …","request-id":1}
    {"status":"ok","action":"connect","web-socket-session-id":"5b6e2799","request-id":1}
    {"status":"error","action":"connect","web-socket-session-id":"4d02ac05","message":"failed"}
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from connector.venues.errors import FrameError, Reason
from connector.venues.json_numbers import FloatText

_REQUEST_ID = re.compile(r"[0-9]{1,20}")


class Action:
    CONNECT = "connect"
    HEARTBEAT = "heartbeat"
    PUBLIC_WATCHLISTS = "public-watchlists-subscribe"
    QUOTE_ALERTS = "quote-alerts-subscribe"


AuthScheme = Literal["oauth", "session"]

BEARER = "Bearer "


def auth_value(scheme: AuthScheme, token: str) -> str:
    """The ``auth-token`` (and REST ``Authorization``) value for a credential."""
    return f"{BEARER}{token}" if scheme == "oauth" else token


def client_message(
    action: str,
    auth_token: str,
    request_id: int,
    *,
    value: Sequence[str] | None = None,
    source: str | None = None,
) -> str:
    """One client frame; ``connect``'s ``value`` is always an array, as every server accepts."""
    message: dict[str, Any] = {"action": action}
    if value is not None:
        message["value"] = list(value)
    message["auth-token"] = auth_token
    message["request-id"] = request_id
    if source:
        message["source"] = source
    return json.dumps(message, separators=(",", ":"))


class Status(enum.Enum):
    OK = "ok"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Reply:
    """The server's answer to an action."""

    status: Status
    action: str | None
    request_id: int | None
    message: str | None
    session_id: str | None


class ElementKind(enum.Enum):
    NOTIFICATION = "notification"
    REPLY = "reply"


def elements(message: Any) -> list[Any]:
    """The elements of a decoded frame: a batch's ``results`` in order, or the frame itself."""
    if isinstance(message, dict) and "results" in message and "type" not in message:
        results = message["results"]
        if not isinstance(results, list):
            raise FrameError(Reason.WRONG_SHAPE, "results must be a JSON array")
        return results
    return [message]


def classify(element: Any) -> ElementKind:
    """Whether an element is a notification or a reply; FrameError for anything else."""
    if not isinstance(element, dict):
        raise FrameError(Reason.WRONG_SHAPE, "a streamer message must be a JSON object")
    if "type" in element:
        return ElementKind.NOTIFICATION
    if "status" in element or "action" in element:
        return ElementKind.REPLY
    raise FrameError(Reason.WRONG_SHAPE, "message has neither type, results nor status")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and not isinstance(value, FloatText) else None


def parse_reply(element: dict[str, Any]) -> Reply:
    status = element.get("status")
    if status not in ("ok", "error"):
        raise FrameError(Reason.BAD_FIELD, "status must be ok or error")
    raw_id = element.get("request-id")
    request_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None
    if request_id is None and isinstance(raw_id, str) and _REQUEST_ID.fullmatch(raw_id):
        # Not str.isdigit(): that accepts "²", which int() refuses.
        request_id = int(raw_id)
    return Reply(
        Status(status),
        _text(element.get("action")),
        request_id,
        _text(element.get("message")),
        _text(element.get("web-socket-session-id")),
    )
