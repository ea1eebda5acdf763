"""A tiny benchmark harness shared by every `bench/bench_*.py`.

    report = Report("core", "Core engine")
    base = measure(lambda: conn.execute(q).fetchone(), n=10_000)
    report.add("get", "raw sqlite3", base, baseline=True)
    report.add("get", "binding", await ameasure(lambda: ns.get(k), seconds=2), target_ratio=0.5)
    report.write()  # bench/results/core.md, core.json, core.png

A *sample* is per-call latencies (`time.perf_counter_ns`); `items` says how much work one call is
(1000 keys of a page, 64 concurrent puts), so throughput is items/s while latencies stay per call.
`Report.add` also takes a load generator's summary instead (rate, p50/p99/mean µs, calls: see
bench/loadgen.py's `wrk`). Each group has one baseline; every row shows its throughput ratio to it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["RESULTS", "Report", "Row", "Sample", "ameasure", "concurrent_sample", "measure"]

RESULTS = Path(__file__).resolve().parent / "results"
_T = TypeVar("_T")


@dataclass
class Sample:
    """Latencies of `calls` timed calls, each doing `items` units of work."""

    latencies_ns: list[int]
    items: int = 1

    @property
    def calls(self) -> int:
        return len(self.latencies_ns)

    @property
    def total_s(self) -> float:
        return sum(self.latencies_ns) / 1e9

    @property
    def rate(self) -> float:
        """Items per second."""
        return self.calls * self.items / self.total_s if self.latencies_ns else 0.0

    def percentile_us(self, p: float) -> float:
        ordered = sorted(self.latencies_ns)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] / 1000

    @property
    def mean_us(self) -> float:
        return self.total_s * 1e6 / self.calls if self.calls else 0.0

    def summary(self) -> dict[str, float]:
        """Items per second (`rate`), `p50`, `p99` and `mean` latency in µs, `calls`: what a load
        generator such as wrk reports (`Report.add` takes either)."""
        return {
            "rate": self.rate,
            "p50": self.percentile_us(50),
            "p99": self.percentile_us(99),
            "mean": self.mean_us,
            "calls": self.calls,
        }


def _calls(n: int | None, seconds: float | None, rounds: int) -> Iterator[None]:
    """Yield for one round: until its share of `n` calls or of `seconds` (whichever first)."""
    if n is None and seconds is None:
        raise ValueError("give n, seconds or both")
    calls = None if n is None else max(1, n // rounds)
    deadline = None if seconds is None else time.perf_counter() + seconds / rounds
    done = 0
    while (calls is None or done < calls) and (deadline is None or time.perf_counter() < deadline):
        yield
        done += 1


class _Rounds:
    """The rounds of `measure` / `ameasure`: iterating gives each round's (empty) list of
    latencies and its calls, after a garbage collection; `best` is the round of the best
    throughput (others' load on a shared machine only ever slows a round down)."""

    def __init__(self, n: int | None, seconds: float | None, rounds: int, items: int) -> None:
        self.n, self.seconds, self.rounds, self.items = n, seconds, rounds, items
        self.samples: list[Sample] = []

    def __iter__(self) -> Iterator[tuple[list[int], Iterator[None]]]:
        for _ in range(self.rounds):
            gc.collect()
            latencies: list[int] = []
            yield latencies, _calls(self.n, self.seconds, self.rounds)
            self.samples.append(Sample(latencies, self.items))

    @property
    def best(self) -> Sample:
        return max(self.samples, key=lambda s: s.rate)


def measure(
    fn: Callable[[], Any],
    *,
    n: int | None = None,
    seconds: float | None = None,
    warmup: int = 10,
    items: int = 1,
    rounds: int = 1,
) -> Sample:
    """Call `fn` `warmup` times untimed, then time each call: `n` calls and/or `seconds`, split
    over `rounds`; the round with the best throughput is kept (others' load on a shared
    machine only ever slows a round down)."""
    for _ in range(warmup):
        fn()
    clock = time.perf_counter_ns
    timed = _Rounds(n, seconds, rounds, items)
    for latencies, calls in timed:
        for _ in calls:
            t0 = clock()
            fn()
            latencies.append(clock() - t0)
    return timed.best


async def ameasure(
    fn: Callable[[], Awaitable[Any]],
    *,
    n: int | None = None,
    seconds: float | None = None,
    warmup: int = 10,
    items: int = 1,
    rounds: int = 1,
) -> Sample:
    """`measure` for a coroutine function: each call is awaited before the next starts."""
    for _ in range(warmup):
        await fn()
    clock = time.perf_counter_ns
    timed = _Rounds(n, seconds, rounds, items)
    for latencies, calls in timed:
        for _ in calls:
            t0 = clock()
            await fn()
            latencies.append(clock() - t0)
    return timed.best


async def concurrent_sample(
    call: Callable[[str], Awaitable[_T]],
    keys: Iterator[str],
    per_worker: int,
    workers: int,
    check: Callable[[_T], object] | None = None,
) -> Sample:
    """Per-call latencies of `workers` concurrent loops of `per_worker` awaited calls, each on
    the next of `keys`; `check(answer)`, untimed, after each call. `items=workers`: the
    harness's rate (calls x items / summed latency) is then workers / mean latency, the
    throughput by Little's law."""
    clock = time.perf_counter_ns
    latencies: list[int] = []

    async def worker() -> None:
        for _ in range(per_worker):
            key = next(keys)
            t0 = clock()
            answer = await call(key)
            latencies.append(clock() - t0)
            if check is not None:
                check(answer)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return Sample(latencies, items=workers)


@dataclass
class Row:
    group: str
    case: str
    unit: str
    rate: float
    p50_us: float
    p99_us: float
    mean_us: float
    calls: int
    items: int
    baseline: bool = False
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None
    note: str = ""
    cpu_us: float | None = None  # the servers' CPU per request (load generator runs only)
    load_cpu_us: float | None = None  # the load generator's own


@dataclass
class Report:
    """Rows of one benchmark run, written as Markdown, JSON and a PNG plot."""

    name: str
    title: str
    notes: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)

    def add(
        self,
        group: str,
        case: str,
        result: Sample | Mapping[str, float],
        *,
        unit: str = "ops/s",
        baseline: bool = False,
        target_ratio: float | None = None,
        target_rate: float | None = None,
        note: str = "",
    ) -> Row:
        """Record a case: a `Sample`, or the summary of a load generator's run (`rate`; `p50`,
        `p99` and `mean` in µs; `calls`; one item a call; optionally `cpu` and `load_cpu`, µs
        of CPU per request), as `Sample.summary()` gives. The group's baseline must be added
        first; targets are minimums."""
        summary = result.summary() if isinstance(result, Sample) else result
        rate = summary["rate"]
        base = next((r for r in self.rows if r.group == group and r.baseline), None)
        ratio = None if base is None or not base.rate else rate / base.rate
        targets, checks = [], []
        if target_ratio is not None:
            targets.append(f"≥ {target_ratio:g}x")
            checks.append(ratio is not None and ratio >= target_ratio)
        if target_rate is not None:
            targets.append(f"≥ {target_rate:,.0f} {unit}")
            checks.append(rate >= target_rate)
        row = Row(
            group=group,
            case=case,
            unit=unit,
            rate=rate,
            p50_us=summary["p50"],
            p99_us=summary["p99"],
            mean_us=summary["mean"],
            calls=int(summary["calls"]),
            items=result.items if isinstance(result, Sample) else 1,
            baseline=baseline,
            ratio=ratio,
            target=", ".join(targets),
            ok=all(checks) if checks else None,
            note=note,
            cpu_us=summary.get("cpu"),
            load_cpu_us=summary.get("load_cpu"),
        )
        self.rows.append(row)
        print(_line(row), flush=True)
        return row

    def markdown(self) -> str:
        out = [f"# {self.title}", "", _environment_line(), ""]
        out += [f"- {n}" for n in self.notes]
        cpu = any(r.cpu_us is not None for r in self.rows)
        extra = " server CPU µs/req | wrk CPU µs/req |" if cpu else ""
        out += [
            "",
            "| group | case | throughput | p50 µs | p99 µs | mean µs | vs baseline | target |"
            + extra,
            "|---|---|--:|--:|--:|--:|--:|---|" + ("--:|--:|" if cpu else ""),
        ]
        for r in self.rows:
            case = f"{r.case} (baseline)" if r.baseline else r.case
            if r.note:
                case += f" — {r.note}"
            ratio = "1.00x" if r.baseline else ("" if r.ratio is None else f"{r.ratio:.2f}x")
            target = r.target + ("" if r.ok is None else (" ✅" if r.ok else " ❌"))
            out.append(
                f"| {r.group} | {case} | {r.rate:,.0f} {r.unit} | {r.p50_us:,.1f} "
                f"| {r.p99_us:,.1f} | {r.mean_us:,.1f} | {ratio} | {target} |"
                + (f" {_cpu(r.cpu_us)} | {_cpu(r.load_cpu_us)} |" if cpu else "")
            )
        return "\n".join(out) + "\n"

    def write(self, directory: Path = RESULTS) -> list[Path]:
        """Write `<name>.md`, `<name>.json` and `<name>.png`; returns their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        md, js, png = (directory / f"{self.name}{ext}" for ext in (".md", ".json", ".png"))
        md.write_text(self.markdown())
        data = {
            "name": self.name,
            "title": self.title,
            "environment": _environment(),
            "notes": self.notes,
            "rows": [asdict(r) for r in self.rows],
        }
        js.write_text(json.dumps(data, indent=2) + "\n")
        self.plot(png)
        return [md, js, png]

    def plot(self, path: Path) -> None:
        """One horizontal bar chart of throughput per group (units differ between groups)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        groups = list(dict.fromkeys(r.group for r in self.rows))
        heights = [len([r for r in self.rows if r.group == g]) for g in groups]
        fig, axes = plt.subplots(
            len(groups),
            1,
            figsize=(10, 1.2 + 0.45 * sum(heights) + 0.6 * len(groups)),
            gridspec_kw={"height_ratios": heights},
            squeeze=False,
        )
        for ax, group in zip(axes[:, 0], groups, strict=True):
            rows = [r for r in self.rows if r.group == group]
            colors = ["#999999" if r.baseline else "#f38020" for r in rows]
            ax.barh([r.case for r in rows], [r.rate for r in rows], color=colors)
            ax.set_xlim(0, max(r.rate for r in rows) * 1.25)  # room for the labels
            ax.invert_yaxis()
            ax.set_title(group, loc="left", fontsize=10)
            ax.set_xlabel(rows[0].unit, fontsize=8)
            ax.tick_params(labelsize=8)
            for i, r in enumerate(rows):
                label = f" {r.rate:,.0f}" + ("" if r.ratio is None else f" ({r.ratio:.2f}x)")
                ax.text(r.rate, i, label, va="center", fontsize=7)
        fig.suptitle(f"{self.title} (grey: baseline)", fontsize=11)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def _cpu(us: float | None) -> str:
    return "" if us is None else f"{us:,.1f}"


def _line(r: Row) -> str:
    ratio = "" if r.ratio is None else f"  {r.ratio:.2f}x"
    ok = "" if r.ok is None else ("  ok" if r.ok else "  BELOW TARGET")
    cpu = "" if r.cpu_us is None else f"  cpu {r.cpu_us:,.1f}us/req (wrk {_cpu(r.load_cpu_us)})"
    return (
        f"{r.group:>16} | {r.case:<48} {r.rate:>12,.0f} {r.unit:<8}"
        f" p50 {r.p50_us:>9,.1f}us p99 {r.p99_us:>9,.1f}us{ratio}{ok}{cpu}"
    )


def _environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _environment_line() -> str:
    env = _environment()
    return (
        f"Python {env['python']}, SQLite {env['sqlite']}, {env['cpus']} CPUs, "
        f"{env['platform']}, {env['date']}."
    )
