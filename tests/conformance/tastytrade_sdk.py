"""The official ``tastytrade`` SDK reading the tastytrade simulator; run in the SDK's own venv.

Reads its job as JSON on stdin (URLs, accounts, OAuth secrets, how much to
read) and prints one JSON report on stdout: objects per type and origin,
every validation error and every message the SDK logged and skipped.

The SDK is used as shipped, with two observation points and nothing
replaced: a tap on the socket's ``receive_json`` sees each frame's origin
(single or ``results`` batch), and the SDK's own ``_map_message`` is wrapped
so a validation error is counted instead of ending the streamer (as it does
unmodified). The SDK's reader ignores ``results`` batches (it looks only at
``type``), so the tap hands each batched notification to that same
``_map_message``; the report counts the batch frames the SDK would have
dropped. Types the SDK has no model for are logged by it ("Unknown message
type") and counted as skips; OrderChain objects are also returned raw, for
the check against the last SDK release that modelled them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import tastytrade
from httpx2.websockets import HTTPXWSException, WebSocketDisconnect
from pydantic import ValidationError
from tastytrade import Account, AlertStreamer, Session
from tastytrade.streamer import MAP_ALERTS
from tastytrade.utils import TastytradeError

MAX_RAW_CHAINS = 500


class SkipLog(logging.Handler):
    """Every message the SDK logs about a message it did not turn into an object."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.skipped: Counter[str] = Counter()
        self.warnings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Unknown message type"):
            self.skipped[message.split()[3]] += 1
        elif record.levelno >= logging.WARNING:
            self.warnings.append(message[:300])


class Report:
    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = {}
        self.errors: list[str] = []
        self.batch_frames_sdk_drops = 0
        self.order_chains: list[dict[str, Any]] = []

    def count(self, kind: str, origin: str) -> None:
        self.counts.setdefault(kind, Counter())[origin] += 1

    def error(self, kind: str, origin: str, exc: Exception) -> None:
        self.errors.append(f"{kind} ({origin}): {exc}"[:600])


def _enough(report: Report, want: int, kinds: list[str]) -> bool:
    return all(
        report.counts.get(k, Counter())[origin] >= want
        for k in kinds
        for origin in ("single", "batched")
    )


def _balanced(report: Report) -> bool:
    """Every object the SDK mapped has come out of its ``listen()`` queue."""
    return all(
        c["parsed"] == c["single"] + c["batched"]
        for k, c in report.counts.items()
        if k in MAP_ALERTS
    )


async def _stream(
    session: Session, job: dict[str, Any], report: Report, accounts: list[Any]
) -> None:
    streamer = AlertStreamer(session)
    streamer.base_url = job["streamer_url"]
    enough = asyncio.Event()
    progress = asyncio.Event()
    parked = asyncio.Event()
    async with streamer:
        sdk_map: Callable[[str, dict[str, Any]], Awaitable[None]] = streamer._map_message
        origin = ["single"]

        async def mapped(type_str: str, data: dict[str, Any]) -> None:
            if type_str == "OrderChain" and len(report.order_chains) < MAX_RAW_CHAINS:
                report.order_chains.append(data)
            try:
                await sdk_map(type_str, data)
            except ValidationError as exc:
                report.error(type_str, origin[0], exc)
                return
            report.count(type_str, origin[0])
            if _enough(report, job["min_per_type"], job["stream_types"]):
                enough.set()

        streamer._map_message = mapped
        socket = streamer._websocket
        receive = socket.receive_json

        async def tapped() -> Any:
            while True:
                if enough.is_set():
                    # Read no more, so the SDK's queues can drain to a final count.
                    parked.set()
                    await asyncio.Event().wait()
                frame = await receive()
                results = frame.get("results") if isinstance(frame, dict) else None
                if not isinstance(results, list):
                    return frame
                # The SDK's reader would drop this frame: it has no "type".
                report.batch_frames_sdk_drops += 1
                origin[0] = "batched"
                try:
                    for item in results:
                        await mapped(item["type"], item["data"])
                finally:
                    origin[0] = "single"

        socket.receive_json = tapped

        async def consume(kind: str, cls: Any) -> None:
            async for obj in streamer.listen(cls):
                if not isinstance(obj, cls):
                    report.error(kind, "listen", TypeError(type(obj).__name__))
                report.count(kind, "parsed")
                progress.set()

        consumers = [asyncio.create_task(consume(k, c)) for k, c in MAP_ALERTS.items()]
        await streamer.subscribe_accounts(accounts)
        await streamer.subscribe_quote_alerts()
        await streamer.subscribe_public_watchlists()
        try:
            async with asyncio.timeout(job["deadline_s"]):
                await enough.wait()
                await parked.wait()  # the SDK's reader maps nothing more
                while not _balanced(report):
                    progress.clear()
                    await progress.wait()
        except TimeoutError:
            report.errors.append(f"deadline: not every type seen {job['min_per_type']}x")
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)


async def _rest(session: Session, accounts: list[Any], report: Report) -> None:
    calls: dict[str, Callable[[Any], Awaitable[Any]]] = {
        "AccountBalance": lambda a: a.get_balances(session),
        "CurrentPosition": lambda a: a.get_positions(session),
        "Order": lambda a: a.get_live_orders(session),
        "ComplexOrder": lambda a: a.get_live_complex_orders(session),
        "TradingStatus": lambda a: a.get_trading_status(session),
    }
    for account in accounts:
        for kind, call in calls.items():
            try:
                found = await call(account)
            except ValidationError as exc:
                report.error(kind, "rest", exc)
                continue
            for _ in found if isinstance(found, list) else [found]:
                report.count(kind, "rest")


async def main() -> dict[str, Any]:
    job = json.loads(sys.stdin.read())
    skips = SkipLog()
    logging.getLogger("tastytrade").addHandler(skips)
    report = Report()
    session = Session(provider_secret=job["client_secret"], refresh_token=job["refresh_token"])
    session._client.base_url = job["api_url"]
    async with session:
        await session.refresh(force=True)
        refreshed = session.session_token != "kyrieeleison"
        # Only the number is read by the calls below; the simulator has no /customers API.
        accounts = [Account.model_construct(account_number=n) for n in job["accounts"]]
        try:
            await _stream(session, job, report, accounts)
        except* (WebSocketDisconnect, HTTPXWSException, TastytradeError) as failure:
            # Reported, not raised: the REST checks and the counts so far still run and print.
            report.errors.extend(f"streamer stopped: {e!r}"[:600] for e in failure.exceptions)
        await _rest(session, accounts, report)
    return {
        "sdk": f"tastytrade {tastytrade.VERSION}",
        "oauth_refreshed": refreshed,
        "counts": {k: dict(v) for k, v in sorted(report.counts.items())},
        "errors": report.errors,
        "skipped": dict(skips.skipped),
        "sdk_warnings": skips.warnings,
        "batch_frames_sdk_drops": report.batch_frames_sdk_drops,
        "order_chains": report.order_chains,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
