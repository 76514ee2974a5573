"""A seeded random-walk market for the T+ market-data simulator.

Pure: no clock, no sockets, no global randomness. Every draw comes from the
``random.Random(seed)`` the model owns and every timestamp is passed in, so
the same seed and the same calls give the same frames. Prices and
quantities are ``Decimal`` from generation to rendering: depth levels go on
the wire as JSON numbers written from the Decimal text (``[3862.4,1.75]``),
so a client that decodes numbers losslessly sees exactly the model's values.

Depth semantics follow the protocol examples: a diff level carries the new
ABSOLUTE quantity of that price and quantity ``0`` deletes the level;
``sequence_number`` grows by exactly 1 per diff and is shared with the
snapshot, whose ``sequence_number`` is the last diff already applied.
"""

from __future__ import annotations

import base64
import json
import random
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypedDict

Level = tuple[Decimal, Decimal]
"""One ``(price, quantity)`` book level."""

TICK = Decimal("0.1")
"""Price increment of every simulated book."""
QUANTITY_UNIT = Decimal("0.0001")
"""Smallest quantity step (4 decimals, as the venue's book quantity decimals)."""
DELETE = Decimal("0.0")
"""The quantity that removes a level, rendered ``0.0`` as in the examples."""
KLINE_BUCKET_NS = 60 * 1_000_000_000
"""Width of one kline bar."""

_KNOWN_BEST_BIDS = {"1": Decimal("3862.4"), "2": Decimal("67012.5")}
_KLINE_PRICE = Decimal("0.01")
_TRADE_DECIMALS = Decimal("0.00000001")
_MAX_QUANTITY_UNITS = 50_000


@dataclass(frozen=True, slots=True)
class DepthDiff:
    """One ``/marketdepth/diff/{asset}`` message: changed levels with absolute quantities."""

    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    sequence_number: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One ``GET /marketdepth/{asset}`` answer: bids best first (desc), asks best first (asc)."""

    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    sequence_number: int


class TradeEvent(TypedDict):
    """One ``/trades`` message, decimals as strings as the protocol recommends."""

    asset_id: str
    trade_id: int
    order_id: str
    price: str
    quantity: str
    timestamp_ns: int
    buyer_is_maker: bool
    status: Literal["Confirmed"]


class Timebar(TypedDict):
    """One element of a ``/klines/diff/{asset}`` message (the message is a list of these)."""

    open: str
    close: str
    low: str
    high: str
    volume: str
    open_timestamp_ns: int
    close_timestamp_ns: int


class Book:
    """A price-level book that applies absolute-quantity diffs.

    The same type holds the model's own books and books that clients rebuild
    from the wire, so "rebuilt == model" is a plain equality. Equality
    compares levels numerically (``Decimal("1.5") == Decimal("1.50")``) and
    the sequence number.
    """

    __slots__ = ("asks", "bids", "sequence_number")

    def __init__(
        self,
        bids: Mapping[Decimal, Decimal] | None = None,
        asks: Mapping[Decimal, Decimal] | None = None,
        sequence_number: int = 0,
    ) -> None:
        self.bids: dict[Decimal, Decimal] = dict(bids or {})
        self.asks: dict[Decimal, Decimal] = dict(asks or {})
        self.sequence_number = sequence_number

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> Book:
        return cls(dict(snapshot.bids), dict(snapshot.asks), snapshot.sequence_number)

    def apply(self, diff: DepthDiff) -> None:
        """Apply one diff as-is; sequencing (gaps, stale diffs) is the caller's job."""
        for side, levels in ((self.bids, diff.bids), (self.asks, diff.asks)):
            for price, quantity in levels:
                if quantity == 0:
                    side.pop(price, None)
                else:
                    side[price] = quantity
        self.sequence_number = diff.sequence_number

    def best_bid(self) -> Decimal | None:
        return max(self.bids, default=None)

    def best_ask(self) -> Decimal | None:
        return min(self.asks, default=None)

    def snapshot(self) -> Snapshot:
        return Snapshot(
            bids=tuple(sorted(self.bids.items(), reverse=True)),
            asks=tuple(sorted(self.asks.items())),
            sequence_number=self.sequence_number,
        )

    def copy(self) -> Book:
        return Book(self.bids, self.asks, self.sequence_number)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Book):
            return NotImplemented
        return (
            self.sequence_number == other.sequence_number
            and self.bids == other.bids
            and self.asks == other.asks
        )

    def __repr__(self) -> str:
        return (
            f"Book(seq={self.sequence_number}, bids={len(self.bids)} levels, "
            f"asks={len(self.asks)} levels, best={self.best_bid()}/{self.best_ask()})"
        )


