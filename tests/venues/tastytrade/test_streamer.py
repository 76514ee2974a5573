"""The Account Streamer state machine, driven with plain numbers for time."""

from __future__ import annotations

import json
from typing import Any

from connector.records import Record
from connector.venues.errors import Reason
from connector.venues.tastytrade import notifications as n
from connector.venues.tastytrade.streamer import (
    AccountStreamer,
    Phase,
    ReplaceReason,
    Step,
    StreamerConfig,
)
from tests.golden import frames

ACCOUNTS = ("5WT00001", "5WT00002")
TOKEN = "Bearer access-1"
NOW_NS = 1_773_160_000_000_000_000


def _config(**overrides: Any) -> StreamerConfig:
    base: dict[str, Any] = {
        "accounts": ACCOUNTS,
        "heartbeat_interval_s": 20.0,
        "heartbeat_timeout_s": 30.0,
        "connect_timeout_s": 10.0,
    }
    return StreamerConfig(**{**base, **overrides})


def _sent(step: Step) -> list[dict[str, Any]]:
    return [json.loads(text) for text in step.send]


def _ack(action: str, request_id: int | None, status: str = "ok", **extra: Any) -> str:
    reply: dict[str, Any] = {
        "status": status,
        "action": action,
        "web-socket-session-id": "5b6e2799",
    }
    if request_id is not None:
        reply["request-id"] = request_id
    reply.update(extra)
    return json.dumps(reply)


def _connected(core: AccountStreamer, at: float = 0.0) -> Step:
    core.open(at, TOKEN)
    return core.receive(_ack("connect", 1, value=list(ACCOUNTS)), NOW_NS, at + 0.1)


def _order(order_id: int, account: str = "5WT00001", updated: int = 1) -> str:
    data = {"id": order_id, "account-number": account, "updated-at": updated}
    return json.dumps({"type": "Order", "data": data, "timestamp": 1})


def _baseline_record(order_id: int) -> Record:
    data = {"id": order_id, "account-number": "5WT00001"}
    return n.record(n.TYPES["Order"], data, origin=n.Origin.BASELINE, received_ns=NOW_NS)


def test_connect_has_the_documented_shape() -> None:
    golden = json.loads(frames("tastytrade", "handshake.jsonl")[0])["msg"]
    core = AccountStreamer(_config(source="my-bridge/0.1.0"))
    step = core.open(0.0, "Bearer <oauth-access-token>")
    (sent,) = _sent(step)
    assert sent == golden
    assert list(sent) == list(golden)
    assert core.phase is Phase.CONNECTING


def test_the_connect_ack_starts_baseline_subscriptions_and_heartbeats() -> None:
    core = AccountStreamer(_config(public_watchlists=True, quote_alerts=True))
    step = _connected(core, at=100.0)
    assert step.start_baseline
    assert core.phase is Phase.BASELINE
    assert core.session_id == "5b6e2799"
    assert [m["action"] for m in _sent(step)] == [
        "public-watchlists-subscribe",
        "quote-alerts-subscribe",
    ]
    assert all("value" not in m and m["auth-token"] == TOKEN for m in _sent(step))
    assert [m["request-id"] for m in _sent(step)] == [2, 3]
    assert not core.heartbeat_due(119.0)
    assert core.next_deadline() == 120.1
    assert core.heartbeat_due(120.1)
    heartbeat = core.heartbeat(120.1, "Bearer access-2")
    (sent,) = _sent(heartbeat)
    assert sent == {"action": "heartbeat", "auth-token": "Bearer access-2", "request-id": 4}
    assert not core.heartbeat_due(121.0)


def test_heartbeats_carry_the_token_handed_in_at_that_moment() -> None:
    core = AccountStreamer(_config())
    _connected(core)
    tokens = []
    now = 0.1
    for token in ("Bearer a", "Bearer b", "Bearer c"):
        now += 20.0
        (sent,) = _sent(core.heartbeat(now, token))
        tokens.append(sent["auth-token"])
        core.receive(_ack("heartbeat", sent["request-id"]), NOW_NS, now + 0.01)
        assert core.check(now + 29.0).replace is None
    assert tokens == ["Bearer a", "Bearer b", "Bearer c"]


def test_an_unanswered_heartbeat_replaces_the_socket_after_the_timeout() -> None:
    core = AccountStreamer(_config(heartbeat_interval_s=2.0, heartbeat_timeout_s=5.0))
    _connected(core)
    (first,) = _sent(core.heartbeat(2.1, TOKEN))
    core.receive(_ack("heartbeat", first["request-id"]), NOW_NS, 2.2)
    core.heartbeat(4.1, TOKEN)  # never answered
    core.heartbeat(6.1, TOKEN)
    assert core.next_deadline() == 8.1  # the next heartbeat comes before the timeout
    assert core.check(9.0).replace is None
    assert core.check(9.1).replace == ReplaceReason.HEARTBEAT_TIMEOUT
    assert core.phase is Phase.CLOSING
    assert core.check(20.0).replace is None, "asked once"


def test_an_answer_to_a_later_heartbeat_clears_the_earlier_ones() -> None:
    core = AccountStreamer(_config(heartbeat_interval_s=2.0, heartbeat_timeout_s=3.0))
    _connected(core)
    core.heartbeat(2.1, TOKEN)
    (second,) = _sent(core.heartbeat(4.1, TOKEN))
    core.receive(_ack("heartbeat", second["request-id"]), NOW_NS, 4.2)
    assert core.check(5.5).replace is None


def test_connect_not_acknowledged_in_time_replaces_the_socket() -> None:
    core = AccountStreamer(_config(connect_timeout_s=10.0))
    core.open(5.0, TOKEN)
    assert core.next_deadline() == 15.0
    assert core.check(14.9).replace is None
    assert core.check(15.0).replace == ReplaceReason.CONNECT_TIMEOUT


