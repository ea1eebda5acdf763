"""The ASGI application of the central server: `create_app(store_or_target)`.

Routing works on the **raw** path (`scope["raw_path"]`), so a key holding `%2F` stays one
segment, and the key is percent-decoded exactly once. Each request is authenticated (auth.py),
scoped to the token's account and namespaces, handled by one function of the `routes_*`
modules, and answered with the Cloudflare envelope (envelope.py). Any exception a handler did not
expect is logged with its traceback and answered as a 500 envelope, never as a traceback.
One access-log line per request goes to the `edgekv.access` logger.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes

from edgekv._client import SWEEP_INTERVAL, Client
from edgekv._exceptions import KVError, StoreError
from edgekv._types import Clock, Store
from edgekv.api import auth, openapi, routes_accounts, routes_bulk, routes_export
from edgekv.api import envelope as env
from edgekv.api import routes_namespaces as rns
from edgekv.api import routes_values as rv
from edgekv.api.accesslog import AccessLog
from edgekv.api.auth import Authenticator
from edgekv.api.context import Ctx, Services
from edgekv.api.envelope import ApiError, error_response, from_kv_error, from_store_error, ok
from edgekv.api.http import Receive, Request, Response, Scope, Send
from edgekv.api.limits import ClientDisconnected

__all__ = ["API_PREFIX", "EdgeKVApp", "create_app"]

log = logging.getLogger("edgekv.api")

API_PREFIX = b"/client/v4"
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


async def _openapi(ctx: Ctx) -> Response:
    return Response(200, openapi.document_bytes(), [(b"content-type", b"application/json")])


# route kind -> method -> route
ROUTES: dict[str, dict[str, Route]] = {
    "healthz": {"GET": Route(_healthz, "health", PUBLIC)},
    "openapi": {"GET": Route(_openapi, "openapi", PUBLIC)},
    "memberships": {"GET": Route(routes_accounts.list_memberships, "list memberships", TOKEN)},
    "accounts": {"GET": Route(routes_accounts.list_accounts, "list accounts", TOKEN)},
    "account": {"GET": Route(routes_accounts.get_account, "get account", ACCOUNT)},
    "verify": {"GET": Route(routes_accounts.verify_token, "verify token", TOKEN)},
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

_FIXED = {
    b"/healthz": "healthz",
    b"/openapi.json": "openapi",
    b"/memberships": "memberships",
    b"/accounts": "accounts",
    b"/user/tokens/verify": "verify",
}
_NS_TAIL = {b"keys": "keys", b"bulk": "bulk", b"export": "export"}
_KEYED = {b"values": "value", b"metadata": "metadata"}
_BULK = {b"delete": "bulk_delete", b"get": "bulk_get"}


@dataclass(slots=True)
class Match:
    kind: str
    account_id: str = ""
    namespace_id: str = ""
    raw_key: bytes | None = None


# The hot routes (a key's value or metadata) in one regex; everything else by segments.
_KEYED_RE = re.compile(
    rb"/client/v4/accounts/([0-9a-zA-Z_-]+)/storage/kv/namespaces/([0-9a-zA-Z_-]+)"
    rb"/(values|metadata)/(.*)",
    re.DOTALL,
)


def match_route(raw_path: bytes) -> Match | None:
    """The route of a raw path, or None. The key is everything after `values/` / `metadata/`,
    still percent-encoded."""
    fast = _KEYED_RE.fullmatch(raw_path)
    if fast is not None:
        account, namespace, kind, key = fast.groups()
        return Match(_KEYED[kind], account.decode(), namespace.decode(), key)
    if raw_path == b"/healthz":
        return Match("healthz")
    if not raw_path.startswith(API_PREFIX):
        return None
    rest = raw_path[len(API_PREFIX) :]
    fixed = _FIXED.get(rest.rstrip(b"/") or rest)
    if fixed is not None:
        return Match(fixed)
    parts = rest.split(b"/", 8)
    # ["", "accounts", a, "storage", "kv", "namespaces", ns?, tail?, more?]
    if len(parts) < 3 or parts[0] != b"" or parts[1] != b"accounts" or not parts[2]:
        return None
    account = unquote(parts[2].decode("latin-1"))
    if len(parts) == 3 or (len(parts) == 4 and parts[3] == b""):
        return Match("account", account)
    if parts[3:6] != [b"storage", b"kv", b"namespaces"]:
        return None
    if len(parts) == 6 or (len(parts) == 7 and parts[6] == b""):
        return Match("namespaces", account)
    namespace = unquote(parts[6].decode("latin-1"))
    if not namespace:
        return None
    if len(parts) == 7 or (len(parts) == 8 and parts[7] == b""):
        return Match("namespace", account, namespace)
    tail = parts[7]
    if tail in _KEYED and len(parts) >= 9:
        return Match(_KEYED[tail], account, namespace, parts[8])
    if tail in _NS_TAIL and (len(parts) == 8 or (len(parts) == 9 and parts[8] == b"")):
        return Match(_NS_TAIL[tail], account, namespace)
    if tail == b"bulk" and len(parts) == 9 and parts[8].rstrip(b"/") in _BULK:
        return Match(_BULK[parts[8].rstrip(b"/")], account, namespace)
    return None


def decode_key(raw: bytes) -> str:
    """Percent-decode a key exactly once; its bytes must be UTF-8."""
    try:
        return (unquote_to_bytes(raw) if b"%" in raw else raw).decode()
    except UnicodeDecodeError:
        raise ApiError(400, env.ILLEGAL_KEY, "key names must be valid UTF-8") from None


class EdgeKVApp:
    """The ASGI callable. `services.client` is the binding client every handler goes through."""

    def __init__(
        self, client: Client, *, owns_client: bool, access_log: AccessLog | None = None
    ) -> None:
        self.services = Services(client)
        self.auth = Authenticator(self.services.store, time.monotonic)
        self.access_log = access_log or AccessLog()
        self._owns_client = owns_client

    @property
    def client(self) -> Client:
        return self.services.client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    # -- lifespan --------------------------------------------------------------------------
    async def startup(self) -> None:
        await self.client._open()

    async def shutdown(self) -> None:
        self.access_log.flush()
        if self._owns_client:
            await self.client.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- requests --------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request = Request(scope, receive)
        try:
            response = await self._dispatch(request)
        except ClientDisconnected:
            self._log(scope, request, 499, started, 0)
            return
        if request.has_unread_body():
            response.close = True  # unread bytes still on the wire: do not reuse the connection
        await response.send(send)
        self._log(scope, request, response.status, started, len(response.body))

    def _log(self, scope: Scope, request: Request, status: int, started: float, size: int) -> None:
        client = scope.get("client")
        self.access_log.record(
            client[0] if client else "-",
            request.method,
            request.raw_path.decode("latin-1"),
            status,
            time.perf_counter() - started,
            size,
        )

    async def _dispatch(self, request: Request) -> Response:
        match = match_route(request.raw_path)
        if match is None:
            return error_response(
                404,
                env.NO_ROUTE,
                f"No route for that URI: {request.raw_path.decode('latin-1')}",
            )
        routes = ROUTES[match.kind]
        route = routes.get(request.method)
        if route is None:
            return error_response(
                405,
                env.METHOD_NOT_ALLOWED,
                f"Method {request.method} not allowed; use {', '.join(sorted(routes))}",
                [(b"allow", ", ".join(sorted(routes)).encode())],
            )
        ctx = Ctx(self.services, request, None, match.account_id, match.namespace_id)
        try:
            if route.needs != PUBLIC:
                await self._authorize(ctx, route)
            if match.raw_key is not None:
                ctx.key = decode_key(match.raw_key)
            return await route.handler(ctx)
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message(route.operation), exc.headers)
        except KVError as exc:
            error = from_kv_error(exc)
            return error_response(error.status, error.code, error.message(route.operation))
        except StoreError as exc:
            error = from_store_error(exc)
            return error_response(error.status, error.code, error.message(route.operation))
        except ClientDisconnected:
            raise
        except Exception:
            log.exception("unexpected error in %s %r", request.method, request.raw_path)
            return error_response(500, env.INTERNAL, f"{route.operation}: 'internal error'")

    async def _authorize(self, ctx: Ctx, route: Route) -> None:
        # The cached lookups first: a hot request then awaits nothing before its handler.
        token = ctx.token = self.auth.cached(ctx.request) or await self.auth.authenticate(
            ctx.request
        )
        if route.needs >= ACCOUNT:
            auth.check_account(token, ctx.account_id)
        if route.write:
            auth.check_write(token)
        if route.needs >= NAMESPACE:
            auth.check_namespace(token, ctx.namespace_id)
        if route.needs >= ENTRIES and not self.services.owned(ctx.account_id, ctx.namespace_id):
            await self.services.check_owner(ctx.account_id, ctx.namespace_id)


def create_app(
    target: Client | Store | str | Path | None = None,
    *,
    clock: Clock | None = None,
    sweep_interval: float | None = SWEEP_INTERVAL,
    access_log: AccessLog | None = None,
) -> EdgeKVApp:
    """The REST app over a store. `target`: a `Client` or a `Store` (the caller keeps and closes
    it), or what `edgekv.open` takes (a directory, `postgresql://…`, None for memory; the app
    opens it at startup and closes it at shutdown, and purges expired entries meanwhile).
    `access_log` defaults to lines on the `edgekv.access` logger."""
    if isinstance(target, Client):
        return EdgeKVApp(target, owns_client=False, access_log=access_log)
    if isinstance(target, Store):
        client = Client(target, clock=clock, sweep_interval=None)
        return EdgeKVApp(client, owns_client=False, access_log=access_log)
    client = Client(target, clock=clock, sweep_interval=sweep_interval)
    return EdgeKVApp(client, owns_client=True, access_log=access_log)
