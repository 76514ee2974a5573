"""A seeded brokerage-account life for the tastytrade simulator: orders, fills, money.

Pure: no clock, no sockets, no global randomness. Every draw comes from the
``random.Random(seed)`` the model owns and every time is passed in, so the
same seed and the same calls give the same notifications. Amounts are
``Decimal`` until rendered as the venue's JSON (decimal strings, unsigned
amounts with ``*-effect`` siblings, ISO-8601 times, epoch-ms ``updated-at`` on
orders).

What happens, one action per ``step``, in a random account:

* an order is placed (Live), then filled in one or more partial fills,
  moving the position, the cash and the buying power; a closing fill
  realizes a gain (UnderlyingYearGainSummary) and every fill updates the
  position's OrderChain;
* a working order is cancelled;
* an OCO bracket (limit take-profit plus stop) is placed on a long position;
  when one side fills, the other is cancelled and the ComplexOrder ends;
* a deposit arrives (ExternalTransaction Pending, later Completed);
* the trading status changes (day-trade count).

REST views (``balance``, ``positions``, ``live_orders``,
``live_complex_orders``, ``trading_status``) render the same state the
notifications come from.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

SYMBOLS: dict[str, Decimal] = {
    "AAPL": Decimal("227.40"),
    "SPY": Decimal("571.20"),
    "MSFT": Decimal("415.10"),
    "NVDA": Decimal("131.55"),
    "UA": Decimal("6.49"),
}
CENT = Decimal("0.01")
ZERO = Decimal("0")
_ZERO_BALANCE_FIELDS = (
    "short-equity-value",
    "long-derivative-value",
    "short-derivative-value",
    "long-futures-value",
    "short-futures-value",
    "long-futures-derivative-value",
    "short-futures-derivative-value",
    "short-margineable-value",
    "day-trading-buying-power",
    "futures-margin-requirement",
    "available-trading-funds",
    "maintenance-call-value",
    "reg-t-call-value",
    "day-trading-call-value",
    "day-equity-call-value",
    "long-cryptocurrency-value",
    "short-cryptocurrency-value",
    "cryptocurrency-margin-requirement",
    "unsettled-cryptocurrency-fiat-amount",
    "equity-offering-margin-requirement",
    "long-bond-value",
    "bond-margin-requirement",
    "used-derivative-buying-power",
    "futures-overnight-margin-requirement",
    "futures-intraday-margin-requirement",
    "pending-margin-interest",
    "buying-power-adjustment",
)
"""AccountBalance amounts that are zero for an account holding only cash and equities."""


def iso(ms: int) -> str:
    """Epoch milliseconds as the venue's ISO-8601 text (``2026-03-10T14:31:05.112+00:00``)."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+00:00"


def day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def effect(value: Decimal) -> str:
    return "Credit" if value > 0 else "Debit" if value < 0 else "None"


@dataclass(frozen=True, slots=True)
class Notification:
    """One event: its ``type`` and its complete ``data`` object."""

    type: str
    data: dict[str, Any]
    account: str | None


@dataclass(slots=True)
class Fill:
    fill_id: str
    quantity: int
    price: Decimal
    at_ms: int


@dataclass(slots=True)
class Order:
    id: int
    account: str
    symbol: str
    action: str
    order_type: str
    size: int
    price: Decimal | None
    stop: Decimal | None
    received_ms: int
    status: str = "Live"
    fills: list[Fill] = field(default_factory=list)
    updated_ms: int = 0
    terminal_ms: int | None = None
    cancelled_ms: int | None = None
    complex_id: int | None = None
    complex_tag: str | None = None

    @property
    def filled(self) -> int:
        return sum(f.quantity for f in self.fills)

    @property
    def remaining(self) -> int:
        return self.size - self.filled

    @property
    def buying(self) -> bool:
        return self.action.startswith("Buy")


@dataclass(slots=True)
class Position:
    quantity: int
    average_open: Decimal
    created_ms: int
    updated_ms: int
    realized_day: Decimal = ZERO


