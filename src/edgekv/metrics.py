"""Request counters of a server, in Prometheus text (`GET /metrics`) and as a JSON window per
namespace (the dashboard's metrics view).

Cheap enough to leave on (bench/bench_rest.py measures a hot GET with and without them): one
`observe()` per request is a few dict and list updates, no lock (one event loop), no allocation
once an operation has been seen. Labels are the operation and the HTTP status; per-namespace
windows are keyed by namespace id. Neither ever holds a key or a value.

- `edgekv_requests_total{op,status}`: counter of answered requests.
- `edgekv_request_duration_seconds{op}`: histogram of their durations (`BUCKETS`).
- extra collectors (`add_collector`): a location adds `edgekv_cache_requests_total{result}`.
- gauges set by other parts (`set_gauge`), e.g. `FEED_LAG` by the change-feed follower.

The per-namespace window keeps, for each of the last `WINDOW_MINUTES` minutes, a count and a
duration histogram per operation; quantiles are interpolated inside a bucket, as Prometheus'
`histogram_quantile` does, so p50/p99 are as precise as `BUCKETS`.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["BUCKETS", "FEED_LAG", "WINDOW_MINUTES", "Metrics", "quantile"]

BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
WINDOW_MINUTES = 60
MAX_NAMESPACES = 10_000  # windows kept (oldest dropped first): memory stays bounded
FEED_LAG = "edgekv_feed_lag_seconds"
"""Gauge name for how far a location's change feed is behind the centre (set by its follower)."""

_N = len(BUCKETS) + 1  # the last slot is +Inf
_ZERO_ROW = [0] * (_N + 2)


def _label(operation: str) -> str:
    return operation.replace(" ", "_")


