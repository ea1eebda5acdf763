"""`RemoteStore`: the `Store` protocol over a central server's REST API (Cloudflare v4 dialect).

This is the remote binding's engine: `KVNamespace` validates every call with `edgekv._rules`
exactly as for an embedded store, then this class turns each store call into one HTTP request
(two only for the 1001-key list probe, see `list_keys`), in the protocol of `edgekv.wire`. It
keeps no state besides its transport (`edgekv.edge.transport`, chosen once: the lean
keep-alive pool, or httpx with `fast_client=False`).

Errors: the server's envelope codes become the store exceptions the binding already knows
(`wire.STORE_ERRORS`: 10013 `NamespaceNotFound`, 10014 `NamespaceTitleTaken`, 10018
`TooManyNamespaces`, 10412 `PreconditionFailed` with the ETag's version, 10410 `HistoryGone`);
a refused connection, a timeout, any 5xx, and any answer that is not what the protocol says (a
200 whose body is not the JSON envelope, malformed headers) become `StoreUnavailable` (503) —
every request has an overall deadline, so nothing hangs; anything else is a `RemoteError`
carrying the server's status and message.

A chosen namespace id goes in edgekv's extension of the create body (`"id"`, rest-api.md).
Not available through the KV API, by design: token or account management (`create_token`,
`find_token`, other accounts) — those raise `RemoteError` with status 501; tokens are managed on
the central server (`edgekv token create`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator, Sequence
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
from edgekv.edge.remote_snapshot import RemoteSnapshot
from edgekv.edge.transport import (
    Answer,
    HttpxTransport,
    Transport,
    httpx_client,
    open_transport,
)

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

    Every call goes through a lean keep-alive HTTP/1.1 pool, over TLS for an `https://` centre
    (`edgekv.edge.http1`: measured several times faster than httpx for reads, and ten times
    for writes at concurrency 64); a custom httpx `transport` and `fast_client=False` use
    httpx (`edgekv.edge.transport.open_transport`). `ssl_context` verifies an `https://`
    centre (default: what httpx trusts — certifi's roots, or `SSL_CERT_FILE`)."""

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
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.account_id = account_id
        self._base = wire.namespaces_path(account_id)
        # `edgekv-binding`: these writes were validated by the binding on the location's
        # clock; a centre may then tolerate a write whose "expiration >= now + 60" was true
        # there a moment ago (docs/edge-protocol.md).
        self._headers = {"authorization": f"Bearer {token}", wire.BINDING_HEADER: "1"}
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        self._httpx_transport = transport
        self._ssl_context = ssl_context
        self._long: httpx.AsyncClient | None = None  # long polls and streamed exports
        self._poll: Transport | None = None
        self._timeout = timeout
        self._transport: Transport = open_transport(
            self.url,
            headers=self._headers,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            fast_client=fast_client,
            transport=transport,
            ssl_context=ssl_context,
        )

    def __repr__(self) -> str:
        return f"<RemoteStore {self.url} account={self.account_id}>"

    # -- requests and answers --------------------------------------------------------------
    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        content: bytes = b"",
        json_body: Any = None,
        form: tuple[bytes, str] | None = None,
        headers: dict[str, str] | None = None,
        deadline: float | None = None,
        transport: Transport | None = None,
    ) -> Answer:
        """One exchange through the transport (`transport`: another one, e.g. the long polls');
        a 5xx answer is `StoreUnavailable`. `form`: a value and its metadata JSON, sent as
        multipart; `headers`: more headers; `deadline`: seconds for this exchange instead of
        the client's timeout."""
        content_type = None
        if json_body is not None:
            content, content_type = orjson.dumps(json_body), "application/json"
        elif form is not None:
            content, content_type = wire.value_form(*form)
        if params:
            path = f"{path}?{urlencode(params, quote_via=quote, safe='')}"
        answer = await (transport or self._transport).request(
            method, path, content, content_type, headers, deadline
        )
        if answer.status_code >= 500:
            raise StoreUnavailable(
                f"central server {self.url} answered {answer.status_code}: "
                f"{self._errors(answer)[1]}"
            )
        return answer

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

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Around reading an answer's content: anything not shaped as expected (not JSON, a
        field missing or of another type, bad base64) is a malformed answer, 503."""
        try:
            yield
        except (ValueError, KeyError, TypeError, AttributeError):  # JSONDecodeError: ValueError
            raise StoreUnavailable(f"central server {self.url} sent a malformed answer") from None

    def _envelope(
        self, answer: Answer, namespace_id: str | None = None, title: str = ""
    ) -> dict[str, Any]:
        """The envelope of an answer (`result`, `result_info`...): every JSON answer is read
        here. A non-2xx answer raises its mapped error, a malformed one `StoreUnavailable`."""
        if answer.status_code >= 300:
            raise self._fail(answer, namespace_id, title)
        if not answer.content:
            return {"result": None}  # 204
        with self._reading():
            body = orjson.loads(answer.content)
            if not isinstance(body, dict) or "result" not in body:
                raise ValueError("not an envelope")
        return body

    async def _json(
        self, method: str, path: str, namespace_id: str | None = None, **kwargs: Any
    ) -> Any:
        return self._envelope(await self._request(method, path, **kwargs), namespace_id)["result"]

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
        with self._reading():
            jurisdiction = result.get("jurisdiction")
            return NamespaceInfo(
                id=str(result["id"]),
                title=str(result["title"]),
                account_id=self.account_id,
                jurisdiction=None if jurisdiction is None else str(jurisdiction),
            )

    async def create_namespace(
        self,
        account_id: str,
        title: str,
        namespace_id: str | None = None,
        *,
        jurisdiction: str | None = None,
    ) -> NamespaceInfo:
        body: dict[str, Any] = {"title": title}
        if namespace_id is not None:
            body["id"] = namespace_id  # edgekv's extension of the create body (rest-api.md)
        if jurisdiction is not None:
            body["jurisdiction"] = jurisdiction
        answer = await self._request("POST", self._base, json_body=body)
        return self._info(self._envelope(answer, namespace_id, title=title)["result"])

    async def list_namespaces(self, account_id: str) -> list[NamespaceInfo]:
        out: list[NamespaceInfo] = []
        page = 1
        while True:
            result = await self._json(
                "GET",
                self._base,
                params={"page": page, "per_page": NAMESPACES_PER_PAGE},  # oldest first
            )
            with self._reading():
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
        answer = await self._request("PUT", self._ns(namespace_id), json_body={"title": title})
        return self._info(self._envelope(answer, namespace_id, title)["result"])

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
        with self._reading():
            expiration = int(raw_exp) if raw_exp else None
            metadata = wire.b64url_decode(raw_meta) if raw_meta else None
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
                result = await self._json(
                    "POST",
                    path,
                    namespace_id,
                    json_body={"keys": batch, "withMetadata": True, "encoding": "base64"},
                )
            except RemoteError as exc:
                if exc.status != 413:
                    raise
                # Over the server's 25 MB answer: a store has no such limit (the binding
                # enforces it with its own message), so read these keys one by one.
                entries = await asyncio.gather(*(self.get(namespace_id, k, now=now) for k in batch))
                found.update((k, e) for k, e in zip(batch, entries, strict=True) if e is not None)
                continue
            with self._reading():
                for key, item in result["values"].items():
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
        self._envelope(answer, namespace_id)
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
            raise StoreUnavailable(
                f"central server {self.url} sent a malformed answer: a write without its seq"
            )
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
        answer = await self._request("GET", self._ns(namespace_id, wire.KEYS), params=params)
        body = self._envelope(answer, namespace_id)
        with self._reading():
            rows = [
                KeyInfo(str(r["name"]), r.get("expiration"), _meta_text(r.get("metadata")))
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
            answer = Answer(status, headers, body)
            if status >= 500:
                return StoreUnavailable(
                    f"central server {self.url} answered {status}: {self._errors(answer)[1]}"
                )
            return self._fail(answer, namespace_id)

        snap = await RemoteSnapshot.open(
            self._long_client(), self.url, self._ns(namespace_id, wire.EXPORT), fail
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
        answer = await self._request(
            "GET",
            self._ns(namespace_id, wire.CHANGES),
            params=params,
            deadline=wait + _POLL_MARGIN,
            transport=self._poll_transport(),
        )
        body = self._envelope(answer, namespace_id)
        with self._reading():
            changes = [_change(item) for item in body["result"]]
            cursor = int(body["result_info"]["cursor"])
        return ChangePage(changes, cursor, max(cursor, changes[-1].seq if changes else 0))

    async def head(self, namespace_id: str) -> int:
        return (await self.changes(namespace_id, since=None)).cursor

    async def aclose(self) -> None:
        await self._transport.aclose()
        if self._long is not None:
            await self._long.aclose()

    def _long_client(self) -> httpx.AsyncClient:
        """Exchanges that may take long go on one httpx client of their own, made on first
        use: a held long poll or a slow export reader never takes a connection slot of the
        lean pool's reads and writes, and a streamed answer needs a client that streams (the
        transports read whole answers)."""
        if self._long is None:
            self._long = httpx_client(
                self.url,
                headers=self._headers,
                timeout=self._timeout,
                connect_timeout=self._connect_timeout,
                max_connections=self._max_connections,
                transport=self._httpx_transport,
                ssl_context=self._ssl_context,
            )
        return self._long

    def _poll_transport(self) -> Transport:
        """Each long poll passes its own deadline (its wait and a margin) on the long client."""
        if self._poll is None:
            self._poll = HttpxTransport(self.url, self._long_client(), self._timeout)
        return self._poll
