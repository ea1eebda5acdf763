"""`KVNamespace`: the binding, with Workers KV's exact semantics (`_rules`) over any `Store`.

The same class serves the embedded engines, a central server and a location cache: only the
store behind it differs, so the rules (edgekv._rules) exist once.
"""

from __future__ import annotations

import base64
import binascii
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from math import floor
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, overload

import orjson

from edgekv import _rules as rules
from edgekv import _transfer, wire
from edgekv._exceptions import StoreError, kv_error, store_errors
from edgekv._export import ExportHeader
from edgekv._models import Change, ListResult, ValueStream, ValueWithMetadata
from edgekv._transfer import Export, ImportResult, Progress
from edgekv._types import Absent, Condition, Entry, Store, Written

if TYPE_CHECKING:
    from edgekv._client import Client

__all__ = ["KVNamespace", "ValueType"]

ValueType = Literal["text", "json", "bytes", "arrayBuffer", "stream"]

_UNKNOWN_TYPE = (
    'Unknown response type. Possible types are "text", "arrayBuffer", "json", and "stream".'
)
_BAD_VALUE = (
    "KV put() accepts only strings, bytes-like objects, binary files and byte streams as values."
)
_READ_CHUNK = 1024 * 1024
_SHORT_KEY = rules.SHORT_KEY_CHARS
_NO_OPTIONS: Mapping[str, Any] = {}
_NOT_JSON = "At least one of the requested keys corresponds to a non-json value"
_BOTH_CONDITIONS = "if_match and if_none_match cannot be used together."
_NONE_MATCH_STAR = 'if_none_match must be "*".'
_MATCH_TYPE = "if_match must be a version string."
FOLLOW_WAIT = 30.0  # seconds each long poll of `changes()` holds (a central server allows 60)


def _decode(value: bytes, type_: object) -> Any:
    if type_ == "text":
        return value.decode("utf-8", "replace")
    if type_ == "json":
        return orjson.loads(value)  # orjson.JSONDecodeError is a json.JSONDecodeError
    if type_ == "bytes" or type_ == "arrayBuffer":
        return value
    if type_ == "stream":
        return ValueStream(value)
    raise rules.type_error(_UNKNOWN_TYPE)


def _bulk_value(entry: Entry, type_: object) -> Any:
    """A bulk get's value: text, or parsed JSON (a non-JSON value fails the whole call)."""
    if type_ == "json":
        try:
            return orjson.loads(entry.value)
        except orjson.JSONDecodeError:
            raise rules.fail("GET_BULK", 400, _NOT_JSON) from None
    return entry.value.decode("utf-8", "replace")


def _metadata(raw: str | None) -> Any:
    return None if raw is None else orjson.loads(raw)


def _value_kind(value: object) -> str:
    """Which of the accepted value shapes this is (checked before any option)."""
    if isinstance(value, str):
        return "str"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    if callable(getattr(value, "read", None)):
        return "file"
    if isinstance(value, AsyncIterable):
        return "aiter"
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return "iter"
    raise rules.type_error(_BAD_VALUE)


class _Collector:
    """Accumulates streamed chunks up to the value limit, then only counts (the error names the
    full streamed length, and nothing beyond the limit is held)."""

    def __init__(self, op: str) -> None:
        self.op = op
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: object) -> None:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise rules.type_error(_BAD_VALUE)
        self.size += len(chunk)
        if self.size <= rules.VALUE_MAX_BYTES:
            self.chunks.append(bytes(chunk))
        else:
            self.chunks.clear()

    def result(self) -> bytes:
        rules.check_value_size(self.size, self.op)
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def _plain_value(value: Any, kind: str, op: str) -> bytes:
    """The bytes of a `str` or bytes-like value, size-checked (no await: the common case)."""
    data = rules.encode_text(value) if kind == "str" else bytes(value)
    rules.check_value_size(len(data), op)
    return data


