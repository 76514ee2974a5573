"""T+ order events (``WS /orders``) and the open-orders baseline, as ``tplus.orders`` values.

Pure functions from decoded frames to Avro-ready values. Every variant the
venue SDK accepts is mapped: ``Created``, ``Replaced``, ``Amended``,
``Removed``, ``Canceled``, ``Triggered``, the four ``*Failed`` variants and
the legacy ``Updated``, in the one-key form (``{"Removed": {...}}``) and the
legacy form (``{"type": "removed", ...}``; a string ``type`` wins). Variant
names are matched as the SDK matches them: underscores removed, case ignored.

Prices and quantities arrive as integers scaled by the book's decimals.
Each becomes a ``ScaledValue``: the integer's exact digits, the decimals
when known and the decimal text they give. Only ``Created`` (both
decimals) and ``Amended``/``Removed`` (quantity decimals) carry decimals, so
:class:`OrderDecimals` remembers them per order from ``Created`` for the
later events of the same order.

Example frames::

    {"Replaced":{"order_id":"rt6G…","asset_id":"1","user_id":"0717…","new_quantity":15000,
                 "new_price":386180, ...}}
    {"type":"removed","order_id":"…","asset_id":"1","user_id":"…","timestamp_ns":…,
     "reason":"Completed"}
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from connector.records import Record
from connector.venues.errors import FrameError, Reason
from connector.venues.json_numbers import (
    FloatText,
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
from connector.venues.tplus.auth import normalise_account
from connector.venues.tplus.market_data import CONTROL_TYPES

ORDERS_STREAM = "tplus.orders"
ORDERS_PATH = "/orders"
"""The account's order events; the account comes from the upgrade's auth headers."""


class Source:
    """Where a record came from (the ``source`` field)."""

    STREAM = "STREAM"
    REST_BASELINE = "REST_BASELINE"


VARIANTS: dict[str, str] = {
    name.upper(): name
    for name in (
        "Created",
        "Replaced",
        "Amended",
        "Removed",
        "Canceled",
        "Triggered",
        "CreateFailed",
        "ReplaceFailed",
        "AmendFailed",
        "CancelFailed",
        "Updated",
    )
}
"""Normalised wire name (underscores removed, upper-cased) → ``event_type`` symbol."""

FAILURES = frozenset({"CreateFailed", "ReplaceFailed", "AmendFailed", "CancelFailed"})
OPEN_ORDER = "OpenOrder"
BASELINE_END = "BaselineEnd"

_VARIANT_FIELDS = (
    "created",
    "replaced",
    "amended",
    "removed",
    "canceled",
    "triggered",
    "failure",
    "updated",
    "open_order",
)
_UNITS_RE = re.compile(r"^-?[0-9]{1,40}$")
_MAX_DECIMALS = 38
_INT32 = 2**31


class OrderDecimals:
    """The book decimals of recent orders and of their markets, so events without them
    can still be scaled.

    Decimals belong to a book, so what one order's ``Created`` states holds for
    every order of its asset: an order known only from the REST baseline, or
    whose ``Created`` went by before the connector started, is scaled with its
    market's decimals. Bounded: the least recently used orders are forgotten first.
    """

    def __init__(self, max_orders: int = 100_000, max_assets: int = 10_000) -> None:
        self._max = max_orders
        self._max_assets = max_assets
        self._known: OrderedDict[str, tuple[int | None, int | None]] = OrderedDict()
        self._assets: OrderedDict[str, tuple[int | None, int | None]] = OrderedDict()

    @staticmethod
    def _merge(
        table: OrderedDict[str, tuple[int | None, int | None]],
        key: str,
        price: int | None,
        quantity: int | None,
        limit: int,
    ) -> None:
        old_price, old_quantity = table.pop(key, (None, None))
        table[key] = (
            price if price is not None else old_price,
            quantity if quantity is not None else old_quantity,
        )
        while len(table) > limit:
            table.popitem(last=False)

    def remember(
        self, order_id: str, price: int | None, quantity: int | None, asset: str | None = None
    ) -> None:
        self._merge(self._known, order_id, price, quantity, self._max)
        if asset is not None:
            self._merge(self._assets, asset, price, quantity, self._max_assets)

    def remember_market(self, asset: str, price: int, quantity: int) -> None:
        """A market's book decimals, as the venue describes the market."""
        self._merge(self._assets, asset, price, quantity, self._max_assets)

    def knows_market(self, asset: str) -> bool:
        return None not in self._assets.get(asset, (None, None))

    def seed(self, order_id: str, asset: str) -> tuple[int | None, int | None]:
        """Give an order its market's decimals (a baseline entry states none); returns them."""
        decimals = self.get(order_id, asset)
        self._merge(self._known, order_id, *decimals, self._max)
        return decimals

    def get(self, order_id: str, asset: str | None = None) -> tuple[int | None, int | None]:
        """``(price decimals, quantity decimals)``: the order's, else its market's; None where
        unknown."""
        price, quantity = self._known.get(order_id, (None, None))
        if order_id in self._known:
            self._known.move_to_end(order_id)
        if asset is not None and (price is None or quantity is None):
            asset_price, asset_quantity = self._assets.get(asset, (None, None))
            price = asset_price if price is None else price
            quantity = asset_quantity if quantity is None else quantity
        return price, quantity

    def __len__(self) -> int:
        return len(self._known)


