"""T+ user trades (``WS /trades/user/events/{account}``) and their REST baseline.

One flat object per fill leg of the account; the lifecycle is a field: the
same ``trade_id`` arrives as ``Pending`` and then as ``Confirmed`` or
``Rollbacked``. The frame names no account, so the account is the one the
connection is for. Prices, quantities and fees are human-scale decimals
(strings), kept as the venue's exact text.

Example frame::

    {"asset_id":"1","trade_id":122530,"order_id":"rt6G…","price":"3861.80","quantity":"1.4000",
     "timestamp_ns":1761283013889453220,"is_maker":true,"is_buyer":true,"status":"Pending", ...}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.records import Record
from connector.venues.errors import FrameError, Reason
from connector.venues.json_numbers import (
    boolean,
    decimal_text,
    expect_object,
    integer,
    json_text,
    long_value,
    require,
    string,
)
from connector.venues.tplus.asset_ids import canonical_asset
from connector.venues.tplus.market_data import TRADE_STATUSES
from connector.venues.tplus.orders import Source

USER_TRADES_STREAM = "tplus.user-trades"


def user_trades_path(account: str) -> str:
    return f"/trades/user/events/{account}"


def _value(
    obj: dict[str, Any], account: str, source: str, received_ns: int, baseline_id: int | None
) -> dict[str, Any]:
    if len(obj) == 1 and next(iter(obj)) in TRADE_STATUSES:
        raise FrameError(
            Reason.WRONG_SHAPE,
            "a status-tagged wrapper is not a user trade; expected a flat object",
        )
    status = string(require(obj, "status"), "status")
    if status not in TRADE_STATUSES:
        raise FrameError(Reason.BAD_FIELD, "status is not Pending, Confirmed or Rollbacked")
    rollback_reason = obj.get("rollback_reason")
    sub_account = integer(obj.get("sub_account", 0), "sub_account")
    if not 0 <= sub_account < 2**31:
        raise FrameError(Reason.BAD_FIELD, "sub_account is out of range")
    fee = obj.get("trading_fee")
    return {
        "account": account,
        "source": source,
        "baseline_id": baseline_id,
        "asset_id": canonical_asset(require(obj, "asset_id")),
        "trade_id": long_value(require(obj, "trade_id"), "trade_id"),
        "order_id": string(require(obj, "order_id"), "order_id"),
        "price": decimal_text(require(obj, "price"), "price"),
        "quantity": decimal_text(require(obj, "quantity"), "quantity"),
        "timestamp_ns": long_value(require(obj, "timestamp_ns"), "timestamp_ns"),
        "is_maker": boolean(require(obj, "is_maker"), "is_maker"),
        "is_buyer": boolean(require(obj, "is_buyer"), "is_buyer"),
        "status": status,
        "rollback_reason": (
            None if rollback_reason is None else string(rollback_reason, "rollback_reason")
        ),
        "is_liquidation": boolean(obj.get("is_liquidation", False), "is_liquidation"),
        "is_auto_deleverage": boolean(obj.get("is_auto_deleverage", False), "is_auto_deleverage"),
        "sub_account": sub_account,
        "trading_fee": "0" if fee is None else decimal_text(fee, "trading_fee"),
        "received_ns": received_ns,
    }


def parse_user_trade(message: Any, account: str, received_ns: int) -> Record:
    """One user-trade frame of ``account``'s connection as a ``tplus.user-trades`` record."""
    obj = expect_object(message, "user trade")
    value = _value(obj, account, Source.STREAM, received_ns, None)
    return Record(USER_TRADES_STREAM, account, value, received_ns, value["timestamp_ns"])


@dataclass(frozen=True, slots=True)
class TradesBaseline:
    records: list[Record]
    rejected: list[tuple[FrameError, str]]
    """Each rejected entry with its compact JSON text, for the DLQ."""


def parse_user_trades_baseline(body: Any, account: str, received_ns: int) -> TradesBaseline:
    """A recent-trades answer (a JSON array of user trades), in the venue's order."""
    if not isinstance(body, list):
        raise FrameError(Reason.WRONG_SHAPE, "the user-trades answer must be a JSON array")
    records: list[Record] = []
    rejected: list[tuple[FrameError, str]] = []
    for entry in body:
        try:
            obj = expect_object(entry, "user trade")
            value = _value(obj, account, Source.REST_BASELINE, received_ns, received_ns)
        except FrameError as exc:
            rejected.append((exc, json_text(entry)))
            continue
        records.append(Record(USER_TRADES_STREAM, account, value, received_ns, None))
    return TradesBaseline(records, rejected)
