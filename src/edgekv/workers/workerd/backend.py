"""The KV backend protocol of workerd's `kvNamespace` binding, over `KVNamespace`.

workerd turns each binding call into one HTTP request (`GET|PUT|DELETE /<key>`, `GET /` for
list, `POST /bulk/get`); the namespace is told by an injected `X-KV-Namespace` header. Every
check and message is the binding's own (`KVNamespace`, `edgekv._rules`): a failure becomes its
status and, since workerd reads only the status line of an error, its message as the reason
phrase, so JavaScript sees `KV PUT failed: 400 Invalid expiration_ttl of 5. ...` exactly.

This module knows nothing of sockets: `KVBackend.handle` takes the request's method, raw
target, headers and a body source, and returns a `Reply` (the HTTP layer is
`edgekv.workers.workerd.server`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from urllib.parse import parse_qsl, unquote_to_bytes

import orjson

from edgekv import _rules as rules
from edgekv._exceptions import KVError
from edgekv._namespace import KVNamespace

__all__ = ["BULK_BODY_MAX_BYTES", "Body", "KVBackend", "Reply"]

log = logging.getLogger("edgekv.workerd")

BULK_BODY_MAX_BYTES = 1024 * 1024
"""A bulk get's request body: 100 keys of 512 bytes, JSON-escaped, fit many times over."""
_REASON_MAX_BYTES = 512  # what Miniflare keeps of a message, too

Headers = list[tuple[bytes, bytes]]


class Body:
    """A request body as the HTTP layer delivers it: `async for chunk in body` (how a put
    streams it into the binding), or `read_all(limit)` (bulk get), a 413 past `limit` bytes.
    No `read()`: the binding would take it for a file."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def read_all(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in self._chunks:
            size += len(chunk)
            if size > limit:
                raise KVError.for_op("GET_BULK", 413, f"Request body exceeds {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)


class Reply:
    """Status, reason phrase, headers (without Content-Length: the HTTP layer adds it) and
    body of one answer."""

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(
        self, status: int, reason: bytes, headers: Headers | None = None, body: bytes = b""
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers if headers is not None else []
        self.body = body


_OK = b"OK"
_OPS = {b"GET": "GET", b"PUT": "PUT", b"DELETE": "DELETE"}
_JSON = (b"content-type", b"application/json")


def _reason(text: str) -> bytes:
    """A message as a status line's reason phrase: one line, UTF-8, at most 512 bytes."""
    raw = " ".join(text.split("\r\n")).replace("\r", " ").replace("\n", " ").encode()
    if len(raw) > _REASON_MAX_BYTES:
        raw = raw[:_REASON_MAX_BYTES].decode("utf-8", "ignore").encode()
    return raw


def _error(exc: KVError) -> Reply:
    return Reply(exc.status, _reason(exc.detail))


def _not_found() -> Reply:
    return Reply(404, b"Not Found")


def _key(raw_path: bytes, op: str) -> str:
    """The key of `/<one segment>`: percent-decoded once (`+` stays `+`), then UTF-8. A lone
    surrogate arrives as WTF-8 bytes: decoded as that surrogate, for the binding's key check to
    refuse with its own message."""
    raw = unquote_to_bytes(raw_path[1:])
    try:
        return raw.decode()
    except UnicodeDecodeError:
        pass
    try:
        key = raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise KVError.for_op(op, 400, "Key name must be valid UTF-8") from None
    rules.encode_key(key, op)  # raises: the key has a lone surrogate
    return key


def _query(raw: bytes) -> dict[str, str]:
    # Only list's query is form-encoded (`+` is a space there); get and put carry plain numbers.
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8"))


