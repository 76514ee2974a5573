"""The simulated account life: deterministic, consistent, and valid for the connector's parser."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

from connector.simulators.tastytrade_accounts import AccountModel, Notification
from connector.venues.tastytrade import notifications as n
from connector.venues.tastytrade.objects import ACCOUNT_BALANCE
from tests.avro_check import roundtrip

ACCOUNTS = ["5WT00001", "5WT00002"]
START_MS = 1_773_153_000_000
NOT_FOR_THIS_ACCOUNT = frozenset(
    {
        "apex-starting-day-margin-equity",
        "time-of-day",
        "cash-settle-balance",
        "margin-settle-balance",
        "total-settle-balance",
        "fixed-income-security-margin-requirement",
        "long-fixed-income-security-value",
        "sma-equity-option-buying-power",
        "special-memorandum-account-value",
        "special-memorandum-account-apex-adjustment",
        "total-pending-liquidity-pool-rebate",
    }
)
"""AccountBalance fields the venue sends only for other kinds of account (or snapshots)."""
BALANCE_AMOUNTS = {f.wire for f in ACCOUNT_BALANCE.fields} - NOT_FOR_THIS_ACCOUNT


def _run(model: AccountModel, steps: int) -> list[Notification]:
    out: list[Notification] = []
    for i in range(steps):
        out += model.step(START_MS + i * 10)
    return out


def test_the_same_seed_gives_the_same_life() -> None:
    a = _run(AccountModel(ACCOUNTS, 3), 300)
    b = _run(AccountModel(ACCOUNTS, 3), 300)
    c = _run(AccountModel(ACCOUNTS, 4), 300)
    assert a == b
    assert a != c


def test_a_long_life_emits_every_account_type_for_every_account() -> None:
    notes = _run(AccountModel(ACCOUNTS, 1), 3000)
    seen = Counter((note.type, note.account) for note in notes)
    account_types = {t.name for t in n.TYPES.values() if t.scope is n.Scope.ACCOUNT}
    for account in ACCOUNTS:
        for kind in account_types:
            assert seen[(kind, account)] > 0, f"{kind} never happened in {account}"
    statuses = {note.data["status"] for note in notes if note.type == "Order"}
    assert {"Live", "Filled", "Cancelled"} <= statuses
    partial = [
        note
        for note in notes
        if note.type == "Order" and note.data["status"] == "Live" and note.data["legs"][0]["fills"]
    ]
    assert partial, "some orders fill in several parts"


def test_orders_and_positions_stay_consistent() -> None:
    model = AccountModel(ACCOUNTS, 2)
    notes = _run(model, 3000)
    versions: dict[int, int] = {}
    for note in notes:
        data = note.data
        if note.type == "Order":
            leg = data["legs"][0]
            filled = sum(f["quantity"] for f in leg["fills"])
            assert filled + leg["remaining-quantity"] == data["size"]
            assert data["updated-at"] > versions.get(data["id"], 0), "versions only grow"
            versions[data["id"]] = data["updated-at"]
            assert (data["status"] == "Filled") == (leg["remaining-quantity"] == 0)
        elif note.type == "CurrentPosition":
            assert data["quantity"] >= 0
            assert data["quantity-direction"] == ("Long" if data["quantity"] else "Zero")
        elif note.type == "AccountBalance":
            assert Decimal(data["net-liquidating-value"]) == Decimal(
                data["cash-balance"]
            ) + Decimal(data["long-equity-value"])
            # Every amount the connector's schema names is there (the SDK requires most).
            assert data.keys() >= BALANCE_AMOUNTS
            assert Decimal(data["maintenance-excess"]) == max(
                Decimal(0),
                Decimal(data["net-liquidating-value"]) - Decimal(data["maintenance-requirement"]),
            )


def test_rest_views_render_the_state_the_notifications_described() -> None:
    model = AccountModel(ACCOUNTS, 6)
    notes = _run(model, 2000)
    last: dict[tuple[str, Any], dict[str, Any]] = {}
    for note in notes:
        if note.type == "Order":
            last[("order", note.data["id"])] = note.data
        elif note.type == "CurrentPosition":
            last[("position", (note.account, note.data["symbol"]))] = note.data
        elif note.type == "ComplexOrder":
            last[("complex", note.data["id"])] = note.data
    for account in ACCOUNTS:
        for order in model.live_orders(account):
            assert last[("order", order["id"])] == order
        for position in model.positions(account):
            assert position["quantity"] > 0
            noted = last[("position", (account, position["symbol"]))]
            assert noted["quantity"] == position["quantity"]
            assert noted["average-open-price"] == position["average-open-price"]
        for bracket in model.live_complex_orders(account):
            assert "terminal-at" not in bracket
            assert {o["status"] for o in bracket["orders"]} == {"Live"}
        assert model.trading_status(account)["account-number"] == account
        assert model.balance(account)["currency"] == "USD"


def test_every_simulated_object_is_a_valid_record() -> None:
    model = AccountModel(ACCOUNTS, 9)
    notes = _run(model, 1500)
    notes += [model.quote_alert(START_MS + 99_000), model.public_watchlist(START_MS + 99_001)]
    per_stream: dict[str, int] = defaultdict(int)
    for note in notes:
        envelope = {"type": note.type, "data": note.data, "timestamp": START_MS}
        record = n.parse_notification(envelope, START_MS * 1_000_000)
        assert record.value["extra"] == {}, f"{note.type} sends a field the schema lacks"
        per_stream[record.stream] += 1
        if per_stream[record.stream] <= 20:
            assert roundtrip(record.stream, record.value) == record.value
    assert set(per_stream) == {t.stream for t in n.TYPES.values()}
