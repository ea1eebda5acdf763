"""Export and import of a namespace: what `KVNamespace.export()` / `import_entries()` /
`export_to()` / `import_from()` do, over any engine (embedded, PostgreSQL, remote).

Export reads one consistent snapshot (`Store.snapshot`) page by page: memory stays flat and the
result is exact at the header's `seq` while writers go on. Import writes bulk batches straight to
the store with the centre's expiration check only ("in the future", as a location's writes):
entries whose expiration has passed are skipped and counted, everything else is written as it
is, so an export imported into an empty namespace gives the same values, metadata and
expirations. Writes are upserts: importing twice leaves the same data.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Protocol

import orjson

from edgekv import _rules as rules
from edgekv._exceptions import ExportFormatError, KVError, StoreError, kv_error
from edgekv._export import (
    ExportDecoder,
    ExportEntry,
    ExportHeader,
    _Bad,
    decode_item,
    encode_entries,
    encode_header,
    encode_trailer,
)
from edgekv._types import Entry, Snapshot

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from edgekv._namespace import KVNamespace

__all__ = ["Export", "ImportResult", "Progress", "export_to", "import_entries", "import_from"]

PAGE_SIZE = 1000  # entries per snapshot read
BATCH_ENTRIES = rules.BULK_WRITE_MAX_PAIRS  # entries per bulk write
# Value bytes per bulk write: base64 over REST (4/3) plus keys and metadata stays < 100 MB.
BATCH_BYTES = 48 * 1024 * 1024
_SPOOL_CHUNK = 1024 * 1024


@dataclass(slots=True)
class ImportResult:
    """What an import did: `written` entries, `skipped_expired` (expiration already passed),
    and for a file: its `header` and whether it was `complete` (had its trailer)."""

    written: int = 0
    skipped_expired: int = 0
    header: ExportHeader | None = None
    complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "skipped_expired": self.skipped_expired,
            "complete": self.complete,
        }


class Progress(Protocol):
    """Told the number of entries to write once the file is checked, then each batch written."""

    def start(self, total: int) -> None: ...

    def update(self, n: int) -> None: ...


class Export:
    """A namespace's consistent snapshot, entry by entry (`KVNamespace.export()`).

        async with ns.export() as snapshot:
            print(snapshot.seq)
            async for entry in snapshot:     # ExportEntry: key, value, expiration, metadata
                ...

    `async for entry in ns.export()` works too (the snapshot is released at the end, or when
    the iterator is closed); `async with` releases it as soon as the block is left. `.pages()`
    gives the entries a page at a time. `.header` (ExportHeader) is set once open."""

    def __init__(
        self, namespace: KVNamespace, *, page_size: int = PAGE_SIZE, title: str | None = None
    ) -> None:
        self._namespace = namespace
        self._page_size = page_size
        self._title = title  # known already (the REST route looked the namespace up)
        self._context: AbstractAsyncContextManager[Snapshot] | None = None
        self._snapshot: Snapshot | None = None
        self._buffer: Iterator[ExportEntry] = iter(())
        self._closed = False
        self.header: ExportHeader | None = None
        self.count = 0

    @property
    def seq(self) -> int:
        """The sequence number the snapshot is exact at."""
        if self.header is None:
            raise RuntimeError("the export is not open yet: use `async with` or iterate")
        return self.header.seq

    async def open(self) -> Export:
        if self._snapshot is not None:
            return self
        if self._closed:
            raise RuntimeError("this export was closed; call ns.export() again")
        ns = self._namespace
        title = self._title
        if title is None:
            info = await ns._client.get_namespace(ns.id)
            if info is None:
                raise KVError.for_op("EXPORT", 404, f"namespace {ns.id} not found", code=10013)
            title = info.title
        store = await ns._store()
        now = ns._now()
        context = store.snapshot(ns.id, now=now)
        try:
            snapshot = await context.__aenter__()
        except StoreError as exc:
            raise kv_error("EXPORT", exc) from None
        self._context, self._snapshot = context, snapshot
        self.header = ExportHeader(ns.id, title, snapshot.seq, now)
        return self

    async def page(self) -> list[ExportEntry]:
        """The next page of entries ([] at the end)."""
        snapshot = self._snapshot or (await self.open())._snapshot
        assert snapshot is not None
        try:
            rows = await snapshot.page(self._page_size)
        except StoreError as exc:
            await self.aclose()
            raise kv_error("EXPORT", exc) from None
        self.count += len(rows)
        return rows

    async def pages(self) -> AsyncIterator[list[ExportEntry]]:
        while rows := await self.page():
            yield rows

    async def aclose(self) -> None:
        """Release the snapshot (its read transaction) now. Idempotent."""
        self._closed = True
        context, self._context, self._snapshot = self._context, None, None
        if context is not None:
            await context.__aexit__(None, None, None)

    async def __aenter__(self) -> Export:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Export:
        return self

    async def __anext__(self) -> ExportEntry:
        entry = next(self._buffer, None)
        if entry is not None:
            return entry
        if self._closed:
            raise StopAsyncIteration
        rows = await self.page()
        if not rows:
            await self.aclose()
            raise StopAsyncIteration
        self._buffer = iter(rows)
        return next(self._buffer)


async def export_to(namespace: KVNamespace, file: IO[bytes]) -> tuple[ExportHeader, int]:
    """Write the namespace's export (header, entries, trailer) to a binary file; returns the
    header and the number of entries."""
    async with namespace.export() as snapshot:
        assert snapshot.header is not None
        file.write(encode_header(snapshot.header))
        async for rows in snapshot.pages():
            file.write(encode_entries(rows))
        file.write(encode_trailer(snapshot.count))
        file.flush()
        return snapshot.header, snapshot.count


# -- import --------------------------------------------------------------------------------------
def _checked(item: object, now: int) -> ExportEntry:
    """An entry given to `import_entries`, checked as a bulk-write item is (raises `_Bad`)."""
    if isinstance(item, ExportEntry):
        raw = {"key": item.key, "value": "", "expiration": item.expiration}
        decode_item(raw, now)  # key and expiration checks
        if not isinstance(item.value, bytes | bytearray | memoryview):
            raise _Bad(f"key {item.key!r}: value must be bytes")
        try:
            rules.check_value_size(len(item.value))
            meta = item.metadata_json
            if meta is not None:
                meta = rules.serialize_metadata(orjson.loads(meta))
        except (KVError, orjson.JSONDecodeError) as exc:
            raise _Bad(f"key {item.key!r}: {exc}") from None
        return ExportEntry(item.key, bytes(item.value), item.expiration, meta)
    if isinstance(item, Mapping):
        return decode_item(dict(item), now)
    raise _Bad("expected an ExportEntry or a bulk-write item (a dict)")


class _Writer:
    """Bulk batches to the store; counts what was written and skipped."""

    def __init__(self, namespace: KVNamespace, now: int, progress: Progress | None) -> None:
        self.namespace = namespace
        self.now = now
        self.progress = progress
        self.result = ImportResult()
        self._batch: list[tuple[str, Entry]] = []
        self._bytes = 0

    async def add(self, entry: ExportEntry) -> None:
        if entry.expiration is not None and entry.expiration <= self.now:
            self.result.skipped_expired += 1
            return
        self._batch.append((entry.key, Entry(entry.value, entry.expiration, entry.metadata_json)))
        self._bytes += len(entry.value)
        if len(self._batch) >= BATCH_ENTRIES or self._bytes >= BATCH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        batch, self._batch, self._bytes = self._batch, [], 0
        if not batch:
            return
        store = await self.namespace._store()
        try:
            await store.put_many(self.namespace.id, batch)
        except StoreError as exc:
            error = kv_error("IMPORT", exc)
            raise KVError(
                f"{error} ({self.result.written} entries written before)",
                error.status,
                code=error.code,
                detail=error.detail,
            ) from None
        self.result.written += len(batch)
        if self.progress is not None:
            self.progress.update(len(batch))


async def import_entries(
    namespace: KVNamespace,
    entries: Iterable[Any] | AsyncIterable[Any],
    *,
    progress: Progress | None = None,
) -> ImportResult:
    """Write entries (`ExportEntry` objects, e.g. from another namespace's `export()`, or
    bulk-write item dicts) in bulk batches. An entry that is not valid stops the import with
    `ExportFormatError` (its position, the reason, how many were written before it: every
    valid entry before it is written, nothing after)."""
    writer = _Writer(namespace, namespace._now(), progress)
    position = 0

    async def one(item: object) -> None:
        try:
            entry = _checked(item, writer.now)
        except _Bad as exc:
            await writer.flush()
            raise ExportFormatError(position, str(exc), written=writer.result.written) from None
        await writer.add(entry)

    if isinstance(entries, AsyncIterable):
        async for item in entries:
            position += 1
            await one(item)
    else:
        for item in entries:
            position += 1
            await one(item)
    await writer.flush()
    return writer.result


@contextlib.contextmanager
def _open_source(source: str | Path | IO[bytes]) -> Iterator[IO[bytes]]:
    """A seekable binary file for `source`: opened from a path, spooled from a stream."""
    if isinstance(source, str | Path):
        with Path(source).open("rb") as file:
            yield file
    elif not source.seekable():
        # A stream (stdin) is copied to an anonymous temporary file first: it is checked
        # whole before anything is written, then read again to write it.
        with tempfile.TemporaryFile() as spooled:
            shutil.copyfileobj(source, spooled, _SPOOL_CHUNK)
            spooled.seek(0)
            yield spooled
    else:
        yield source


def _is_json_array(file: IO[bytes]) -> bool:
    head = file.read(4096).lstrip()
    file.seek(0)
    return head.startswith(b"[")


def _wrangler_items(file: IO[bytes], now: int) -> Iterator[tuple[int, ExportEntry]]:
    """wrangler's bulk JSON (an array of bulk-write items): parsed whole, as wrangler does."""
    try:
        items = orjson.loads(file.read())
    except orjson.JSONDecodeError as exc:
        raise ExportFormatError(1, f"not valid JSON ({exc})") from None
    if not isinstance(items, list):
        raise ExportFormatError(1, "expected a JSON array of bulk-write items")
    for i, item in enumerate(items):
        try:
            yield i, decode_item(item, now)
        except _Bad as exc:
            raise ExportFormatError(i, f"item [{i}]: {exc}") from None


async def import_from(
    namespace: KVNamespace,
    source: str | Path | IO[bytes],
    *,
    partial: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """Import an export file (a path, or a binary file; a stream that cannot seek, such as
    stdin, is spooled to a temporary file first). The whole file is checked before the first
    write: a malformed line, or a missing trailer unless `partial`, raises `ExportFormatError`
    and writes nothing. A file holding a JSON array is read as wrangler's bulk JSON."""
    with _open_source(source) as file:
        now = namespace._now()
        wrangler = _is_json_array(file)
        header: ExportHeader | None = None
        complete = True
        total = 0
        if wrangler:
            for _ in _wrangler_items(file, now):
                total += 1
        else:
            check = ExportDecoder(file, now=now, partial=partial)
            for _ in check:
                total += 1
            header, complete = check.header, check.complete
        file.seek(0)
        if progress is not None:
            progress.start(total)
        writer = _Writer(namespace, namespace._now(), progress)
        items = (
            _wrangler_items(file, now)
            if wrangler
            else iter(ExportDecoder(file, now=now, partial=partial))
        )
        for _, entry in items:
            await writer.add(entry)
        await writer.flush()
    result = writer.result
    result.header, result.complete = header, complete
    return result
