"""The consumers' guide example, run as printed against a production-mode connector.

Schemas are registered the way a deploy pipeline does (``connector schemas register``),
the connector runs lookup-only (``schema_registry.auto_register: false``), and
``docs/examples/depth_consumer.py`` rebuilds the books through a consumer group with
confluent-kafka's DeserializingConsumer and AvroDeserializer.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

from connector.app import Connector, RuntimeInfo
from connector.cli import main
from connector.dev import dev_settings
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.settings import parse_settings
from connector.simulators.tplus_market import TplusMarketSimulator
from tests.kafka_reader import Consumed, TopicReader

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "depth_consumer.py"
ASSETS = ["1", "2"]


def _diffs(records: dict[str, list[Consumed]]) -> int:
    return sum(r.value["kind"] == "DIFF" for r in records["tplus.depth"])


def _resynced_after_gap(records: dict[str, list[Consumed]]) -> bool:
    kinds = [r.value["kind"] for r in records["tplus.depth"] if r.key == "1"]
    return "GAP" in kinds and "SNAPSHOT" in kinds[kinds.index("GAP") :]


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("depth_consumer", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_guide_example_rebuilds_the_venue_books() -> None:
    example = _load_example()
    with MockCluster(brokers=1) as cluster, RegistryServer() as registry:
        registry_url = registry.start()
        for topic in ("tplus.depth", "tplus.trades", "tplus.klines", "connector.dlq"):
            cluster.create_topic(topic, partitions=3)
        assert (
            await asyncio.to_thread(main, ["schemas", "register", "--registry", registry_url]) == 0
        )
        sim = TplusMarketSimulator(
            ASSETS, seed=3, depth_interval_s=0.01, trade_interval_s=0.05, kline_interval_s=0.05
        )
        venue_url = await sim.start()
        sim.pause()
        data = dev_settings(cluster.bootstrap_servers, registry_url, venue_url, ASSETS, 0)
        settings = parse_settings(
            {
                **data.model_dump(mode="json"),
                "schema_registry": {"url": registry_url, "auto_register": False},
            }
        )
        stop = asyncio.Event()
        started: asyncio.Future[RuntimeInfo] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(Connector(settings).run(stop, on_started=started.set_result))
        try:
            await asyncio.wait_for(asyncio.shield(started), timeout=30)
            for asset in ASSETS:
                await asyncio.wait_for(sim.wait_connected(f"/marketdepth/diff/{asset}"), 20)
            sim.resume()
            reader = TopicReader(cluster.bootstrap_servers, registry_url, ["tplus.depth"])
            try:
                await asyncio.to_thread(reader.poll_until, lambda rs: _diffs(rs) >= 40)
                sim.skip_sequence("1", 2)  # a GAP, then a fresh SNAPSHOT, for asset 1
                await asyncio.to_thread(reader.poll_until, _resynced_after_gap)
            finally:
                reader.close()
            sim.pause()
            final = {a: sim.emitted.depth[a][-1].sequence_number for a in ASSETS}
            deadline = time.monotonic() + 30

            def caught_up(books: dict[str, Any]) -> bool:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"books at { {a: b.sequence for a, b in books.items()} }")
                return all(a in books and books[a].sequence == final[a] for a in ASSETS)

            books = await asyncio.to_thread(
                example.follow_books,
                cluster.bootstrap_servers,
                registry_url,
                "guide-example",
                caught_up,
            )
        finally:
            stop.set()
            assert await asyncio.wait_for(task, timeout=30) == 0
            await sim.stop()
    for asset in ASSETS:
        venue = sim.book(asset)
        assert books[asset].valid
        assert (books[asset].bids, books[asset].asks) == (dict(venue.bids), dict(venue.asks))


def test_the_example_book_follows_the_guide_rules_on_the_example_records() -> None:
    example = _load_example()
    snapshot, diff, gap = json.loads((EXAMPLE.parent / "tplus.depth.json").read_text())
    book = example.Book()
    book.apply(diff)
    assert not book.valid and book.bids == {}  # nothing to apply a DIFF to yet
    book.apply(snapshot)
    book.apply(diff)
    assert book.valid and book.sequence == diff["sequence_number"]
    assert book.bids[Decimal("3862.4")] == Decimal("1.75")
    assert book.asks[Decimal("3863.3")] == Decimal("1.2")
    book.apply(gap)
    assert not book.valid
    book.apply({**diff, "sequence_number": 1046})
    assert book.sequence == diff["sequence_number"]  # ignored until the next SNAPSHOT
    book.apply({**diff, "kind": "DIFF", "bids": [{"price": "3862.4", "quantity": "0"}]})
    assert Decimal("3862.4") in book.bids
