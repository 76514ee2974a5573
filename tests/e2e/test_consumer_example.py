"""The consumers' guide example, run as printed against a production-mode connector.

Schemas are registered the way a deploy pipeline does (``connector schemas register``),
the connector runs lookup-only (``schema_registry.auto_register: false``), and
``docs/examples/depth_consumer.py`` joins each book after the fact through
``connector.readers.BookReader`` (confluent-kafka's DeserializingConsumer and
AvroDeserializer): from the latest checkpoint on ``tplus.books``, then ``tplus.depth``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

from connector.app import Connector, RuntimeInfo
from connector.cli import main
from connector.dev import dev_settings
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.readers.depth_book import DepthBook
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
        for topic in (
            "tplus.depth",
            "tplus.trades",
            "tplus.klines",
            "tplus.books",
            "connector.dlq",
        ):
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

            def caught_up(asset: str) -> Callable[[DepthBook], bool]:
                def done(book: DepthBook) -> bool:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"book {asset} at {book.sequence}")
                    return book.sequence == final[asset]

                return done

            books = {
                asset: await asyncio.to_thread(
                    example.follow_book,
                    cluster.bootstrap_servers,
                    registry_url,
                    asset,
                    caught_up(asset),
                )
                for asset in ASSETS
            }
        finally:
            stop.set()
            assert await asyncio.wait_for(task, timeout=30) == 0
            await sim.stop()
    for asset in ASSETS:
        venue = sim.book(asset)
        assert books[asset].valid
        assert books[asset].quantities() == (venue.bids, venue.asks)


def test_the_example_shows_the_top_of_a_valid_book_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = _load_example()
    snapshot, diff, gap = json.loads((EXAMPLE.parent / "tplus.depth.json").read_text())
    book = DepthBook("1")
    for value in (snapshot, diff):
        book.apply(value)
        assert example.show(book) is False
    book.apply(gap)
    example.show(book)
    shown = capsys.readouterr().out.split("\r")
    best_bid = max(Decimal(level["price"]) for level in diff["bids"] + snapshot["bids"])
    assert shown[:2] == ["1#1041 3862.4/3863.0", f"1#1042 {best_bid}/3863.0"]
    assert shown[2:] == [""]  # nothing for the invalid book
