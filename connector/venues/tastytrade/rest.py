"""The REST side of the account feed: baseline requests, their bodies, and token refresh.

The streamer sends changes only and replays nothing, so after every
(re)connect the account's state is read over REST and published as REST_BASELINE
records. The REST API wraps an object as ``{"data": {...}}`` and a list as
``{"data": {"items": [...]}}``; each object has the shape of the ``data`` of
the notification of the same type.

OAuth access tokens come from ``POST /oauth/token`` with the refresh token and
client secret; the answer carries ``access_token`` and ``expires_in`` seconds
(15 minutes when absent, as the venue documents).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from connector.records import Stage
from connector.venues.errors import FrameError, Reason
from connector.venues.json_numbers import FloatText
from connector.venues.tastytrade.notifications import TYPES, NotificationType

TOKEN_PATH = "/oauth/token"
DEFAULT_TOKEN_LIFETIME_S = 900.0


@dataclass(frozen=True, slots=True)
class BaselineRequest:
    """One GET of an account's baseline and the notification type its objects have."""

    account: str
    path: str
    type: NotificationType
    many: bool
    """True when the body is a list (``data.items``), False for a single object."""


def baseline_requests(account: str, currency: str) -> list[BaselineRequest]:
    """The requests of one account's baseline, in publication order."""
    base = f"/accounts/{quote(account, safe='')}"
    return [
        BaselineRequest(
            account,
            f"{base}/balances/{quote(currency, safe='')}",
            TYPES["AccountBalance"],
            False,
        ),
        BaselineRequest(account, f"{base}/positions", TYPES["CurrentPosition"], True),
        BaselineRequest(account, f"{base}/orders/live", TYPES["Order"], True),
        BaselineRequest(account, f"{base}/complex-orders/live", TYPES["ComplexOrder"], True),
        BaselineRequest(account, f"{base}/trading-status", TYPES["TradingStatus"], False),
    ]


def baseline_items(request: BaselineRequest, body: Any) -> list[Any]:
    """The objects of a decoded baseline body (not yet validated one by one)."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise FrameError(Reason.WRONG_SHAPE, 'a REST body must be {"data": {...}}')
    data = body["data"]
    if not request.many:
        return [data]
    items = data.get("items")
    if not isinstance(items, list):
        raise FrameError(Reason.WRONG_SHAPE, "a REST list body must carry data.items")
    return items


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    expires_in_s: float


def parse_token_response(body: Any) -> TokenGrant:
    """The access token and its lifetime from a ``POST /oauth/token`` answer."""
    if not isinstance(body, dict):
        raise FrameError(Reason.WRONG_SHAPE, "token response must be a JSON object", Stage.DECODE)
    token = body.get("access_token")
    if not isinstance(token, str) or isinstance(token, FloatText) or not token.strip():
        raise FrameError(Reason.MISSING_FIELD, "access_token is missing")
    raw = body.get("expires_in", DEFAULT_TOKEN_LIFETIME_S)
    try:
        lifetime = float(raw) if not isinstance(raw, bool) else -1.0
    except (TypeError, ValueError):
        lifetime = -1.0
    if not (math.isfinite(lifetime) and lifetime > 0):
        raise FrameError(Reason.BAD_FIELD, "expires_in must be a positive number of seconds")
    return TokenGrant(token.strip(), lifetime)
