"""A consumer's order book built from ``tplus.depth`` values, as the README describes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

Book = dict[str, dict[Decimal, Decimal]]


def empty_book() -> Book:
    return {"bids": {}, "asks": {}}


def apply_levels(book: Book, value: dict[str, Any]) -> None:
    """Set each level's absolute quantity; a zero quantity removes the level."""
    for side in ("bids", "asks"):
        for level in value[side]:
            price, qty = Decimal(level["price"]), Decimal(level["quantity"])
            if qty == 0:
                book[side].pop(price, None)
            else:
                book[side][price] = qty
