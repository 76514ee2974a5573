"""Figures from measurements: percentiles, medians of runs, and the printed table.

Pure, so the arithmetic the published figures rest on is unit-tested.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``.

    Nearest rank never interpolates: the p99.9 of 1,000 samples is the
    largest one, a value that was actually observed.
    """
    if not values:
        raise ValueError("no values")
    if not 0 < q <= 100:
        raise ValueError("q must be in (0, 100]")
    ordered = sorted(values)
    # Rounded first: 99.9 / 100 * 1000 is 999.0000000000001 in binary floating point.
    rank = math.ceil(round(q / 100 * len(ordered), 9))
    return ordered[max(1, rank) - 1]


def median(values: Sequence[float]) -> float:
    """The middle value (the mean of the two middle ones for an even count)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(frozen=True, slots=True)
class Latency:
    """Receive → acknowledgement percentiles of one run, in milliseconds."""

    p50_ms: float
    p99_ms: float
    p999_ms: float

    @classmethod
    def of(cls, latencies_ns: Sequence[int]) -> Latency:
        ordered = sorted(latencies_ns)
        return cls(
            percentile(ordered, 50) / 1e6,
            percentile(ordered, 99) / 1e6,
            percentile(ordered, 99.9) / 1e6,
        )


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one variant process measured in one run."""

    events: int
    seconds: float
    """From the first event received to the last one acknowledged."""
    cpu_s: float
    """Process CPU time (every thread) over the same window."""
    peak_rss_kb: int
    latency: Latency | None = None
    start_ns: int = 0
    """Wall-clock opening of the window (Unix ns), to combine concurrent processes."""
    end_ns: int = 0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_s_per_million(self) -> float:
        return self.cpu_s / self.events * 1e6 if self.events else 0.0


@dataclass(frozen=True, slots=True)
class Summary:
    """Medians over the runs of one variant in one scenario."""

    runs: int
    events_per_s: float
    cpu_s_per_million: float
    peak_rss_mb: float
    latency: Latency | None

    @classmethod
    def of(cls, results: Sequence[RunResult]) -> Summary:
        if not results:
            raise ValueError("no runs")
        latencies = [r.latency for r in results if r.latency is not None]
        latency = None
        if latencies:
            latency = Latency(
                median([x.p50_ms for x in latencies]),
                median([x.p99_ms for x in latencies]),
                median([x.p999_ms for x in latencies]),
            )
        return cls(
            len(results),
            median([r.events_per_s for r in results]),
            median([r.cpu_s_per_million for r in results]),
            median([r.peak_rss_kb for r in results]) / 1024,
            latency,
        )


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def same_run_ratios(a: Sequence[RunResult], b: Sequence[RunResult]) -> float | None:
    """Median over runs of a's events/s divided by b's in the same run.

    Runs of different variants interleave, so the ratio of one run shares
    its machine noise; the median of those ratios is steadier than the
    ratio of two medians.
    """
    values = [r for x, y in zip(a, b, strict=False) if (r := ratio(x.events_per_s, y.events_per_s))]
    return median(values) if values else None


def same_run_cpu_ratios(a: Sequence[RunResult], b: Sequence[RunResult]) -> float | None:
    """Median over runs of a's CPU seconds per event divided by b's in the same run."""
    values = [
        r
        for x, y in zip(a, b, strict=False)
        if (r := ratio(x.cpu_s_per_million, y.cpu_s_per_million))
    ]
    return median(values) if values else None


def _fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table whose columns line up in a terminal too."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


SUMMARY_HEADERS = (
    "scenario",
    "variant",
    "runs",
    "events/s",
    "CPU s / M events",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "peak RSS MB",
)


def summary_row(scenario: str, variant: str, s: Summary) -> list[str]:
    lat = s.latency
    return [
        scenario,
        variant,
        str(s.runs),
        _fmt(s.events_per_s),
        _fmt(s.cpu_s_per_million, 1),
        _fmt(lat.p50_ms if lat else None, 2),
        _fmt(lat.p99_ms if lat else None, 2),
        _fmt(lat.p999_ms if lat else None, 2),
        _fmt(s.peak_rss_mb, 0),
    ]


def format_ratio(value: float | None) -> str:
    return _fmt(value, 2, "x")


def combine(results: Sequence[RunResult]) -> RunResult:
    """Concurrent processes as one: events summed over the union of their windows."""
    if not results:
        raise ValueError("no results")
    start = min(r.start_ns for r in results)
    end = max(r.end_ns for r in results)
    return RunResult(
        events=sum(r.events for r in results),
        seconds=(end - start) / 1e9,
        cpu_s=sum(r.cpu_s for r in results),
        peak_rss_kb=sum(r.peak_rss_kb for r in results),
        start_ns=start,
        end_ns=end,
    )


@dataclass(frozen=True, slots=True)
class HotSpot:
    """A function's share of profile samples: where it ran itself, and under it."""

    function: str
    self_pct: float
    total_pct: float


def _frame_name(frame: str) -> str:
    """``send (connector/delivery/sink.py:301)`` → ``send (connector/delivery/sink.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rpartition(":")[0] or where.rstrip(")")
    for marker in ("site-packages/", "/connector/", "lib/python3"):
        if marker in path:
            path = path[path.index(marker) + len(marker) :]
            if marker == "/connector/":
                path = "connector/" + path
            break
    return f"{name} ({path})" if path else name


def hot_spots(collapsed: str, top: int = 20) -> tuple[int, list[HotSpot]]:
    """Summarise py-spy's collapsed stacks (``a;b;c COUNT`` per line).

    Returns the sample count and the ``top`` functions by self time, each
    with its inclusive share (counted once per stack, however deep the recursion).
    """
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for name in set(frames):
            inclusive[name] = inclusive.get(name, 0) + count
    if total == 0:
        return 0, []
    ranked = sorted(own.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return total, [
        HotSpot(name, 100 * n / total, 100 * inclusive.get(name, n) / total) for name, n in ranked
    ]
