"""The receive-path benchmark on a few bursts, so it cannot rot (no timing asserted)."""

from __future__ import annotations

from connector.bench.receive import ASSEMBLER, DIRECT, measure, render


async def test_two_rounds_measure_both_readers_and_print_their_ratio() -> None:
    figures = await measure(frames=1_000, rounds=2)
    assert set(figures.rounds) == {ASSEMBLER, DIRECT}
    assert all(len(values) == 2 and min(values) > 0 for values in figures.rounds.values())
    table = render(figures)
    assert f"| {DIRECT} |" in table and "median of same-round ratios" in table
    assert figures.ratio() > 0
