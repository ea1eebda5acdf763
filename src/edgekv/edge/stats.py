"""The location cache's counters, and the payload of `GET /__edgekv/stats`.

Counters only ever grow (since the cache was created); `bytes_cached` and `entries` are gauges.
docs/locations.md explains each one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["CacheStats", "cache_metrics", "stats_payload"]


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

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        lookups = self.hits + self.misses + self.stale_serves
        out["hit_ratio"] = round(self.hits / lookups, 6) if lookups else None
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
    (nothing when no location cache is in use)."""
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
