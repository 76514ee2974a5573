"""A source task that dies is restarted, counted and shown not ready; a fatal error ends all."""

from __future__ import annotations

import asyncio
import random

import pytest

from connector.ops.health import Condition, Health
from connector.ops.metrics import Metrics
from connector.sources.supervisor import Supervisor, Unrecoverable
from tests.conftest import sample
from tests.fakes import FlakyService


class Fatal(Exception):
    pass


def _supervisor(metrics: Metrics, health: Health) -> Supervisor:
    return Supervisor(
        metrics, health, random.Random(1), fatal=(Fatal,), initial_s=0.001, max_s=0.004
    )


async def test_a_dying_task_is_restarted_counted_and_shown_not_ready_meanwhile(
    metrics: Metrics, health: Health
) -> None:
    seen: list[tuple[str, Condition]] = []
    health.add_listener(lambda name, condition: seen.append((name, condition)))
    broken = FlakyService("depth", 3, KeyError("frame text that must not be logged"))
    steady = FlakyService("trades", 0, KeyError())
    task = asyncio.create_task(_supervisor(metrics, health).run([broken, steady]))
    async with asyncio.timeout(10):
        await broken.running.wait()
        await steady.running.wait()
    assert (broken.runs, steady.runs) == (4, 1)
    labels = {"venue": "tplus", "stream": "depth", "reason": "KeyError"}
    assert sample(metrics, "connector_task_restarts_total", **labels) == 3
    assert [c.ok for name, c in seen if name == "task.tplus.depth.1"] == [False, True] * 3
    assert seen[0][1].detail == "restarting after KeyError"
    assert health.ready()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_task_that_returns_is_restarted_too(metrics: Metrics, health: Health) -> None:
    service = FlakyService("klines", 1, KeyError(), returns=True)
    task = asyncio.create_task(_supervisor(metrics, health).run([service]))
    async with asyncio.timeout(10):
        await service.running.wait()
    labels = {"venue": "tplus", "stream": "klines", "reason": "returned"}
    assert sample(metrics, "connector_task_restarts_total", **labels) == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_fatal_error_ends_every_task_with_one_line_saying_why(
    metrics: Metrics, health: Health
) -> None:
    doomed = FlakyService("depth", 1, Fatal("the sink is closed"))
    other = FlakyService("trades", 0, KeyError())
    with pytest.raises(Unrecoverable) as caught:
        async with asyncio.timeout(10):
            await _supervisor(metrics, health).run([doomed, other])
    assert str(caught.value) == "tplus.depth.1 cannot go on: Fatal: the sink is closed"
    assert other.runs == 1 and doomed.runs == 1


async def test_no_services_waits_until_cancelled(metrics: Metrics, health: Health) -> None:
    task = asyncio.create_task(_supervisor(metrics, health).run([]))
    await asyncio.sleep(0)  # one turn of the loop: the task starts, and must not end
    assert not task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
