"""The shape of every tastytrade object the connector maps, and the one mapper that reads them.

Each object is declared once as a table of its venue (kebab-case) fields and
their kinds; ``map_object`` walks a decoded object through that table. Only
the fields a record is keyed or identified by are required: the venue
documents no other field as guaranteed, so a missing one is ``null`` rather
than a lost event. Keys the table does not know are not errors either: they
travel in the record's ``extra`` map as exact JSON text, so fields the venue
adds later reach consumers before the schema names them.

Money keeps the venue's convention: amounts are unsigned decimal text and the
sibling ``<field>-effect`` (``Credit``, ``Debit`` or ``None``) carries the
sign, both kept as fields. Timestamps become Unix epoch nanoseconds in fields
whose Avro name ends in ``_ns``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector.venues.errors import FrameError, Reason
from connector.venues.json_numbers import boolean, decimal_text, json_text, long_value, string
from connector.venues.tastytrade.fields import (
    avro_name,
    date_text,
    id_text,
    scalar_text,
    timestamp_ns,
)


class Kind(enum.Enum):
    """How a venue value becomes an Avro value."""

    TEXT = "text"
    """A JSON string (enumerations stay open strings)."""
    SCALAR = "scalar"
    """A string kept as is, or a number kept as its exact text."""
    DECIMAL = "decimal"
    """Decimal text or a JSON number → exact decimal text."""
    LONG = "long"
    """An integer (numeric strings accepted)."""
    BOOL = "bool"
    TIME = "time"
    """ISO-8601 text or epoch milliseconds → Unix epoch nanoseconds (``<name>_ns``)."""
    DATE = "date"
    """``YYYY-MM-DD`` text."""
    ID = "id"
    """An integer or string id → text."""
    RECORD = "record"
    """A nested object → a nested record (nullable)."""
    RECORDS = "records"
    """A list of objects → an array of nested records (absent → empty)."""
    JSONS = "jsons"
    """A list of values of undocumented shape → an array of JSON texts."""
    TEXT_MAPS = "text_maps"
    """A list of flat objects → an array of string maps."""


LIST_KINDS = frozenset({Kind.RECORDS, Kind.JSONS, Kind.TEXT_MAPS})


Converter = Callable[[Any, str], Any]
"""Turns one present venue value into its Avro value; the label names it in errors."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    wire: str
    kind: Kind
    required: bool = False
    spec: ObjectSpec | None = None

    @property
    def avro(self) -> str:
        name = avro_name(self.wire)
        return f"{name}_ns" if self.kind is Kind.TIME else name


@dataclass(frozen=True, slots=True)
class _FieldPlan:
    """A FieldSpec resolved once for ``map_object``: names, converter, absent value."""

    wire: str
    avro: str
    required: bool
    convert: Converter
    is_list: bool


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    """One venue object: its Avro record name and its fields in schema order."""

    name: str
    fields: tuple[FieldSpec, ...]
    wire_names: frozenset[str] = field(init=False)
    plan: tuple[_FieldPlan, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "wire_names", frozenset(f.wire for f in self.fields))
        object.__setattr__(
            self,
            "plan",
            tuple(
                _FieldPlan(f.wire, f.avro, f.required, _converter(f), f.kind in LIST_KINDS)
                for f in self.fields
            ),
        )


def _expect_list(value: Any, label: str) -> list[Any]:
    if not isinstance(value, list):
        raise FrameError(Reason.WRONG_SHAPE, f"{label} must be a JSON array")
    return value


