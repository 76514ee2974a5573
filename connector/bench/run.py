"""The benchmark run: embedded cluster, feed server, variant processes, the table.

One process owns the embedded Kafka cluster, the schema registry and the
WebSocket feed; every measured variant runs in a process of its own
(``connector.bench.variant``). Within a run the variants take turns on the
same frames, so the same-run ratios share the machine's noise of the moment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import confluent_kafka

from connector.bench import stats
from connector.bench.feed import DEPTH_PREFIX, STREAMER_PATH, FeedServer, Stream
from connector.bench.frames import DepthFeed, depth_feed, order_frames
from connector.bench.stats import Latency, RunResult, Summary
from connector.bench.variant import (
    CONNECTOR,
    CONNECTOR_TOPICS,
    DEPTH,
    NAIVE,
    NAIVE_TOPICS,
    ORDERS_STREAM,
    RAW,
    RAW_TOPICS,
    SPOOLED,
    VARIANTS,
    VariantSpec,
)
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer

PARTITIONS = 4
DLQ_TOPIC = "connector.dlq"
RUN_TIMEOUT_S = 300.0


class BenchError(Exception):
    """A variant process failed or did not finish."""


@dataclass(frozen=True)
class Options:
    runs: int = 3
    events: int = 60_000
    """Events per stream in a maximum-rate run."""
    rates: tuple[int, ...] = (5_000,)
    duration_s: float = 4.0
    """Length of a fixed-rate run (after its warm-up)."""
    warmup: int = 2_000
    """Unmeasured events before a maximum-rate run."""
    warmup_s: float = 0.5
    """Unmeasured seconds before a fixed-rate run."""
    streams: tuple[str, ...] = (DEPTH, ORDERS_STREAM)
    variants: tuple[str, ...] = VARIANTS
    scale_out: bool = True
    linger_ms: int = 1
    """Producer linger.ms at maximum rate: batching is what throughput needs."""
    latency_linger_ms: int = 0
    """Producer linger.ms at fixed rates: what a latency-sensitive deployment sets."""
    compression: str = "lz4"
    profile_dir: Path | None = None
    json_path: Path | None = None


QUICK = Options(runs=1, events=10_000, rates=(5_000,), duration_s=2.0, warmup=500)


@dataclass(frozen=True)
class Scenario:
    stream: str
    rate: int | None
    events: int
    warmup: int
    linger_ms: int

    @property
    def name(self) -> str:
        rate = "max" if self.rate is None else f"{self.rate:,}/s"
        return f"{self.stream} @ {rate}"


def scenarios(opts: Options) -> list[Scenario]:
    out = []
    for stream in opts.streams:
        out.append(Scenario(stream, None, opts.events, opts.warmup, opts.linger_ms))
        for rate in opts.rates:
            events = max(1, int(rate * opts.duration_s))
            warmup = int(rate * opts.warmup_s)
            out.append(Scenario(stream, rate, events, warmup, opts.latency_linger_ms))
    return out


@dataclass
class Report:
    machine: dict[str, str]
    results: dict[str, dict[str, list[RunResult]]] = field(default_factory=dict)
    scale_out: dict[str, list[RunResult]] = field(default_factory=dict)
    profiles: dict[str, tuple[int, list[stats.HotSpot]]] = field(default_factory=dict)


# --- machine --------------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpus": str(os.cpu_count()),
        "cpu model": model,
        "python": platform.python_version(),
        "librdkafka": confluent_kafka.libversion()[0],
    }
    packages = ("confluent-kafka", "fastavro", "msgspec", "websockets", "pydantic")
    for package in (*packages, "prometheus-client"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = "not installed"
    info["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


# --- running variants ------------------------------------------------------------------


async def run_variant(
    spec: VariantSpec, *, profile: Path | None = None, timeout_s: float = RUN_TIMEOUT_S
) -> RunResult:
    """Run one variant process and return what it measured."""
    command = [sys.executable, "-m", "connector.bench.variant", spec.to_json()]
    if profile is not None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        command = [
            spy,
            "record",
            "--gil",
            "--format",
            "raw",
            "--rate",
            "250",
            "-o",
            str(profile),
            "--",
        ]
        command += [sys.executable, "-m", "connector.bench.variant", spec.to_json()]
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise BenchError(
            f"{spec.variant} on {spec.stream} did not finish in {timeout_s} s"
        ) from None
    # py-spy, when it wraps the variant, adds its own lines: the figures are the JSON one.
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = err.decode(errors="replace")[-3000:]
        raise BenchError(f"{spec.variant} on {spec.stream} failed ({proc.returncode}):\n{tail}")
    data: dict[str, Any] = json.loads(lines[-1])
    latency = data.pop("latency")
    for extra in ("undelivered", "shed"):
        if data.pop(extra, 0):
            raise BenchError(f"{spec.variant} on {spec.stream}: {extra} records in a run")
    return RunResult(**data, latency=Latency(**latency) if latency else None)


class Bench:
    def __init__(self, opts: Options, bootstrap: str, registry_url: str, feed: FeedServer) -> None:
        self.opts = opts
        self.bootstrap = bootstrap
        self.registry_url = registry_url
        self.feed = feed
        self.base_url = ""
        most = max(s.warmup + s.events for s in scenarios(opts))
        self._depth: dict[str, DepthFeed] = {
            asset: depth_feed(asset, most, seed=int(asset)) for asset in ("1", "2")
        }
        self._orders = order_frames(most)

    def spec(
        self,
        variant: str,
        stream: str,
        events: int,
        warmup: int,
        assets: list[str],
        linger_ms: int | None = None,
    ) -> VariantSpec:
        return VariantSpec(
            variant,
            stream,
            self.bootstrap,
            self.registry_url,
            self.base_url,
            events,
            assets,
            warmup,
            self.opts.linger_ms if linger_ms is None else linger_ms,
            self.opts.compression,
        )

    def load(
        self, variant: str, stream: str, rate: int | None, events: int, assets: list[str]
    ) -> None:
        streams: dict[str, Stream] = {}
        if stream == DEPTH:
            for asset in assets:
                d = self._depth[asset]
                streams[DEPTH_PREFIX + asset] = Stream(
                    d.frames[:events],
                    rate,
                    snapshot=d.snapshot if variant in (CONNECTOR, SPOOLED) else None,
                )
        else:
            streams[STREAMER_PATH] = Stream(
                self._orders[:events], rate, handshake=variant in (CONNECTOR, SPOOLED)
            )
        self.feed.load(streams)

    async def one(
        self, variant: str, scenario: Scenario, *, profile: Path | None = None
    ) -> RunResult:
        total = scenario.warmup + scenario.events
        self.load(variant, scenario.stream, scenario.rate, total, ["1"])
        spec = self.spec(
            variant, scenario.stream, scenario.events, scenario.warmup, ["1"], scenario.linger_ms
        )
        return await run_variant(spec, profile=profile)

    async def scale(self, processes: int) -> RunResult:
        """Two assets at maximum rate: one connector for both, or one per asset."""
        assets = ["1", "2"]
        events, warmup = self.opts.events, self.opts.warmup
        self.load(CONNECTOR, DEPTH, None, warmup + events, assets)
        if processes == 1:
            return await run_variant(self.spec(CONNECTOR, DEPTH, events, warmup, assets))
        results = await asyncio.gather(
            *(run_variant(self.spec(CONNECTOR, DEPTH, events, warmup, [a])) for a in assets)
        )
        return stats.combine(results)


def _progress(err: TextIO, text: str) -> None:
    print(text, file=err, flush=True)


async def run_bench(opts: Options, err: TextIO = sys.stderr) -> Report:
    report = Report(machine_info())
    with MockCluster(brokers=1) as cluster, RegistryServer() as registry:
        registry_url = registry.start()
        topics = {*CONNECTOR_TOPICS.values(), *NAIVE_TOPICS.values(), *RAW_TOPICS.values()}
        for topic in sorted(topics | {DLQ_TOPIC}):
            cluster.create_topic(topic, partitions=PARTITIONS)
        feed = FeedServer()
        bench = Bench(opts, cluster.bootstrap_servers, registry_url, feed)
        bench.base_url = await feed.start()
        try:
            for scenario in scenarios(opts):
                per_variant: dict[str, list[RunResult]] = {v: [] for v in opts.variants}
                report.results[scenario.name] = per_variant
                for run in range(opts.runs):
                    for variant in opts.variants:
                        result = await bench.one(variant, scenario)
                        per_variant[variant].append(result)
                        _progress(
                            err,
                            f"{scenario.name:<22} run {run + 1}/{opts.runs} {variant:<9} "
                            f"{result.events_per_s:>10,.0f} events/s",
                        )
            if opts.scale_out and DEPTH in opts.streams:
                for processes in (1, 2):
                    key = f"{processes} process{'es' if processes > 1 else ''}"
                    report.scale_out[key] = []
                    for run in range(opts.runs):
                        result = await bench.scale(processes)
                        report.scale_out[key].append(result)
                        _progress(
                            err,
                            f"scale-out {key:<11} run {run + 1}/{opts.runs} "
                            f"{result.events_per_s:>10,.0f} events/s",
                        )
            if opts.profile_dir is not None:
                opts.profile_dir.mkdir(parents=True, exist_ok=True)
                for stream in opts.streams:
                    path = opts.profile_dir / f"connector-{stream}.collapsed"
                    scenario = Scenario(stream, None, opts.events, opts.warmup, opts.linger_ms)
                    await bench.one(CONNECTOR, scenario, profile=path)
                    report.profiles[stream] = stats.hot_spots(path.read_text())
                    _progress(err, f"profile of the connector on {stream} written to {path}")
        finally:
            await feed.stop()
    report.machine["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return report


# --- the printed report ------------------------------------------------------------------


def render(report: Report, opts: Options) -> str:
    lines = ["## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in report.machine.items()]
    lines += [
        f"- producer (every variant): acks=all, enable.idempotence=true, "
        f"compression={opts.compression}, linger.ms={opts.linger_ms} at maximum rate and "
        f"{opts.latency_linger_ms} at fixed rates",
        "",
        f"## Results (medians of {opts.runs} run{'s' if opts.runs > 1 else ''})",
        "",
    ]
    rows = []
    for name, per_variant in report.results.items():
        for variant, results in per_variant.items():
            if results:
                rows.append(stats.summary_row(name, variant, Summary.of(results)))
    lines.append(stats.format_table(stats.SUMMARY_HEADERS, rows))
    ratio_rows = []
    for name, per_variant in report.results.items():
        if "max" not in name:
            continue
        mine = per_variant.get(CONNECTOR, [])
        ratio_rows.append(
            [
                name,
                stats.format_ratio(stats.same_run_ratios(mine, per_variant.get(NAIVE, []))),
                stats.format_ratio(stats.same_run_ratios(mine, per_variant.get(RAW, []))),
            ]
        )
    if ratio_rows:
        lines += ["", "## Throughput ratios (median of same-run ratios)", ""]
        lines.append(
            stats.format_table(("scenario", "connector / naive", "connector / raw"), ratio_rows)
        )
    spool_rows = []
    for name, per_variant in report.results.items():
        on, off = per_variant.get(SPOOLED, []), per_variant.get(CONNECTOR, [])
        if on and off:
            spool_rows.append(
                [
                    name,
                    stats.format_ratio(stats.same_run_ratios(on, off)),
                    stats.format_ratio(stats.same_run_cpu_ratios(on, off)),
                ]
            )
    if spool_rows:
        lines += ["", "## The spool's cost (spooled / connector without it, same runs)", ""]
        lines.append(stats.format_table(("scenario", "events/s", "CPU s per event"), spool_rows))
    if report.scale_out:
        lines += ["", "## Scale-out: depth of two assets at maximum rate", ""]
        scale_rows = []
        base = None
        for key, results in report.scale_out.items():
            s = Summary.of(results)
            base = s.events_per_s if base is None else base
            scale_rows.append(
                [
                    key,
                    stats._fmt(s.events_per_s),
                    stats.format_ratio(stats.ratio(s.events_per_s, base)),
                    stats._fmt(s.cpu_s_per_million, 1),
                    stats._fmt(s.peak_rss_mb, 0),
                ]
            )
        lines.append(
            stats.format_table(
                ("connector", "events/s", "vs 1 process", "CPU s / M events", "RSS MB (sum)"),
                scale_rows,
            )
        )
    for stream, (samples, spots) in report.profiles.items():
        lines += ["", f"## Where the connector's time goes ({stream}, {samples} samples)", ""]
        lines.append(
            stats.format_table(
                ("function", "self %", "total %"),
                [[h.function, f"{h.self_pct:.1f}", f"{h.total_pct:.1f}"] for h in spots],
            )
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m connector.bench",
        description="Throughput and latency of the connector, a naive bridge and raw forward.",
    )
    p.add_argument("--quick", action="store_true", help="one short run of each scenario")
    p.add_argument("--runs", type=int, help="runs per scenario (default 3)")
    p.add_argument("--events", type=int, help="events per stream at maximum rate")
    p.add_argument("--rates", help="fixed rates, events/s, comma-separated (default 5000)")
    p.add_argument("--duration", type=float, help="seconds of a fixed-rate run")
    p.add_argument("--streams", help="depth,orders (default both)")
    p.add_argument("--variants", help="connector,naive,raw (default all)")
    p.add_argument("--no-scale-out", action="store_true", help="skip the 1-vs-2-process runs")
    p.add_argument("--linger-ms", type=int, help="producer linger.ms at maximum rate (1)")
    p.add_argument("--latency-linger-ms", type=int, help="producer linger.ms at fixed rates (0)")
    p.add_argument("--profile", type=Path, help="also profile the connector with py-spy here")
    p.add_argument("--json", type=Path, help="write every run's figures to this file")
    a = p.parse_args(argv)
    base = QUICK if a.quick else Options()
    changes: dict[str, Any] = {}
    if a.runs is not None:
        changes["runs"] = a.runs
    if a.events is not None:
        changes["events"] = a.events
    if a.rates is not None:
        changes["rates"] = tuple(int(x) for x in a.rates.split(",") if x)
    if a.duration is not None:
        changes["duration_s"] = a.duration
    if a.streams is not None:
        changes["streams"] = tuple(a.streams.split(","))
    if a.variants is not None:
        changes["variants"] = tuple(a.variants.split(","))
    if a.no_scale_out:
        changes["scale_out"] = False
    if a.linger_ms is not None:
        changes["linger_ms"] = a.linger_ms
    if a.latency_linger_ms is not None:
        changes["latency_linger_ms"] = a.latency_linger_ms
    changes["profile_dir"] = a.profile
    changes["json_path"] = a.json
    opts = Options(**{**asdict(base), **changes})
    for stream in opts.streams:
        if stream not in (DEPTH, ORDERS_STREAM):
            p.error(f"unknown stream {stream!r}")
    for variant in opts.variants:
        if variant not in VARIANTS:
            p.error(f"unknown variant {variant!r}")
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    started = time.monotonic()
    try:
        report = asyncio.run(run_bench(opts))
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    print(render(report, opts))
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    if opts.json_path is not None:
        raw = {
            "machine": report.machine,
            "results": {
                s: {v: [asdict(r) for r in rs] for v, rs in pv.items()}
                for s, pv in report.results.items()
            },
            "scale_out": {k: [asdict(r) for r in rs] for k, rs in report.scale_out.items()},
        }
        opts.json_path.write_text(json.dumps(raw, indent=2))
    return 0
