"""Locations: the HTTP client of a central server and the location cache in front of it.

- `edgekv.edge.remote.RemoteStore` — a `Store` over a central server's REST API (the remote
  binding: `edgekv.open("http://…", token=…, account_id=…)`).
- `edgekv.edge.cache.LocationCache` — a `Store` that caches another one in memory with the
  consistency contract of docs/system.md (`edgekv.open(…, location="ams")`).
- `edgekv.edge.stats` — the cache's counters and the payload of `GET /__edgekv/stats`.

See docs/locations.md.
"""

__all__: list[str] = []