@dataclass(slots=True)
class ComplexOrder:
    id: int
    account: str
    members: list[int]
    terminal_ms: int | None = None


@dataclass(slots=True)
class Transfer:
    id: int
    account: str
    amount: Decimal
    created_ms: int
    state: str = "Pending"
    updated_ms: int = 0


@dataclass(slots=True)
class Account:
    number: str
    cash: Decimal
    status_id: int
    positions: dict[str, Position] = field(default_factory=dict)
    working: list[int] = field(default_factory=list)
    done: deque[int] = field(default_factory=lambda: deque(maxlen=50))
    complex_live: list[int] = field(default_factory=list)
    pending_transfers: list[int] = field(default_factory=list)
    year_gains: dict[str, Decimal] = field(default_factory=dict)
    year_fees: dict[str, Decimal] = field(default_factory=dict)
    chains: dict[str, int] = field(default_factory=dict)
    chain_nodes: dict[str, list[int]] = field(default_factory=dict)
    day_trades: int = 0
    balance_ms: int = 0
    status_ms: int = 0


class AccountModel:
    """Several accounts living one random action at a time."""

    def __init__(
        self,
        accounts: Sequence[str],
        seed: int = 1,
        *,
        start_ms: int = 1_773_153_000_000,
        user_external_id: str = "U-sim-0001",
    ) -> None:
        if not accounts:
            raise ValueError("at least one account")
        self._rng = random.Random(seed)
        self._now = start_ms
        self.user_external_id = user_external_id
        self.prices = dict(SYMBOLS)
        self.accounts: dict[str, Account] = {
            number: Account(number, Decimal(50_000 + 10_000 * i), 100 + i, status_ms=start_ms)
            for i, number in enumerate(accounts)
        }
        self.orders: dict[int, Order] = {}
        self.complex: dict[int, ComplexOrder] = {}
        self.transfers: dict[int, Transfer] = {}
        self._ids = iter(range(412_000_001, 2**62))
        self._complex_ids = iter(range(2_000_010_001, 2**62))
        self._fill_ids = iter(range(1001, 2**62))
        self._chain_ids = iter(range(145_000_001, 2**62))
        self._alerts = iter(range(1, 2**62))
        self._watchlist_turn = 0

    # --- time ------------------------------------------------------------------

    def _tick(self, now_ms: int) -> int:
        """Strictly increasing model time, so every update of an entity has a newer version."""
        self._now = max(now_ms, self._now + 1)
        return self._now

    # --- the account life ------------------------------------------------------

    def step(self, now_ms: int) -> list[Notification]:
        """One thing happens in one account; returns its notifications in order."""
        now = self._tick(now_ms)
        self._walk_prices()
        account = self.accounts[self._rng.choice(sorted(self.accounts))]
        actions = [
            (self._place, 4),
            (self._fill, 5),
            (self._cancel, 1),
            (self._bracket, 1),
            (self._deposit, 1),
            (self._settle_transfer, 1),
            (self._status_change, 1),
        ]
        weights = [w for _, w in actions]
        while True:
            action = self._rng.choices([a for a, _ in actions], weights)[0]
            out = action(account, now)
            if out:
                return out

    def _walk_prices(self) -> None:
        for symbol, price in self.prices.items():
            move = Decimal(self._rng.randint(-20, 20)) * CENT
            self.prices[symbol] = max(Decimal("1.00"), price + move)

    def _new_order(
        self,
        account: Account,
        now: int,
        symbol: str,
        action: str,
        order_type: str,
        size: int,
        price: Decimal | None = None,
        stop: Decimal | None = None,
    ) -> Order:
        order = Order(
            next(self._ids),
            account.number,
            symbol,
            action,
            order_type,
            size,
            price,
            stop,
            received_ms=now,
            updated_ms=now,
        )
        self.orders[order.id] = order
        account.working.append(order.id)
        return order

    def _place(self, account: Account, now: int) -> list[Notification]:
        symbol = self._rng.choice(sorted(self.prices))
        held = account.positions.get(symbol)
        free = (held.quantity if held else 0) - sum(
            self.orders[i].remaining
            for i in account.working
            if self.orders[i].symbol == symbol and not self.orders[i].buying
        )
        selling = free > 0 and self._rng.random() < 0.4
        size = self._rng.randint(1, free) if selling else self._rng.randint(1, 20) * 5
        action = "Sell to Close" if selling else "Buy to Open"
        market = self._rng.random() < 0.3
        price = None if market else self.prices[symbol]
        order = self._new_order(
            account, now, symbol, action, "Market" if market else "Limit", size, price
        )
        return [self._order_note(order)]

    def _fill(self, account: Account, now: int) -> list[Notification]:
        if not account.working:
            return []
        order = self.orders[self._rng.choice(account.working)]
        if order.stop is not None and order.complex_id is None:
            return []
        quantity = order.remaining
        # A bracket side fills whole: its sibling is then cancelled, never sold twice.
        if quantity > 1 and order.complex_id is None and self._rng.random() < 0.5:
            quantity = self._rng.randint(1, quantity - 1)
        price = order.price if order.price is not None else self.prices[order.symbol]
        if order.stop is not None:
            price = order.stop
        order.fills.append(Fill(f"SIM-{next(self._fill_ids)}-FILL", quantity, price, now))
        order.updated_ms = now
        notes: list[Notification] = []
        if order.remaining == 0:
            self._finish(account, order, "Filled", now)
        notes.append(self._order_note(order))
        notes += self._settle_fill(account, order, quantity, price, now)
        if order.remaining == 0 and order.complex_id is not None:
            notes += self._end_bracket(account, order, now)
        return notes

    def _finish(self, account: Account, order: Order, status: str, now: int) -> None:
        order.status = status
        order.terminal_ms = now
        order.updated_ms = now
        if status == "Cancelled":
            order.cancelled_ms = now
        account.working.remove(order.id)
        account.done.append(order.id)

    def _settle_fill(
        self, account: Account, order: Order, quantity: int, price: Decimal, now: int
    ) -> list[Notification]:
        symbol = order.symbol
        position = account.positions.get(symbol)
        notional = price * quantity
        notes: list[Notification] = []
        if order.buying:
            account.cash -= notional
            if position is None:
                position = Position(quantity, price, now, now)
                account.positions[symbol] = position
            else:
                total = position.average_open * position.quantity + notional
                position.quantity += quantity
                position.average_open = (total / position.quantity).quantize(Decimal("0.0001"))
                position.updated_ms = now
        else:
            assert position is not None and position.quantity >= quantity
            account.cash += notional
            gain = (price - position.average_open) * quantity
            position.quantity -= quantity
            position.realized_day += gain
            position.updated_ms = now
            account.year_gains[symbol] = account.year_gains.get(symbol, ZERO) + gain
            account.year_fees[symbol] = account.year_fees.get(symbol, ZERO) + Decimal("0.05")
            notes.append(self._year_gain_note(account, symbol))
        notes.append(self._position_note(account, symbol))
        if position.quantity == 0:
            del account.positions[symbol]
        notes.append(self._balance_note(account, now))
        notes.append(self._chain_note(account, order, now))
        return notes

    def _cancel(self, account: Account, now: int) -> list[Notification]:
        plain = [i for i in account.working if self.orders[i].complex_id is None]
        if not plain:
            return []
        order = self.orders[self._rng.choice(plain)]
        self._finish(account, order, "Cancelled", now)
        return [self._order_note(order)]

    def _bracket(self, account: Account, now: int) -> list[Notification]:
        """An OCO take-profit/stop pair on a long position nothing else is selling."""
        busy = {self.orders[i].symbol for i in account.working if not self.orders[i].buying}
        candidates = sorted(s for s in account.positions if s not in busy)
        if not candidates:
            return []
        symbol = self._rng.choice(candidates)
        size = account.positions[symbol].quantity
        price = self.prices[symbol]
        complex_id = next(self._complex_ids)
        take = self._new_order(
            account, now, symbol, "Sell to Close", "Limit", size, price + Decimal("5.00")
        )
        stop = self._new_order(
            account, now, symbol, "Sell to Close", "Stop", size, None, price - Decimal("5.00")
        )
        for member in (take, stop):
            member.complex_id = complex_id
            member.complex_tag = "OCO::order"
        bracket = ComplexOrder(complex_id, account.number, [take.id, stop.id])
        self.complex[complex_id] = bracket
        account.complex_live.append(complex_id)
        return [
            self._complex_note(bracket),
            self._order_note(take),
            self._order_note(stop),
        ]

    def _end_bracket(self, account: Account, filled: Order, now: int) -> list[Notification]:
        assert filled.complex_id is not None
        bracket = self.complex[filled.complex_id]
        notes = []
        for member_id in bracket.members:
            member = self.orders[member_id]
            if member.id != filled.id and member.id in account.working:
                self._finish(account, member, "Cancelled", now)
                notes.append(self._order_note(member))
        bracket.terminal_ms = now
        account.complex_live.remove(bracket.id)
        notes.append(self._complex_note(bracket))
        return notes

    def _deposit(self, account: Account, now: int) -> list[Notification]:
        amount = Decimal(self._rng.randint(1, 20) * 250)
        transfer = Transfer(next(self._ids), account.number, amount, now, updated_ms=now)
        self.transfers[transfer.id] = transfer
        account.pending_transfers.append(transfer.id)
        return [self._transfer_note(transfer)]

    def _settle_transfer(self, account: Account, now: int) -> list[Notification]:
        if not account.pending_transfers:
            return []
        transfer = self.transfers[account.pending_transfers.pop(0)]
        transfer.state = "Completed"
        transfer.updated_ms = now
        account.cash += transfer.amount
        return [self._transfer_note(transfer), self._balance_note(account, now)]

    def _status_change(self, account: Account, now: int) -> list[Notification]:
        account.day_trades = (account.day_trades + 1) % 4
        account.status_ms = now
        return [Notification("TradingStatus", self.trading_status(account.number), account.number)]

    # --- user-level and public -------------------------------------------------

    def quote_alert(self, now_ms: int) -> Notification:
        now = self._tick(now_ms)
        symbol = self._rng.choice(sorted(self.prices))
        threshold = self.prices[symbol].quantize(CENT)
        number = next(self._alerts)
        data = {
            "user-external-id": self.user_external_id,
            "symbol": symbol,
            "alert-external-id": f"sim-alert-{number:06d}",
            "expires-at": now + 86_400_000,
            "completed-at": iso(now),
            "created-at": iso(now - 3_600_000),
            "triggered-at": iso(now),
            "field": "Last",
            "operator": ">",
            "threshold": str(threshold),
            "threshold-numeric": str(threshold),
            "dx-symbol": symbol,
        }
        return Notification("QuoteAlert", data, None)

    def public_watchlist(self, now_ms: int) -> Notification:
        self._tick(now_ms)
        self._watchlist_turn += 1
        symbols = sorted(self.prices)
        self._rng.shuffle(symbols)
        data = {
            "name": f"Simulated list {self._watchlist_turn % 3 + 1}",
            "group-name": "tastytrade",
            "order-index": self._watchlist_turn % 3 + 1,
            "watchlist-entries": [{"symbol": s, "instrument-type": "Equity"} for s in symbols[:3]],
        }
        return Notification("PublicWatchlists", data, None)

    # --- rendering -------------------------------------------------------------

    def render_order(self, order: Order) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": order.id,
            "account-number": order.account,
            "time-in-force": "Day",
            "order-type": order.order_type,
            "size": order.size,
            "underlying-symbol": order.symbol,
            "underlying-instrument-type": "Equity",
            "status": order.status,
            "cancellable": order.status == "Live",
            "editable": order.status == "Live",
            "edited": False,
            "received-at": iso(order.received_ms),
            "live-at": iso(order.received_ms + 1),
            "updated-at": order.updated_ms,
            "legs": [
                {
                    "instrument-type": "Equity",
                    "symbol": order.symbol,
                    "quantity": order.size,
                    "remaining-quantity": order.remaining,
                    "action": order.action,
                    "fills": [
                        {
                            "fill-id": f.fill_id,
                            "quantity": f.quantity,
                            "fill-price": str(f.price),
                            "filled-at": iso(f.at_ms),
                            "destination-venue": "XNAS",
                        }
                        for f in order.fills
                    ],
                }
            ],
        }
        if order.price is not None:
            data["price"] = str(order.price)
            data["price-effect"] = "Debit" if order.buying else "Credit"
        if order.stop is not None:
            data["stop-trigger"] = str(order.stop)
        if order.terminal_ms is not None:
            data["terminal-at"] = iso(order.terminal_ms)
        if order.cancelled_ms is not None:
            data["cancelled-at"] = iso(order.cancelled_ms)
        if order.complex_id is not None:
            data["complex-order-id"] = order.complex_id
            data["complex-order-tag"] = order.complex_tag
        return data

    def _order_note(self, order: Order) -> Notification:
        return Notification("Order", self.render_order(order), order.account)

    def render_complex(self, bracket: ComplexOrder) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": bracket.id,
            "account-number": bracket.account,
            "type": "OCO",
            "orders": [self.render_order(self.orders[i]) for i in bracket.members],
        }
        if bracket.terminal_ms is not None:
            data["terminal-at"] = iso(bracket.terminal_ms)
        return data

    def _complex_note(self, bracket: ComplexOrder) -> Notification:
        return Notification("ComplexOrder", self.render_complex(bracket), bracket.account)

    def render_position(self, account: Account, symbol: str) -> dict[str, Any]:
        p = account.positions[symbol]
        return {
            "account-number": account.number,
            "symbol": symbol,
            "instrument-type": "Equity",
            "underlying-symbol": symbol,
            "quantity": p.quantity,
            "quantity-direction": "Long" if p.quantity > 0 else "Zero",
            "close-price": str(self.prices[symbol]),
            "average-open-price": str(p.average_open),
            "multiplier": 1,
            "cost-effect": "Debit",
            "is-suppressed": False,
            "is-frozen": False,
            "restricted-quantity": 0,
            "realized-day-gain": money(abs(p.realized_day)),
            "realized-day-gain-effect": effect(p.realized_day),
            "realized-day-gain-date": day(p.updated_ms),
            "realized-today": money(abs(p.realized_day)),
            "realized-today-effect": effect(p.realized_day),
            "realized-today-date": day(p.updated_ms),
            "created-at": iso(p.created_ms),
            "updated-at": iso(p.updated_ms),
        }

    def _position_note(self, account: Account, symbol: str) -> Notification:
        return Notification(
            "CurrentPosition", self.render_position(account, symbol), account.number
        )

    def render_balance(self, account: Account) -> dict[str, Any]:
        """Every field of the venue's AccountBalance, consistent with a cash-and-equities account.

        The model trades equities only, so the derivative, futures, crypto and
        bond values are zero; the margin figures follow Reg T (50 % initial,
        25 % maintenance on long equity).
        """
        long_value = sum((self.prices[s] * p.quantity for s, p in account.positions.items()), ZERO)
        pending = sum((self.transfers[i].amount for i in account.pending_transfers), ZERO)
        net = account.cash + long_value
        buying_power = max(ZERO, account.cash + long_value / 2)
        requirement = (long_value * Decimal("0.25")).quantize(CENT)
        reg_t = (long_value * Decimal("0.5")).quantize(CENT)
        withdrawable = max(ZERO, account.cash)
        at = account.balance_ms or self._now
        zeros = dict.fromkeys(_ZERO_BALANCE_FIELDS, "0.00")
        return {
            **zeros,
            "account-number": account.number,
            "cash-balance": money(account.cash),
            "long-equity-value": money(long_value),
            "long-margineable-value": money(long_value),
            "margin-equity": money(net),
            "equity-buying-power": money(buying_power),
            "derivative-buying-power": money(buying_power / 2),
            "maintenance-requirement": money(requirement),
            "reg-t-margin-requirement": money(reg_t),
            "maintenance-excess": money(max(ZERO, net - requirement)),
            "net-liquidating-value": money(net),
            "cash-available-to-withdraw": money(withdrawable),
            "closed-loop-available-balance": money(withdrawable),
            "day-trade-excess": money(buying_power),
            "effective-cryptocurrency-buying-power": money(withdrawable),
            "pending-cash": money(pending),
            "pending-cash-effect": "Credit" if pending else "None",
            "unsettled-cryptocurrency-fiat-effect": "None",
            "buying-power-adjustment-effect": "None",
            "currency": "USD",
            "snapshot-date": day(at),
            "updated-at": iso(at),
        }

    def _balance_note(self, account: Account, now: int) -> Notification:
        account.balance_ms = now
        return Notification("AccountBalance", self.render_balance(account), account.number)

    def _year_gain_note(self, account: Account, symbol: str) -> Notification:
        gain = account.year_gains[symbol]
        fees = account.year_fees[symbol]
        data = {
            "year": int(day(self._now)[:4]),
            "account-number": account.number,
            "symbol": symbol,
            "instrument-type": "Equity",
            "fees": money(fees),
            "fees-effect": "Debit",
            "commissions": "0.00",
            "commissions-effect": "None",
            "yearly-realized-gain": money(abs(gain)),
            "yearly-realized-gain-effect": effect(gain),
            "realized-lot-gain": money(abs(gain)),
            "realized-lot-gain-effect": effect(gain),
        }
        return Notification("UnderlyingYearGainSummary", data, account.number)

    def _chain_note(self, account: Account, order: Order, now: int) -> Notification:
        symbol = order.symbol
        chain_id = account.chains.setdefault(symbol, next(self._chain_ids))
        nodes = account.chain_nodes.setdefault(symbol, [])
        if order.id not in nodes:
            nodes.append(order.id)
        members = [self.orders[i] for i in nodes]
        held = account.positions.get(symbol)
        quantity = held.quantity if held else 0
        opening = sum((f.price * f.quantity for o in members if o.buying for f in o.fills), ZERO)
        closing = sum(
            (f.price * f.quantity for o in members if not o.buying for f in o.fills), ZERO
        )
        gain = account.year_gains.get(symbol, ZERO)
        fees = account.year_fees.get(symbol, ZERO)
        created_ms = members[0].received_ms
        computed = {
            "open": quantity > 0,
            "updated-at": iso(now),
            "total-fees": money(fees),
            "total-fees-effect": "Debit" if fees else "None",
            "total-commissions": "0.00",
            "total-commissions-effect": "None",
            "realized-gain": money(abs(gain)),
            "realized-gain-effect": effect(gain),
            "realized-gain-with-fees": money(abs(gain - fees)),
            "realized-gain-with-fees-effect": effect(gain - fees),
            "winner-realized-and-closed": gain > 0 and quantity == 0,
            "winner-realized": gain > 0,
            "winner-realized-with-fees": gain - fees > 0,
            "roll-count": 0,
            "opened-at": iso(created_ms),
            "last-occurred-at": iso(now),
            "started-at-days-to-expiration": 0,
            "duration": (now - created_ms) // 1000,
            "total-opening-cost": money(opening),
            "total-opening-cost-effect": effect(-opening),
            "total-closing-cost": money(closing),
            "total-closing-cost-effect": effect(closing),
            "total-cost": money(abs(closing - opening)),
            "total-cost-effect": effect(closing - opening),
            "gcd-open-quantity": str(quantity),
            "fees-missing": False,
            "open-entries": (
                [
                    {
                        "symbol": symbol,
                        "instrument-type": "Equity",
                        "quantity": str(quantity),
                        "quantity-type": "Long",
                        "quantity-numeric": str(quantity),
                    }
                ]
                if quantity
                else []
            ),
        }
        data = {
            "id": str(chain_id),
            "account-number": account.number,
            "description": "Equity",
            "underlying-symbol": symbol,
            "computed-data": computed,
            "lite-nodes-sizes": len(nodes),
            "lite-nodes": [
                {
                    "node-type": "order",
                    "id": str(o.id),
                    "description": f"{o.action} {o.size} {symbol}",
                    "occurred-at": iso(o.updated_ms),
                    "order-fill-count": len(o.fills),
                    "roll": False,
                    "legs": [
                        {
                            "symbol": symbol,
                            "instrument-type": "Equity",
                            "action": o.action,
                            "fill-quantity": o.filled,
                            "order-quantity": o.size,
                        }
                    ],
                }
                for o in members
            ],
            "updated-at": iso(now),
            "created-at": iso(created_ms),
        }
        return Notification("OrderChain", data, account.number)

    def render_transfer(self, transfer: Transfer) -> dict[str, Any]:
        return {
            "id": transfer.id,
            "account-number": transfer.account,
            "amount": money(transfer.amount),
            "bank-account-type": "Checking",
            "banking-date": day(transfer.created_ms),
            "created-at": iso(transfer.created_ms),
            "direction": "Deposit",
            "disbursement-type": "ACH",
            "ext-transfer-id": f"ACH-{transfer.id:x}",
            "funds-available-date": day(transfer.created_ms),
            "is-cancelable": transfer.state == "Pending",
            "is-clearing-accepted": transfer.state == "Completed",
            "state": transfer.state,
            "transfer-method": "ACH",
            "updated-at": iso(transfer.updated_ms),
        }

    def _transfer_note(self, transfer: Transfer) -> Notification:
        return Notification("ExternalTransaction", self.render_transfer(transfer), transfer.account)

    # --- REST views ------------------------------------------------------------

    def balance(self, number: str) -> dict[str, Any]:
        return self.render_balance(self.accounts[number])

    def positions(self, number: str) -> list[dict[str, Any]]:
        account = self.accounts[number]
        return [self.render_position(account, s) for s in sorted(account.positions)]

    def live_orders(self, number: str) -> list[dict[str, Any]]:
        """Working orders and the day's recent terminal ones, as the venue's /orders/live."""
        account = self.accounts[number]
        ids = [*account.done, *account.working]
        return [self.render_order(self.orders[i]) for i in sorted(ids)]

    def live_complex_orders(self, number: str) -> list[dict[str, Any]]:
        account = self.accounts[number]
        return [self.render_complex(self.complex[i]) for i in account.complex_live]

    def trading_status(self, number: str) -> dict[str, Any]:
        account = self.accounts[number]
        return {
            "account-number": number,
            "day-trade-count": account.day_trades,
            "equities-margin-calculation-type": "Reg T",
            "fee-schedule-name": "default",
            "futures-margin-rate-multiplier": "0.0",
            "has-intraday-equities-margin": False,
            "id": account.status_id,
            "is-aggregated-at-clearing": False,
            "is-closed": False,
            "is-closing-only": False,
            "is-cryptocurrency-enabled": False,
            "is-frozen": False,
            "is-full-equity-margin-required": False,
            "is-futures-closing-only": False,
            "is-futures-intra-day-enabled": False,
            "is-futures-enabled": False,
            "is-in-day-trade-equity-maintenance-call": False,
            "is-in-margin-call": False,
            "is-pattern-day-trader": account.day_trades >= 3,
            "is-small-notional-futures-intra-day-enabled": False,
            "is-roll-the-day-forward-enabled": True,
            "are-far-otm-net-options-restricted": True,
            "options-level": "No Restrictions",
            "short-calls-enabled": False,
            "small-notional-futures-margin-rate-multiplier": "0.0",
            "is-equity-offering-enabled": False,
            "is-equity-offering-closing-only": False,
            "updated-at": iso(account.status_ms),
        }
