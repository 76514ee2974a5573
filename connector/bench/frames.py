"""The benchmark's traffic, generated before any clock starts.

Pure: frames are built from a seed, so every variant of a run receives the
same bytes, and the server only has to write pre-encoded WebSocket frames
(its own cost stays out of the figures).

Depth diffs come from the simulator's random-walk book (1-3 changed levels
per diff, prices and quantities as exact JSON numbers); a pool of rendered
diffs is reused with fresh, contiguous sequence numbers, since generating
each of a few hundred thousand diffs would take longer than sending them.
tastytrade ``Order`` notifications follow the venue's documented shape
(a routed order, then a filled one with two fills), with a fresh order id and
timestamps per event.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from connector.simulators.book_model import MarketModel, render_depth, render_snapshot

ACCOUNT = "5WT00001"
"""The account every benchmark ``Order`` belongs to (its Kafka key)."""

_SEQUENCE_FIELD = '"sequence_number":'


@dataclass(frozen=True, slots=True)
class DepthFeed:
    """One asset's traffic: the REST snapshot and the diffs that follow it, in order."""

    asset: str
    snapshot: str
    """``GET /marketdepth/{asset}`` body; its sequence number precedes the first diff's."""
    frames: tuple[bytes, ...]


def depth_feed(asset: str, count: int, *, seed: int = 1, pool: int = 2_000) -> DepthFeed:
    """``count`` contiguous depth diffs for ``asset`` and the snapshot they follow."""
    if count < 0:
        raise ValueError("count must not be negative")
    model = MarketModel([asset], seed=seed)
    snapshot = model.snapshot(asset)
    bodies = []
    for _ in range(max(1, min(pool, count))):
        text = render_depth(model.step_depth(asset))
        head, sep, _tail = text.rpartition(_SEQUENCE_FIELD)
        if not sep:
            raise AssertionError("a rendered diff carries its sequence number last")
        bodies.append(head + sep)
    first = snapshot.sequence_number + 1
    frames = tuple(f"{bodies[i % len(bodies)]}{first + i}}}".encode() for i in range(count))
    return DepthFeed(asset, render_snapshot(snapshot), frames)


def sequence_of(frame: bytes) -> int:
    """The sequence number of a depth frame built by :func:`depth_feed`."""
    text = frame.decode()
    return int(text[text.rindex(_SEQUENCE_FIELD) + len(_SEQUENCE_FIELD) : -1])


_ORDER_BASE: dict[str, Any] = {
    "account-number": ACCOUNT,
    "time-in-force": "Day",
    "order-type": "Limit",
    "size": 100,
    "price": "227.45",
    "price-effect": "Debit",
    "underlying-symbol": "AAPL",
    "underlying-instrument-type": "Equity",
    "cancellable": True,
    "editable": True,
    "edited": False,
    "global-request-id": "6f1c2a9e0b7d4c3f9a8e5d2c1b0a9f8e",
    "received-at": "2026-03-10T14:31:05.112+00:00",
    "source": "my-app/1.0",
}


def _order(order_id: int, updated_ms: int, filled: bool) -> dict[str, Any]:
    fills = (
        [
            {
                "fill-id": f"2_TW::XNAS1::20260310.{order_id}-FILL",
                "ext-group-fill-id": "0",
                "ext-exec-id": str(order_id),
                "quantity": 60,
                "fill-price": "227.41",
                "filled-at": "2026-03-10T14:31:05.655+00:00",
                "destination-venue": "XNAS",
            },
            {
                "fill-id": f"2_TW::XNAS1::20260310.{order_id + 1}-FILL",
                "ext-group-fill-id": "0",
                "ext-exec-id": str(order_id + 1),
                "quantity": 40,
                "fill-price": "227.42",
                "filled-at": "2026-03-10T14:31:05.899+00:00",
                "destination-venue": "XNAS",
            },
        ]
        if filled
        else []
    )
    return {
        "id": order_id,
        **_ORDER_BASE,
        "status": "Filled" if filled else "Routed",
        "cancellable": not filled,
        "editable": not filled,
        "updated-at": updated_ms,
        **({"terminal-at": "2026-03-10T14:31:05.905+00:00"} if filled else {}),
        "legs": [
            {
                "instrument-type": "Equity",
                "symbol": "AAPL",
                "quantity": 100,
                "remaining-quantity": 0 if filled else 100,
                "action": "Buy to Open",
                "fills": fills,
            }
        ],
    }


def order_frames(count: int, *, first_id: int = 412_345_678) -> tuple[bytes, ...]:
    """``count`` ``Order`` notifications: each order routed, then filled."""
    if count < 0:
        raise ValueError("count must not be negative")
    start_ms = 1_773_153_065_163
    frames = []
    for i in range(count):
        order_id = first_id + i // 2
        updated_ms = start_ms + i
        envelope = {
            "type": "Order",
            "data": _order(order_id, updated_ms, filled=i % 2 == 1),
            "timestamp": updated_ms + 57,
        }
        frames.append(json.dumps(envelope, separators=(",", ":")).encode())
    return tuple(frames)


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked, final WebSocket text frame (RFC 6455 §5.2), as a server sends it."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 127, length)
    return header + payload


def chunks(frames: Sequence[bytes], size: int) -> Iterator[bytes]:
    """Consecutive frames joined ``size`` at a time (the last chunk may be shorter)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    for start in range(0, len(frames), size):
        yield b"".join(frames[start : start + size])


def due(rate: float, elapsed_s: float, total: int) -> int:
    """How many of ``total`` frames a paced sender should have sent after ``elapsed_s``."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    return min(total, int(rate * max(0.0, elapsed_s)) + 1)
