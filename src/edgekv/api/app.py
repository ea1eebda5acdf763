"""The ASGI application of the central server: `create_app(store_or_target)`.

Routing works on the **raw** path (`scope["raw_path"]`, matched by `edgekv.wire.match_route`),
so a key holding `%2F` stays one segment, and the key is percent-decoded exactly once. Each
request is authenticated (auth.py), scoped to the token's account and namespaces, handled by
one function of the `routes_*` modules, and answered with the Cloudflare envelope
(envelope.py). Any exception a handler did not expect is logged with its traceback and
answered as a 500 envelope, never as a traceback. One access-log line per request
(`edgekv.asgi.accesslog`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from math import floor
from pathlib import Path
from typing import Any

from edgekv import _rules as rules
from edgekv import wire
from edgekv._client import SWEEP_INTERVAL, Client
from edgekv._exceptions import ClientDisconnected, KVError, StoreError, kv_error
from edgekv._types import Clock, Store, TokenRecord
from edgekv.api import (
    auth,
    openapi,
    routes_accounts,
    routes_bulk,
    routes_changes,
    routes_export,
    routes_stats,
)
from edgekv.api import routes_namespaces as rns
from edgekv.api import routes_values as rv
from edgekv.api.auth import Authenticator
from edgekv.api.context import Ctx, Services
from edgekv.api.envelope import ApiError, error_response, from_kv_error, from_store_error, ok
from edgekv.api.http import Request, Response
from edgekv.asgi.accesslog import AccessLog
from edgekv.asgi.lifespan import serve_lifespan
from edgekv.asgi.types import Receive, Scope, Send
from edgekv.dash.pages import Pages, local_access
from edgekv.metrics import Metrics

__all__ = ["EdgeKVApp", "create_app"]

log = logging.getLogger("edgekv.api")

Handler = Callable[[Ctx], Awaitable[Response]]

# What a route needs before its handler runs.
PUBLIC = 0  # nothing
TOKEN = 1  # a valid token
ACCOUNT = 2  # ... of the account in the path
NAMESPACE = 3  # ... allowed to use the namespace in the path
ENTRIES = 4  # ... and that namespace exists in that account


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    operation: str  # prefix of error messages: "<operation>: '<text>'"
    needs: int
    write: bool = False


async def _healthz(ctx: Ctx) -> Response:
    return ok({"status": "ok"})


async def _readyz(ctx: Ctx) -> Response:
    """Ready when the store answers a read (a database down: 503, while /healthz stays 200)."""
    try:
        await ctx.services.client.ping()
    except KVError as exc:
        return error_response(503, wire.UNAVAILABLE, f"ready: 'store unavailable: {exc.detail}'")
    return ok({"status": "ready"})


async def _openapi(ctx: Ctx) -> Response:
    return Response(200, openapi.document_bytes(), [(b"content-type", b"application/json")])


# route kind -> method -> route
ROUTES: dict[str, dict[str, Route]] = {
    "healthz": {"GET": Route(_healthz, "health", PUBLIC)},
    "readyz": {"GET": Route(_readyz, "ready", PUBLIC)},
    "openapi": {"GET": Route(_openapi, "openapi", PUBLIC)},
    "memberships": {"GET": Route(routes_accounts.list_memberships, "list memberships", TOKEN)},
    "accounts": {"GET": Route(routes_accounts.list_accounts, "list accounts", TOKEN)},
    "account": {"GET": Route(routes_accounts.get_account, "get account", ACCOUNT)},
    "verify": {"GET": Route(routes_accounts.verify_token, "verify token", TOKEN)},
    "user": {"GET": Route(routes_accounts.get_user, "get user", TOKEN)},
    "metrics": {"GET": Route(routes_stats.prometheus, "metrics", TOKEN)},
    "namespaces": {
        "GET": Route(rns.list_namespaces, "list namespaces", ACCOUNT),
        "POST": Route(rns.create_namespace, "create namespace", ACCOUNT, write=True),
    },
    "namespace": {
        "GET": Route(rns.get_namespace, "get namespace", NAMESPACE),
        "PUT": Route(rns.rename_namespace, "rename namespace", NAMESPACE, write=True),
        "DELETE": Route(rns.delete_namespace, "delete namespace", NAMESPACE, write=True),
    },
    "keys": {"GET": Route(rv.list_keys, "list keys", ENTRIES)},
    "export": {"GET": Route(routes_export.export_namespace, "export", ENTRIES)},
    "changes": {"GET": Route(routes_changes.list_changes, "changes", ENTRIES)},
    "stats": {"GET": Route(routes_stats.namespace_stats, "namespace stats", ENTRIES)},
    "ns_metrics": {"GET": Route(routes_stats.namespace_metrics, "namespace metrics", ENTRIES)},
    "value": {
        "GET": Route(rv.get_value, "get", ENTRIES),
        "PUT": Route(rv.put_value, "put", ENTRIES, write=True),
        "DELETE": Route(rv.delete_value, "delete", ENTRIES, write=True),
    },
    "metadata": {"GET": Route(rv.get_metadata, "get metadata", ENTRIES)},
    "bulk": {
        "PUT": Route(routes_bulk.bulk_write, "bulk put", ENTRIES, write=True),
        "DELETE": Route(routes_bulk.bulk_delete, "bulk delete", ENTRIES, write=True),
    },
    "bulk_delete": {"POST": Route(routes_bulk.bulk_delete, "bulk delete", ENTRIES, write=True)},
    "bulk_get": {"POST": Route(routes_bulk.bulk_get, "bulk get", ENTRIES)},
}


# The route `_get_value_fast` answers without the route table (its operation names it in
# error messages, metrics and the log).
_GET_VALUE = ROUTES["value"]["GET"]

# Every API answer too: it can never be framed, nor run anything if opened as a document.
_API_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
]


def decode_key(raw: bytes) -> str:
    """Percent-decode a key exactly once; its bytes must be UTF-8."""
    try:
        return wire.unquote_key(raw)
    except UnicodeDecodeError:
        raise ApiError(400, wire.ILLEGAL_KEY, "key names must be valid UTF-8") from None


class EdgeKVApp:
    """The ASGI callable. `services.client` is the binding client every handler goes through."""

    def __init__(
        self,
        client: Client,
        *,
        owns_client: bool,
        access_log: AccessLog | None = None,
        metrics: Metrics | None = None,
        pages: Pages | None = None,
    ) -> None:
        self.services = Services(client, metrics)
        self.metrics = self.services.metrics
        self.auth = Authenticator(self.services.store, time.monotonic, self._token_revision)
        self.access_log = access_log or AccessLog()
        self.pages = pages  # the dashboard, when this app serves it
        # `edgekv dev`: every request of its own dashboard acts with this token (see dash/)
        self.local_token: TokenRecord | None = None
        self._owns_client = owns_client
        self._fast_get = True  # `_get_value_fast` first (tests turn it off to compare)

    def _token_revision(self) -> int | None:
        store = self.services.client._store
        return None if store is None else store.token_revision()

    @property
    def client(self) -> Client:
        return self.services.client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await serve_lifespan(receive, send, self.startup, self.shutdown, _startup_failed)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    # -- lifespan --------------------------------------------------------------------------
    async def startup(self) -> None:
        await self.client.connect()

    def drain(self) -> None:
        """The server begins to stop: held long polls answer now instead of at their wait."""
        self.services.draining.set()

    async def shutdown(self) -> None:
        self.drain()
        self.access_log.flush()
        if self._owns_client:
            await self.client.aclose()

    # -- requests --------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        if (
            scope["method"] == "GET"
            and self._fast_get
            and await self._get_value_fast(scope, send, started)
        ):
            return
        request = Request(scope, receive)
        match = wire.match_route(request.raw_path)
        try:
            response, operation = await self._dispatch(request, match)
        except ClientDisconnected:
            self.access_log.request(scope, 499, started, 0)
            return
        if request.has_unread_body():
            response.close = True  # unread bytes still on the wire: do not reuse the connection
        if operation != "dashboard":  # pages carry their own, longer policy
            response.headers += _API_HEADERS
        await response.send(send)
        self.metrics.observe(
            operation,
            response.status,
            time.perf_counter() - started,
            match.namespace_id if match is not None else "",
        )
        self.access_log.request(scope, response.status, started, len(response.body))

    async def _get_value_fast(self, scope: Scope, send: Send, started: float) -> bool:
        """The hot read, `GET …/values/{key}` with a token and a namespace owner both cached,
        answered without the general path's layers; True once answered. False, with nothing
        sent, counted or logged, for anything else: the general path then answers it whole.

        What it skips, and why the answer stays the same:
        - `Request`, `Match`, `Ctx`, the route table: the read uses only the raw path (the query
          is not read; a raw path without `raw_path` falls back) and the credential header. A
          request declaring a body falls back: only the general path knows when to `close`.
        - `match_route`: `wire.match_value` is its first test, narrowed to the value route.
        - `_authorize`: a cached token is the first thing it tries, and the token's account,
          its namespace list and the cached owner are all it checks for a read of entries.
          Each failed condition falls back, so every refusal (401, 403, 404) is the general
          path's own, as is any first lookup of a token or an owner.
        - the binding's `get_entry`: for a plain key (`rules.is_plain_key`: every key check
          passes) without `cache_ttl` it is this one store read, its `StoreError` becoming
          `kv_error("GET", …)`, as `KVNamespace.get` inlines it too. Other keys fall back.
        The rest is the general path's own code: `present`, `value_response`, the 404 of
        `key_not_found` and `_failure` for any error, then the ending of `_http` (API headers,
        counters, log line)."""
        raw = scope.get("raw_path")
        if raw is None:
            return False
        path = raw.split(b"?", 1)[0]
        parts = wire.match_value(path)
        if parts is None:
            return False
        headers = dict(scope["headers"])
        if b"content-length" in headers or b"transfer-encoding" in headers:
            return False
        account_id, namespace_id, raw_key = parts
        token = self.auth.cached_token(headers)
        if (
            token is None
            or token.account_id != account_id
            or not auth.may_use_namespace(token, namespace_id)
            or not self.services.owned(account_id, namespace_id)
        ):
            return False
        try:
            key = wire.unquote_key(raw_key)
        except UnicodeDecodeError:
            return False  # the general path's 400
        client = self.services.client
        store = client._store
        if store is None or not rules.is_plain_key(key):
            return False
        operation = _GET_VALUE.operation
        try:
            entry = await store.get(namespace_id, key, now=floor(client.clock()))
        except StoreError as exc:
            response = _failure(kv_error("GET", exc), operation, "GET", path)
        except Exception as exc:
            response = _failure(exc, operation, "GET", path)
        else:
            entry = rv.present(entry)
            if entry is None:
                response = _failure(rv.key_not_found(), operation, "GET", path)
            else:
                response = rv.value_response(entry)
        # `_http`'s own ending (an API answer: never a dashboard page)
        response.headers += _API_HEADERS
        await response.send(send)
        status = response.status
        self.metrics.observe(operation, status, time.perf_counter() - started, namespace_id)
        self.access_log.request(scope, status, started, len(response.body))
        return True

    async def _dispatch(self, request: Request, match: wire.Match | None) -> tuple[Response, str]:
        """The response and the operation it counts under in the metrics."""
        if match is None:
            page = None if self.pages is None else self.pages.response(request)
            if page is not None:
                return page, "dashboard"
            return error_response(
                404,
                wire.NO_ROUTE,
                f"No route for that URI: {request.raw_path.decode('latin-1')}",
            ), "no route"
        routes = ROUTES[match.kind]
        route = routes.get(request.method)
        if route is None:
            return error_response(
                405,
                wire.METHOD_NOT_ALLOWED,
                f"Method {request.method} not allowed; use {', '.join(sorted(routes))}",
                [(b"allow", ", ".join(sorted(routes)).encode())],
            ), "no route"
        ctx = Ctx(self.services, request, None, match.account_id, match.namespace_id)
        operation = route.operation
        try:
            if route.needs != PUBLIC:
                await self._authorize(ctx, route)
            if match.raw_key is not None:
                ctx.key = decode_key(match.raw_key)
            return await route.handler(ctx), operation
        except Exception as exc:
            return _failure(exc, operation, request.method, request.raw_path), operation

    async def _authorize(self, ctx: Ctx, route: Route) -> None:
        # The cached lookups first: a hot request then awaits nothing before its handler.
        token = ctx.token = (
            self.auth.cached(ctx.request)
            or (self.local_token and local_access(ctx.request, self.local_token))
            or await self.auth.authenticate(ctx.request)
        )
        if route.needs >= ACCOUNT:
            auth.check_account(token, ctx.account_id)
        if route.write:
            auth.check_write(token)
        if route.needs >= NAMESPACE:
            auth.check_namespace(token, ctx.namespace_id)
        if route.needs >= ENTRIES and not self.services.owned(ctx.account_id, ctx.namespace_id):
            await self.services.check_owner(ctx.account_id, ctx.namespace_id)


def _failure(exc: Exception, operation: str, method: str, raw_path: bytes) -> Response:
    """The error answer of what a route raised; `operation` prefixes its message."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message(operation), exc.headers)
    if isinstance(exc, KVError):
        error = from_kv_error(exc)
        return error_response(error.status, error.code, error.message(operation))
    if isinstance(exc, StoreError):
        error = from_store_error(exc)
        return error_response(error.status, error.code, error.message(operation))
    if isinstance(exc, ClientDisconnected):
        # The body ended before it was complete. Either the client went away (nobody reads
        # this answer; sending it is harmless), or its framing was malformed, e.g. a chunk
        # size that is not hex: granian reports that as a disconnect too and answers 500
        # itself when the app sends nothing. The client's fault: a 400.
        response = error_response(
            400,
            wire.BAD_REQUEST,
            f"{operation}: 'request body incomplete or malformed (bad chunked "
            "framing, or the connection closed mid-body)'",
        )
        response.close = True
        return response
    log.error("unexpected error in %s %r", method, raw_path, exc_info=exc)
    return error_response(500, wire.INTERNAL, f"{operation}: 'internal error'")


