"""The T+ market-data simulator as a standalone server, for deploy/compose.yaml.

It gives the compose stack a venue to bridge without any account: depth
diffs with snapshots, trades and klines over a seeded random-walk market.
Settings come from the environment: SIM_HOST (0.0.0.0), SIM_PORT (8011),
SIM_ASSETS (1,2). Stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from connector.simulators.tplus_market import TplusMarketSimulator


async def serve() -> None:
    assets = [a.strip() for a in os.environ.get("SIM_ASSETS", "1,2").split(",") if a.strip()]
    simulator = TplusMarketSimulator(
        assets,
        host=os.environ.get("SIM_HOST", "0.0.0.0"),
        port=int(os.environ.get("SIM_PORT", "8011")),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with simulator:
        print(f"TPLUS_MDS_URL={simulator.base_url}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve())
