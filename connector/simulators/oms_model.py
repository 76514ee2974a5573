"""A seeded order lifecycle for the T+ OMS simulator: accounts, orders, fills.

Pure: no clock, no sockets, no global randomness. Every draw comes from the
``random.Random(seed)`` the model owns and every timestamp is passed in, so
the same seed and the same calls give the same frames. Signing is a
callable per account, so the model never holds key material itself.

Each :meth:`OmsModel.step` advances one account (round robin) by one
action: create an order (or fail to), replace, amend, fill part of it,
settle a pending fill (Confirmed or Rollbacked), cancel (or fail to), or
fire a trigger order. Order events are rendered as the venue sends them,
mostly in the one-key form and sometimes in the legacy ``type`` form or
with another spelling of the variant name, so a client sees every form
the protocol allows. Integers are scaled by the book's decimals (price 2,
quantity 4, as the protocol examples); fills go on the user-trade stream
as human decimals.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

Signer = Callable[[bytes], bytes]
"""Signs bytes with an account's Ed25519 key."""

PRICE_DECIMALS = 2
QUANTITY_DECIMALS = 4
FEE_RATE_TAKER = Decimal("0.0005")
FEE_RATE_MAKER = Decimal("-0.0001")
_AMOUNT_SHIFT = 10 ** (QUANTITY_DECIMALS - 3)
"""Divides price * quantity into the example frames' amount scale (undocumented by the venue)."""

Form = Literal["one_key", "type_field", "upper_key"]


@dataclass(slots=True)
class SimOrder:
    """One order as the venue's book holds it (integers in book units)."""

    account: str
    order_id: str
    asset: str
    side: str
    kind: Literal["Limit", "Market"]
    price: int
    quantity: int
    created_ns: int
    updated_ns: int
    sub_account: int = 1
    is_spot: bool = True
    trigger: bool = False
    filled: int = 0
    confirmed: int = 0
    filled_amount: int = 0
    confirmed_amount: int = 0
    revision: int = 0
    pending: set[int] = field(default_factory=set)


@dataclass(slots=True)
class SimTrade:
    """One fill leg of an account (its latest status)."""

    account: str
    trade_id: int
    order_id: str
    asset: str
    price: int
    quantity: int
    timestamp_ns: int
    is_maker: bool
    is_buyer: bool
    sub_account: int
    status: str = "Pending"
    rollback_reason: str | None = None


@dataclass(frozen=True, slots=True)
class OrderFrame:
    """An ``/orders`` message for ``account``."""

    account: str
    variant: str
    order_id: str
    text: str


@dataclass(frozen=True, slots=True)
class TradeFrame:
    """A ``/trades/user/events/{account}`` message."""

    account: str
    trade_id: int
    status: str
    text: str


Emission = OrderFrame | TradeFrame


def scaled_text(units: int, decimals: int) -> str:
    """386180 with 2 decimals → ``"3861.80"``."""
    return str(Decimal(units).scaleb(-decimals).quantize(Decimal(1).scaleb(-decimals)))