@dataclass(frozen=True, slots=True)
class ParsedOrderEvent:
    """A record plus the account the event itself names (``signer`` or ``user_id``)."""

    record: Record
    named_account: str | None


# -- small field readers ---------------------------------------------------------


def _opt_long(obj: dict[str, Any], field: str) -> int | None:
    value = obj.get(field)
    return None if value is None else long_value(value, field)


def _opt_string(obj: dict[str, Any], field: str) -> str | None:
    value = obj.get(field)
    return None if value is None else string(value, field)


def _opt_bool(obj: dict[str, Any], field: str, default: bool | None = None) -> bool | None:
    value = obj.get(field)
    return default if value is None else boolean(value, field)


def _opt_decimal(obj: dict[str, Any], field: str) -> str | None:
    value = obj.get(field)
    return None if value is None else decimal_text(value, field)


def _int32(value: Any, field: str) -> int:
    number = integer(value, field)
    if not -_INT32 <= number < _INT32:
        raise FrameError(Reason.BAD_FIELD, f"{field} does not fit in 32 bits")
    return number


def _units(value: Any, field: str) -> str:
    """A scaled integer's exact base-10 digits (wider than 64 bits is fine)."""
    if isinstance(value, bool | FloatText):
        raise FrameError(Reason.BAD_FIELD, f"{field} must be a scaled integer")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise FrameError(Reason.BAD_FIELD, f"{field} must be a scaled integer")
    if not _UNITS_RE.match(text):
        raise FrameError(Reason.BAD_FIELD, f"{field} must be a scaled integer")
    return str(int(text))


def _decimals(value: Any, field: str) -> int:
    number = integer(value, field)
    if not 0 <= number <= _MAX_DECIMALS:
        raise FrameError(Reason.BAD_FIELD, f"{field} must be between 0 and {_MAX_DECIMALS}")
    return number


def _opt_decimals(obj: dict[str, Any], field: str) -> int | None:
    value = obj.get(field)
    return None if value is None else _decimals(value, field)


def scaled_text(units: str, decimals: int) -> str:
    """``("386240", 2)`` → ``"3862.40"``: exact, with exactly ``decimals`` fraction digits."""
    negative = units.startswith("-")
    digits = units.lstrip("-")
    if decimals == 0:
        text = digits
    else:
        digits = digits.rjust(decimals + 1, "0")
        text = f"{digits[:-decimals]}.{digits[-decimals:]}"
    return f"-{text}" if negative and int(units) != 0 else text


def scaled(units: str, decimals: int | None) -> dict[str, Any]:
    """A ``ScaledValue``: the integer, its decimals and the decimal they make."""
    return {
        "units": units,
        "decimals": decimals,
        "value": None if decimals is None else scaled_text(units, decimals),
    }


def _scaled_field(obj: dict[str, Any], field: str, decimals: int | None) -> dict[str, Any]:
    return scaled(_units(require(obj, field), field), decimals)


def _opt_scaled(obj: dict[str, Any], field: str, decimals: int | None) -> dict[str, Any] | None:
    value = obj.get(field)
    return None if value is None else scaled(_units(value, field), decimals)


def _opt_raw(obj: dict[str, Any], field: str) -> str | None:
    value = obj.get(field)
    return None if value is None else json_text(value)


def _side(value: Any, field: str) -> str:
    text = string(value, field).strip().lower()
    if text in ("buy", "bid"):
        return "Buy"
    if text in ("sell", "ask"):
        return "Sell"
    raise FrameError(Reason.BAD_FIELD, f"{field} must be Buy or Sell")


