"""The benchmark end to end on a few hundred events, so it cannot rot (no timing asserted)."""

from __future__ import annotations

import io
import re

from connector.bench.run import Options, parse_args, render, run_bench
from connector.bench.variant import CONNECTOR, DEPTH, NAIVE, ORDERS_STREAM, RAW, SPOOLED


async def test_one_tiny_run_measures_every_variant_and_prints_the_table() -> None:
    opts = Options(
        runs=1,
        events=300,
        rates=(3_000,),
        duration_s=0.1,
        warmup=30,
        warmup_s=0.01,
        streams=(DEPTH, ORDERS_STREAM),
        variants=(CONNECTOR, SPOOLED, NAIVE, RAW),
        scale_out=True,
    )
    progress = io.StringIO()
    report = await run_bench(opts, progress)
    assert set(report.results) == {
        "depth @ max",
        "depth @ 3,000/s",
        "orders @ max",
        "orders @ 3,000/s",
    }
    for per_variant in report.results.values():
        assert set(per_variant) == {CONNECTOR, SPOOLED, NAIVE, RAW}
        for [result] in per_variant.values():
            assert result.events in (300, 3_000 * 0.1)
            assert result.seconds > 0 and result.cpu_s >= 0 and result.peak_rss_kb > 0
            assert result.latency is not None and result.latency.p999_ms >= result.latency.p50_ms
    assert [r.events for rs in report.scale_out.values() for r in rs] == [600, 600]
    table = render(report, opts)
    assert re.search(r"\|\s+depth @ max \|\s+connector \|", table)
    assert "connector / naive" in table and "2 processes" in table
    assert "The spool's cost" in table
    assert progress.getvalue().count("events/s") == 16 + 2


def test_quick_mode_and_options_parse() -> None:
    quick = parse_args(["--quick"])
    assert quick.runs == 1 and quick.rates == (5_000,) and quick.latency_linger_ms == 0
    opts = parse_args(
        ["--runs", "5", "--rates", "1000,2000", "--streams", "depth", "--no-scale-out"]
    )
    assert (opts.runs, opts.rates, opts.streams, opts.scale_out) == (
        5,
        (1000, 2000),
        ("depth",),
        False,
    )
