"""`edgekv dev`'s console: the dashboard and a REST API over the local store, under
`/__edgekv` beside the worker (which owns every other path).

`/__edgekv/dash` is the page, `/__edgekv/client/v4/…` the same REST API as `edgekv serve`'s
over the same `Client` the worker's bindings use, `/__edgekv/metrics` its counters. No token:
the store is the developer's own, and dev binds to loopback; every API request must carry the
`X-EdgeKV-Dashboard: 1` header, which a page of another origin cannot send (CSRF).
"""

from __future__ import annotations

from edgekv._client import Client
from edgekv._types import TokenRecord
from edgekv.api.app import EdgeKVApp
from edgekv.asgi.types import Receive, Scope, Send
from edgekv.dash.pages import Pages

__all__ = ["PREFIX", "DevConsole"]

PREFIX = "/__edgekv"


class DevConsole:
    """An ASGI app for paths under `PREFIX` (the caller routes them here)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.app = EdgeKVApp(client, owns_client=False, pages=Pages(prefix=PREFIX, local=True))

    def handles(self, path: str) -> bool:
        return path == PREFIX + "/dash" or path.startswith(
            (PREFIX + "/dash/", PREFIX + "/client/", PREFIX + "/metrics")
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app.local_token is None:
            await self.client.connect()
            account = self.client.account_id
            assert account is not None  # set by _open
            self.app.local_token = TokenRecord("0" * 32, account, "", name="edgekv dev")
        raw = scope.get("raw_path") or scope["path"].encode()
        inner = dict(scope)
        inner["path"] = scope["path"][len(PREFIX) :]
        inner["raw_path"] = raw[len(PREFIX) :]
        await self.app(inner, receive, send)
