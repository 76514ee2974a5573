"""Which Avro schema each stream is written with, read from ``schemas/``.

The ``.avsc`` files are the source of truth. In a wheel they are shipped
inside the package (``connector/_schemas``); in a source checkout they are
read from the top-level ``schemas/`` folder.
"""

from __future__ import annotations

import json
from pathlib import Path

STREAM_SCHEMAS: dict[str, str] = {
    "tplus.depth": "tplus/DepthEvent.avsc",
    "tplus.trades": "tplus/Trade.avsc",
    "tplus.klines": "tplus/Kline.avsc",
    "tplus.books": "tplus/BookCheckpoint.avsc",
    "tplus.orders": "tplus/OrderEvent.avsc",
    "tplus.user-trades": "tplus/UserTrade.avsc",
    "tastytrade.orders": "tastytrade/Order.avsc",
    "tastytrade.complex-orders": "tastytrade/ComplexOrder.avsc",
    "tastytrade.balances": "tastytrade/AccountBalance.avsc",
    "tastytrade.positions": "tastytrade/CurrentPosition.avsc",
    "tastytrade.trading-status": "tastytrade/TradingStatus.avsc",
    "tastytrade.external-transactions": "tastytrade/ExternalTransaction.avsc",
    "tastytrade.year-gain-summaries": "tastytrade/UnderlyingYearGainSummary.avsc",
    "tastytrade.order-chains": "tastytrade/OrderChain.avsc",
    "tastytrade.quote-alerts": "tastytrade/QuoteAlert.avsc",
    "tastytrade.public-watchlists": "tastytrade/PublicWatchlist.avsc",
}


def schemas_dir() -> Path:
    """The folder holding the ``.avsc`` files of this installation."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "_schemas"
    if packaged.is_dir():
        return packaged
    return package.parent / "schemas"


def schema_text(stream: str, root: Path | None = None) -> str:
    """The schema of a stream as compact JSON text, ready to register."""
    path = (root or schemas_dir()) / STREAM_SCHEMAS[stream]
    return json.dumps(json.loads(path.read_text(encoding="utf-8")), separators=(",", ":"))
