"""The synchronous twin of the API, for scripts: `edgekv.sync.open(...)`, same methods, no await.

Each sync `Client` runs its async twin on a private event loop in a daemon thread, so engines
keep their background work (group commit, expiry sweeps, cache refreshes) while the caller blocks.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar, Unpack

from edgekv import _client
from edgekv._exceptions import ExportFormatError
from edgekv._export import ExportEntry, ExportHeader
from edgekv._models import Change, ListResult, Namespace, ValueStream, ValueWithMetadata
from edgekv._namespace import KVNamespace as AsyncKVNamespace
from edgekv._transfer import BATCH_ENTRIES, ImportResult, Progress
from edgekv._transfer import Export as AsyncExport

__all__ = ["Client", "Export", "KVNamespace", "open"]

T = TypeVar("T")


class _Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="edgekv-sync", daemon=True
        )
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
        self.loop.close()


def _stream_to_iter(value: Any) -> Any:
    if isinstance(value, ValueStream):
        data = value.data
        return iter(data[i : i + value.chunk_size] for i in range(0, len(data), value.chunk_size))
    return value


class Export:
    """The sync twin of `edgekv.Export`: `with ns.export() as snapshot:` then
    `for entry in snapshot`, or plainly `for entry in ns.export()`."""

    def __init__(self, inner: AsyncExport, loop: _Loop) -> None:
        self._inner = inner
        self._loop = loop
        self._rows: Iterator[ExportEntry] = iter(())

    @property
    def header(self) -> ExportHeader | None:
        return self._inner.header

    @property
    def seq(self) -> int:
        return self._inner.seq

    @property
    def count(self) -> int:
        return self._inner.count

    def open(self) -> Export:
        self._loop.run(self._inner.open())
        return self

    def page(self) -> list[ExportEntry]:
        return self._loop.run(self._inner.page())

    def pages(self) -> Iterator[list[ExportEntry]]:
        while rows := self.page():
            yield rows

    def close(self) -> None:
        self._loop.run(self._inner.aclose())

    def __enter__(self) -> Export:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[ExportEntry]:
        return self

    def __next__(self) -> ExportEntry:
        entry = next(self._rows, None)
        if entry is not None:
            return entry
        rows = self.page() if not self._inner._closed else []
        if not rows:
            self.close()
            raise StopIteration
        self._rows = iter(rows)
        return next(self._rows)


class KVNamespace:
    """The sync twin of `edgekv.KVNamespace`; `get(..., "stream")` gives an iterator of bytes."""

    def __init__(self, inner: AsyncKVNamespace, loop: _Loop) -> None:
        self._inner = inner
        self._loop = loop
        self.id = inner.id
        self.title = inner.title

    def __repr__(self) -> str:
        return repr(self._inner)

    def get(self, key: Any, type: Any = "text", *, cache_ttl: Any = None) -> Any:
        return _stream_to_iter(self._loop.run(self._inner.get(key, type, cache_ttl=cache_ttl)))

    def get_with_metadata(self, key: Any, type: Any = "text", *, cache_ttl: Any = None) -> Any:
        result = self._loop.run(self._inner.get_with_metadata(key, type, cache_ttl=cache_ttl))
        if isinstance(result, ValueWithMetadata) and isinstance(result.value, ValueStream):
            return ValueWithMetadata(
                _stream_to_iter(result.value), result.metadata, result.cache_status
            )
        return result

    def put(
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
        self._loop.run(
            self._inner.put(
                key,
                value,
                expiration=expiration,
                expiration_ttl=expiration_ttl,
                metadata=metadata,
                if_match=if_match,
                if_none_match=if_none_match,
            )
        )

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        self._loop.run(self._inner.delete(key, if_match=if_match))

    def changes(self, since: int | None = None, prefix: str | None = None) -> Iterator[Change]:
        """The sync twin of `changes()`: the same `Change` objects from a plain iterator, which
        blocks until the next change commits; stop iterating (or `close()` it) to end it."""
        changes: AsyncIterator[Change] = self._inner.changes(since, prefix)

        async def step() -> Change:
            return await anext(changes)

        try:
            while True:
                try:
                    yield self._loop.run(step())
                except StopAsyncIteration:
                    return
        finally:
            closer = getattr(changes, "aclose", None)
            if closer is not None and not self._loop.loop.is_closed():
                self._loop.run(closer())

    def list(
        self, *, prefix: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> ListResult:
        return self._loop.run(self._inner.list(prefix=prefix, limit=limit, cursor=cursor))

    def put_many(self, items: Iterable[Mapping[str, Any] | tuple[str, Any]]) -> None:
        self._loop.run(self._inner.put_many(items))

    def delete_many(self, keys: Iterable[str]) -> None:
        self._loop.run(self._inner.delete_many(keys))

    def export(self) -> Export:
        """A consistent snapshot, entry by entry (see `edgekv.KVNamespace.export`)."""
        return Export(self._inner.export(), self._loop)

    def import_entries(
        self, entries: Iterable[Any], *, progress: Progress | None = None
    ) -> ImportResult:
        """Like `edgekv.KVNamespace.import_entries`. The entries are taken from the iterable
        here, in the caller's thread, a batch at a time (the iterable may itself be a sync
        export of this client, whose loop must not wait on itself)."""
        total = ImportResult()
        it = iter(entries)
        while chunk := list(itertools.islice(it, BATCH_ENTRIES)):
            try:
                done = self._loop.run(self._inner.import_entries(chunk, progress=progress))
            except ExportFormatError as exc:
                raise ExportFormatError(
                    exc.line + total.written + total.skipped_expired,
                    exc.reason,
                    written=total.written + exc.written,
                ) from None
            total.written += done.written
            total.skipped_expired += done.skipped_expired
        return total

    def export_to(self, file: IO[bytes]) -> tuple[ExportHeader, int]:
        return self._loop.run(self._inner.export_to(file))

    def import_from(
        self,
        source: str | Path | IO[bytes],
        *,
        partial: bool = False,
        progress: Progress | None = None,
    ) -> ImportResult:
        return self._loop.run(self._inner.import_from(source, partial=partial, progress=progress))

    def iter_keys(self, *, prefix: str | None = None) -> Iterator[str]:
        """Every key name under `prefix`, page after page."""
        cursor = None
        while True:
            page = self.list(prefix=prefix, cursor=cursor)
            yield from (k.name for k in page.keys)
            if page.list_complete:
                return
            cursor = page.cursor


class Client:
    """The sync twin of `edgekv.Client`. Use `with` or call `close()`."""

    def __init__(self, inner: _client.Client) -> None:
        self._inner = inner
        self._loop = _Loop()

    def __repr__(self) -> str:
        return f"<edgekv.sync.Client {self._inner.target!r}>"

    def __enter__(self) -> Client:
        self._loop.run(self._inner.connect())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.loop.is_closed():
            return
        self._loop.run(self._inner.aclose())
        self._loop.stop()

    def namespace(self, namespace_id: str) -> KVNamespace:
        return KVNamespace(self._inner.namespace(namespace_id), self._loop)

    def create_namespace(
        self, title: str, *, namespace_id: str | None = None, jurisdiction: str | None = None
    ) -> KVNamespace:
        inner = self._loop.run(
            self._inner.create_namespace(
                title, namespace_id=namespace_id, jurisdiction=jurisdiction
            )
        )
        return KVNamespace(inner, self._loop)

    def list_namespaces(self) -> list[Namespace]:
        return self._loop.run(self._inner.list_namespaces())

    def get_namespace(self, namespace_id: str) -> Namespace | None:
        return self._loop.run(self._inner.get_namespace(namespace_id))

    def rename_namespace(self, namespace_id: str, title: str) -> Namespace:
        return self._loop.run(self._inner.rename_namespace(namespace_id, title))

    def delete_namespace(self, namespace_id: str) -> None:
        self._loop.run(self._inner.delete_namespace(namespace_id))


def open(target: str | Path | None = None, **options: Unpack[_client.OpenOptions]) -> Client:
    """Like `edgekv.open`, but every method blocks and returns its result."""
    return Client(_client.open(target, **options))