def _signature_hex(value: Any, field: str) -> str:
    if not isinstance(value, list) or not value:
        raise FrameError(Reason.BAD_FIELD, f"{field} must be a list of byte values")
    out = bytearray()
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= 255:
            raise FrameError(Reason.BAD_FIELD, f"{field} must be a list of byte values")
        out.append(item)
    return out.hex()


def _one_key(value: Any, field: str, allowed: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    obj = expect_object(value, field)
    if len(obj) != 1:
        raise FrameError(Reason.WRONG_SHAPE, f"{field} must have exactly one of {allowed}")
    key, inner = next(iter(obj.items()))
    if key not in allowed:
        raise FrameError(Reason.BAD_FIELD, f"{field} must be one of {allowed}")
    return key, expect_object(inner, f"{field}.{key}")


def _order_id(value: Any, field: str) -> str:
    text = string(value, field)
    if not text:
        raise FrameError(Reason.BAD_FIELD, f"{field} is empty")
    return text


def _account_named(value: Any, field: str) -> str | None:
    """A ``user_id``/``signer`` in canonical form, or its trimmed text when it is not hex."""
    if value is None:
        return None
    text = string(value, field)
    return normalise_account(text) or text.strip().lower()


# -- the envelope ----------------------------------------------------------------


def variant_of(message: Any) -> tuple[str, dict[str, Any]]:
    """The ``event_type`` symbol and field object of an order-event frame.

    Raises FrameError(unknown_type) for a variant the SDK does not know, so
    the frame goes to the DLQ instead of being skipped.
    """
    obj = expect_object(message, "order event")
    tag = obj.get("type")
    if isinstance(tag, str) and not isinstance(tag, FloatText):
        wire = tag
        payload = {k: v for k, v in obj.items() if k != "type"}
    elif len(obj) == 1:
        wire, inner = next(iter(obj.items()))
        payload = expect_object(inner, f"{wire} event")
    else:
        raise FrameError(
            Reason.WRONG_SHAPE, "an order event has exactly one variant key or a string type"
        )
    variant = VARIANTS.get(wire.replace("_", "").upper())
    if variant is None:
        raise FrameError(Reason.UNKNOWN_TYPE, "order event variant is not one the venue defines")
    return variant, payload


def is_control(message: Any) -> bool:
    """True for the JSON keep-alive objects the SDK drops before parsing."""
    if not isinstance(message, dict):
        return False
    kind = message.get("type")  # any JSON value: a list or object is not hashable
    return isinstance(kind, str) and kind in CONTROL_TYPES


def _value(
    account: str, source: str, event_type: str, order_id: str, received_ns: int
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "account": account,
        "source": source,
        "event_type": event_type,
        "order_id": order_id,
        "asset_id": None,
        "user_id": None,
        "timestamp_ns": None,
        "operator_pubkey": None,
        "initial_receive_timestamp_ns": None,
        "baseline": None,
        "received_ns": received_ns,
    }
    for name in _VARIANT_FIELDS:
        value[name] = None
    return value


def _common(value: dict[str, Any], payload: dict[str, Any], *, asset_required: bool) -> None:
    asset = payload.get("asset_id") if not asset_required else require(payload, "asset_id")
    value["asset_id"] = None if asset is None else canonical_asset(asset)
    value["user_id"] = _account_named(require(payload, "user_id"), "user_id")
    value["operator_pubkey"] = _opt_string(payload, "operator_pubkey")
    value["initial_receive_timestamp_ns"] = _opt_long(payload, "initial_receive_timestamp_ns")


def _limit(details: dict[str, Any], price_dec: int, qty_dec: int) -> dict[str, Any]:
    tif, tif_fields = _one_key(
        require(details, "time_in_force"), "time_in_force", ("GTC", "GTD", "IOC")
    )
    return {
        "limit_price": _scaled_field(details, "limit_price", price_dec),
        "quantity": _scaled_field(details, "quantity", qty_dec),
        "time_in_force": tif,
        "post_only": (
            boolean(require(tif_fields, "post_only"), "post_only") if tif != "IOC" else None
        ),
        "good_till_timestamp_ns": (
            long_value(require(tif_fields, "timestamp_ns"), "timestamp_ns")
            if tif == "GTD"
            else None
        ),
        "fill_or_kill": (
            boolean(require(tif_fields, "fill_or_kill"), "fill_or_kill") if tif == "IOC" else None
        ),
    }


def _market(details: dict[str, Any], qty_dec: int) -> dict[str, Any]:
    kind, quantity = _one_key(require(details, "quantity"), "quantity", ("BaseAsset", "QuoteAsset"))
    if kind == "BaseAsset":
        # A base quantity is in book units; the sellable cap is a quote amount of unknown scale.
        amount = _opt_scaled(quantity, "max_sellable_amount", None)
        return {
            "quantity_kind": kind,
            "quantity": _scaled_field(quantity, "quantity", qty_dec),
            "max_sellable": amount,
            "fill_or_kill": boolean(require(details, "fill_or_kill"), "fill_or_kill"),
        }
    return {
        "quantity_kind": kind,
        "quantity": _scaled_field(quantity, "quantity", None),
        "max_sellable": _opt_scaled(quantity, "max_sellable_quantity", qty_dec),
        "fill_or_kill": boolean(require(details, "fill_or_kill"), "fill_or_kill"),
    }


def _created(value: dict[str, Any], payload: dict[str, Any], decimals: OrderDecimals) -> None:
    order = expect_object(require(payload, "user_order"), "user_order")
    signer = string(require(order, "signer"), "user_order.signer")
    canonical_signer = normalise_account(signer)
    if canonical_signer is None:
        raise FrameError(Reason.BAD_FIELD, "user_order.signer is not a hex public key")
    order_id = _order_id(require(order, "order_id"), "user_order.order_id")
    price_dec = _decimals(require(order, "book_price_decimals"), "book_price_decimals")
    qty_dec = _decimals(require(order, "book_quantity_decimals"), "book_quantity_decimals")
    kind, details = _one_key(require(order, "details"), "user_order.details", ("Limit", "Market"))
    target = order.get("target")
    target_obj = (
        {"account": 1, "is_spot": True} if target is None else expect_object(target, "target")
    )
    book_ts = long_value(require(payload, "book_timestamp_ns"), "book_timestamp_ns")
    value.update(
        order_id=order_id,
        asset_id=canonical_asset(require(order, "base_asset")),
        user_id=canonical_signer,
        timestamp_ns=book_ts,
    )
    value["created"] = {
        "signer": canonical_signer,
        "sub_account": _int32(target_obj.get("account", 1), "target.account"),
        "is_spot": boolean(target_obj.get("is_spot", True), "target.is_spot"),
        "side": _side(require(order, "side"), "user_order.side"),
        "order_type": kind,
        "book_price_decimals": price_dec,
        "book_quantity_decimals": qty_dec,
        "limit": _limit(details, price_dec, qty_dec) if kind == "Limit" else None,
        "market": _market(details, qty_dec) if kind == "Market" else None,
        "trigger_json": _opt_raw(order, "trigger"),
        "creation_timestamp_ns": long_value(
            require(order, "creation_timestamp_ns"), "creation_timestamp_ns"
        ),
        "book_timestamp_ns": book_ts,
        "reduce_only": _opt_bool(order, "reduce_only", False),
        "max_trading_fees_rate": long_value(
            order.get("max_trading_fees_rate", 50_000), "max_trading_fees_rate"
        ),
        "protocol_version": _int32(order.get("protocol_version", 1), "protocol_version"),
        "signature_hex": _signature_hex(require(payload, "signature"), "signature"),
        "limit_overrides_json": _opt_raw(payload, "limit_overrides"),
        "limit_overrides_signature_json": _opt_raw(payload, "limit_overrides_signature"),
        "amend_overrides_json": _opt_raw(payload, "amend_overrides"),
        "trigger_touched": _opt_bool(payload, "trigger_touched"),
        "is_liquidation": _opt_bool(payload, "is_liquidation", False),
        "is_auto_deleverage": _opt_bool(payload, "is_auto_deleverage", False),
    }
    decimals.remember(order_id, price_dec, qty_dec, value["asset_id"])


def _rest(
    variant: str, value: dict[str, Any], payload: dict[str, Any], decimals: OrderDecimals
) -> None:
    """Every variant but Created: an order id, the account and the variant's fields."""
    order_id = _order_id(require(payload, "order_id"), "order_id")
    value["order_id"] = order_id
    if variant in FAILURES:
        _common(value, payload, asset_required=False)
        value["timestamp_ns"] = _opt_long(payload, "timestamp_ns")
        value["failure"] = {"reason": _opt_string(payload, "reason")}
        return
    if variant == "Updated":
        value["user_id"] = _account_named(payload.get("user_id"), "user_id")
        ts = long_value(require(payload, "update_timestamp_ns"), "update_timestamp_ns")
        value["timestamp_ns"] = ts
        _, qty_dec = decimals.get(order_id)
        value["updated"] = {
            "status": string(require(payload, "status"), "status"),
            "filled_quantity": _scaled_field(payload, "filled_quantity", qty_dec),
            "remaining_quantity": _scaled_field(payload, "remaining_quantity", qty_dec),
        }
        return
    _common(value, payload, asset_required=True)
    if variant in ("Replaced", "Amended"):
        value["timestamp_ns"] = _opt_long(payload, "timestamp_ns")
    else:
        value["timestamp_ns"] = long_value(require(payload, "timestamp_ns"), "timestamp_ns")
    stated_qty = _opt_decimals(payload, "book_quantity_decimals")
    if stated_qty is not None:
        decimals.remember(order_id, None, stated_qty, value["asset_id"])
    price_dec, qty_dec = decimals.get(order_id, value["asset_id"])
    if variant == "Replaced":
        value["replaced"] = {
            "new_price": _scaled_field(payload, "new_price", price_dec),
            "new_quantity": _scaled_field(payload, "new_quantity", qty_dec),
            "authorization_revision": long_value(
                payload.get("authorization_revision", 0), "authorization_revision"
            ),
        }
    elif variant == "Amended":
        value["amended"] = {
            "new_quantity": _scaled_field(payload, "new_quantity", qty_dec),
            "remaining_quantity": _scaled_field(payload, "remaining_quantity", qty_dec),
            "authorization_revision": long_value(
                payload.get("authorization_revision", 0), "authorization_revision"
            ),
        }
    elif variant == "Removed":
        value["removed"] = {
            "reason": string(require(payload, "reason"), "reason"),
            "filled_quantity": _opt_scaled(payload, "filled_quantity", qty_dec),
            "confirmed_quantity": _opt_scaled(payload, "confirmed_quantity", qty_dec),
            "filled_amount": _opt_scaled(payload, "filled_amount", None),
            "confirmed_amount": _opt_scaled(payload, "confirmed_amount", None),
        }
    elif variant == "Canceled":
        value["canceled"] = {"reason": _opt_string(payload, "reason")}
    elif variant == "Triggered":
        value["triggered"] = {
            "quantity": _scaled_field(payload, "quantity", qty_dec),
            "trigger_touched": boolean(require(payload, "trigger_touched"), "trigger_touched"),
        }
    else:  # pragma: no cover - VARIANTS and this dispatch are kept in step
        raise AssertionError(variant)


def parse_order_event(
    message: Any, account: str, received_ns: int, decimals: OrderDecimals
) -> ParsedOrderEvent:
    """One ``/orders`` frame of ``account``'s connection as a ``tplus.orders`` record."""
    variant, payload = variant_of(message)
    value = _value(account, Source.STREAM, variant, "", received_ns)
    if variant == "Created":
        _created(value, payload, decimals)
    else:
        _rest(variant, value, payload, decimals)
    record = Record(ORDERS_STREAM, account, value, received_ns, value["timestamp_ns"])
    return ParsedOrderEvent(record, value["user_id"])


# -- the REST baseline -------------------------------------------------------------


def _open_order(
    entry: Any, account: str, received_ns: int, decimals: OrderDecimals
) -> dict[str, Any]:
    obj = expect_object(entry, "open order")
    value = _value(
        account,
        Source.REST_BASELINE,
        OPEN_ORDER,
        _order_id(require(obj, "order_id"), "order_id"),
        received_ns,
    )
    created_ns = long_value(require(obj, "timestamp_ns"), "timestamp_ns")
    updated_ns = _opt_long(obj, "last_update_timestamp_ns")
    value["asset_id"] = canonical_asset(require(obj, "base_asset"))
    value["user_id"] = account
    price_dec, qty_dec = decimals.seed(value["order_id"], value["asset_id"])
    value["timestamp_ns"] = updated_ns if updated_ns is not None else created_ns
    value["open_order"] = {
        "side": _side(require(obj, "side"), "side"),
        "status": string(require(obj, "status"), "status"),
        "limit_price": _opt_decimal(obj, "limit_price"),
        "quantity": _opt_decimal(obj, "quantity"),
        "amount": _opt_decimal(obj, "amount"),
        "max_sellable_amount": _opt_decimal(obj, "max_sellable_amount"),
        "max_sellable_quantity": _opt_decimal(obj, "max_sellable_quantity"),
        "confirmed_filled_quantity": _opt_decimal(obj, "confirmed_filled_quantity"),
        "pending_filled_quantity": _opt_decimal(obj, "pending_filled_quantity"),
        "confirmed_filled_amount": _opt_decimal(obj, "confirmed_filled_amount"),
        "pending_filled_amount": _opt_decimal(obj, "pending_filled_amount"),
        "good_until_timestamp_ns": _opt_long(obj, "good_until_timestamp_ns"),
        "created_timestamp_ns": created_ns,
        "last_update_timestamp_ns": updated_ns,
        "in_flight": _opt_bool(obj, "in_flight"),
        "canceled": _opt_bool(obj, "canceled"),
        "trigger_above_price": _opt_decimal(obj, "trigger_above_price"),
        "trigger_below_price": _opt_decimal(obj, "trigger_below_price"),
        "trigger_touched": _opt_bool(obj, "trigger_touched"),
        "confirmed_trading_fees_amount": _opt_decimal(obj, "confirmed_trading_fees_amount"),
        "pending_trading_fees_amount": _opt_decimal(obj, "pending_trading_fees_amount"),
        "book_price_decimals": price_dec,
        "book_quantity_decimals": qty_dec,
    }
    return value


@dataclass(frozen=True, slots=True)
class Baseline:
    """The records of one REST baseline, and the entries that could not become records."""

    records: list[Record]
    rejected: list[tuple[FrameError, str]]
    """Each rejected entry with its compact JSON text, for the DLQ."""


def open_order_entries(body: Any) -> list[Any]:
    """The orders of an open-orders answer in either shape the SDK reads: a bare JSON array
    or the page object ``{"orders": [...], ...}``."""
    if isinstance(body, dict) and "orders" in body:
        body = body["orders"]
    if not isinstance(body, list):
        raise FrameError(
            Reason.WRONG_SHAPE,
            'the open-orders answer must be a JSON array or an object with an "orders" array',
        )
    return body


def markets_to_learn(body: Any, decimals: OrderDecimals) -> list[str]:
    """The markets an open-orders answer names whose book decimals are not known yet, in
    first-seen order. Entries that cannot be read are passed over (``parse_open_orders``
    rejects them), and so is an answer of the wrong shape."""
    try:
        entries = open_order_entries(body)
    except FrameError:
        return []
    found: list[str] = []
    for entry in entries:
        try:
            asset = canonical_asset(require(expect_object(entry, "open order"), "base_asset"))
        except FrameError:
            continue
        if asset not in found and not decimals.knows_market(asset):
            found.append(asset)
    return found


def parse_market(body: Any) -> tuple[str, int, int]:
    """A market description (``GET /market/{asset}``): ``(asset, price decimals, quantity
    decimals)``, e.g. ``{"asset_id":"1","book_price_decimals":2,"book_quantity_decimals":4}``."""
    obj = expect_object(body, "market")
    return (
        canonical_asset(require(obj, "asset_id")),
        _decimals(require(obj, "book_price_decimals"), "book_price_decimals"),
        _decimals(require(obj, "book_quantity_decimals"), "book_quantity_decimals"),
    )


def parse_open_orders(
    body: Any, account: str, received_ns: int, decimals: OrderDecimals | None = None
) -> Baseline:
    """An open-orders answer as ``OpenOrder`` records and a ``BaselineEnd``.

    Every record of one baseline shares ``baseline.id`` (the answer's receive
    time). The closing ``BaselineEnd`` tells a consumer the set is over: an
    order it holds as open that is not in a ``complete`` baseline was closed
    while the connector was away. The answer states no decimals: each order
    gets its market's from ``decimals`` (learnt from the market's description
    or its earlier events) and is remembered with them, so its later events
    are scaled too.
    """
    entries = open_order_entries(body)
    known = OrderDecimals() if decimals is None else decimals
    values: list[dict[str, Any]] = []
    rejected: list[tuple[FrameError, str]] = []
    for entry in entries:
        try:
            values.append(_open_order(entry, account, received_ns, known))
        except FrameError as exc:
            rejected.append((exc, json_text(entry)))
    baseline = {"id": received_ns, "size": len(values), "complete": not rejected}
    end = _value(account, Source.REST_BASELINE, BASELINE_END, "", received_ns)
    end["user_id"] = account
    records = []
    for value in [*values, end]:
        value["baseline"] = dict(baseline)
        records.append(Record(ORDERS_STREAM, account, value, received_ns, None))
    return Baseline(records, rejected)
