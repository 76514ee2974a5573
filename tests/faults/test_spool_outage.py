"""All brokers down with depth and tastytrade in one connector: the spool loses nothing.

Scaled from the issue's harness (120 s outage, depth at 3,000/s, tastytrade at
200/s, the default 100k producer queue) to a suite-sized run with the same
shape: an outage of about 8 s (OUTAGE_EVENTS account events), two books with
a diff due every 5 ms each, tastytrade stepping every 10 ms (one or more
notifications a step), and a producer queue of 500 records so the outage
outlasts it within a second, as the default queue was outlasted in the
original. The counts are what the simulators actually wrote. Every
other setting is the default (spool on, account streams synchronous=FULL).

Every event the simulators wrote to a socket is accounted for: account
events delivered (0 missing), diffs published or under a GAP.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import pytest

from connector.app import Connector
from connector.simulators.tastytrade import connector_environ
from tests.faults.harness import Row
from tests.faults.spool_stack import (
    Settled,
    Venues,
    account,
    read_all,
    scrape,
    settings,
    start_process,
    tasty_silence,
    venues,
    without_event_id,
)
from tests.running import running_connector

OUTAGE_EVENTS = 1500
"""Account events sent while the brokers are down: about 8 s of this simulator."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _outage_traffic(v: Venues) -> None:
    """Brokers down while the venues send OUTAGE_EVENTS more account events (and depth)."""
    sent = len(v.tasty.sent)
    v.cluster.set_broker_down(-1)
    await v.tasty.wait_until(lambda: len(v.tasty.sent) >= sent + OUTAGE_EVENTS, 60)


async def _read_everything_sent(port: int) -> None:
    """With the venues paused: until the connector has read past the pause on tastytrade.

    The next heartbeat reply follows every notification on the socket, and the
    reader takes a frame only after the previous one is committed to the spool.
    """
    paused_at = asyncio.get_running_loop().time()
    for _ in range(400):
        metrics = await scrape(port)
        silence = tasty_silence(metrics)
        if silence is not None and silence < asyncio.get_running_loop().time() - paused_at - 0.1:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the connector never read past the pause")


async def _wait_for_process(port: int) -> None:
    for _ in range(600):
        if "connector_ready" in await scrape(port):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the connector process never served /metrics")


async def test_all_brokers_down_with_depth_and_tastytrade_in_one_process(
    tmp_path: Path, fault_report: list[Row]
) -> None:
    async with venues() as v:
        connector = Connector(settings(v, tmp_path / "spool"), environ=connector_environ(v.tasty))
        async with running_connector(connector, stop_timeout_s=60):
            await v.tasty.wait_until(lambda: len(v.tasty.sent) >= 50, 30)
            await _outage_traffic(v)
            v.cluster.set_broker_up(-1)
            await v.tasty.wait_until(lambda: len(v.tasty.sent) >= 50, 30)
            v.pause()
            records = await asyncio.to_thread(read_all, v, Settled(v), 90)
    row = account(v, records, Row("spool: brokers down, depth + tastytrade"))
    fault_report.append(row)
    assert row.missing == 0 and row.duplicates == 0, row
    assert without_event_id(records) == 0


async def _signal_during_outage_then_restart(
    v: Venues, spool_dir: Path, sig: signal.Signals
) -> dict[str, list]:  # type: ignore[type-arg]
    port = _free_port()
    proc = await start_process(v, spool_dir, port)
    try:
        await _wait_for_process(port)
        await v.tasty.wait_until(lambda: len(v.tasty.sent) >= 50, 30)
        await _outage_traffic(v)
        v.pause()
        await _read_everything_sent(port)
        proc.send_signal(sig)
        code = await asyncio.wait_for(proc.wait(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == (0 if sig is signal.SIGTERM else -signal.SIGKILL)
    v.cluster.set_broker_up(-1)
    again = await start_process(v, spool_dir, _free_port())
    try:
        v.market.resume()
        v.tasty.resume()
        await v.tasty.wait_until(lambda: len(v.tasty.live_clients()) == 1, 30)
        await v.tasty.wait_until(lambda: len(v.tasty.sent) >= 50, 30)
        v.pause()
        return await asyncio.to_thread(read_all, v, Settled(v), 90)
    finally:
        again.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(again.wait(), timeout=30) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_signal_during_an_outage_then_a_restart_loses_nothing(
    sig: signal.Signals, tmp_path: Path, fault_report: list[Row]
) -> None:
    async with venues() as v:
        records = await _signal_during_outage_then_restart(v, tmp_path / "spool", sig)
    row = account(v, records, Row(f"spool: {sig.name} in an outage, restart"))
    if row.duplicates:
        row.notes.append("duplicates: acknowledged before the kill, their rows not yet deleted")
    fault_report.append(row)
    assert row.missing == 0, row
    # A kill may leave acknowledged rows behind, replayed as duplicates; a SIGTERM does not.
    assert sig is signal.SIGKILL or row.duplicates == 0, row
    # Each record, a duplicate too, carries the event id that names it.
    assert without_event_id(records) == 0