def test_a_connect_error_without_request_id_is_matched_by_action() -> None:
    core = AccountStreamer(_config())
    core.open(0.0, "Bearer legacy")
    observed = json.loads(frames("tastytrade", "handshake.jsonl")[10])["msg"]
    assert "request-id" not in observed
    step = core.receive(json.dumps(observed), NOW_NS, 0.2)
    assert step.replace == ReplaceReason.CONNECT_REJECTED
    assert step.token_rejected
    assert not step.start_baseline


def test_a_heartbeat_error_replaces_the_socket_and_asks_for_a_fresh_token() -> None:
    core = AccountStreamer(_config())
    _connected(core)
    (sent,) = _sent(core.heartbeat(20.1, TOKEN))
    step = core.receive(
        _ack("heartbeat", sent["request-id"], status="error", message="failed"), NOW_NS, 20.2
    )
    assert (step.replace, step.token_rejected) == (ReplaceReason.HEARTBEAT_REJECTED, True)


def test_a_refused_subscription_is_reported_but_keeps_the_socket() -> None:
    core = AccountStreamer(_config(quote_alerts=True))
    _connected(core)
    step = core.receive(
        _ack("quote-alerts-subscribe", 2, status="error", message="not-implemented"), NOW_NS, 1.0
    )
    assert step.replace is None
    assert [e.message for e in step.errors] == ["not-implemented"]


def test_notifications_wait_for_the_baseline_then_follow_it() -> None:
    core = AccountStreamer(_config())
    core.open(0.0, TOKEN)
    early = core.receive(_order(1), NOW_NS, 0.05)  # before the ack: held too
    step = core.receive(_ack("connect", 1), NOW_NS, 0.1)
    held = core.receive(_order(2), NOW_NS, 0.2)
    assert early.records == [] and held.records == [] and step.records == []
    released = core.baseline([_baseline_record(10), _baseline_record(11)])
    assert [(r.value["id"], r.value["origin"]) for r in released.records] == [
        (10, "REST_BASELINE"),
        (11, "REST_BASELINE"),
        (1, "STREAM"),
        (2, "STREAM"),
    ]
    assert core.phase is Phase.LIVE
    assert [r.value["id"] for r in core.receive(_order(3), NOW_NS, 0.3).records] == [3]


def test_a_baseline_for_a_socket_that_is_gone_is_dropped() -> None:
    core = AccountStreamer(_config())
    _connected(core)
    core.receive(_order(1), NOW_NS, 0.2)
    closed = core.closed()
    assert [r.value["id"] for r in closed.records] == [1], "held notifications are not lost"
    assert core.baseline([_baseline_record(10)]).records == []
    assert core.phase is Phase.IDLE


def test_a_full_buffer_publishes_its_oldest_notifications_early() -> None:
    core = AccountStreamer(_config(max_buffered=2))
    _connected(core)
    steps = [core.receive(_order(i), NOW_NS, 0.2) for i in range(1, 5)]
    assert [[r.value["id"] for r in s.records] for s in steps] == [[], [], [1], [2]]
    assert sum(s.published_early for s in steps) == 2
    released = core.baseline([])
    assert [r.value["id"] for r in released.records] == [3, 4]


def test_a_batch_may_mix_replies_and_notifications() -> None:
    core = AccountStreamer(_config())
    core.open(0.0, TOKEN)
    batch = {
        "results": [
            json.loads(_ack("connect", 1)),
            json.loads(_order(7)),
        ]
    }
    step = core.receive(json.dumps(batch), NOW_NS, 0.1)
    assert step.start_baseline
    assert [r.value["id"] for r in core.baseline([]).records] == [7]


def test_frames_that_are_not_messages_go_to_the_dlq() -> None:
    core = AccountStreamer(_config())
    _connected(core)
    for frame, reason in (
        ("not json", Reason.NOT_JSON),
        ("[1, 2]", Reason.WRONG_SHAPE),
        ('{"hello": 1}', Reason.WRONG_SHAPE),
        ('{"results": {}}', Reason.WRONG_SHAPE),
        ('{"status": "maybe", "action": "heartbeat"}', Reason.BAD_FIELD),
    ):
        step = core.receive(frame, NOW_NS, 1.0)
        (letter,) = step.rejected
        assert (letter.stream, letter.error.reason, letter.raw) == (n.STREAMER, reason, frame)


def test_reopening_resets_request_ids_and_the_session() -> None:
    core = AccountStreamer(_config())
    _connected(core)
    core.heartbeat(20.1, TOKEN)
    core.closed()
    assert core.session_id is None
    (sent,) = _sent(core.open(30.0, TOKEN))
    assert sent["request-id"] == 1
    assert core.heartbeat(60.0, TOKEN).send == [], "no heartbeat before the connect ack"


def test_a_reply_whose_request_id_is_a_non_ascii_digit_is_matched_by_action() -> None:
    core = AccountStreamer(_config())
    core.open(0.0, TOKEN)
    step = core.receive(_ack("connect", None, **{"request-id": "²"}), NOW_NS, 0.1)
    assert step.start_baseline and core.phase is Phase.BASELINE


def test_a_notification_with_an_unknown_field_nested_900_deep_keeps_it_as_json_text() -> None:
    core = AccountStreamer(_config())
    _connected(core)
    core.baseline([])
    nested = "[" * 900 + "]" * 900
    frame = '{"type":"Order","data":{"id":1,"account-number":"5WT00001","future":' + nested + "}}"
    (record,) = core.receive(frame, NOW_NS, 1.0).records
    assert record.value["extra"] == {"future": nested}
