"""A long broker outage with the spool: memory flat, spool within budget, the policy at the budget.

``python -m connector.bench.soak --minutes 10`` runs the embedded cluster, registry, T+ market
and tastytrade simulators and the connector (spool on, a small budget so it is reached) in one
process, takes every broker down for the given time while the venues keep sending, samples
resident memory and the spool every ``--every`` seconds, then brings the brokers back and
waits until the spool has drained. Outside the test suite: it takes as long as it says.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from connector.app import Connector, RuntimeInfo
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.settings import Settings, parse_settings
from connector.simulators.tastytrade import (
    TastytradeSimulator,
    connector_environ,
    connector_section,
)
from connector.simulators.tplus_market import TplusMarketSimulator
from connector.venues.tastytrade import notifications as n

ASSETS = ["1", "2", "3", "4"]
ACCOUNTS = ["5WT00001", "5WT00002"]


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _sum(connector: Connector, name: str, **labels: str) -> float:
    total = 0.0
    for family in connector.registry.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def _settings(
    cluster: MockCluster,
    registry_url: str,
    market: str,
    tasty: TastytradeSimulator,
    spool: str,
    max_bytes: int,
) -> Settings:
    return parse_settings(
        {
            "name": "soak",
            "kafka": {"bootstrap_servers": cluster.bootstrap_servers, "linger_ms": 5},
            "schema_registry": {"url": registry_url},
            "metrics": {"host": "127.0.0.1", "port": 0},
            "logging": {"level": "WARNING", "json_format": True},
            "spool": {"path": spool, "max_bytes": max_bytes},
            "tplus": {
                "market_data": {"base_url": market, "assets": ASSETS, "kline_interval": "1m"}
            },
            "tastytrade": connector_section(tasty),
        }
    )


async def soak(minutes: float, every_s: float, max_bytes: int, depth_interval_s: float) -> int:
    with MockCluster(brokers=3) as cluster, RegistryServer() as registry:
        registry_url = registry.start()
        topics = [*(f"tplus.{t}" for t in ("depth", "trades", "klines"))]
        topics += sorted(t.stream for t in n.TYPES.values())
        for topic in [*topics, "connector.dlq"]:
            cluster.create_topic(topic, partitions=3, replication_factor=3)
        # Short histories: the simulators share the process, and their memory is not ours.
        market = TplusMarketSimulator(
            ASSETS,
            depth_interval_s=depth_interval_s,
            trade_interval_s=0.01,
            ping_interval_s=None,
            max_history=1000,
        )
        tasty = TastytradeSimulator(ACCOUNTS, event_interval_s=0.01)
        market_url = await market.start()
        await tasty.start()
        with tempfile.TemporaryDirectory(prefix="soak-spool-") as spool:
            settings = _settings(cluster, registry_url, market_url, tasty, spool, max_bytes)
            connector = Connector(settings, environ=connector_environ(tasty))
            stop = asyncio.Event()
            started: asyncio.Future[RuntimeInfo] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(connector.run(stop, on_started=started.set_result))
            await asyncio.wait_for(started, 60)
            await tasty.wait_until(lambda: len(tasty.sent) >= 100, 60)
            print("t_s  rss_mib  spool_mib  spool_records  depth_shed  market_shed  account_sent")
            cluster.set_broker_down(-1)
            begin = time.monotonic()
            rss: list[float] = []
            spool_bytes: list[float] = []
            while time.monotonic() - begin < minutes * 60:
                await asyncio.sleep(every_s)  # a sampling period, not a synchronisation
                rss.append(_rss_mib())
                spool_bytes.append(_sum(connector, "connector_spool_bytes"))
                discarded = "connector_events_discarded_total"
                print(
                    f"{time.monotonic() - begin:4.0f} {rss[-1]:8.1f}"
                    f" {spool_bytes[-1] / 2**20:10.1f}"
                    f" {_sum(connector, 'connector_spool_records'):14.0f}"
                    f" {_sum(connector, discarded, reason='backpressure'):11.0f}"
                    f" {_sum(connector, discarded, reason='spool_full'):12.0f}"
                    f" {len(tasty.sent):13d}",
                    flush=True,
                )
            cluster.set_broker_up(-1)
            drained = time.monotonic()
            for _ in range(3600):  # the connector's own gauge, read once a second, up to 1 h
                if _sum(connector, "connector_spool_records") == 0:
                    break
                await asyncio.sleep(1)
            print(
                f"brokers back: spool drained in {time.monotonic() - drained:.0f} s; RSS "
                f"{min(rss):.0f}-{max(rss):.0f} MiB over the outage; spool peak "
                f"{max(spool_bytes) / 2**20:.1f} MiB of {max_bytes / 2**20:.0f} MiB"
            )
            stop.set()
            await task
        await tasty.stop()
        await market.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m connector.bench.soak", description=__doc__)
    p.add_argument("--minutes", type=float, default=10.0, help="outage length (10)")
    p.add_argument("--every", type=float, default=10.0, help="seconds between samples (10)")
    p.add_argument("--max-bytes", type=int, default=64 << 20, help="spool budget (64 MiB)")
    p.add_argument(
        "--depth-interval", type=float, default=0.001, help="seconds between diffs per book"
    )
    a = p.parse_args(argv)
    return asyncio.run(soak(a.minutes, a.every, a.max_bytes, a.depth_interval))


if __name__ == "__main__":
    sys.exit(main())
