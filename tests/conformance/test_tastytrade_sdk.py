"""The tastytrade simulator as the official ``tastytrade`` SDK reads it.

The SDK (pinned in ``sdks.txt``) runs in its own environment against a
simulator in this test's event loop: an OAuth refresh, the account streamer
for every notification type, singly and in ``results`` batches, and the
account REST calls. Every object must validate against the SDK's model and
the SDK must log no skipped message, except OrderChain: 13.x has no model
for it, so those objects are validated against 11.0.5's.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sized
from functools import partial
from pathlib import Path
from typing import Any

from connector.simulators.tastytrade import DEV_ACCOUNTS, TastytradeSimulator
from tests.conformance.conftest import Record
from tests.conformance.runner import run_sdk

STREAM_TYPES = (
    "AccountBalance",
    "ComplexOrder",
    "CurrentPosition",
    "ExternalTransaction",
    "Order",
    "OrderChain",
    "PublicWatchlists",
    "QuoteAlert",
    "TradingStatus",
    "UnderlyingYearGainSummary",
)
REST_TYPES = ("AccountBalance", "CurrentPosition", "Order", "ComplexOrder", "TradingStatus")
UNMODELLED = "OrderChain"
"""The one notification type ``tastytrade`` 13.2.3 has no model for."""
MIN_PER_ORIGIN = 2


async def _alternate_batches(sim: TastytradeSimulator) -> None:
    """Once the SDK has connected: a ``results`` batch of four, then four single frames, over
    and over (a batch only becomes a frame when a client is there to get it)."""
    await sim.wait_until(lambda: bool(sim.live_clients()), timeout_s=60)
    while True:
        sim.batch_next(4)
        await sim.wait_until(partial(_grew, sim.batch_frames, len(sim.batch_frames)), 30)
        await sim.wait_until(partial(_grew, sim.sent, len(sim.sent) + 3), 30)


def _grew(items: Sized, beyond: int) -> bool:
    return len(items) > beyond


def _lines(report: dict[str, Any], chains: dict[str, Any]) -> list[str]:
    lines = []
    for kind, counts in report["counts"].items():
        parts = ", ".join(f"{origin} {n}" for origin, n in sorted(counts.items()))
        lines.append(f"{kind}: {parts}")
    logged = report["skipped"].get(UNMODELLED, 0)
    lines.append(
        f"{UNMODELLED}: no model in {report['sdk']} (it logged {logged} as unknown);"
        f" {chains['validated']} validated against {chains['sdk']}'s model"
    )
    lines.append(
        f"results-batch frames the SDK's own reader drops: {report['batch_frames_sdk_drops']}"
    )
    return lines


async def test_every_object_the_sdk_reads_validates(
    tastytrade_python: Path, orderchain_python: Path, conformance_counts: Record
) -> None:
    sim = TastytradeSimulator(
        DEV_ACCOUNTS, seed=5, event_interval_s=0.01, alert_every=5, watchlist_every=7
    )
    await sim.start()
    batching = asyncio.create_task(_alternate_batches(sim))
    try:
        job = {
            "api_url": sim.api_url,
            "streamer_url": sim.streamer_url,
            "accounts": sorted(sim.model.accounts),
            "refresh_token": sim.refresh_token,
            "client_secret": sim.client_secret,
            "stream_types": list(STREAM_TYPES),
            "min_per_type": MIN_PER_ORIGIN,
            # Under the simulator's 60 s idle timeout: this SDK sends no heartbeats.
            "deadline_s": 45,
        }
        report = await run_sdk(tastytrade_python, "tastytrade_sdk.py", job)
    finally:
        batching.cancel()
        stopped = await asyncio.gather(batching, return_exceptions=True)
        await sim.stop()
    assert isinstance(stopped[0], asyncio.CancelledError), stopped
    chains = await run_sdk(orderchain_python, "orderchain_sdk.py", report["order_chains"])
    conformance_counts(f"{report['sdk']} against the tastytrade simulator", _lines(report, chains))

    assert report["errors"] == []
    assert report["sdk_warnings"] == []
    assert report["oauth_refreshed"]
    counts = report["counts"]
    for kind in STREAM_TYPES:
        assert counts[kind]["single"] >= MIN_PER_ORIGIN, kind
        assert counts[kind]["batched"] >= MIN_PER_ORIGIN, kind
        if kind != UNMODELLED:
            # Every object the SDK mapped came out of its listen() queue as its model.
            assert counts[kind]["parsed"] == counts[kind]["single"] + counts[kind]["batched"]
    # The SDK skipped nothing but the type it has no model for, and each of those.
    streamed_chains = counts[UNMODELLED]["single"] + counts[UNMODELLED]["batched"]
    assert report["skipped"] == {UNMODELLED: streamed_chains}
    assert chains["errors"] == []
    assert chains["validated"] == len(report["order_chains"]) > 0

    served: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for answer in sim.served:
        served[answer.type] += len(answer.items)
        calls[answer.type] += 1
    assert calls == {kind: len(DEV_ACCOUNTS) for kind in REST_TYPES}
    for kind in REST_TYPES:
        assert counts[kind].get("rest", 0) == served[kind], kind