def _expect_dict(value: Any, label: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FrameError(Reason.WRONG_SHAPE, f"{label} must be a JSON object")
    return value


def _scalar(value: Any, label: str) -> str:
    if isinstance(value, dict | list):
        raise FrameError(Reason.BAD_FIELD, f"{label} must be a string or a number")
    return scalar_text(value)


def _jsons(value: Any, label: str) -> list[str]:
    return [json_text(item) for item in _expect_list(value, label)]


def _text_maps(value: Any, label: str) -> list[dict[str, str]]:
    return [
        {str(k): scalar_text(v) for k, v in _expect_dict(item, f"{label}[{i}]").items()}
        for i, item in enumerate(_expect_list(value, label))
    ]


_SIMPLE_CONVERTERS: dict[Kind, Converter] = {
    Kind.TEXT: string,
    Kind.SCALAR: _scalar,
    Kind.DECIMAL: decimal_text,
    Kind.LONG: long_value,
    Kind.BOOL: boolean,
    Kind.TIME: timestamp_ns,
    Kind.DATE: date_text,
    Kind.ID: id_text,
    Kind.JSONS: _jsons,
    Kind.TEXT_MAPS: _text_maps,
}


def _converter(spec: FieldSpec) -> Converter:
    """The function that converts a present value of ``spec``, chosen once per field."""
    simple = _SIMPLE_CONVERTERS.get(spec.kind)
    if simple is not None:
        return simple
    nested = spec.spec
    if nested is None:
        raise ValueError(f"{spec.wire}: a {spec.kind.value} field needs a nested ObjectSpec")
    if spec.kind is Kind.RECORD:

        def record(value: Any, label: str) -> dict[str, Any]:
            return map_object(_expect_dict(value, label), nested, f"{label}.")

        return record

    def records(value: Any, label: str) -> list[dict[str, Any]]:
        return [
            map_object(_expect_dict(item, f"{label}[{i}]"), nested, f"{label}[{i}].")
            for i, item in enumerate(_expect_list(value, label))
        ]

    return records


_ABSENT = object()


def _f(wire: str, kind: Kind, *, required: bool = False) -> FieldSpec:
    return FieldSpec(wire, kind, required)


def _nested(wire: str, kind: Kind, spec: ObjectSpec) -> FieldSpec:
    return FieldSpec(wire, kind, False, spec)


def _many(kind: Kind, *wires: str) -> tuple[FieldSpec, ...]:
    return tuple(FieldSpec(w, kind) for w in wires)


def _signed(*wires: str) -> tuple[FieldSpec, ...]:
    """Unsigned amounts each followed by the ``-effect`` field that signs it."""
    out: list[FieldSpec] = []
    for wire in wires:
        out += [FieldSpec(wire, Kind.DECIMAL), FieldSpec(f"{wire}-effect", Kind.TEXT)]
    return tuple(out)


# --- Order (also nested in ComplexOrder) ---------------------------------------

FILL = ObjectSpec(
    "OrderFill",
    (
        _f("fill-id", Kind.ID),
        _f("quantity", Kind.DECIMAL),
        _f("fill-price", Kind.DECIMAL),
        _f("filled-at", Kind.TIME),
        _f("destination-venue", Kind.TEXT),
        _f("ext-group-fill-id", Kind.ID),
        _f("ext-exec-id", Kind.ID),
    ),
)

LEG = ObjectSpec(
    "OrderLeg",
    (
        _f("instrument-type", Kind.TEXT),
        _f("symbol", Kind.TEXT),
        _f("action", Kind.TEXT),
        _f("quantity", Kind.DECIMAL),
        _f("remaining-quantity", Kind.DECIMAL),
        _nested("fills", Kind.RECORDS, FILL),
    ),
)

PRICE_COMPONENT = ObjectSpec(
    "OrderPriceComponent",
    (
        _f("symbol", Kind.TEXT),
        _f("instrument-type", Kind.TEXT),
        _f("quantity", Kind.DECIMAL),
        _f("quantity-direction", Kind.TEXT),
    ),
)

ORDER_CONDITION = ObjectSpec(
    "OrderCondition",
    (
        _f("id", Kind.ID),
        _f("action", Kind.TEXT),
        _f("symbol", Kind.TEXT),
        _f("instrument-type", Kind.TEXT),
        _f("indicator", Kind.TEXT),
        _f("comparator", Kind.TEXT),
        _f("threshold", Kind.DECIMAL),
        _f("is-threshold-based-on-notional", Kind.BOOL),
        _f("triggered-at", Kind.TIME),
        _f("triggered-value", Kind.DECIMAL),
        _nested("price-components", Kind.RECORDS, PRICE_COMPONENT),
    ),
)

ORDER_RULE = ObjectSpec(
    "OrderRule",
    (
        _f("route-after", Kind.TIME),
        _f("routed-at", Kind.TIME),
        _f("cancel-at", Kind.TIME),
        _f("cancelled-at", Kind.TIME),
        _nested("order-conditions", Kind.RECORDS, ORDER_CONDITION),
    ),
)

ORDER_FIELDS: tuple[FieldSpec, ...] = (
    _f("id", Kind.LONG, required=True),
    _f("account-number", Kind.TEXT, required=True),
    _f("status", Kind.TEXT),
    _f("time-in-force", Kind.TEXT),
    _f("order-type", Kind.TEXT),
    _f("size", Kind.DECIMAL),
    _f("underlying-symbol", Kind.TEXT),
    _f("underlying-instrument-type", Kind.TEXT),
    *_signed("price", "value"),
    _f("stop-trigger", Kind.DECIMAL),
    _f("gtc-date", Kind.DATE),
    _f("contingent-status", Kind.TEXT),
    _f("confirmation-status", Kind.TEXT),
    _f("reject-reason", Kind.TEXT),
    *_many(Kind.BOOL, "cancellable", "editable", "edited"),
    *_many(Kind.TIME, "received-at", "in-flight-at", "live-at", "cancelled-at", "terminal-at"),
    _f("updated-at", Kind.TIME),
    _f("cancel-user-id", Kind.ID),
    _f("cancel-username", Kind.TEXT),
    *_many(Kind.LONG, "replacing-order-id", "replaces-order-id"),
    _f("user-id", Kind.ID),
    _f("username", Kind.TEXT),
    _f("complex-order-id", Kind.ID),
    _f("complex-order-tag", Kind.TEXT),
    _f("preflight-id", Kind.ID),
    _f("source", Kind.TEXT),
    _f("external-identifier", Kind.TEXT),
    _f("global-request-id", Kind.TEXT),
    *_many(Kind.ID, "ext-exchange-order-number", "ext-client-order-id"),
    _f("ext-global-order-number", Kind.LONG),
    _f("destination-venue", Kind.TEXT),
    _f("leg-count", Kind.LONG),
    _nested("order-rule", Kind.RECORD, ORDER_RULE),
    _nested("legs", Kind.RECORDS, LEG),
)

ORDER = ObjectSpec("Order", ORDER_FIELDS)
PLACED_ORDER = ObjectSpec("PlacedOrder", ORDER_FIELDS)
"""An order nested in a complex order: the same fields under its own record name."""

COMPLEX_ORDER = ObjectSpec(
    "ComplexOrder",
    (
        _f("id", Kind.LONG, required=True),
        _f("account-number", Kind.TEXT, required=True),
        _f("type", Kind.TEXT),
        _f("terminal-at", Kind.TIME),
        _f("ratio-price-threshold", Kind.DECIMAL),
        _f("ratio-price-comparator", Kind.TEXT),
        _f("ratio-price-is-threshold-based-on-notional", Kind.BOOL),
        _nested("trigger-order", Kind.RECORD, PLACED_ORDER),
        _nested("orders", Kind.RECORDS, PLACED_ORDER),
        _f("related-orders", Kind.TEXT_MAPS),
    ),
)

# --- Account state ---------------------------------------------------------------

ACCOUNT_BALANCE = ObjectSpec(
    "AccountBalance",
    (
        _f("account-number", Kind.TEXT, required=True),
        _f("currency", Kind.TEXT),
        _f("cash-balance", Kind.DECIMAL),
        *_signed("pending-cash"),
        *_many(
            Kind.DECIMAL,
            "cash-available-to-withdraw",
            "closed-loop-available-balance",
            "long-equity-value",
            "short-equity-value",
            "long-derivative-value",
            "short-derivative-value",
            "long-futures-value",
            "short-futures-value",
            "long-futures-derivative-value",
            "short-futures-derivative-value",
            "long-margineable-value",
            "short-margineable-value",
            "margin-equity",
            "net-liquidating-value",
            "equity-buying-power",
            "derivative-buying-power",
            "day-trading-buying-power",
            "available-trading-funds",
            "used-derivative-buying-power",
            "day-trade-excess",
            "futures-margin-requirement",
            "maintenance-requirement",
            "maintenance-call-value",
            "reg-t-call-value",
            "day-trading-call-value",
            "day-equity-call-value",
            "reg-t-margin-requirement",
            "futures-overnight-margin-requirement",
            "futures-intraday-margin-requirement",
            "maintenance-excess",
            "pending-margin-interest",
            "long-cryptocurrency-value",
            "short-cryptocurrency-value",
            "cryptocurrency-margin-requirement",
        ),
        _f("unsettled-cryptocurrency-fiat-amount", Kind.DECIMAL),
        _f("unsettled-cryptocurrency-fiat-effect", Kind.TEXT),
        *_many(
            Kind.DECIMAL,
            "effective-cryptocurrency-buying-power",
            "equity-offering-margin-requirement",
            "long-bond-value",
            "bond-margin-requirement",
            "apex-starting-day-margin-equity",
        ),
        *_signed("buying-power-adjustment"),
        *_many(
            Kind.DECIMAL,
            "cash-settle-balance",
            "margin-settle-balance",
            "total-settle-balance",
            "fixed-income-security-margin-requirement",
            "long-fixed-income-security-value",
            "sma-equity-option-buying-power",
            "special-memorandum-account-value",
            "special-memorandum-account-apex-adjustment",
            "total-pending-liquidity-pool-rebate",
        ),
        _f("time-of-day", Kind.TEXT),
        _f("snapshot-date", Kind.DATE),
        _f("updated-at", Kind.TIME),
    ),
)

CURRENT_POSITION = ObjectSpec(
    "CurrentPosition",
    (
        _f("account-number", Kind.TEXT, required=True),
        _f("symbol", Kind.TEXT, required=True),
        _f("instrument-type", Kind.TEXT),
        _f("underlying-symbol", Kind.TEXT),
        _f("quantity", Kind.DECIMAL),
        _f("quantity-direction", Kind.TEXT),
        _f("restricted-quantity", Kind.DECIMAL),
        _f("multiplier", Kind.DECIMAL),
        _f("average-open-price", Kind.DECIMAL),
        _f("cost-effect", Kind.TEXT),
        *_many(
            Kind.DECIMAL,
            "close-price",
            "mark",
            "mark-price",
            "fixing-price",
            "average-yearly-market-close-price",
            "average-daily-market-close-price",
        ),
        *_signed("realized-day-gain"),
        _f("realized-day-gain-date", Kind.DATE),
        *_signed("realized-today"),
        _f("realized-today-date", Kind.DATE),
        *_many(Kind.BOOL, "is-suppressed", "is-frozen"),
        _f("deliverable-type", Kind.TEXT),
        *_many(Kind.TIME, "expires-at", "created-at", "updated-at"),
    ),
)

TRADING_STATUS = ObjectSpec(
    "TradingStatus",
    (
        _f("account-number", Kind.TEXT, required=True),
        _f("id", Kind.LONG),
        *_many(
            Kind.TEXT,
            "equities-margin-calculation-type",
            "fee-schedule-name",
            "options-level",
            "autotrade-account-type",
            "clearing-account-number",
            "clearing-aggregation-identifier",
        ),
        *_many(
            Kind.DECIMAL,
            "futures-margin-rate-multiplier",
            "small-notional-futures-margin-rate-multiplier",
        ),
        *_many(
            Kind.BOOL,
            "has-intraday-equities-margin",
            "is-aggregated-at-clearing",
            "is-closed",
            "is-closing-only",
            "is-cryptocurrency-enabled",
            "is-cryptocurrency-closing-only",
            "is-frozen",
            "is-full-equity-margin-required",
            "is-futures-closing-only",
            "is-futures-intra-day-enabled",
            "is-futures-enabled",
            "is-in-day-trade-equity-maintenance-call",
            "is-in-margin-call",
            "is-pattern-day-trader",
            "is-portfolio-margin-enabled",
            "is-risk-reducing-only",
            "is-small-notional-futures-intra-day-enabled",
            "is-roll-the-day-forward-enabled",
            "are-far-otm-net-options-restricted",
            "short-calls-enabled",
            "is-equity-offering-enabled",
            "is-equity-offering-closing-only",
        ),
        _f("day-trade-count", Kind.LONG),
        _f("pdt-reset-on", Kind.DATE),
        _f("cmta-override", Kind.LONG),
        _f("enhanced-fraud-safeguards-enabled-at", Kind.TIME),
        _f("updated-at", Kind.TIME),
    ),
)

EXTERNAL_TRANSACTION = ObjectSpec(
    "ExternalTransaction",
    (
        _f("id", Kind.LONG, required=True),
        _f("account-number", Kind.TEXT, required=True),
        _f("amount", Kind.DECIMAL),
        _f("direction", Kind.TEXT),
        _f("state", Kind.TEXT),
        _f("transfer-method", Kind.TEXT),
        _f("disbursement-type", Kind.TEXT),
        _f("bank-account-type", Kind.TEXT),
        _f("ext-transfer-id", Kind.ID),
        *_many(Kind.BOOL, "is-cancelable", "is-clearing-accepted"),
        *_many(Kind.DATE, "banking-date", "funds-available-date"),
        *_many(Kind.TIME, "created-at", "updated-at"),
    ),
)

UNDERLYING_YEAR_GAIN_SUMMARY = ObjectSpec(
    "UnderlyingYearGainSummary",
    (
        _f("account-number", Kind.TEXT, required=True),
        _f("year", Kind.LONG, required=True),
        _f("symbol", Kind.TEXT, required=True),
        _f("instrument-type", Kind.TEXT),
        *_signed("fees", "commissions", "yearly-realized-gain", "realized-lot-gain"),
    ),
)

# --- Order chains ----------------------------------------------------------------

OPEN_ENTRY = ObjectSpec(
    "OrderChainOpenEntry",
    (
        _f("symbol", Kind.TEXT),
        _f("instrument-type", Kind.TEXT),
        _f("quantity", Kind.DECIMAL),
        _f("quantity-type", Kind.TEXT),
        _f("quantity-numeric", Kind.DECIMAL),
    ),
)

COMPUTED_DATA = ObjectSpec(
    "OrderChainComputedData",
    (
        _f("open", Kind.BOOL),
        *_many(Kind.TIME, "opened-at", "last-occurred-at", "updated-at"),
        *_many(Kind.LONG, "started-at-days-to-expiration", "duration", "roll-count"),
        _f("fees-missing", Kind.BOOL),
        *_signed(
            "total-fees",
            "total-commissions",
            "realized-gain",
            "realized-gain-with-fees",
            "total-opening-cost",
            "total-closing-cost",
            "total-cost",
            "total-cost-per-unit",
        ),
        *_many(
            Kind.BOOL, "winner-realized-and-closed", "winner-realized", "winner-realized-with-fees"
        ),
        _f("gcd-open-quantity", Kind.DECIMAL),
        _nested("open-entries", Kind.RECORDS, OPEN_ENTRY),
    ),
)

LITE_NODE_LEG = ObjectSpec(
    "OrderChainNodeLeg",
    (
        _f("symbol", Kind.TEXT),
        _f("instrument-type", Kind.TEXT),
        _f("action", Kind.TEXT),
        _f("fill-quantity", Kind.DECIMAL),
        _f("order-quantity", Kind.DECIMAL),
    ),
)

LITE_NODE = ObjectSpec(
    "OrderChainNode",
    (
        _f("node-type", Kind.TEXT),
        _f("id", Kind.ID),
        _f("description", Kind.TEXT),
        _f("occurred-at", Kind.TIME),
        *_signed("total-fees", "total-fill-cost"),
        _f("gcd-quantity", Kind.DECIMAL),
        *_signed("fill-cost-per-quantity"),
        _f("order-fill-count", Kind.LONG),
        _f("roll", Kind.BOOL),
        _nested("legs", Kind.RECORDS, LITE_NODE_LEG),
        _f("entries", Kind.JSONS),
    ),
)

ORDER_CHAIN = ObjectSpec(
    "OrderChain",
    (
        _f("id", Kind.ID, required=True),
        _f("account-number", Kind.TEXT, required=True),
        _f("description", Kind.TEXT),
        _f("underlying-symbol", Kind.TEXT),
        _nested("computed-data", Kind.RECORD, COMPUTED_DATA),
        _f("lite-nodes-sizes", Kind.LONG),
        _nested("lite-nodes", Kind.RECORDS, LITE_NODE),
        *_many(Kind.TIME, "created-at", "updated-at"),
    ),
)

# --- User-level and public -------------------------------------------------------

QUOTE_ALERT = ObjectSpec(
    "QuoteAlert",
    (
        _f("user-external-id", Kind.TEXT, required=True),
        _f("alert-external-id", Kind.TEXT, required=True),
        _f("symbol", Kind.TEXT),
        _f("dx-symbol", Kind.TEXT),
        _f("field", Kind.TEXT),
        _f("operator", Kind.TEXT),
        _f("threshold", Kind.SCALAR),
        _f("threshold-numeric", Kind.DECIMAL),
        *_many(Kind.TIME, "created-at", "triggered-at", "completed-at", "expires-at"),
    ),
)

WATCHLIST_ENTRY = ObjectSpec(
    "WatchlistEntry",
    (_f("symbol", Kind.TEXT), _f("instrument-type", Kind.TEXT)),
)

PUBLIC_WATCHLIST = ObjectSpec(
    "PublicWatchlist",
    (
        _f("name", Kind.TEXT, required=True),
        _f("group-name", Kind.TEXT),
        _f("order-index", Kind.LONG),
        _f("cms-id", Kind.ID),
        _nested("watchlist-entries", Kind.RECORDS, WATCHLIST_ENTRY),
    ),
)


# --- The mapper ------------------------------------------------------------------


def map_object(obj: dict[str, Any], spec: ObjectSpec, where: str = "") -> dict[str, Any]:
    """The Avro value of one venue object: its declared fields, then ``extra``.

    ``where`` prefixes field names in error details (``legs[0].fills[1].``).
    A JSON ``null`` counts as absent.
    """
    out: dict[str, Any] = {}
    declared = 0
    for f in spec.plan:
        raw = obj.get(f.wire, _ABSENT)
        if raw is not _ABSENT:
            declared += 1
            if raw is not None:
                # The label is only spelled out with its prefix for nested objects.
                out[f.avro] = f.convert(raw, f"{where}{f.wire}" if where else f.wire)
                continue
        if f.required:
            raise FrameError(Reason.MISSING_FIELD, f"{where}{f.wire} is missing")
        out[f.avro] = [] if f.is_list else None
    if declared == len(obj):
        # Every key is a declared field: nothing for ``extra``.
        out["extra"] = {}
    else:
        names = spec.wire_names
        out["extra"] = {str(k): json_text(v) for k, v in obj.items() if k not in names}
    return out
