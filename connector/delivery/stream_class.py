"""How each stream may be treated when the spool reaches its budget.

Account streams carry events no baseline can restore: they are never shed,
their readers wait for room instead. Depth can always be rebuilt from a
snapshot, so its handler sheds under a GAP (the sink only has to accept the
GAP itself). Public trades and klines are shed under a counted marker.
"""

from __future__ import annotations

import enum


class StreamClass(enum.Enum):
    ACCOUNT = "account"
    """Never shed: a full spool makes the reader wait; committed before it reads on."""
    DEPTH = "depth"
    """Shed by its handler under a GAP; whatever reaches the sink is accepted."""
    MARKET = "market"
    """Shed by the sink above the watermark, under a counted marker."""


_MARKET = {"tplus.trades": StreamClass.MARKET, "tplus.klines": StreamClass.MARKET}


def stream_class(stream: str) -> StreamClass:
    """The class of a stream name; an unknown one is an account stream (never shed)."""
    if stream == "tplus.depth":
        return StreamClass.DEPTH
    return _MARKET.get(stream, StreamClass.ACCOUNT)