def quantile(q: float, counts: list[int]) -> float | None:
    """The q-quantile (0..1) of a histogram over `BUCKETS` (+Inf last), None when empty."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            if i >= len(BUCKETS):
                return BUCKETS[-1]  # beyond the last bound: say the bound, as Prometheus does
            low = BUCKETS[i - 1] if i else 0.0
            return low + (BUCKETS[i] - low) * ((rank - seen) / n)
        seen += n
    return BUCKETS[-1]


class _Op:
    """The counters of one operation: requests by status, and the duration histogram."""

    __slots__ = ("buckets", "statuses", "sum")

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.buckets = [0] * _N
        self.sum = 0.0


class _Series:
    """One operation of one namespace over the last `WINDOW_MINUTES` minutes: per minute slot
    the minute it holds and [count, errors, bucket counts...]."""

    __slots__ = ("minutes", "rows")

    def __init__(self) -> None:
        self.minutes = [-1] * WINDOW_MINUTES
        self.rows = [[0] * (_N + 2) for _ in range(WINDOW_MINUTES)]


class Metrics:
    """The counters of one server. `enabled=False` makes `observe` a no-op (for measuring)."""

    def __init__(self, *, clock: Callable[[], float] = time.time, enabled: bool = True) -> None:
        self.enabled = enabled
        self._clock = clock
        self._ops: dict[str, _Op] = {}
        self._series: dict[tuple[str, str], _Series] = {}  # (namespace id, operation)
        # namespace id ("" for none) -> operation -> (its counters, the namespace's series)
        self._cells: dict[str, dict[str, tuple[_Op, _Series | None]]] = {}
        self._gauges: dict[str, tuple[str, float]] = {}
        self._collectors: list[Callable[[], Iterable[str]]] = []

    # -- recording -------------------------------------------------------------------------
    def observe(self, operation: str, status: int, seconds: float, namespace_id: str = "") -> None:
        if not self.enabled:
            return
        i = bisect_left(BUCKETS, seconds)
        # One lookup finds both the operation's counters and the namespace's series.
        cells = self._cells.get(namespace_id)
        cell = None if cells is None else cells.get(operation)
        if cell is None:
            cell = self._new_cell(namespace_id, operation)
        op = cell[0]
        op.buckets[i] += 1
        op.sum += seconds
        statuses = op.statuses
        statuses[status] = statuses.get(status, 0) + 1
        series = cell[1]
        if series is None:
            return
        minute = int(self._clock() // 60)
        slot = minute % WINDOW_MINUTES
        row = series.rows[slot]
        if series.minutes[slot] != minute:
            series.minutes[slot] = minute
            row[:] = _ZERO_ROW
        row[0] += 1
        if status >= 400:
            row[1] += 1
        row[2 + i] += 1

    def _new_cell(self, namespace_id: str, operation: str) -> tuple[_Op, _Series | None]:
        op = self._ops.get(operation)
        if op is None:
            op = self._ops[operation] = _Op()
        series = None
        if namespace_id:
            if namespace_id not in self._cells and len(self._cells) >= MAX_NAMESPACES + 1:
                oldest = next(k for k in self._cells if k)  # "" (no namespace) stays
                del self._cells[oldest]
                self._series = {k: v for k, v in self._series.items() if k[0] != oldest}
            series = self._series[(namespace_id, operation)] = _Series()
        cell = (op, series)
        self._cells.setdefault(namespace_id, {})[operation] = cell
        return cell

    def set_gauge(self, name: str, value: float, help_text: str = "") -> None:
        """Set (or replace) a gauge shown in `/metrics`, e.g. `FEED_LAG`."""
        previous = self._gauges.get(name)
        self._gauges[name] = (help_text or (previous[0] if previous else name), value)

    def add_collector(self, collect: Callable[[], Iterable[str]]) -> None:
        """`collect()` returns more lines of Prometheus text, called at every scrape."""
        self._collectors.append(collect)

    # -- reading ---------------------------------------------------------------------------
    def prometheus(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        out = [
            "# HELP edgekv_requests_total Requests answered, by operation and HTTP status.",
            "# TYPE edgekv_requests_total counter",
        ]
        ops = sorted(self._ops.items())
        for operation, op in ops:
            for status, n in sorted(op.statuses.items()):
                out.append(
                    f'edgekv_requests_total{{op="{_label(operation)}",status="{status}"}} {n}'
                )
        out += [
            "# HELP edgekv_request_duration_seconds Time to answer a request, by operation.",
            "# TYPE edgekv_request_duration_seconds histogram",
        ]
        for operation, op in ops:
            label = _label(operation)
            cumulative = 0
            for bound, n in zip((*BUCKETS, math.inf), op.buckets, strict=True):
                cumulative += n
                le = "+Inf" if bound == math.inf else repr(bound)
                out.append(
                    f'edgekv_request_duration_seconds_bucket{{op="{label}",le="{le}"}} {cumulative}'
                )
            out.append(f'edgekv_request_duration_seconds_sum{{op="{label}"}} {op.sum}')
            out.append(f'edgekv_request_duration_seconds_count{{op="{label}"}} {cumulative}')
        for name, (help_text, value) in sorted(self._gauges.items()):
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]
        for collect in self._collectors:
            out.extend(collect())
        return "\n".join(out) + "\n"

    def namespace_window(self, namespace_id: str) -> dict[str, Any]:
        """The last hour of one namespace: per-minute counts by operation (oldest first, empty
        minutes included) and, per operation, the hour's count, errors, p50 and p99 seconds."""
        now_minute = int(self._clock() // 60)
        mine = [(op, series) for (ns, op), series in self._series.items() if ns == namespace_id]
        minutes: list[dict[str, Any]] = []
        totals: dict[str, list[int]] = {}
        for minute in range(now_minute - WINDOW_MINUTES + 1, now_minute + 1):
            slot = minute % WINDOW_MINUTES
            ops: dict[str, int] = {}
            for operation, series in mine:
                if series.minutes[slot] != minute:
                    continue
                row = series.rows[slot]
                label = _label(operation)
                ops[label] = row[0]
                total = totals.setdefault(label, [0] * (_N + 2))
                for j, n in enumerate(row):
                    total[j] += n
            minutes.append({"start": minute * 60, "ops": ops})
        summary = {
            label: {
                "count": row[0],
                "errors": row[1],
                "p50_seconds": quantile(0.5, row[2:]),
                "p99_seconds": quantile(0.99, row[2:]),
            }
            for label, row in sorted(totals.items())
        }
        return {"minutes": minutes, "operations": summary}