async def _read_value(value: Any, kind: str, op: str) -> bytes:
    if kind == "str" or kind == "bytes":
        return _plain_value(value, kind, op)
    collector = _Collector(op)
    if kind == "file":
        while True:
            chunk = value.read(_READ_CHUNK)
            if inspect.isawaitable(chunk):
                chunk = await chunk
            if not chunk:
                break
            collector.add(chunk)
    elif kind == "aiter":
        async for chunk in value:
            collector.add(chunk)
    else:
        for chunk in value:
            collector.add(chunk)
    return collector.result()


class KVNamespace:
    """A namespace binding: `get`, `get_with_metadata`, `put`, `delete`, `list`, plus the bulk
    `put_many` / `delete_many` that Workers lacks. Obtain it from the handle
    (`await kv.create_namespace(title)`, `kv.namespace(id)`)."""

    __slots__ = ("_client", "id", "title")

    def __init__(self, client: Client, namespace_id: str, title: str | None = None) -> None:
        self._client = client
        self.id = namespace_id
        self.title = title

    def __repr__(self) -> str:
        return f"<KVNamespace {self.id} {self.title or ''}>".replace(" >", ">")

    async def _store(self) -> Store:
        return await self._client.connect()

    def _now(self) -> int:
        return floor(self._client.clock())

    # -- reads -----------------------------------------------------------------------------
    @overload
    async def get(
        self, key: str, type: ValueType = "text", *, cache_ttl: int | None = None
    ) -> Any: ...

    @overload
    async def get(
        self, key: list[str], type: ValueType = "text", *, cache_ttl: int | None = None
    ) -> dict[str, Any]: ...

    async def get(self, key: Any, type: Any = "text", *, cache_ttl: Any = None) -> Any:
        """The value of `key` as `type`, or None when it is missing or expired.
        Given a list of keys, a dict of key -> value (bulk get, at most 100 keys)."""
        if (
            cache_ttl is None
            and key.__class__ is str
            and 0 < len(key) <= _SHORT_KEY
            and (key != "." and key != "..")
        ):  # rules.is_plain_key, inlined: this is the hottest path of the library
            # The hot path (a cached read costs ~0.4 us in the store): no further call layer.
            client = self._client
            # The client's own slot, not `await client.connect()`, and an inline try, not
            # `store_errors`: each costs ~15-20% of a cached get (~250-400 ns of ~1.8 us).
            store = client._store or await client.connect()
            try:
                entry = await store.get(self.id, key, now=floor(client.clock()))
            except StoreError as exc:
                raise kv_error("GET", exc) from None
        elif isinstance(key, list):
            return await self._get_bulk(key, type, cache_ttl, with_metadata=False)
        else:
            entry = await self.get_entry(key, cache_ttl=cache_ttl)
        if entry is None or entry.__class__ is Absent:
            return None
        if type == "text":  # the common case, without a call
            return entry.value.decode("utf-8", "replace")
        return _decode(entry.value, type)

    @overload
    async def get_with_metadata(
        self, key: str, type: ValueType = "text", *, cache_ttl: int | None = None
    ) -> ValueWithMetadata: ...

    @overload
    async def get_with_metadata(
        self, key: list[str], type: ValueType = "text", *, cache_ttl: int | None = None
    ) -> dict[str, ValueWithMetadata | None]: ...

    async def get_with_metadata(
        self, key: Any, type: Any = "text", *, cache_ttl: Any = None
    ) -> Any:
        """`.value`, `.metadata` and `.cache_status` of `key` (value and metadata None when
        missing). Given a list of keys, a dict of key -> that object, or None when missing."""
        if isinstance(key, list):
            return await self._get_bulk(key, type, cache_ttl, with_metadata=True)
        entry = await self.get_entry(key, cache_ttl=cache_ttl)
        if entry is None:
            return ValueWithMetadata(None, None)
        if entry.__class__ is Absent:  # a miss a location cache answered: keep its status
            return ValueWithMetadata(None, None, entry.cache_status)
        return ValueWithMetadata(
            _decode(entry.value, type),
            _metadata(entry.metadata),
            entry.cache_status,
            entry.version,
        )

    async def get_entry(self, key: str, *, cache_ttl: int | str | None = None) -> Entry | None:
        """Single get's full form, for servers (the REST value read, the KV backend of
        workerd): every check of a get, then the stored `Entry` (value bytes, metadata as its
        JSON text, cache status) or None when missing. Through a location cache a miss may
        also be an `Absent` entry, which carries the miss's `cache_status` (`HIT` when served
        from the cache)."""
        rules.check_key(key, "GET")
        ttl = None
        if cache_ttl is not None:
            rules.check_cache_ttl(cache_ttl, "GET")
            ttl = rules.cache_ttl_seconds(cache_ttl)
        client = self._client
        store = client._store or await client.connect()  # the hot REST GET: see `get`
        try:
            return await store.get(self.id, key, now=floor(client.clock()), cache_ttl=ttl)
        except StoreError as exc:
            raise kv_error("GET", exc) from None

    async def get_entries(
        self,
        keys: list[str],
        type: ValueType = "text",
        *,
        cache_ttl: int | None = None,
        decode: bool = True,
    ) -> dict[str, tuple[Entry, Any] | None]:
        """Bulk get's full form, for servers and tools: every check of a bulk get, in the
        rules' order, then key -> (stored `Entry`, decoded value) or None when missing, in
        first-appearance order. `decode=False` skips decoding (the value is then None)."""
        op = "GET_BULK"
        rules.check_bulk_get(keys, type, cache_ttl)
        ttl = rules.cache_ttl_seconds(cache_ttl)
        unique = list(dict.fromkeys(keys))
        store = await self._store()
        with store_errors(op):
            found = await store.get_many(self.id, unique, now=self._now(), cache_ttl=ttl)
        out: dict[str, tuple[Entry, Any] | None] = {}
        total = 0
        for key in unique:
            entry = found.get(key)
            if entry is None:
                out[key] = None
                continue
            total += len(entry.value)
            out[key] = (entry, _bulk_value(entry, type) if decode else None)
        if total > rules.VALUE_MAX_BYTES:
            raise rules.fail(
                op, 413, "Total size of request exceeds the limit of 25MB", wire.TOO_LARGE
            )
        return out

    async def _get_bulk(
        self, keys: list[Any], type_: Any, cache_ttl: object, *, with_metadata: bool
    ) -> dict[str, Any]:
        entries = await self.get_entries(keys, type_, cache_ttl=cache_ttl)  # type: ignore[arg-type]
        if not with_metadata:
            return {key: None if item is None else item[1] for key, item in entries.items()}
        return {
            key: None
            if item is None
            else ValueWithMetadata(
                item[1], _metadata(item[0].metadata), item[0].cache_status, item[0].version
            )
            for key, item in entries.items()
        }

    async def list(
        self, *, prefix: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> ListResult:
        """One page of keys in UTF-8 byte order; pass `.cursor` back for the next page."""
        size = rules.check_list_limit(limit)
        prefix_ = rules.check_prefix(prefix)
        after = rules.decode_cursor(cursor)
        store = await self._store()
        with store_errors("GET"):
            rows = await store.list_keys(
                self.id, prefix=prefix_, after=after, limit=size + 1, now=self._now()
            )
        more = len(rows) > size
        if more:
            del rows[size:]
        # Engines return KeyListEntry rows: handed over as they are (metadata parsed on read).
        return ListResult(rows, not more, rules.encode_cursor(rows[-1].name) if more else None)

    # -- writes ----------------------------------------------------------------------------
    async def put(
        self,
        key: str,
        value: Any,
        *,
        expiration: int | None = None,
        expiration_ttl: int | None = None,
        metadata: Any = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> None:
        """Store `value` (str, bytes-like, binary file or byte stream) under `key`, replacing
        the whole entry. Returns once the write is durable.

        `if_match=V`: only if the key's current version is V; `if_none_match="*"`: only if the
        key does not exist. When the condition fails nothing is written and `KVConflict` is
        raised (its `.version` is the current version)."""
        await self._put(
            key,
            value,
            expiration=expiration,
            expiration_ttl=expiration_ttl,
            metadata=metadata,
            if_match=if_match,
            if_none_match=if_none_match,
        )

    async def _put(
        self,
        key: str,
        value: Any,
        *,
        expiration: object = None,
        expiration_ttl: object = None,
        metadata: Any = None,
        if_match: object = None,
        if_none_match: object = None,
    ) -> Written:
        """`put`, returning what it committed (the REST API answers the version as ETag)."""
        op = "PUT"
        rules.check_key(key, op)
        now = self._now()
        condition = _condition(if_match, if_none_match, now)
        kind = _value_kind(value)
        at = rules.resolve_expiration(expiration, expiration_ttl, now, op)
        meta = rules.serialize_metadata(metadata, op)
        data = await _read_value(value, kind, op)
        store = await self._store()
        with store_errors(op):
            return await store.put(self.id, key, Entry(data, at, meta), condition=condition)

    async def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Remove `key` (a missing key is not an error). Returns once durable.
        `if_match=V`: only if the key exists with version V (else `KVConflict`)."""
        await self._delete(key, if_match=if_match)

    async def _delete(self, key: str, *, if_match: object = None) -> Written | None:
        rules.check_key(key, "DELETE")
        now = self._now()
        condition = None if if_match is None else _condition(if_match, None, now)
        store = await self._store()
        with store_errors("DELETE"):
            return await store.delete(self.id, key, condition=condition, now=now)

    # -- the change feed -------------------------------------------------------------------
    async def changes(
        self, since: int | None = None, prefix: str | None = None
    ) -> AsyncIterator[Change]:
        """Every change after `since` (None: from now on) whose key starts with `prefix`, in
        commit order, following new ones as they commit until the caller stops iterating.
        Pass a change's `.seq` back as `since` to resume exactly after it. A `since` older
        than the kept history raises `KVError` with status 410."""
        cursor = _check_since(since)
        if prefix is not None and not isinstance(prefix, str):
            raise rules.type_error("prefix must be a string.")
        store = await self._store()
        while True:
            try:
                page = await store.changes(
                    self.id, since=cursor, prefix=prefix or "", wait=FOLLOW_WAIT
                )
            except StoreError as exc:
                raise kv_error("CHANGES", exc) from None
            for change in page.changes:
                yield change
            cursor = page.cursor

    async def put_many(self, items: Iterable[Mapping[str, Any] | tuple[str, Any]]) -> None:
        """Bulk write, all or nothing, at most 10,000 pairs: `(key, value)` tuples or dicts in the
        REST shape `{"key", "value", "base64"?, "expiration"?, "expiration_ttl"?, "metadata"?}`.
        Every pair is validated before anything is written."""
        op = "PUT_BULK"
        batch = list(items)
        if len(batch) > rules.BULK_WRITE_MAX_PAIRS:
            raise rules.fail(
                op,
                400,
                f"You can write a maximum of {rules.BULK_WRITE_MAX_PAIRS} pairs",
                wire.BAD_REQUEST,
            )
        now = self._now()
        pairs: list[tuple[str, Entry]] = []
        # Locals: the loop below runs 10,000 times per call.
        append, plain_key, limit = pairs.append, rules.is_plain_key, rules.VALUE_MAX_BYTES
        for item in batch:
            key: Any
            options: Mapping[str, Any] = _NO_OPTIONS
            if isinstance(item, tuple):
                key, value = item
                # Fast path of the common pair: a plain key and a str or bytes value.
                vclass = value.__class__
                if (vclass is bytes or vclass is str) and plain_key(key):
                    data = value if vclass is bytes else rules.encode_text(value)
                    if len(data) <= limit:
                        append((key, Entry(data)))
                        continue
            elif isinstance(item, Mapping):
                key, value, options = item.get("key"), item.get("value"), item
            else:
                raise rules.type_error("put_many() takes (key, value) pairs or dicts.")
            rules.check_key(key, op)
            kind = _value_kind(value)
            if options.get("base64"):
                value = _b64decode(value, op)
                kind = "bytes"
            at = rules.resolve_expiration(
                options.get("expiration"), options.get("expiration_ttl"), now, op
            )
            meta = rules.serialize_metadata(options.get("metadata"), op)
            data = (
                _plain_value(value, kind, op)
                if kind == "str" or kind == "bytes"
                else await _read_value(value, kind, op)
            )
            pairs.append((key, Entry(data, at, meta)))
        if not pairs:
            return
        store = await self._store()
        with store_errors(op):
            await store.put_many(self.id, pairs)

    async def delete_many(self, keys: Iterable[str]) -> None:
        """Bulk delete, at most 10,000 keys; missing keys are not an error."""
        op = "DELETE_BULK"
        batch = list(keys)
        if len(batch) > rules.BULK_WRITE_MAX_PAIRS:
            raise rules.fail(
                op,
                400,
                f"You can delete a maximum of {rules.BULK_WRITE_MAX_PAIRS} keys",
                wire.BAD_REQUEST,
            )
        for key in batch:
            rules.check_key(key, op)
        if not batch:
            return
        store = await self._store()
        with store_errors(op):
            await store.delete_many(self.id, batch, now=self._now())

    # -- export and import (docs/data.md) ---------------------------------------------------
    def export(self, *, page_size: int = _transfer.PAGE_SIZE) -> Export:
        """A consistent snapshot of every live key, in UTF-8 byte order of keys: an async
        iterator of `ExportEntry` (use `async with` to release it early; `.seq` is the
        sequence number it is exact at)."""
        return Export(self, page_size=page_size)

    async def import_entries(
        self, entries: Iterable[Any] | AsyncIterable[Any], *, progress: Progress | None = None
    ) -> ImportResult:
        """Write `ExportEntry` objects or bulk-write item dicts in bulk batches (merging into
        the keys already there); entries whose expiration has passed are skipped."""
        return await _transfer.import_entries(self, entries, progress=progress)

    async def export_to(self, file: IO[bytes]) -> tuple[ExportHeader, int]:
        """Write the export (NDJSON) to a binary file; returns its header and entry count."""
        return await _transfer.export_to(self, file)

    async def import_from(
        self,
        source: str | Path | IO[bytes],
        *,
        partial: bool = False,
        progress: Progress | None = None,
    ) -> ImportResult:
        """Import an export file (path or binary file), checked whole before the first write;
        `partial` accepts a file without its trailer. wrangler's bulk JSON is read too."""
        return await _transfer.import_from(self, source, partial=partial, progress=progress)


def _condition(if_match: object, if_none_match: object, now: int) -> Condition | None:
    if if_match is None and if_none_match is None:
        return None
    if if_match is not None and if_none_match is not None:
        raise rules.type_error(_BOTH_CONDITIONS)
    if if_none_match is not None:
        if if_none_match != "*":
            raise rules.type_error(_NONE_MATCH_STAR)
        return Condition(None, now)
    if not isinstance(if_match, str):
        raise rules.type_error(_MATCH_TYPE)
    return Condition(if_match, now)


def _check_since(since: object) -> int | None:
    if since is None:
        return None
    if isinstance(since, bool) or not isinstance(since, int) or since < 0:
        raise rules.type_error("since must be a non-negative integer (a change's seq).")
    return since


def _b64decode(value: object, op: str) -> bytes:
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, bytes | bytearray | memoryview):
        raise rules.type_error(_BAD_VALUE)
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise rules.fail(op, 400, "Invalid base64 value") from None
