"""Locations: the HTTP client of a central server and the location cache in front of it.

- `edgekv.edge.remote.RemoteStore` — a `Store` over a central server's REST API (the remote
  binding: `edgekv.open("http://…", token=…, account_id=…)`).
- `edgekv.edge.cache.LocationCache` — a `Store` that caches another one in memory with the
  consistency contract of docs/system.md (`edgekv.open(…, location="ams")`).
- `edgekv.edge.follower.Follower` — follows the centre's change feed of the namespaces a cache
  holds copies of, and drops or re-reads what changed (pushed invalidation; on by default).
- `edgekv.edge.stats` — the cache's counters and the payload of `GET /__edgekv/stats`.
- `edgekv.edge.invalidation`, `edgekv.edge.slot`, `edgekv.edge.passthrough` — the cache's side
  of pushed invalidation, its per-key records, and the store calls it leaves to the centre.

See docs/locations.md.
"""

__all__: list[str] = []
