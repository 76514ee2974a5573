"""The gate that keeps a source's steps and their records in order."""

from __future__ import annotations

import asyncio

import pytest

from connector.sources.step_gate import StepGate


async def test_an_open_gate_lets_a_step_through_without_waiting() -> None:
    gate = StepGate()
    assert not gate.shut
    await asyncio.wait_for(gate.wait_open(), timeout=1)


async def test_waiters_resume_only_after_the_held_step_is_done() -> None:
    gate = StepGate()
    release = asyncio.Event()
    order: list[str] = []

    async def held_step() -> None:
        await release.wait()
        order.append("held")

    holding = gate.hold(held_step())
    assert gate.shut
    holder = asyncio.ensure_future(holding)

    async def next_step() -> None:
        await gate.wait_open()
        order.append("next")

    waiter = asyncio.ensure_future(next_step())
    done, _ = await asyncio.wait([waiter], timeout=0.05)
    assert not done and order == []
    release.set()
    await asyncio.wait_for(asyncio.gather(holder, waiter), timeout=1)
    assert order == ["held", "next"]
    assert not gate.shut


async def test_a_cancelled_waiter_leaves_the_holder_alone() -> None:
    gate = StepGate()
    release = asyncio.Event()
    holder = asyncio.ensure_future(gate.hold(release.wait()))
    waiter = asyncio.ensure_future(gate.wait_open())
    await asyncio.wait([waiter], timeout=0.01)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert gate.shut and not holder.done()
    release.set()
    await asyncio.wait_for(holder, timeout=1)
    assert not gate.shut


async def test_a_step_that_fails_reopens_the_gate() -> None:
    gate = StepGate()

    async def failing() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await gate.hold(failing())
    assert not gate.shut


async def test_holding_a_shut_gate_is_a_bug() -> None:
    gate = StepGate()
    release = asyncio.Event()
    holder = asyncio.ensure_future(gate.hold(release.wait()))
    second = release.wait()
    with pytest.raises(RuntimeError):
        gate.hold(second)
    second.close()
    release.set()
    await holder
