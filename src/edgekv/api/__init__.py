"""The central server: Cloudflare's REST API v4 dialect for Workers KV (docs/rest-api.md).

`create_app(target)` is the ASGI application; `edgekv.api.server.run` serves it (the `edgekv
serve` command). Module map: app (routing, auth scoping, errors), routes_* (one per resource),
auth (tokens), envelope (response shape, error codes), limits (streamed bodies), multipart,
bootstrap (first start), openapi, server.
"""

from edgekv.api.app import EdgeKVApp, create_app

__all__ = ["EdgeKVApp", "create_app"]
