"""`RemoteStore`: the `Store` protocol over a central server's REST API (Cloudflare v4 dialect).

This is the remote binding's engine: `KVNamespace` validates every call with `edgekv._rules`
exactly as for an embedded store, then this class turns each store call into one HTTP request
(two only for the 1001-key list probe, see `list_keys`). It keeps no state besides its
connection pool: the lean `edgekv.edge.http1` keep-alive pool for an `http://` centre, an
`httpx.AsyncClient` otherwise (`https://`, or `fast_client=False`).

Errors: the server's envelope codes become the store exceptions the binding already knows
(10013 `NamespaceNotFound`, 10014 `NamespaceTitleTaken`, 10018 `TooManyNamespaces`, 10412
`PreconditionFailed` with the ETag's version, 10410 `HistoryGone`); a refused
connection, a timeout or any 5xx becomes `StoreUnavailable` (503) — every request has an overall
deadline, so nothing hangs; anything else is a `RemoteError` carrying the server's status and
message.

Not available through the KV API, by design: choosing a namespace id on creation, and token or
account management (`create_token`, `find_token`, other accounts) — those raise `RemoteError`
with status 501; tokens are managed on the central server (`edgekv token create`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import orjson

from edgekv import _rules as rules
from edgekv import wire
from edgekv._exceptions import (
    NamespaceNotFound,
    PreconditionFailed,
    StoreError,
    StoreUnavailable,
)
from edgekv._models import Change
from edgekv._types import (
    ChangePage,
    Condition,
    Entry,
    KeyInfo,
    NamespaceInfo,
    NamespaceStats,
    TokenRecord,
    Written,
    version_of,
)
from edgekv.edge.http1 import Answer, Http1Pool, ProtocolError
from edgekv.edge.remote_snapshot import RemoteSnapshot

__all__ = ["DEFAULT_TIMEOUT", "RemoteError", "RemoteStore"]

DEFAULT_TIMEOUT = 10.0  # seconds, the overall deadline of one request
DEFAULT_CONNECT_TIMEOUT = 2.0  # a centre that does not accept within 2 s is treated as down
DEFAULT_MAX_CONNECTIONS = 128

PAGE_MAX = rules.LIST_LIMIT_MAX  # the server's largest key-list page
BULK_GET_MAX = rules.BULK_GET_MAX_KEYS
NAMESPACES_PER_PAGE = 1000
_POLL_MARGIN = 10.0  # seconds a long poll's request may take beyond its `wait`


class RemoteError(StoreError):
    """A failure the central server reported (or a call this client cannot make), with the
    server's HTTP status and, when it sent one, its API error code."""

    def __init__(self, status: int, detail: str, code: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        if code is None:
            code = wire.INTERNAL if status >= 500 else wire.BAD_REQUEST
        self.code = code


def _meta_text(value: Any) -> str | None:
    # Values the server parsed back into JSON: orjson writes the same compact text that
    # `_rules.serialize_metadata` stored, so the round trip is exact.
    return None if value is None else orjson.dumps(value).decode()


def _version(answer: Answer) -> str | None:
    """The version an `ETag: "<version>"` header carries."""
    raw = answer.headers.get(wire.ETAG_HEADER)
    return None if raw is None else wire.parse_entity_tag(raw)


def _condition_headers(condition: Condition | None) -> dict[str, str] | None:
    if condition is None:
        return None
    if condition.version is None:
        return {wire.IF_NONE_MATCH_HEADER: "*"}
    return {wire.IF_MATCH_HEADER: wire.entity_tag(condition.version)}


def _change(item: dict[str, Any]) -> Change:
    return Change(
        int(item["seq"]),
        str(item["key"]),
        "delete" if item["op"] == "delete" else "put",
        item.get("version"),
        item.get("expiration"),
        _meta_text(item.get("metadata")),
    )


def _entry_payload(key: str, entry: Entry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "key": key,
        "value": base64.b64encode(entry.value).decode(),
        "base64": True,
    }
    if entry.expiration is not None:
        item["expiration"] = entry.expiration
    if entry.metadata is not None:
        # Fragment: the validated JSON text travels as it is, never re-serialised.
        item["metadata"] = orjson.Fragment(entry.metadata)
    return item


class RemoteStore:
    """A `Store` backed by a central server: `RemoteStore("http://127.0.0.1:8787",
    token=..., account_id=...)`. One instance serves one account; close it with `aclose()`.

    Every call to an `http://` centre goes through a lean keep-alive HTTP/1.1 pool
    (`edgekv.edge.http1`: measured several times faster than httpx for reads, and ten times
    for writes at concurrency 64); `https://` centres, a custom `transport` and
    `fast_client=False` use httpx."""

    def __init__(
        self,
        url: str,
        *,
        token: str,
        account_id: str,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        fast_client: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.account_id = account_id
        self._timeout = timeout
        self._base = wire.namespaces_path(account_id)
        auth = {"authorization": f"Bearer {token}"}
        self._http = httpx.AsyncClient(
            base_url=self.url,
            # `edgekv-binding`: these writes were validated by the binding on the location's
            # clock; a centre may then tolerate a write whose "expiration >= now + 60" was true
            # there a moment ago (docs/locations.md, "Limits").
            headers={**auth, wire.BINDING_HEADER: "1"},
            timeout=httpx.Timeout(timeout, connect=min(connect_timeout, timeout)),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=30.0,
            ),
            http1=True,
            http2=False,
            transport=transport,
        )
        self._fast: Http1Pool | None = None
        if fast_client and transport is None and self.url.startswith("http://"):
            self._fast = Http1Pool(
                self.url,
                headers={**auth, wire.BINDING_HEADER: "1"},
                max_connections=max_connections,
                timeout=timeout,
                connect_timeout=min(connect_timeout, timeout),
            )

    def __repr__(self) -> str:
        return f"<RemoteStore {self.url} account={self.account_id}>"

    # -- transport -------------------------------------------------------------------------
    def _unreachable(self, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(
            f"central server {self.url} unreachable: {type(exc).__name__} {exc}".rstrip()
        )

    def _checked(self, answer: Answer) -> Answer:
        if answer.status_code >= 500:
            raise StoreUnavailable(
                f"central server {self.url} answered {answer.status_code}: "
                f"{self._errors(answer)[1]}"
            )
        return answer

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        json_body: Any = None,
        form: tuple[bytes, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One exchange: through the lean pool when there is one (every call: at concurrency 64
        httpx's pool managed ~600 writes/s where this one does thousands), else httpx.
        `form`: a value and its metadata JSON, sent as multipart; `headers`: more headers."""
        content_type = None
        if json_body is not None:
            content, content_type = orjson.dumps(json_body), "application/json"
        elif form is not None:
            content, content_type = wire.value_form(*form)
        fast = self._fast
        if fast is None:
            return await self._request_httpx(method, path, params, content, content_type, headers)
        if params:
            path = f"{path}?{urlencode(params, quote_via=quote, safe='')}"
        try:
            answer = await fast.request(method, path, content or b"", content_type, headers)
        except (OSError, TimeoutError, ProtocolError, ValueError, asyncio.IncompleteReadError) as e:
            raise self._unreachable(e) from None
        return self._checked(answer)

    async def _request_httpx(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        content: bytes | None,
        content_type: str | None,
        extra: dict[str, str] | None = None,
        deadline: float | None = None,
    ) -> Answer:
        """`deadline`: seconds for this exchange instead of the client's timeout."""
        headers = dict(extra or {})
        if content_type is not None:
            headers["content-type"] = content_type
        long = deadline is not None
        deadline = self._timeout if deadline is None else deadline
        try:
            # httpx's timeouts are per phase (connect, each read, ...): a server trickling bytes
            # could outlast them, so the whole exchange also gets one deadline.
            async with asyncio.timeout(deadline):
                response = await self._http.request(
                    method,
                    path,
                    params=params,
                    content=content,
                    headers=headers,
                    timeout=httpx.Timeout(deadline) if long else httpx.USE_CLIENT_DEFAULT,
                )
        except (httpx.TransportError, TimeoutError) as exc:
            raise self._unreachable(exc) from None
        lowered = {k.lower(): v for k, v in response.headers.items()}
        return self._checked(Answer(response.status_code, lowered, response.content))

    @staticmethod
    def _errors(answer: Answer) -> tuple[int | None, str]:
        """The first error's code and message, without Cloudflare's `<operation>: '...'`
        wrapping (the binding adds its own `KV <OP> failed: <status>` prefix)."""
        error = wire.first_error(answer.content)
        if error is not None:
            return error
        text = answer.content.decode("utf-8", "replace").strip()
        return None, text[:200] or f"HTTP {answer.status_code}"

    def _fail(self, answer: Answer, namespace_id: str | None = None, title: str = "") -> StoreError:
        """The store error of a failed answer: its code's class (`wire.STORE_ERRORS`), rebuilt
        with what the call named, else a `RemoteError`."""
        code, message = self._errors(answer)
        known = None if code is None else wire.STORE_ERRORS.get(code)
        if known is not None:
            error = known.from_answer(message, namespace_id=namespace_id or "", title=title)
            if isinstance(error, PreconditionFailed):
                error.version = _version(answer)  # the key's current version, if it exists
            return error
        return RemoteError(answer.status_code, message, code)

    def _result(self, answer: Answer, namespace_id: str | None) -> Any:
        """The `result` of an enveloped answer; a non-2xx answer raises the mapped error."""
        if answer.status_code >= 300:
            raise self._fail(answer, namespace_id)
        if not answer.content:
            return None  # 204
        try:
            return orjson.loads(answer.content)["result"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise StoreUnavailable(f"central server {self.url} sent a malformed answer") from None

    async def _json(
        self, method: str, path: str, namespace_id: str | None = None, **kwargs: Any
    ) -> Any:
        return self._result(await self._request(method, path, **kwargs), namespace_id)

    def _ns(self, namespace_id: str, tail: str = "") -> str:
        return wire.namespace_path(self.account_id, namespace_id, tail)

    def _value(self, namespace_id: str, key: str) -> str:
        return wire.value_path(self.account_id, namespace_id, key)

    # -- accounts and tokens -------------------------------------------------------------
    async def default_account(self) -> str:
        return self.account_id

    async def ensure_account(self, account_id: str, name: str = "") -> None:
        # Accounts are created on the central server; this client only acts as its own.
        if account_id != self.account_id:
            raise RemoteError(501, "accounts are managed on the central server")

    async def account_exists(self, account_id: str) -> bool:
        return account_id == self.account_id

    async def create_token(self, token: TokenRecord) -> None:
        raise RemoteError(501, "tokens are managed on the central server (edgekv token create)")

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        raise RemoteError(501, "tokens are managed on the central server (edgekv token create)")

    async def list_tokens(self, account_id: str) -> list[TokenRecord]:
        raise RemoteError(501, "tokens are managed on the central server (edgekv token list)")

    async def revoke_token(self, token_id: str) -> TokenRecord | None:
        raise RemoteError(501, "tokens are managed on the central server (edgekv token revoke)")

    def token_revision(self) -> int | None:
        return None  # tokens are checked by the central server, never here

    # -- namespaces ------------------------------------------------------------------------
    def _info(self, result: Any) -> NamespaceInfo:
        return NamespaceInfo(
            id=str(result["id"]), title=str(result["title"]), account_id=self.account_id
        )

    async def create_namespace(
        self, account_id: str, title: str, namespace_id: str | None = None
    ) -> NamespaceInfo:
        if namespace_id is not None:
            raise RemoteError(501, "a central server assigns namespace ids itself")
        response = await self._request("POST", self._base, json_body={"title": title})
        if response.status_code >= 300:
            raise self._fail(response, title=title)
        return self._info(orjson.loads(response.content)["result"])

    async def list_namespaces(self, account_id: str) -> list[NamespaceInfo]:
        out: list[NamespaceInfo] = []
        page = 1
        while True:
            result = await self._json(
                "GET",
                self._base,
                params={"page": page, "per_page": NAMESPACES_PER_PAGE},  # oldest first
            )
            out.extend(self._info(r) for r in result or ())
            if not result or len(result) < NAMESPACES_PER_PAGE:
                return out
            page += 1

    async def get_namespace(self, account_id: str, namespace_id: str) -> NamespaceInfo | None:
        try:
            return self._info(await self._json("GET", self._ns(namespace_id), namespace_id))
        except NamespaceNotFound:
            return None

    async def rename_namespace(
        self, account_id: str, namespace_id: str, title: str
    ) -> NamespaceInfo:
        response = await self._request("PUT", self._ns(namespace_id), json_body={"title": title})
        if response.status_code >= 300:
            raise self._fail(response, namespace_id, title)
        return self._info(orjson.loads(response.content)["result"])

    async def delete_namespace(self, account_id: str, namespace_id: str) -> None:
        await self._json("DELETE", self._ns(namespace_id), namespace_id)

    # -- entries ---------------------------------------------------------------------------
    async def get(
        self, namespace_id: str, key: str, *, now: int, cache_ttl: int | None = None
    ) -> Entry | None:
        """One round trip: the raw value, with expiration and metadata in headers."""
        response = await self._request("GET", self._value(namespace_id, key))
        status = response.status_code
        if status == 404:
            code, _ = self._errors(response)
            if code == wire.KEY_NOT_FOUND:
                return None
            raise self._fail(response, namespace_id)
        if status >= 300:
            raise self._fail(response, namespace_id)
        headers = response.headers
        raw_exp = headers.get(wire.EXPIRATION_HEADER)
        raw_meta = headers.get(wire.METADATA_HEADER)
        try:
            expiration = int(raw_exp) if raw_exp else None
            metadata = wire.b64url_decode(raw_meta) if raw_meta else None
        except ValueError:
            raise StoreUnavailable(f"central server {self.url} sent malformed headers") from None
        if expiration is not None and expiration <= now:
            return None  # the caller's clock decides, as every engine's `now` does
        return Entry(response.content, expiration, metadata, None, _version(response))

    async def get_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int, cache_ttl: int | None = None
    ) -> dict[str, Entry]:
        """`bulk/get` with metadata and base64 values: one round trip per 100 keys."""
        found: dict[str, Entry] = {}
        path = self._ns(namespace_id, wire.BULK_GET)
        for start in range(0, len(keys), BULK_GET_MAX):
            batch = list(keys[start : start + BULK_GET_MAX])
            try:
                answer = await self._request(
                    "POST",
                    path,
                    json_body={"keys": batch, "withMetadata": True, "encoding": "base64"},
                )
                result = self._result(answer, namespace_id)
            except RemoteError as exc:
                if exc.status != 413:
                    raise
                # Over the server's 25 MB answer: a store has no such limit (the binding
                # enforces it with its own message), so read these keys one by one.
                entries = await asyncio.gather(*(self.get(namespace_id, k, now=now) for k in batch))
                found.update((k, e) for k, e in zip(batch, entries, strict=True) if e is not None)
                continue
            values = result["values"] if isinstance(result, dict) else {}
            for key, item in values.items():
                if item is None:
                    continue
                expiration = item.get("expiration")
                if expiration is not None and expiration <= now:
                    continue
                found[key] = Entry(
                    base64.b64decode(item["value"]),
                    expiration,
                    _meta_text(item.get("metadata")),
                    None,
                    item.get("version"),
                )
        return found

    def _written(self, answer: Answer, namespace_id: str) -> Written | None:
        """What a write answered: its change's seq (`edgekv-seq`), None when none was made."""
        self._result(answer, namespace_id)
        raw = answer.headers.get(wire.SEQ_HEADER)
        if raw is None:
            return None
        try:
            seq = int(raw)
        except ValueError:
            raise StoreUnavailable(f"central server {self.url} sent malformed headers") from None
        return Written(seq, _version(answer) or version_of(seq))

    async def put(
        self, namespace_id: str, key: str, entry: Entry, *, condition: Condition | None = None
    ) -> Written:
        path = self._value(namespace_id, key)
        params = None if entry.expiration is None else {"expiration": entry.expiration}
        value = bytes(entry.value)
        headers = _condition_headers(condition)
        if entry.metadata is None:
            answer = await self._request("PUT", path, params=params, content=value, headers=headers)
        else:
            answer = await self._request(
                "PUT", path, params=params, form=(value, entry.metadata), headers=headers
            )
        written = self._written(answer, namespace_id)
        if written is None:
            raise StoreUnavailable(f"central server {self.url} did not say what it wrote")
        return written

    async def put_many(self, namespace_id: str, items: Sequence[tuple[str, Entry]]) -> None:
        """One `PUT bulk` request (the server applies it all or nothing)."""
        if not items:
            return
        body = [_entry_payload(key, entry) for key, entry in items]
        await self._json("PUT", self._ns(namespace_id, wire.BULK), namespace_id, json_body=body)

    async def delete(
        self,
        namespace_id: str,
        key: str,
        *,
        condition: Condition | None = None,
        now: int | None = None,
    ) -> Written | None:
        """`now` is not sent: the centre's clock decides whether an entry had expired."""
        answer = await self._request(
            "DELETE", self._value(namespace_id, key), headers=_condition_headers(condition)
        )
        return self._written(answer, namespace_id)

    async def delete_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int | None = None
    ) -> None:
        if not keys:
            return
        await self._json(
            "POST",
            self._ns(namespace_id, wire.BULK_DELETE),
            namespace_id,
            json_body=list(keys),
        )

    async def _list_page(
        self, namespace_id: str, prefix: str, cursor: str | None, limit: int
    ) -> tuple[list[KeyInfo], str]:
        params: dict[str, Any] = {"limit": limit}
        if prefix:
            params["prefix"] = prefix
        if cursor:
            params["cursor"] = cursor
        response = await self._request("GET", self._ns(namespace_id, wire.KEYS), params=params)
        if response.status_code >= 300:
            raise self._fail(response, namespace_id)
        body = orjson.loads(response.content)
        rows = [
            KeyInfo(r["name"], r.get("expiration"), _meta_text(r.get("metadata")))
            for r in body["result"]
        ]
        return rows, str((body.get("result_info") or {}).get("cursor") or "")

    async def list_keys(
        self, namespace_id: str, *, prefix: str, after: str | None, limit: int, now: int
    ) -> list[KeyInfo]:
        """Up to `limit` keys. The binding asks for page size + 1 (up to 1001) to learn whether
        more remain; the server pages at 1000, so a 1001 request takes a second round trip (of
        one key) only when the first page of 1000 came back with a cursor — a complete listing
        costs one."""
        cursor = None if after is None else rules.encode_cursor(after)
        rows, next_cursor = await self._list_page(
            namespace_id, prefix, cursor, min(limit, PAGE_MAX)
        )
        while len(rows) < limit and next_cursor:
            more, next_cursor = await self._list_page(
                namespace_id, prefix, next_cursor, min(limit - len(rows), PAGE_MAX)
            )
            rows.extend(more)
        return rows

    @contextlib.asynccontextmanager
    async def snapshot(self, namespace_id: str, *, now: int) -> AsyncIterator[RemoteSnapshot]:
        """The centre's `GET …/export`, streamed (edge/remote_snapshot.py)."""

        def fail(status: int, headers: dict[str, str], body: bytes) -> StoreError:
            answer = self._checked(Answer(status, headers, body))  # 5xx: StoreUnavailable
            return self._fail(answer, namespace_id)

        snap = await RemoteSnapshot.open(
            self._http, self.url, self._ns(namespace_id, wire.EXPORT), fail
        )
        try:
            yield snap
        finally:
            await snap.close()

    async def namespace_stats(self, namespace_id: str, *, now: int) -> NamespaceStats:
        result = await self._json("GET", self._ns(namespace_id, wire.STATS), namespace_id)
        return NamespaceStats(int(result["key_count"]), int(result["bytes"]))

    async def purge_expired(self, now: int, limit: int = 1000) -> int:
        return 0  # the central server sweeps its own store

    # -- the change feed ---------------------------------------------------------------------
    async def changes(
        self,
        namespace_id: str,
        *,
        since: int | None,
        prefix: str = "",
        limit: int = 1000,
        wait: float = 0,
    ) -> ChangePage:
        """One `GET …/changes` (a long poll when `wait` > 0: the centre holds it, at most 60 s;
        on httpx, so a held poll never takes a slot of the lean pool's reads)."""
        params: dict[str, Any] = {"limit": limit}
        if since is not None:
            params["since"] = since
        if prefix:
            params["prefix"] = prefix
        if wait > 0:
            params["wait"] = f"{wait:g}"
        answer = await self._request_httpx(
            "GET",
            self._ns(namespace_id, wire.CHANGES),
            params,
            None,
            None,
            deadline=wait + _POLL_MARGIN,
        )
        if answer.status_code >= 300:
            raise self._fail(answer, namespace_id)
        try:
            body = orjson.loads(answer.content)
            changes = [_change(item) for item in body["result"]]
            cursor = int(body["result_info"]["cursor"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise StoreUnavailable(f"central server {self.url} sent a malformed answer") from None
        return ChangePage(changes, cursor, max(cursor, changes[-1].seq if changes else 0))

    async def head(self, namespace_id: str) -> int:
        return (await self.changes(namespace_id, since=None)).cursor

    async def aclose(self) -> None:
        if self._fast is not None:
            await self._fast.aclose()
        await self._http.aclose()
