"""The location cache's counters, and the payload of `GET /__edgekv/stats`.

Counters only ever grow (since the cache was created); `bytes_cached`, `entries` and the
`feed_*` gauges do not. docs/locations.md explains each one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["CacheStats", "cache_metrics", "stats_payload"]


def _no_lag() -> float | None:
    return None


@dataclass(slots=True)
class CacheStats:
    location: str
    budget_bytes: int
    hits: int = 0  # served from the cache (HIT or UPDATING), negative hits included
    updating: int = 0  # ... of which UPDATING (served while a background refresh runs)
    misses: int = 0  # reads that had to wait for the centre (coalesced waiters included)
    stale_serves: int = 0  # copies served past their cache_ttl because the centre was down
    refreshes: int = 0  # background refreshes started for keys read near the end of their TTL
    coalesced_waits: int = 0  # reads that joined a central fetch already in flight
    central_fetches: int = 0  # read requests sent to the centre (a bulk fetch counts once)
    central_errors: int = 0  # central reads or writes that failed with StoreUnavailable
    writes: int = 0  # puts and deletes acknowledged by the centre (per key)
    evictions: int = 0  # entries dropped to stay within the byte budget
    bytes_cached: int = 0  # gauge: bytes counted against the budget
    entries: int = 0  # gauge: cached keys, negative entries included
    # -- pushed invalidation (edgekv.edge.follower) --
    push: bool = False  # whether this location follows the change feed
    feed_namespaces: int = 0  # gauge: namespaces followed now
    feed_disconnected: int = 0  # gauge: followed namespaces whose feed is failing now
    feed_polls: int = 0  # feed requests answered (long polls and head cursors)
    feed_changes: int = 0  # changes received
    feed_errors: int = 0  # feed requests that failed (unreachable, 5xx, other errors)
    feed_reconnects: int = 0  # times a failing feed answered again (resumed from its cursor)
    feed_resyncs: int = 0  # namespaces revalidated: history gone (410), or followed late
    invalidations: int = 0  # copies dropped (or fetches disowned) because their key changed
    push_refreshes: int = 0  # changed copies of hot keys re-read in the background
    # Seconds since the feed was last known to be current (0 while every followed namespace
    # is connected; None without push). Set by the follower; read as `feed_lag_seconds`.
    lag_source: Callable[[], float | None] = field(default=_no_lag, repr=False, compare=False)

    @property
    def feed_lag_seconds(self) -> float | None:
        """Gauge: how far behind the centre's changes this location may be, in seconds of its
        clock: 0 while every followed namespace's feed answers, else the time since the
        oldest of them last did. None when the location does not follow the feed."""
        return self.lag_source()

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "lag_source"}
        lookups = self.hits + self.misses + self.stale_serves
        out["hit_ratio"] = round(self.hits / lookups, 6) if lookups else None
        lag = self.feed_lag_seconds
        out["feed_lag_seconds"] = None if lag is None else round(lag, 3)
        return out


def stats_payload(store: object) -> dict[str, Any]:
    """The JSON body of `GET /__edgekv/stats` for the store behind a location: its cache's
    counters, or `{"location": None}` when no location cache is in use. ASGI-agnostic: the
    server wraps it in whatever response type it uses."""
    stats = getattr(store, "stats", None)
    if isinstance(stats, CacheStats):
        return stats.to_dict()
    return {"location": None}


def cache_metrics(store: object) -> Iterator[str]:
    """`edgekv_cache_requests_total{result}` in Prometheus text, for a location's `/metrics`
    (nothing when no location cache is in use), and with push the feed's gauges and counters."""
    stats = getattr(store, "stats", None)
    if not isinstance(stats, CacheStats):
        return
    yield "# HELP edgekv_cache_requests_total Reads of the location cache, by result."
    yield "# TYPE edgekv_cache_requests_total counter"
    counts = {
        "hit": stats.hits - stats.updating,
        "miss": stats.misses,
        "stale": stats.stale_serves,
        "updating": stats.updating,
    }
    for result, n in counts.items():
        yield f'edgekv_cache_requests_total{{result="{result}"}} {n}'
    lag = stats.feed_lag_seconds
    if lag is None:
        return
    for name, kind, text, value in (
        ("edgekv_feed_lag_seconds", "gauge", "Seconds since the least current feed answered.", lag),
        ("edgekv_feed_namespaces", "gauge", "Namespaces followed.", stats.feed_namespaces),
        ("edgekv_feed_disconnected", "gauge", "Feeds failing now.", stats.feed_disconnected),
        ("edgekv_feed_changes_total", "counter", "Changes received.", stats.feed_changes),
        ("edgekv_feed_errors_total", "counter", "Feed requests that failed.", stats.feed_errors),
        ("edgekv_feed_reconnects_total", "counter", "Failing feeds that answered again.",
         stats.feed_reconnects),
        ("edgekv_feed_resyncs_total", "counter", "Namespaces revalidated.", stats.feed_resyncs),
        ("edgekv_cache_invalidations_total", "counter", "Copies dropped on a change.",
         stats.invalidations),
        ("edgekv_cache_push_refreshes_total", "counter", "Changed hot copies re-read.",
         stats.push_refreshes),
    ):  # fmt: skip
        yield f"# HELP {name} {text}"
        yield f"# TYPE {name} {kind}"
        yield f"{name} {round(value, 3) if isinstance(value, float) else value}"