def _fee(amount: int, rate: Decimal) -> int:
    """The trading fee on a filled amount, in the amount's scaled units (negative: a rebate)."""
    return int((amount * rate).to_integral_value())


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class OmsModel:
    """The orders and fills of a few accounts on one market."""

    def __init__(
        self,
        signers: Mapping[str, Signer],
        seed: int = 1,
        *,
        asset: str = "1",
        start_price: int = 386_180,
        max_open_per_account: int = 6,
    ) -> None:
        if not signers:
            raise ValueError("the model needs at least one account")
        self.accounts: list[str] = sorted(signers)
        self._signers = dict(signers)
        self._rng = random.Random(seed)
        self.asset = asset
        self._mid = start_price
        self._max_open = max_open_per_account
        self.orders: dict[str, dict[str, SimOrder]] = {a: {} for a in self.accounts}
        """Open orders per account, in creation order."""
        self.trades: dict[str, dict[int, SimTrade]] = {a: {} for a in self.accounts}
        self._next_account = 0
        self._next_trade_id = 500_000
        self._order_seq = 0

    # -- what REST answers -------------------------------------------------------------

    def open_orders(self, account: str) -> list[dict[str, Any]]:
        """The open orders of ``account`` in the shape the assumed REST endpoint answers."""
        out = []
        for order in self.orders[account].values():
            pending = order.filled - order.confirmed
            pending_amount = order.filled_amount - order.confirmed_amount
            rate = FEE_RATE_MAKER if order.kind == "Limit" else FEE_RATE_TAKER
            out.append(
                {
                    "order_id": order.order_id,
                    "base_asset": order.asset,
                    "side": order.side,
                    "limit_price": order.price if order.kind == "Limit" else None,
                    "quantity": order.quantity,
                    "amount": None,
                    "max_sellable_amount": None,
                    "max_sellable_quantity": None,
                    "confirmed_filled_quantity": order.confirmed,
                    "pending_filled_quantity": pending,
                    "confirmed_filled_amount": order.confirmed_amount,
                    "pending_filled_amount": pending_amount,
                    "confirmed_trading_fees_amount": _fee(order.confirmed_amount, rate),
                    "pending_trading_fees_amount": _fee(pending_amount, rate),
                    "good_until_timestamp_ns": None,
                    "timestamp_ns": order.created_ns,
                    "in_flight": False,
                    "canceled": False,
                    "status": "PartiallyFilled" if order.filled else "Open",
                    "trigger_above_price": None,
                    "trigger_below_price": None,
                    "trigger_touched": (not order.trigger) if order.kind == "Limit" else None,
                    "last_update_timestamp_ns": order.updated_ns,
                }
            )
        return out

    def recent_trades(self, account: str, limit: int = 100) -> list[dict[str, Any]]:
        """The latest ``limit`` fills of ``account``, oldest first, each at its current status."""
        trades = sorted(self.trades[account].values(), key=lambda t: t.trade_id)[-limit:]
        return [self._trade_body(t) for t in trades]

    # -- the lifecycle ---------------------------------------------------------------------

    def step(self, now_ns: int) -> list[Emission]:
        """Advance the next account by one action; returns the frames it produced, in order."""
        account = self.accounts[self._next_account]
        self._next_account = (self._next_account + 1) % len(self.accounts)
        rng = self._rng
        self._mid += rng.choice((-20, -10, 0, 10, 20))
        orders = self.orders[account]
        pending = [t for t in self.trades[account].values() if t.status == "Pending"]
        if pending and rng.random() < 0.5:
            return self._settle(rng.choice(pending), now_ns)
        if not orders or (len(orders) < self._max_open and rng.random() < 0.35):
            return self._create(account, now_ns)
        order = rng.choice(list(orders.values()))
        if order.trigger:
            return (
                self._trigger(order, now_ns) if rng.random() < 0.7 else self._cancel(order, now_ns)
            )
        roll = rng.random()
        if order.pending:
            # Let fills settle before changing the order.
            return self._fill(order, now_ns) if roll < 0.5 else self._create(account, now_ns)
        if roll < 0.2:
            return self._replace(order, now_ns)
        if roll < 0.35:
            return self._amend(order, now_ns)
        if roll < 0.8:
            return self._fill(order, now_ns)
        return self._cancel(order, now_ns)

    def _new_order_id(self, account: str) -> str:
        self._order_seq += 1
        raw = f"{account[:6]}-{self._order_seq:09d}".encode()[:16].ljust(16, b"\0")
        return base64.b64encode(raw).decode("ascii")

    def _create(self, account: str, now_ns: int) -> list[Emission]:
        rng = self._rng
        order_id = self._new_order_id(account)
        if rng.random() < 0.1:
            return [
                self._order_frame(
                    account,
                    "CreateFailed",
                    order_id,
                    {"order_id": order_id, "user_id": account, "reason": "INSUFFICIENT_MARGIN"},
                )
            ]
        kind: Literal["Limit", "Market"] = "Market" if rng.random() < 0.2 else "Limit"
        side = rng.choice(("Buy", "Sell"))
        offset = rng.randint(1, 30) * 10
        price = self._mid - offset if side == "Buy" else self._mid + offset
        quantity = rng.randint(1, 40) * 500
        order = SimOrder(
            account,
            order_id,
            self.asset,
            side,
            kind,
            price if kind == "Limit" else self._mid,
            quantity,
            created_ns=now_ns,
            updated_ns=now_ns + 800,
            sub_account=rng.choice((0, 1)),
            is_spot=rng.random() < 0.7,
            trigger=kind == "Limit" and rng.random() < 0.1,
        )
        self.orders[account][order_id] = order
        frames: list[Emission] = [self._created_frame(order, now_ns)]
        if kind == "Market":
            if rng.random() < 0.5:
                frames += self._fill(order, now_ns + 1_000, whole=True)
            else:
                frames += self._cancel(order, now_ns + 1_000, reason="NO_LIQUIDITY")
        return frames

    def _created_frame(self, order: SimOrder, now_ns: int) -> OrderFrame:
        if order.kind == "Limit":
            details: dict[str, Any] = {
                "Limit": {
                    "limit_price": order.price,
                    "quantity": order.quantity,
                    "time_in_force": {"GTC": {"post_only": False}},
                }
            }
        else:
            details = {
                "Market": {
                    "quantity": {
                        "BaseAsset": {"quantity": order.quantity, "max_sellable_amount": None}
                    },
                    "fill_or_kill": False,
                }
            }
        user_order = {
            "signer": order.account,
            "order_id": order.order_id,
            "base_asset": order.asset,
            "book_price_decimals": PRICE_DECIMALS,
            "book_quantity_decimals": QUANTITY_DECIMALS,
            "details": details,
            "side": order.side,
            "trigger": None,
            "creation_timestamp_ns": now_ns,
            "target": {"account": order.sub_account, "is_spot": order.is_spot},
            "reduce_only": False,
            "max_trading_fees_rate": 50000,
            "protocol_version": 1,
        }
        signature = self._signers[order.account](_compact(user_order).encode())
        payload = {
            "user_order": user_order,
            "signature": list(signature),
            "book_timestamp_ns": order.updated_ns,
            "limit_overrides": None,
            "limit_overrides_signature": None,
            "amend_overrides": None,
            "trigger_touched": False if order.trigger else None,
            "is_liquidation": False,
            "is_auto_deleverage": False,
        }
        return self._order_frame(order.account, "Created", order.order_id, payload)

    def _base(self, order: SimOrder) -> dict[str, Any]:
        return {"order_id": order.order_id, "asset_id": order.asset, "user_id": order.account}

    def _replace(self, order: SimOrder, now_ns: int) -> list[Emission]:
        if self._rng.random() < 0.1:
            return [self._failed(order, "ReplaceFailed", "ORDER_IN_FLIGHT")]
        order.price += self._rng.choice((-10, 10, 20))
        order.quantity = max(order.filled + 500, order.quantity + self._rng.choice((-500, 500)))
        order.revision += 1
        order.updated_ns = now_ns
        payload = {
            **self._base(order),
            "new_quantity": order.quantity,
            "new_price": order.price,
            "timestamp_ns": now_ns,
            "authorization_revision": order.revision,
            "operator_pubkey": None,
            "initial_receive_timestamp_ns": now_ns - 300,
        }
        return [self._order_frame(order.account, "Replaced", order.order_id, payload)]

    def _amend(self, order: SimOrder, now_ns: int) -> list[Emission]:
        remaining = order.quantity - order.filled
        if remaining <= 500 or self._rng.random() < 0.1:
            return [self._failed(order, "AmendFailed", "QUANTITY_TOO_SMALL")]
        order.quantity -= 500
        order.revision += 1
        order.updated_ns = now_ns
        payload = {
            **self._base(order),
            "new_quantity": order.quantity,
            "remaining_quantity": order.quantity - order.filled,
            "authorization_revision": order.revision,
            "book_quantity_decimals": QUANTITY_DECIMALS,
            "timestamp_ns": now_ns,
            "operator_pubkey": None,
        }
        return [self._order_frame(order.account, "Amended", order.order_id, payload)]

    def _fill(self, order: SimOrder, now_ns: int, *, whole: bool = False) -> list[Emission]:
        remaining = order.quantity - order.filled
        if remaining <= 0:
            return self._settle_all(order, now_ns)
        quantity = remaining if whole else min(remaining, self._rng.randint(1, 8) * 500)
        self._next_trade_id += 1
        is_maker = order.kind == "Limit"
        trade = SimTrade(
            order.account,
            self._next_trade_id,
            order.order_id,
            order.asset,
            order.price,
            quantity,
            now_ns,
            is_maker,
            order.side == "Buy",
            order.sub_account,
        )
        self.trades[order.account][trade.trade_id] = trade
        order.filled += quantity
        order.filled_amount += order.price * quantity // _AMOUNT_SHIFT
        order.pending.add(trade.trade_id)
        order.updated_ns = now_ns
        return [self._trade_frame(trade)]

    def _settle_all(self, order: SimOrder, now_ns: int) -> list[Emission]:
        frames: list[Emission] = []
        for trade_id in sorted(order.pending):
            frames += self._settle(self.trades[order.account][trade_id], now_ns)
        return frames

    def _settle(self, trade: SimTrade, now_ns: int) -> list[Emission]:
        order = self.orders[trade.account].get(trade.order_id)
        amount = trade.price * trade.quantity // _AMOUNT_SHIFT
        if self._rng.random() < 0.15:
            trade.status = "Rollbacked"
            trade.rollback_reason = "settlement rejected"
            if order is not None:
                order.filled -= trade.quantity
                order.filled_amount -= amount
        else:
            trade.status = "Confirmed"
            if order is not None:
                order.confirmed += trade.quantity
                order.confirmed_amount += amount
        frames: list[Emission] = [self._trade_frame(trade)]
        if order is None:
            return frames
        order.pending.discard(trade.trade_id)
        order.updated_ns = now_ns
        if not order.pending and order.confirmed >= order.quantity:
            frames.append(self._removed(order, now_ns, "Completed"))
        elif not order.pending and order.kind == "Market":
            # A market order does not rest: what did not fill is removed.
            frames.append(self._removed(order, now_ns, "Canceled"))
        return frames

    def _removed(self, order: SimOrder, now_ns: int, reason: str) -> OrderFrame:
        del self.orders[order.account][order.order_id]
        payload = {
            **self._base(order),
            "timestamp_ns": now_ns + 500,
            "operator_pubkey": None,
            "reason": reason,
            "filled_quantity": order.filled,
            "confirmed_quantity": order.confirmed,
            "filled_amount": order.filled_amount,
            "confirmed_amount": order.confirmed_amount,
            "book_quantity_decimals": QUANTITY_DECIMALS,
            "initial_receive_timestamp_ns": None,
        }
        return self._order_frame(order.account, "Removed", order.order_id, payload)

    def _cancel(self, order: SimOrder, now_ns: int, reason: str | None = None) -> list[Emission]:
        if order.pending:
            return [self._failed(order, "CancelFailed", "FILL_PENDING")]
        if reason is None and self._rng.random() < 0.1:
            return [self._failed(order, "CancelFailed", "ORDER_IN_FLIGHT")]
        del self.orders[order.account][order.order_id]
        payload = {
            **self._base(order),
            "timestamp_ns": now_ns,
            "operator_pubkey": None,
            "initial_receive_timestamp_ns": now_ns - 300,
            "reason": reason,
        }
        return [self._order_frame(order.account, "Canceled", order.order_id, payload)]

    def _trigger(self, order: SimOrder, now_ns: int) -> list[Emission]:
        order.trigger = False
        order.updated_ns = now_ns
        payload = {
            **self._base(order),
            "timestamp_ns": now_ns,
            "quantity": order.quantity,
            "trigger_touched": True,
            "operator_pubkey": None,
        }
        return [self._order_frame(order.account, "Triggered", order.order_id, payload)]

    def _failed(self, order: SimOrder, variant: str, reason: str) -> OrderFrame:
        payload = {"order_id": order.order_id, "user_id": order.account, "reason": reason}
        return self._order_frame(order.account, variant, order.order_id, payload)

    # -- rendering ---------------------------------------------------------------------------

    def _form(self) -> Form:
        roll = self._rng.random()
        if roll < 0.8:
            return "one_key"
        return "type_field" if roll < 0.9 else "upper_key"

    def _order_frame(
        self, account: str, variant: str, order_id: str, payload: dict[str, Any]
    ) -> OrderFrame:
        return OrderFrame(
            account, variant, order_id, render_order_event(variant, payload, self._form())
        )

    def _trade_body(self, trade: SimTrade) -> dict[str, Any]:
        notional = Decimal(scaled_text(trade.price, PRICE_DECIMALS)) * Decimal(
            scaled_text(trade.quantity, QUANTITY_DECIMALS)
        )
        rate = FEE_RATE_MAKER if trade.is_maker else FEE_RATE_TAKER
        fee = (notional * rate).quantize(Decimal("0.0001"))
        return {
            "asset_id": trade.asset,
            "trade_id": trade.trade_id,
            "order_id": trade.order_id,
            "price": scaled_text(trade.price, PRICE_DECIMALS),
            "quantity": scaled_text(trade.quantity, QUANTITY_DECIMALS),
            "timestamp_ns": trade.timestamp_ns,
            "is_maker": trade.is_maker,
            "is_buyer": trade.is_buyer,
            "status": trade.status,
            "rollback_reason": trade.rollback_reason,
            "is_liquidation": False,
            "is_auto_deleverage": False,
            "sub_account": trade.sub_account,
            "trading_fee": str(fee),
        }

    def _trade_frame(self, trade: SimTrade) -> TradeFrame:
        text = _compact(self._trade_body(trade))
        return TradeFrame(trade.account, trade.trade_id, trade.status, text)


def render_order_event(variant: str, payload: dict[str, Any], form: Form = "one_key") -> str:
    """One ``/orders`` frame in a wire form the protocol allows.

    ``one_key``: ``{"Removed": {...}}``. ``upper_key``: ``{"REMOVED": {...}}``.
    ``type_field``: the legacy ``{"type": "removed", ...}`` with the name in
    snake case (``create_failed``).
    """
    if form == "one_key":
        return _compact({variant: payload})
    if form == "upper_key":
        return _compact({variant.upper(): payload})
    snake = "".join(
        f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(variant)
    )
    return _compact({"type": snake, **payload})