class KVBackend:
    """Answers workerd's KV requests from the namespaces it is given (id -> `KVNamespace`);
    a request for any other namespace is refused. `namespaces` can be replaced at any time
    (a reloaded config)."""

    def __init__(self, namespaces: Mapping[str, KVNamespace]) -> None:
        self.namespaces = dict(namespaces)

    async def handle(self, method: bytes, target: bytes, headers: Headers, body: Body) -> Reply:
        """One request. `target` is the raw request target (path and query, undecoded)."""
        namespace_id = None
        metadata = None
        for name, value in headers:
            if name == b"x-kv-namespace":
                namespace_id = value.decode("latin-1")
            elif name == b"cf-kv-metadata":
                metadata = value
        ns = self.namespaces.get(namespace_id) if namespace_id is not None else None
        if ns is None:
            return Reply(403, b"Unknown namespace for this backend")
        path, _, query = target.partition(b"?")
        try:
            if path == b"/":
                if method != b"GET":
                    return Reply(405, b"Method Not Allowed")
                return await self._list(ns, query)
            if path == b"/bulk/get":
                if method != b"POST":
                    return Reply(405, b"Method Not Allowed")
                return await self._bulk_get(ns, body)
            if not path.startswith(b"/") or b"/" in path[1:]:
                return _not_found()
            handler = self._single.get(method)
            if handler is None:
                return Reply(405, b"Method Not Allowed")
            key = _key(path, _OPS[method])
            return await handler(self, ns, key, query, metadata, body)
        except KVError as exc:
            return _error(exc)
        except ConnectionError:
            raise  # workerd went away mid-body: nobody to answer
        except Exception:
            log.exception("KV backend: %s %s failed", method.decode(), target.decode("latin-1"))
            return Reply(500, b"Internal error of the KV backend")

    async def _get(
        self, ns: KVNamespace, key: str, query: bytes, metadata: bytes | None, body: Body
    ) -> Reply:
        cache_ttl = None
        if query != b"urlencoded=true":
            cache_ttl = _query(query).get("cache_ttl")
        entry = await ns.get_entry(key, cache_ttl=cache_ttl)
        if entry is None:
            return _not_found()
        headers: Headers = []
        if entry.metadata is not None:
            headers.append((b"cf-kv-metadata", entry.metadata.encode()))
        if entry.cache_status is not None:
            headers.append((b"cf-cache-status", entry.cache_status.encode()))
        if entry.expiration is not None:
            headers.append((b"cf-expiration", b"%d" % entry.expiration))
        return Reply(200, _OK, headers, entry.value)

    async def _put(
        self, ns: KVNamespace, key: str, query: bytes, metadata: bytes | None, body: Body
    ) -> Reply:
        params = _query(query)
        meta = None
        if metadata is not None:
            try:
                meta = orjson.loads(metadata)  # raw UTF-8 bytes on the wire
            except orjson.JSONDecodeError:
                return Reply(400, b"Metadata must be JSON (the CF-KV-Metadata header)")
        await ns.put(
            key,
            body,
            expiration=params.get("expiration"),  # type: ignore[arg-type]
            expiration_ttl=params.get("expiration_ttl"),  # type: ignore[arg-type]
            metadata=meta,
        )
        return Reply(200, _OK)

    async def _delete(
        self, ns: KVNamespace, key: str, query: bytes, metadata: bytes | None, body: Body
    ) -> Reply:
        await ns.delete(key)  # a missing key is 200 too: 404 would make delete() throw in JS
        return Reply(200, _OK)

    _single: dict[
        bytes,
        Callable[[KVBackend, KVNamespace, str, bytes, bytes | None, Body], Awaitable[Reply]],
    ] = {b"GET": _get, b"PUT": _put, b"DELETE": _delete}

    async def _list(self, ns: KVNamespace, query: bytes) -> Reply:
        params = _query(query)
        result = await ns.list(
            prefix=params.get("prefix"),
            limit=params.get("key_count_limit"),  # type: ignore[arg-type]
            cursor=params.get("cursor"),
        )
        keys = []
        for row in result.keys:
            item: dict[str, object] = {"name": row.name}
            if row.expiration is not None:
                item["expiration"] = row.expiration
            if row.metadata_json is not None:
                # The JSON text itself: workerd JSON.parses a string metadata in list results.
                item["metadata"] = row.metadata_json
            keys.append(item)
        out: dict[str, object] = {"keys": keys, "list_complete": result.list_complete}
        if result.cursor is not None:
            out["cursor"] = result.cursor
        headers: Headers = [_JSON]
        if result.cache_status is not None:
            headers.append((b"cf-cache-status", result.cache_status.encode()))
        return Reply(200, _OK, headers, orjson.dumps(out))

    async def _bulk_get(self, ns: KVNamespace, body: Body) -> Reply:
        raw = await body.read_all(BULK_BODY_MAX_BYTES)
        try:
            request = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return Reply(400, b"Request body must be JSON")
        keys = request.get("keys") if isinstance(request, dict) else None
        if not isinstance(keys, list):
            return Reply(400, b'Request body must be a JSON object with a "keys" array')
        type_ = request.get("type", "text")
        entries = await ns.get_entries(keys, type_, cache_ttl=request.get("cacheTtl"))
        out: dict[str, object]
        if request.get("withMetadata"):
            # Metadata as a JSON value here: workerd does not parse it in bulk results.
            out = {
                key: None
                if item is None
                else {
                    "value": item[1],
                    "metadata": None
                    if item[0].metadata is None
                    else orjson.loads(item[0].metadata),
                }
                for key, item in entries.items()
            }
        else:
            out = {key: None if item is None else item[1] for key, item in entries.items()}
        return Reply(200, _OK, [_JSON], orjson.dumps(out))