def _startup_failed(exc: Exception) -> None:
    log.error("startup failed", exc_info=exc)


def create_app(
    target: Client | Store | str | Path | None = None,
    *,
    clock: Clock | None = None,
    sweep_interval: float | None = SWEEP_INTERVAL,
    access_log: AccessLog | None = None,
    metrics: Metrics | None = None,
    dashboard: bool = False,
) -> EdgeKVApp:
    """The REST app over a store. `target`: a `Client` or a `Store` (the caller keeps and closes
    it), or what `edgekv.open` takes (a directory, `postgresql://…`, None for memory; the app
    opens it at startup and closes it at shutdown, and purges expired entries meanwhile).
    `access_log` defaults to lines on the `edgekv.access` logger; `metrics` to counters of its
    own (`Metrics(enabled=False)` turns them off). `dashboard`: serve the dashboard at `/`."""
    pages = Pages() if dashboard else None
    options: dict[str, Any] = {"access_log": access_log, "metrics": metrics, "pages": pages}
    if isinstance(target, Client):
        return EdgeKVApp(target, owns_client=False, **options)
    if isinstance(target, Store):
        client = Client(target, clock=clock, sweep_interval=None)
        return EdgeKVApp(client, owns_client=False, **options)
    client = Client(target, clock=clock, sweep_interval=sweep_interval)
    return EdgeKVApp(client, owns_client=True, **options)
