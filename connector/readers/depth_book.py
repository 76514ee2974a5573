"""One asset's order book as the depth topic's records build it; pure, no Kafka.

The consumers' guide's rules in code: a SNAPSHOT (or a checkpoint) replaces
the book, a DIFF sets absolute quantities (zero removes a level) and must
follow the book's sequence number by one step, a GAP invalidates the book
until the next SNAPSHOT. The connector's checkpoint writer and
:class:`connector.readers.BookReader` both use it, so a checkpoint holds
exactly the book a reader would have built from the same records.

Levels are kept as the records hold them (the venue's exact decimal text),
keyed by a canonical form of the price so that ``"3862.4"`` and
``"3862.40"`` are one level; sorting and ``Decimal`` conversion happen only
when a caller asks for the levels, never per record.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

Level = Mapping[str, str]
"""A price level as decoded from Avro: ``{"price": "3862.4", "quantity": "1.75"}``."""


class BookState(enum.Enum):
    EMPTY = "empty"
    """No SNAPSHOT or checkpoint seen yet: DIFFs have nothing to apply to."""
    LIVE = "live"
    INVALID = "invalid"
    """Continuity was lost (a GAP, or a DIFF that does not follow): wait for a SNAPSHOT."""


class Applied(enum.Enum):
    """What one depth record did to the book."""

    REPLACED = "replaced"
    """A SNAPSHOT replaced the whole book."""
    UPDATED = "updated"
    """A DIFF that follows the book's sequence number was applied."""
    DUPLICATE = "duplicate"
    """A DIFF at or below the book's sequence number (delivered again): skipped."""
    SKIPPED = "skipped"
    """A DIFF while the book is not live: nothing to apply it to."""
    INVALIDATED = "invalidated"
    """A GAP, or a DIFF beyond the next sequence number: the book is invalid now."""


def price_key(price: str) -> str:
    """The canonical text of a plain decimal price: no trailing fractional zeros."""
    if "." not in price:
        return price
    return price.rstrip("0").rstrip(".")


def is_zero(quantity: str) -> bool:
    """Whether a plain decimal quantity (``"0"``, ``"0.000"``) removes its level."""
    return not quantity.strip("0.")


class DepthBook:
    """One asset's book: apply depth records (decoded ``DepthEvent`` values) in order."""

    __slots__ = ("_asks", "_bids", "asset", "invalid_reason", "sequence", "state", "step")

    def __init__(self, asset: str, *, sequence_step: int = 1) -> None:
        self.asset = asset
        self.step = sequence_step
        self.state = BookState.EMPTY
        self.sequence: int | None = None
        """Sequence number of the last record applied (kept while the book is invalid)."""
        self.invalid_reason: str | None = None
        """While INVALID: the GAP's ``gap_reason``, or ``out_of_sequence``."""
        self._bids: dict[str, Level] = {}
        self._asks: dict[str, Level] = {}

    @property
    def valid(self) -> bool:
        return self.state is BookState.LIVE

    def apply(self, value: Mapping[str, Any]) -> Applied:
        """Apply one ``DepthEvent`` value of this asset."""
        kind = value["kind"]
        if kind == "DIFF":
            if self.state is not BookState.LIVE:
                return Applied.SKIPPED
            sequence: int = value["sequence_number"]
            last = self.sequence
            assert last is not None
            if sequence == last + self.step:
                # Every diff the connector publishes comes here: no call per level.
                _set_levels(self._bids, value["bids"])
                _set_levels(self._asks, value["asks"])
                self.sequence = sequence
                return Applied.UPDATED
            if sequence <= last:
                return Applied.DUPLICATE
            self.invalidate("out_of_sequence")
            return Applied.INVALIDATED
        if kind == "SNAPSHOT":
            self.load(value["bids"], value["asks"], value["sequence_number"])
            return Applied.REPLACED
        self.invalidate(value.get("gap_reason") or "gap")
        return Applied.INVALIDATED

    def load(self, bids: Sequence[Level], asks: Sequence[Level], sequence: int) -> None:
        """Replace the whole book (a SNAPSHOT's levels, or a checkpoint's)."""
        self._bids = {}
        self._asks = {}
        _set_levels(self._bids, bids)
        _set_levels(self._asks, asks)
        self.sequence = sequence
        self.state = BookState.LIVE
        self.invalid_reason = None

    def invalidate(self, reason: str) -> None:
        """Continuity is lost (``reason`` says how): nothing applies until the next SNAPSHOT."""
        self.state = BookState.INVALID
        self.invalid_reason = reason

    def bids(self) -> list[Level]:
        """Every bid level, best (highest price) first."""
        return sorted(self._bids.values(), key=_price, reverse=True)

    def asks(self) -> list[Level]:
        """Every ask level, best (lowest price) first."""
        return sorted(self._asks.values(), key=_price)

    def best_bid(self) -> Level | None:
        return max(self._bids.values(), key=_price, default=None)

    def best_ask(self) -> Level | None:
        return min(self._asks.values(), key=_price, default=None)

    def quantities(self) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        """(bids, asks) as price → quantity, both ``Decimal``: for comparing books."""
        return _decimals(self._bids), _decimals(self._asks)


def _set_levels(side: dict[str, Level], levels: Sequence[Level]) -> None:
    """Set each level's absolute quantity; zero removes it (``price_key`` and ``is_zero``,
    inlined with their common cases first: this runs for every diff the connector publishes)."""
    for level in levels:
        price = level["price"]
        if price[-1:] == "0" and "." in price:
            price = price.rstrip("0").rstrip(".")
        quantity = level["quantity"]
        if quantity[:1] not in "0" or quantity.strip("0."):  # "" is in "0": removed
            side[price] = level
        else:
            side.pop(price, None)


def _price(level: Level) -> Decimal:
    return Decimal(level["price"])


def _decimals(side: Mapping[str, Level]) -> dict[Decimal, Decimal]:
    return {Decimal(level["price"]): Decimal(level["quantity"]) for level in side.values()}
