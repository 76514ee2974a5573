"""Account Streamer notifications (``{"type", "data", "timestamp"}``) as Avro-ready records.

Every notification type the venue documents has its own stream and record.
Account-level types are keyed by ``account-number``, so one account's events
stay in one partition, in order. ``QuoteAlert`` belongs to a user, not an
account, and is keyed by ``user-external-id``; ``PublicWatchlists`` is global
and carries one constant key, which keeps all of it in order on one partition.

The same mapping serves REST baselines: a baseline object has the shape of
the ``data`` of the notification of its type, and its record says so in
``origin``.

Example frame::

    {"type":"AccountBalance","data":{"account-number":"5WT00001",
     "cash-balance":"40506.72","pending-cash":"0.0","pending-cash-effect":"None", ...},
     "timestamp":1773153066080}
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from connector.records import Record, Stage
from connector.venues.errors import FrameError, Reason
from connector.venues.json_numbers import long_value
from connector.venues.tastytrade import objects
from connector.venues.tastytrade.objects import ObjectSpec, map_object

ORDERS = "tastytrade.orders"
COMPLEX_ORDERS = "tastytrade.complex-orders"
BALANCES = "tastytrade.balances"
POSITIONS = "tastytrade.positions"
TRADING_STATUS = "tastytrade.trading-status"
EXTERNAL_TRANSACTIONS = "tastytrade.external-transactions"
YEAR_GAIN_SUMMARIES = "tastytrade.year-gain-summaries"
ORDER_CHAINS = "tastytrade.order-chains"
QUOTE_ALERTS = "tastytrade.quote-alerts"
PUBLIC_WATCHLISTS = "tastytrade.public-watchlists"

STREAMER = "tastytrade.streamer"
"""The DLQ stream of frames that belong to no notification stream (unknown types, bad JSON)."""

PUBLIC_KEY = "public-watchlists"
"""The one key of the public watchlists stream."""


class Origin:
    """Where a record's state came from (the ``origin`` field)."""

    STREAM = "STREAM"
    BASELINE = "REST_BASELINE"


class Scope(enum.Enum):
    """Whose event a type is, which decides its key."""

    ACCOUNT = "account"
    USER = "user"
    PUBLIC = "public"


@dataclass(frozen=True, slots=True)
class NotificationType:
    name: str
    """The ``type`` on the wire."""
    stream: str
    spec: ObjectSpec
    scope: Scope

    def key(self, value: dict[str, Any]) -> str:
        """The Kafka key of a mapped value of this type."""
        if self.scope is Scope.PUBLIC:
            return PUBLIC_KEY
        field = "account_number" if self.scope is Scope.ACCOUNT else "user_external_id"
        key = value[field]
        if not isinstance(key, str) or not key.strip():
            raise FrameError(Reason.BAD_KEY, f"{field.replace('_', '-')} is empty")
        return key


TYPES: dict[str, NotificationType] = {
    t.name: t
    for t in (
        NotificationType("Order", ORDERS, objects.ORDER, Scope.ACCOUNT),
        NotificationType("ComplexOrder", COMPLEX_ORDERS, objects.COMPLEX_ORDER, Scope.ACCOUNT),
        NotificationType("AccountBalance", BALANCES, objects.ACCOUNT_BALANCE, Scope.ACCOUNT),
        NotificationType("CurrentPosition", POSITIONS, objects.CURRENT_POSITION, Scope.ACCOUNT),
        NotificationType("TradingStatus", TRADING_STATUS, objects.TRADING_STATUS, Scope.ACCOUNT),
        NotificationType(
            "ExternalTransaction",
            EXTERNAL_TRANSACTIONS,
            objects.EXTERNAL_TRANSACTION,
            Scope.ACCOUNT,
        ),
        NotificationType(
            "UnderlyingYearGainSummary",
            YEAR_GAIN_SUMMARIES,
            objects.UNDERLYING_YEAR_GAIN_SUMMARY,
            Scope.ACCOUNT,
        ),
        NotificationType("OrderChain", ORDER_CHAINS, objects.ORDER_CHAIN, Scope.ACCOUNT),
        NotificationType("QuoteAlert", QUOTE_ALERTS, objects.QUOTE_ALERT, Scope.USER),
        NotificationType(
            "PublicWatchlists", PUBLIC_WATCHLISTS, objects.PUBLIC_WATCHLIST, Scope.PUBLIC
        ),
    )
}

STREAM_TYPES: dict[str, NotificationType] = {t.stream: t for t in TYPES.values()}


def record(
    kind: NotificationType,
    data: dict[str, Any],
    *,
    origin: str,
    received_ns: int,
    timestamp_ns: int | None = None,
    ws_sequence: int | None = None,
) -> Record:
    """The record of one venue object of a known type."""
    value = map_object(data, kind.spec)
    value["origin"] = origin
    value["timestamp_ns"] = timestamp_ns
    value["ws_sequence"] = ws_sequence
    value["received_ns"] = received_ns
    return Record(kind.stream, kind.key(value), value, received_ns, timestamp_ns)


def account_of(data: Any) -> str | None:
    """The account number of an object, when it names one (for DLQ keys)."""
    if isinstance(data, dict):
        account = data.get("account-number")
        if isinstance(account, str) and account:
            return account
    return None


def type_of(envelope: dict[str, Any]) -> NotificationType:
    """The known type of an envelope; FrameError(route, unknown_type) otherwise."""
    name = envelope.get("type")
    kind = TYPES.get(name) if isinstance(name, str) else None
    if kind is None:
        raise FrameError(
            Reason.UNKNOWN_TYPE, "notification type is not one the connector maps", Stage.ROUTE
        )
    return kind


def parse_notification(envelope: dict[str, Any], received_ns: int) -> Record:
    """A streamed notification envelope as a STREAM record of its type."""
    kind = type_of(envelope)
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise FrameError(Reason.WRONG_SHAPE, "data must be a JSON object")
    timestamp = envelope.get("timestamp")
    sequence = envelope.get("ws-sequence")
    return record(
        kind,
        data,
        origin=Origin.STREAM,
        received_ns=received_ns,
        timestamp_ns=None
        if timestamp is None
        else long_value(long_value(timestamp, "timestamp") * 1_000_000, "timestamp"),
        ws_sequence=None if sequence is None else long_value(sequence, "ws-sequence"),
    )
