"""T+ market-data frames (depth, snapshot, trades, klines) parsed into Avro-ready values.

Pure functions from a frame's text to plain values: no sockets, no Kafka. The
shapes follow the venue SDK (tpluspy 0.6.0); every price and quantity is kept
as the venue's exact decimal text.

Example frames::

    {"bids":[[3862.4,1.75]],"asks":[],"sequence_number":1042}          # depth diff
    {"asset_id":"1","trade_id":122519,"price":"3862.36934070", ...}    # trade
    [{"open":"3860.10","close":"3862.40", ... ,"close_timestamp_ns":...}]  # klines
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.records import Record
from connector.venues.errors import FrameError, Reason
from connector.venues.json_numbers import (
    FloatText,
    boolean,
    decimal_text,
    expect_object,
    long_value,
    require,
    string,
)
from connector.venues.tplus.asset_ids import canonical_asset

DEPTH_STREAM = "tplus.depth"
TRADES_STREAM = "tplus.trades"
KLINES_STREAM = "tplus.klines"

CONTROL_TYPES = frozenset({"subscriptions", "ping", "pong"})
TRADE_STATUSES = frozenset({"Pending", "Confirmed", "Rollbacked"})

Level = tuple[str, str]


@dataclass(slots=True)
class BookLevels:
    """A depth diff or a snapshot: changed (or all) levels and a sequence number.

    Not frozen (one is built per diff; see Record), never changed once built.
    """

    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    sequence_number: int


def is_control(message: Any) -> bool:
    """True for the JSON keep-alive objects the SDK drops without parsing."""
    if not isinstance(message, dict):
        return False
    kind = message.get("type")
    return isinstance(kind, str) and kind in CONTROL_TYPES


def _levels(value: Any, field: str) -> tuple[Level, ...]:
    if not isinstance(value, list):
        raise FrameError(Reason.WRONG_SHAPE, f"{field} must be a list of [price, quantity]")
    out: list[Level] = []
    for index, level in enumerate(value):
        if type(level) is list and len(level) >= 2:
            price, quantity = level[0], level[1]
            # The usual level, checked inline: two plain decimal literals, quantity
            # not negative. Anything else takes the general checks below.
            if (
                type(price) is FloatText
                and type(quantity) is FloatText
                and "e" not in price
                and "E" not in price
                and "e" not in quantity
                and "E" not in quantity
                and quantity[0] != "-"
            ):
                out.append((price, quantity))
                continue
        if not isinstance(level, list) or len(level) < 2:
            raise FrameError(Reason.WRONG_SHAPE, f"{field}[{index}] must be [price, quantity]")
        try:
            # The field's name is only spelled out for an error: most levels are valid.
            price = decimal_text(level[0], "price")
            quantity = decimal_text(level[1], "quantity")
        except FrameError:
            decimal_text(level[0], f"{field}[{index}].price")
            decimal_text(level[1], f"{field}[{index}].quantity")
            raise
        if quantity.startswith("-"):
            raise FrameError(Reason.BAD_FIELD, f"{field}[{index}].quantity is negative")
        out.append((price, quantity))
    return tuple(out)


def parse_book_levels(message: Any, *, snapshot: bool = False) -> BookLevels:
    """Parse a depth diff or (with ``snapshot``) a REST snapshot body.

    A snapshot may omit every field (the SDK defaults them); a diff must carry
    all three, since a diff without a sequence number cannot be placed.
    """
    if not snapshot and type(message) is dict:
        bids, asks, seq = message.get("bids"), message.get("asks"), message.get("sequence_number")
        if type(bids) is list and type(asks) is list and type(seq) is int and 0 <= seq < 2**63:
            # The usual diff, its envelope checked inline; the levels as always.
            return BookLevels(_levels(bids, "bids"), _levels(asks, "asks"), seq)
    obj = expect_object(message, "snapshot" if snapshot else "depth diff")
    if snapshot:
        bids = obj.get("bids", [])
        asks = obj.get("asks", [])
        seq = obj.get("sequence_number", 0)
    else:
        bids = require(obj, "bids")
        asks = require(obj, "asks")
        seq = require(obj, "sequence_number")
    sequence_number = long_value(seq, "sequence_number")
    if sequence_number < 0:
        raise FrameError(Reason.BAD_FIELD, "sequence_number is negative")
    return BookLevels(_levels(bids, "bids"), _levels(asks, "asks"), sequence_number)


def _level_values(levels: tuple[Level, ...]) -> list[dict[str, str]]:
    return [{"price": price, "quantity": quantity} for price, quantity in levels]


def depth_record(
    kind: str,
    asset: str,
    received_ns: int,
    levels: BookLevels | None = None,
    *,
    gap_expected: int | None = None,
    gap_received: int | None = None,
    gap_reason: str | None = None,
) -> Record:
    """One value of ``tplus.depth``: a SNAPSHOT, a DIFF or a GAP announcement."""
    if levels is None:
        bids: list[dict[str, str]] = []
        asks: list[dict[str, str]] = []
        seq = None
    else:
        bids, asks, seq = (
            _level_values(levels.bids),
            _level_values(levels.asks),
            levels.sequence_number,
        )
    value: dict[str, Any] = {
        "kind": kind,
        "asset_id": asset,
        "sequence_number": seq,
        "bids": bids,
        "asks": asks,
        "gap_expected": gap_expected,
        "gap_received": gap_received,
        "gap_reason": gap_reason,
        "received_ns": received_ns,
    }
    return Record(DEPTH_STREAM, asset, value, received_ns, None)


def parse_trade(message: Any, received_ns: int) -> Record:
    """A public finalized trade from ``/trades``, keyed by its asset."""
    obj = expect_object(message, "trade")
    asset = canonical_asset(require(obj, "asset_id"))
    status = obj.get("status", "Confirmed")
    if not isinstance(status, str) or status not in TRADE_STATUSES:
        raise FrameError(Reason.BAD_FIELD, "status is not Pending, Confirmed or Rollbacked")
    order_id = obj.get("order_id", "")
    timestamp_ns = long_value(require(obj, "timestamp_ns"), "timestamp_ns")
    value: dict[str, Any] = {
        "asset_id": asset,
        "trade_id": long_value(require(obj, "trade_id"), "trade_id"),
        "order_id": "" if order_id is None else string(order_id, "order_id"),
        "price": decimal_text(require(obj, "price"), "price"),
        "quantity": decimal_text(require(obj, "quantity"), "quantity"),
        "timestamp_ns": timestamp_ns,
        "buyer_is_maker": boolean(require(obj, "buyer_is_maker"), "buyer_is_maker"),
        "status": status,
        "received_ns": received_ns,
    }
    return Record(TRADES_STREAM, asset, value, received_ns, timestamp_ns)


_BAR_PRICES = ("open", "high", "low", "close", "volume")


def parse_klines(message: Any, asset: str, interval: str | None, received_ns: int) -> list[Record]:
    """One record per Timebar in a ``/klines/diff/{asset}`` array, in order."""
    if not isinstance(message, list):
        raise FrameError(Reason.WRONG_SHAPE, "a klines frame must be a JSON array of bars")
    records = []
    for index, bar in enumerate(message):
        obj = expect_object(bar, f"bar {index}")
        value: dict[str, Any] = {"asset_id": asset, "interval": interval}
        for field in _BAR_PRICES:
            value[field] = decimal_text(require(obj, field), field)
        value["open_timestamp_ns"] = long_value(
            require(obj, "open_timestamp_ns"), "open_timestamp_ns"
        )
        value["close_timestamp_ns"] = long_value(
            require(obj, "close_timestamp_ns"), "close_timestamp_ns"
        )
        value["received_ns"] = received_ns
        records.append(Record(KLINES_STREAM, asset, value, received_ns, None))
    return records
