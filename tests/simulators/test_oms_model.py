"""The OMS simulator's pure order lifecycle."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connector.simulators.oms_model import OmsModel, OrderFrame, TradeFrame, render_order_event
from connector.venues import json_numbers
from connector.venues.tplus import orders as od
from connector.venues.tplus import user_trades as ut
from connector.venues.tplus.auth import account_id

KEYS = [Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32) for i in (1, 2)]
ACCOUNTS = sorted(account_id(k) for k in KEYS)


def _model(seed: int = 3) -> OmsModel:
    return OmsModel({account_id(k): k.sign for k in KEYS}, seed)


def _run(model: OmsModel, steps: int) -> list[OrderFrame | TradeFrame]:
    out: list[OrderFrame | TradeFrame] = []
    for i in range(steps):
        out += model.step(1_761_283_013_000_000_000 + i * 1_000_000)
    return out


def test_the_same_seed_gives_the_same_frames() -> None:
    assert [f.text for f in _run(_model(5), 300)] == [f.text for f in _run(_model(5), 300)]
    assert [f.text for f in _run(_model(5), 300)] != [f.text for f in _run(_model(6), 300)]


def test_every_variant_status_and_wire_form_occurs_and_parses() -> None:
    frames = _run(_model(), 2000)
    variants: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    forms: Counter[str] = Counter()
    decimals = {a: od.OrderDecimals() for a in ACCOUNTS}
    for frame in frames:
        message = json_numbers.loads(frame.text)
        if isinstance(frame, OrderFrame):
            parsed = od.parse_order_event(message, frame.account, 1, decimals[frame.account])
            assert parsed.record.value["event_type"] == frame.variant
            assert parsed.named_account == frame.account
            variants[frame.variant] += 1
            forms["type" if "type" in message else "key"] += 1
            if frame.variant != "Created" and "type" not in message:
                scaled = parsed.record.value.get("replaced") or parsed.record.value.get("amended")
                if scaled is not None:
                    # Decimals learnt from the order's Created event.
                    assert scaled["new_quantity"]["decimals"] == 4
        else:
            record = ut.parse_user_trade(message, frame.account, 1)
            assert record.value["status"] == frame.status
            statuses[frame.status] += 1
    assert set(variants) == {
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
    }
    assert set(statuses) == {"Pending", "Confirmed", "Rollbacked"}
    assert forms["type"] > 0 and forms["key"] > forms["type"]
    assert {f.account for f in frames} == set(ACCOUNTS)


def test_fills_settle_and_orders_close_consistently() -> None:
    model = _model()
    frames = _run(model, 1500)
    trades: dict[int, list[str]] = defaultdict(list)
    for frame in frames:
        if isinstance(frame, TradeFrame):
            trades[frame.trade_id].append(frame.status)
    for history in trades.values():
        assert history[0] == "Pending"
        assert history in (["Pending"], ["Pending", "Confirmed"], ["Pending", "Rollbacked"])
    # What REST reports as open is what the order events leave open.
    for account in ACCOUNTS:
        open_ids: dict[str, None] = {}
        for frame in frames:
            if isinstance(frame, OrderFrame) and frame.account == account:
                if frame.variant == "Created":
                    open_ids[frame.order_id] = None
                elif frame.variant in ("Removed", "Canceled"):
                    del open_ids[frame.order_id]
        assert [o["order_id"] for o in model.open_orders(account)] == list(open_ids)
        for order in model.open_orders(account):
            assert 0 <= order["confirmed_filled_quantity"] <= order["quantity"]
        recent = model.recent_trades(account, limit=5)
        assert len(recent) == 5
        assert [t["trade_id"] for t in recent] == sorted(t["trade_id"] for t in recent)


def test_created_orders_carry_a_valid_signature_of_their_signer() -> None:
    frames = [
        f for f in _run(_model(), 200) if isinstance(f, OrderFrame) and f.variant == "Created"
    ]
    assert frames
    public = {account_id(k): k.public_key() for k in KEYS}
    for frame in frames:
        message = json.loads(frame.text)
        payload = message.get("Created") or message.get("CREATED") or message
        user_order = payload["user_order"]
        signed = json.dumps(user_order, separators=(",", ":")).encode()
        public[user_order["signer"]].verify(bytes(payload["signature"]), signed)


def test_wire_forms() -> None:
    payload = {"order_id": "o", "user_id": "u"}
    assert (
        render_order_event("CreateFailed", payload)
        == '{"CreateFailed":{"order_id":"o","user_id":"u"}}'
    )
    assert render_order_event("CreateFailed", payload, "upper_key").startswith('{"CREATEFAILED":')
    assert render_order_event("CreateFailed", payload, "type_field") == (
        '{"type":"create_failed","order_id":"o","user_id":"u"}'
    )
