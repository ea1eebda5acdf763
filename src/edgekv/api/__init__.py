"""The central server: Cloudflare's REST API v4 dialect for Workers KV (docs/rest-api.md).

`create_app(target)` is the ASGI application; `edgekv.api.server.run` serves it (the `edgekv
serve` command). Module map: app (route table, auth scoping, errors), routes_* (one per
resource), auth (tokens), envelope (answers as responses), limits (body limits), multipart,
bootstrap (first start), openapi, server. The wire format itself (paths, headers, error codes,
envelope shape) is `edgekv.wire`, shared with the client; the ASGI plumbing is `edgekv.asgi`.
"""

from edgekv.api.app import EdgeKVApp, create_app

__all__ = ["EdgeKVApp", "create_app"]
