"""Locations: the HTTP client of a central server and the location cache in front of it.

- `RemoteStore` — a `Store` over a central server's REST API (the remote binding:
  `edgekv.open("http://…", token=…, account_id=…)`); `RemoteError` its failures that are not
  store errors (edge/remote.py, over edge/transport.py and edge/http1.py).
- `LocationCache` — a `Store` that caches another one in memory with the consistency contract
  of docs/locations.md (`edgekv.open(…, location="ams")`).
- `CacheStats`, `stats_payload` — the cache's counters and the payload of
  `GET /__edgekv/stats` (edge/stats.py).

Behind them: `edgekv.edge.follower.Follower` follows the centre's change feed of the
namespaces a cache holds copies of and drops or re-reads what changed (pushed invalidation, on
by default); `invalidation`, `copies`, `slot` and `passthrough` are the cache's side of it, its
copies in LRU order within the byte budget, its per-key records, and the store calls it leaves
to the centre. The multi-location simulator is
`edgekv.testing`.

These five names are public (docs/public-api.md). They are imported on first use, so that
`edgekv.edge.stats` alone does not load the HTTP client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgekv.edge.cache import LocationCache
    from edgekv.edge.remote import RemoteError, RemoteStore
    from edgekv.edge.stats import CacheStats, stats_payload

__all__ = ["CacheStats", "LocationCache", "RemoteError", "RemoteStore", "stats_payload"]

_HOMES = {
    "CacheStats": "edgekv.edge.stats",
    "LocationCache": "edgekv.edge.cache",
    "RemoteError": "edgekv.edge.remote",
    "RemoteStore": "edgekv.edge.remote",
    "stats_payload": "edgekv.edge.stats",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'edgekv.edge' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
