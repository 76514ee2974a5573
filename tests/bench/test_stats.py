"""The arithmetic behind the published figures."""

from __future__ import annotations

import pytest

from connector.bench.stats import (
    Latency,
    RunResult,
    Summary,
    combine,
    format_table,
    hot_spots,
    median,
    percentile,
    same_run_ratios,
)


def test_nearest_rank_percentiles_are_observed_values() -> None:
    values = list(range(1, 1001))  # 1..1000
    assert percentile(values, 50) == 500
    assert percentile(values, 99) == 990
    assert percentile(values, 99.9) == 999
    assert percentile(values, 100) == 1000
    assert percentile([7.0], 99.9) == 7.0
    assert percentile([3, 1, 2], 50) == 2  # unsorted input


@pytest.mark.parametrize("q", [0, -1, 100.5])
def test_a_percentile_outside_0_100_is_refused(q: float) -> None:
    with pytest.raises(ValueError):
        percentile([1.0], q)


def test_no_values_have_no_percentile_or_median() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        median([])


def test_median_of_odd_and_even_counts() -> None:
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5


def test_latency_percentiles_in_milliseconds() -> None:
    lat = Latency.of([1_000_000] * 990 + [5_000_000] * 9 + [20_000_000])
    assert lat == Latency(1.0, 1.0, 5.0)


def _run(events_per_s: float, cpu_s: float = 1.0, p99: float = 1.0) -> RunResult:
    return RunResult(
        events=1_000_000,
        seconds=1_000_000 / events_per_s,
        cpu_s=cpu_s,
        peak_rss_kb=102_400,
        latency=Latency(0.5, p99, 2 * p99),
    )


def test_a_summary_takes_medians_of_runs() -> None:
    s = Summary.of([_run(10_000, p99=1), _run(30_000, p99=9), _run(20_000, p99=2)])
    assert s.runs == 3
    assert s.events_per_s == pytest.approx(20_000)
    assert s.cpu_s_per_million == pytest.approx(1.0)
    assert s.peak_rss_mb == pytest.approx(100)
    assert s.latency == Latency(0.5, 2, 4)


def test_same_run_ratios_pair_runs_before_taking_the_median() -> None:
    mine = [_run(10), _run(40), _run(30)]
    theirs = [_run(5), _run(10), _run(30)]
    # Per-run ratios 2, 4, 1 -> median 2 (the ratio of medians would be 30/10 = 3).
    assert same_run_ratios(mine, theirs) == pytest.approx(2)
    assert same_run_ratios(mine, []) is None


def test_concurrent_processes_combine_over_the_union_of_their_windows() -> None:
    a = RunResult(100, 1.0, 0.5, 1000, start_ns=1_000_000_000, end_ns=2_000_000_000)
    b = RunResult(300, 1.5, 0.7, 2000, start_ns=1_500_000_000, end_ns=3_000_000_000)
    both = combine([a, b])
    assert both.events == 400
    assert both.seconds == pytest.approx(2.0)
    assert both.events_per_s == pytest.approx(200)
    assert both.cpu_s == pytest.approx(1.2)
    assert both.peak_rss_kb == 3000


def test_hot_spots_count_self_and_inclusive_time_from_collapsed_stacks() -> None:
    collapsed = "\n".join(
        [
            "run (connector/sources/ws_session.py:10);send (connector/delivery/sink.py:5);"
            "write (<string>:1) 6",
            "run (connector/sources/ws_session.py:10);send (connector/delivery/sink.py:7) 3",
            "run (connector/sources/ws_session.py:11) 1",
            "garbage line",
        ]
    )
    total, spots = hot_spots(collapsed, top=2)
    assert total == 10
    assert [(h.function, h.self_pct, h.total_pct) for h in spots] == [
        ("write (<string>)", 60.0, 60.0),
        ("send (connector/delivery/sink.py)", 30.0, 90.0),
    ]


def test_tables_line_up() -> None:
    table = format_table(("a", "bee"), [["1", "2"], ["333", "4"]]).splitlines()
    assert table[0] == "|   a | bee |"
    assert table[1] == "|----:|----:|"
    assert len({len(line) for line in table}) == 1