def _decimal(value: object) -> Decimal:
    """A level value decoded from JSON: Decimal, int or numeric string; never float."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        return Decimal(value)
    raise TypeError(f"level value must be a decimal, got {type(value).__name__}")


def _levels(raw: Iterable[Sequence[object]]) -> tuple[Level, ...]:
    levels: list[Level] = []
    for level in raw:
        if len(level) != 2:
            raise ValueError(f"a level is [price, quantity], got {len(level)} values")
        levels.append((_decimal(level[0]), _decimal(level[1])))
    return tuple(levels)


def book_from_levels(
    bids: Iterable[Sequence[object]],
    asks: Iterable[Sequence[object]],
    sequence_number: int,
) -> Book:
    """A book from decoded ``[price, quantity]`` pairs; zero-quantity levels are left out."""
    return Book(
        {price: quantity for price, quantity in _levels(bids) if quantity != 0},
        {price: quantity for price, quantity in _levels(asks) if quantity != 0},
        sequence_number,
    )


def _decode_depth_object(text: str | bytes) -> tuple[tuple[Level, ...], tuple[Level, ...], int]:
    message: Any = json.loads(text, parse_float=Decimal)
    if not isinstance(message, dict):
        raise ValueError("depth message must be a JSON object")
    sequence = message.get("sequence_number", 0)
    if not isinstance(sequence, int) or isinstance(sequence, bool):
        raise ValueError("sequence_number must be an integer")
    return _levels(message.get("bids", [])), _levels(message.get("asks", [])), sequence


def parse_depth(text: str | bytes) -> DepthDiff:
    """Decode a depth diff frame losslessly (numbers become Decimal, never float)."""
    bids, asks, sequence = _decode_depth_object(text)
    return DepthDiff(bids, asks, sequence)


def parse_snapshot(text: str | bytes) -> Snapshot:
    """Decode a snapshot body losslessly (numbers become Decimal, never float)."""
    bids, asks, sequence = _decode_depth_object(text)
    return Snapshot(bids, asks, sequence)


def _number_text(value: Decimal) -> str:
    """JSON number text for a Decimal, always with a fraction (``3863.0``) like the venue."""
    if not value.is_finite():
        raise ValueError(f"cannot render {value} as a JSON number")
    text = format(value, "f")
    return text if "." in text else f"{text}.0"


def _render_levels(levels: Iterable[Level]) -> str:
    return ",".join(f"[{_number_text(p)},{_number_text(q)}]" for p, q in levels)


def _render_book_message(bids: Iterable[Level], asks: Iterable[Level], sequence: int) -> str:
    return (
        f'{{"bids":[{_render_levels(bids)}],"asks":[{_render_levels(asks)}],'
        f'"sequence_number":{sequence}}}'
    )


def render_depth(diff: DepthDiff) -> str:
    """The diff frame exactly as the venue writes it (no float round trip)."""
    return _render_book_message(diff.bids, diff.asks, diff.sequence_number)


def render_snapshot(snapshot: Snapshot) -> str:
    """The snapshot body exactly as the venue writes it (no float round trip)."""
    return _render_book_message(snapshot.bids, snapshot.asks, snapshot.sequence_number)


def render_trade(trade: TradeEvent) -> str:
    return json.dumps(trade, separators=(",", ":"))


def render_klines(bars: Sequence[Timebar]) -> str:
    return json.dumps(list(bars), separators=(",", ":"))


def _fixed(value: Decimal, exponent: Decimal) -> str:
    return format(value.quantize(exponent), "f")


@dataclass(slots=True)
class _Bar:
    open: Decimal
    close: Decimal
    low: Decimal
    high: Decimal
    volume: Decimal
    open_ns: int

    def render(self, width_ns: int) -> Timebar:
        return {
            "open": _fixed(self.open, _KLINE_PRICE),
            "close": _fixed(self.close, _KLINE_PRICE),
            "low": _fixed(self.low, _KLINE_PRICE),
            "high": _fixed(self.high, _KLINE_PRICE),
            "volume": format(self.volume, "f"),
            "open_timestamp_ns": self.open_ns,
            "close_timestamp_ns": self.open_ns + width_ns - 1,
        }


class MarketModel:
    """Order books, trades and klines for a set of assets, driven by one seeded RNG.

    The model also keeps what it generated (``diffs`` per asset, ``trades``
    by id, ``klines`` per asset), bounded by ``max_history`` so a long-running
    simulator does not grow without limit.
    """

    def __init__(
        self,
        assets: Sequence[str],
        seed: int,
        levels: int = 10,
        *,
        kline_bucket_ns: int = KLINE_BUCKET_NS,
        max_history: int = 100_000,
    ) -> None:
        if not assets:
            raise ValueError("at least one asset is required")
        if len(set(assets)) != len(assets):
            raise ValueError("assets must be unique")
        if levels < 1:
            raise ValueError("levels must be at least 1")
        self.assets: tuple[str, ...] = tuple(assets)
        self.levels = levels
        self.kline_bucket_ns = kline_bucket_ns
        self._max_history = max_history
        self._rng = random.Random(seed)
        self._books = {asset: self._initial_book(asset) for asset in self.assets}
        self._next_trade_id = self._rng.randint(100_000, 999_999)
        self._bars: dict[str, _Bar] = {}
        self.diffs: dict[str, deque[DepthDiff]] = {
            asset: deque(maxlen=max_history) for asset in self.assets
        }
        self.trades: dict[int, TradeEvent] = {}
        self.klines: dict[str, deque[list[Timebar]]] = {
            asset: deque(maxlen=max_history) for asset in self.assets
        }

    # -- books -----------------------------------------------------------------

    def _quantity(self, *, unlike: Decimal | None = None) -> Decimal:
        """A random quantity with 1 to 4 decimals, written in its shortest form."""
        while True:
            value = (Decimal(self._rng.randint(1, _MAX_QUANTITY_UNITS)) * QUANTITY_UNIT).normalize()
            if value == value.to_integral_value():
                value = value.quantize(TICK)  # "2.0", not "2" or "2E+0"
            if value != unlike:
                return value

    def _initial_book(self, asset: str) -> Book:
        best_bid = _KNOWN_BEST_BIDS.get(asset)
        if best_bid is None:
            best_bid = Decimal(self._rng.randint(1_000, 500_000)) * TICK
        best_ask = best_bid + self._rng.randint(1, 6) * TICK
        bids: dict[Decimal, Decimal] = {}
        asks: dict[Decimal, Decimal] = {}
        price = best_bid
        for _ in range(self.levels):
            bids[price] = self._quantity()
            price -= self._rng.randint(1, 3) * TICK
        price = best_ask
        for _ in range(self.levels):
            asks[price] = self._quantity()
            price += self._rng.randint(1, 3) * TICK
        return Book(bids, asks, self._rng.randint(1_000, 9_999))

    def _book(self, asset: str) -> Book:
        try:
            return self._books[asset]
        except KeyError:
            raise KeyError(f"unknown asset {asset!r}") from None

    def _new_price(
        self, book: Book, is_bid: bool, touched: Mapping[Decimal, Decimal]
    ) -> Decimal | None:
        """A free price on one side that cannot cross the other side."""
        side = book.bids if is_bid else book.asks
        best_bid, best_ask = book.best_bid(), book.best_ask()
        assert best_bid is not None and best_ask is not None
        if is_bid:
            start, direction = best_ask, -1
            span = int((best_ask - min(book.bids)) / TICK) + 3
        else:
            start, direction = best_bid, 1
            span = int((max(book.asks) - best_bid) / TICK) + 3
        candidates = (start + direction * k * TICK for k in range(1, span + 1))
        free = [price for price in candidates if price not in side and price not in touched]
        return self._rng.choice(free) if free else None

    def step_depth(self, asset: str) -> DepthDiff:
        """Change 1-3 distinct levels, keep best bid < best ask, advance the sequence by 1.

        A price is touched at most once per diff, so every diff really
        changes the book and its levels can be applied in any order.
        """
        book = self._book(asset)
        changes: dict[bool, dict[Decimal, Decimal]] = {True: {}, False: {}}
        for _ in range(self._rng.randint(1, 3)):
            is_bid = self._rng.random() < 0.5
            side, touched = (book.bids if is_bid else book.asks), changes[is_bid]
            action = self._rng.choices(("update", "add", "delete"), weights=(2, 1, 1))[0]
            if action == "delete" and len(side) <= max(1, self.levels // 2):
                action = "update"
            if action == "add" and len(side) >= 2 * self.levels:
                action = "update"
            price = self._new_price(book, is_bid, touched) if action == "add" else None
            if price is not None:
                quantity = self._quantity()
            else:
                untouched = sorted(p for p in side if p not in touched)
                if not untouched:
                    continue
                price = self._rng.choice(untouched)
                quantity = DELETE if action == "delete" else self._quantity(unlike=side[price])
            if quantity == 0:
                del side[price]
            else:
                side[price] = quantity
            touched[price] = quantity
        book.sequence_number += 1
        diff = DepthDiff(
            bids=tuple(changes[True].items()),
            asks=tuple(changes[False].items()),
            sequence_number=book.sequence_number,
        )
        self.diffs[asset].append(diff)
        return diff

    def snapshot(self, asset: str) -> Snapshot:
        """The book as of the last generated diff."""
        return self._book(asset).snapshot()

    def book(self, asset: str) -> Book:
        """A copy of the model's book, safe to compare against later."""
        return self._book(asset).copy()

    # -- trades and klines -----------------------------------------------------

    def step_trade(self, now_ns: int) -> TradeEvent:
        """A public trade at the touch of a random asset's book."""
        asset = self._rng.choice(self.assets)
        book = self._books[asset]
        buyer_is_maker = self._rng.random() < 0.5
        price = book.best_bid() if buyer_is_maker else book.best_ask()
        assert price is not None
        quantity = Decimal(self._rng.randint(1, 10_000)) * QUANTITY_UNIT
        order_id = base64.b64encode(self._rng.getrandbits(128).to_bytes(16, "big")).decode()
        trade: TradeEvent = {
            "asset_id": asset,
            "trade_id": self._next_trade_id,
            "order_id": order_id,
            "price": _fixed(price, _TRADE_DECIMALS),
            "quantity": _fixed(quantity, _TRADE_DECIMALS),
            "timestamp_ns": now_ns,
            "buyer_is_maker": buyer_is_maker,
            "status": "Confirmed",
        }
        self._next_trade_id += 1
        self.trades[trade["trade_id"]] = trade
        if len(self.trades) > self._max_history:
            del self.trades[next(iter(self.trades))]
        return trade

    def step_kline(self, asset: str, now_ns: int) -> list[Timebar]:
        """The current bar; on a bucket rollover, [previous bar final, new bar]."""
        book = self._book(asset)
        best_bid, best_ask = book.best_bid(), book.best_ask()
        assert best_bid is not None and best_ask is not None
        mid = ((best_bid + best_ask) / 2).quantize(_KLINE_PRICE)
        bucket = now_ns - now_ns % self.kline_bucket_ns
        bar = self._bars.get(asset)
        bars: list[Timebar]
        if bar is None:
            bar = _Bar(mid, mid, mid, mid, Decimal(0), bucket)
            self._bars[asset] = bar
            bars = [bar.render(self.kline_bucket_ns)]
        elif bucket > bar.open_ns:
            final = bar.render(self.kline_bucket_ns)
            close = bar.close
            bar = _Bar(close, close, close, close, Decimal(0), bucket)
            self._bars[asset] = bar
            bars = [final, bar.render(self.kline_bucket_ns)]
        else:
            bar.close = mid
            bar.high = max(bar.high, mid)
            bar.low = min(bar.low, mid)
            bar.volume += Decimal(self._rng.randint(1, 10_000)) * QUANTITY_UNIT
            bars = [bar.render(self.kline_bucket_ns)]
        self.klines[asset].append(bars)
        return bars
