"""The T+ simulators as the official ``tpluspy`` SDK reads them.

The SDK (pinned in ``sdks.txt``; it needs ``websockets<14``, so it has its
own environment) runs against a market-data and an OMS simulator in this
test's event loop, for two accounts whose keys the test made. Every object
must parse with the SDK's models, every ``Created`` signature must verify
against ``Order.signable_part()``, and the SDK must log no skipped message.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connector.simulators.tplus_market import TplusMarketSimulator
from connector.simulators.tplus_oms import TplusOmsSimulator, seed_hex
from tests.conformance.conftest import Record
from tests.conformance.runner import run_sdk

ASSETS = [
    "1",
    "82af49447d8a07e3bd95bd0d56f35241523fbab1000000000000000000000000@00000000000000a4b1",
]
"""An index and an address-form market (the SDK puts its canonical text in the paths)."""
MIN_EVENTS = 50
ORDER_VARIANTS = (  # every variant the simulator emits, as the SDK names them
    "CREATED",
    "REPLACED",
    "AMENDED",
    "REMOVED",
    "CANCELED",
    "TRIGGERED",
    "CREATEFAILED",
    "REPLACEFAILED",
    "AMENDFAILED",
    "CANCELFAILED",
)


async def test_every_object_the_sdk_reads_validates(
    tpluspy_python: Path, conformance_counts: Record
) -> None:
    keys = [Ed25519PrivateKey.generate() for _ in range(2)]
    market = TplusMarketSimulator(
        ASSETS, seed=5, depth_interval_s=0.01, trade_interval_s=0.02, kline_interval_s=0.05
    )
    oms = TplusOmsSimulator(keys, seed=5, interval_s=0.005)
    mds_url = await market.start()
    oms_url = await oms.start()
    try:
        job = {
            "mds_url": mds_url,
            "oms_url": oms_url,
            "assets": ASSETS,
            "account_keys": [seed_hex(k) for k in keys],
            "min_events": MIN_EVENTS,
            "order_variants": list(ORDER_VARIANTS),
            "oms_assets": [oms.model.asset],
            "deadline_s": 90,
        }
        report = await run_sdk(tpluspy_python, "tpluspy_sdk.py", job)
    finally:
        await oms.stop()
        await market.stop()
    counts = report["counts"]
    conformance_counts(
        f"{report['sdk']} against the T+ simulators (2 accounts)",
        [f"{kind}: {n}" for kind, n in counts.items()],
    )

    assert report["errors"] == []
    assert report["sdk_skips"] == []
    assert counts["OrderBook (snapshot)"] == len(ASSETS)
    for asset in ASSETS:
        assert counts[f"OrderBookDiff {asset}"] >= MIN_EVENTS
        assert counts[f"Timebar {asset}"] >= MIN_EVENTS
    assert counts["Trade"] >= MIN_EVENTS
    for variant in ORDER_VARIANTS:
        assert counts[f"OrderEvent {variant}"] >= 1, variant
    assert counts["Created signatures verified"] == counts["OrderEvent CREATED"]
    for shape in ("array", "page object"):
        # Nothing answered was dropped by the SDK's parser (it logs and skips a bad order).
        assert counts[f"OrderResponse ({shape})"] == counts[f"open orders answered ({shape})"]
    assert counts["OrderResponse (array)"] > 0
    assert sum(n for kind, n in counts.items() if kind.startswith("UserTrade (stream)")) >= 2 * (
        MIN_EVENTS
    )
    assert counts["UserTrade (REST)"] > 0
    assert counts["Market (book decimals)"] == len(keys)  # each account's client asked once
