"""The official ``tpluspy`` SDK reading the T+ simulators; run in the SDK's own venv.

Reads its job as JSON on stdin (the market-data and OMS URLs, the assets, each
account's private key, how much to read) and prints one JSON report on stdout:
objects per type, every parse error, and every message the SDK logged and
skipped (its stream reader logs a message it cannot parse and goes on; its
open-orders parser logs and drops an order that fails validation).

Clients used as shipped: ``MarketDataClient`` for the snapshot, depth, public
trades and klines; one ``OrderBookClient`` per account for its order events,
user-trade events and open orders (both answer shapes: the bare array and
the page object), and the REST user trades through the SDK's own parser.
Every ``Created`` signature is verified against ``Order.signable_part()``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections import Counter
from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError
from tplus.client.market_data import MarketDataClient
from tplus.client.orderbook import OrderBookClient
from tplus.model.asset_identifier import AssetIdentifier
from tplus.utils.user import User

SDK = f"tpluspy {version('tpluspy')}"


class SkipLog(logging.Handler):
    """Every warning or error the SDK logs: each is a message it skipped or could not read."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}"[:600])


class Report:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []

    def error(self, kind: str, exc: BaseException) -> None:
        self.errors.append(f"{kind}: {type(exc).__name__}: {exc}"[:600])


async def _take(stream: AsyncIterator[Any], enough: Any, deadline_s: float) -> None:
    """Read ``stream`` until ``enough()`` holds; the deadline ends a stream that stalls."""
    try:
        async with asyncio.timeout(deadline_s):
            async for item in stream:
                if enough(item):
                    return
    except TimeoutError:
        return


async def _market(job: dict[str, Any], report: Report) -> None:
    want: int = job["min_events"]
    deadline: float = job["deadline_s"]
    client = MarketDataClient(job["mds_url"])
    try:
        for asset in job["assets"]:
            book = await client.get_orderbook_snapshot(AssetIdentifier(asset))
            report.counts["OrderBook (snapshot)"] += 1
            report.counts["OrderBook levels"] += len(book.bids) + len(book.asks)

        def counter(kind: str, size: Any = None) -> Any:
            def enough(item: Any) -> bool:
                report.counts[kind] += 1 if size is None else size(item)
                return bool(report.counts[kind] >= want)

            return enough

        tasks = [
            _take(client.stream_finalized_trades(), counter("Trade"), deadline),
            *(
                _take(
                    client.stream_depth(AssetIdentifier(a)), counter(f"OrderBookDiff {a}"), deadline
                )
                for a in job["assets"]
            ),
            *(
                _take(
                    client.stream_klines(AssetIdentifier(a)), counter(f"Timebar {a}", len), deadline
                )
                for a in job["assets"]
            ),
        ]
        await asyncio.gather(*tasks)
    finally:
        await client.close()


def _signature_ok(event: Any) -> bool:
    signer = Ed25519PublicKey.from_public_bytes(bytes.fromhex(str(event.user_order.signer)))
    try:
        signer.verify(bytes(event.signature), event.user_order.signable_part().encode())
    except InvalidSignature:
        return False
    return True


async def _account(job: dict[str, Any], key_hex: str, report: Report) -> None:
    want: int = job["min_events"]
    deadline: float = job["deadline_s"]
    variants: list[str] = job["order_variants"]
    user = User(private_key=key_hex)
    client = OrderBookClient(job["oms_url"], default_user=user)
    short = str(user.public_key)[:8]
    seen: Counter[str] = Counter()
    """This account's order events per variant."""
    trades = Counter[str]()
    try:

        def order_event(event: Any) -> bool:
            variant = str(event.event_type)
            seen[variant] += 1
            report.counts[f"OrderEvent {variant}"] += 1
            if variant == "CREATED":
                ok = _signature_ok(event)
                report.counts["Created signatures verified" if ok else "Created bad signature"] += 1
                if not ok:
                    report.errors.append(f"{short}: Created {event.order_id}: bad signature")
            return all(seen[v] >= 1 for v in variants) and seen.total() >= want

        def trade_event(trade: Any) -> bool:
            report.counts[f"UserTrade (stream) {trade.status}"] += 1
            trades[str(trade.status)] += 1
            return trades.total() >= want

        await asyncio.gather(
            _take(client.stream_orders(), order_event, deadline),
            _take(client.stream_user_trade_events(), trade_event, deadline),
        )
        missing = [v for v in variants if not seen[v]]
        if missing:
            report.errors.append(f"{short}: order variants never seen: {missing}")
        for label, paging in (("array", {}), ("page object", {"page": 0, "limit": 1000})):
            orders, raw = await client.get_user_orders(**paging)
            report.counts[f"OrderResponse ({label})"] += len(orders)
            report.counts[f"open orders answered ({label})"] += len(raw.get("orders", []))
        for asset in job["oms_assets"]:
            market = await client.get_market(AssetIdentifier(asset))
            report.counts["Market (book decimals)"] += int(str(market.asset_id) == asset)
        recent = await client._get(f"/trades/user/{user.public_key}")
        try:
            report.counts["UserTrade (REST)"] += len(client.parse_user_trades(recent))
        except ValidationError as exc:
            report.error("UserTrade (REST)", exc)
    finally:
        await client.close()


async def main() -> dict[str, Any]:
    job = json.loads(sys.stdin.read())
    skips = SkipLog()
    logging.getLogger("tplus").addHandler(skips)
    report = Report()
    await asyncio.gather(
        _market(job, report), *(_account(job, key, report) for key in job["account_keys"])
    )
    return {
        "sdk": SDK,
        "counts": dict(sorted(report.counts.items())),
        "errors": report.errors,
        "sdk_skips": skips.lines,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
