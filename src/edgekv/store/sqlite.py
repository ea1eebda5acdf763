"""The SQLite engine: the embedded default, one file `edgekv.sqlite3` in a directory.

- WAL and `synchronous=FULL`: a write is acknowledged only once its commit is on disk.
- The tables, their migrations and the statements: store/sqlite_schema.py. Keys are BLOBs
  (UTF-8 byte order); large values live in a table of their own.
- The event loop never runs SQLite: one writer thread with group commit, reader threads and a
  checkpointer (store/sqlite_writer.py). Accounts, tokens and namespaces: store/sqlite_catalog.py.
- `inline_reads=True` serves point reads of small values on the calling thread: a thread
  round trip costs 50-100 us on a small VM, the read itself ~6 us. See `_get_inline`. Off for
  a bare `SQLiteStore.open`; on wherever edgekv opens one (`edgekv.open`, `edgekv serve`,
  `edgekv.store.open_store`). A key read again with nothing committed in between (by
  anyone) is answered from the thread's `HotRows` without a statement (sqlite_hot.py).

Unknown namespaces cost nothing on the hot path: a read checks the namespace only when it found
nothing; a write checks it inside the writer's transaction, before changing anything.

The change feed (schema 2): each write advances its namespace's `head` in the writer's
transaction and logs a row in `changes`, so seq order is commit order (one writer at a time,
across processes too). Conditions of conditional writes are checked in the same transaction
before anything changes, so a failed one fails alone, never its group-commit batch. History is
trimmed in small background transactions once a namespace holds 2N changes. Long polls wake on
this process's commits at once, and on other processes' commits within `_FOREIGN_POLL`
(a one-query check of the waited namespaces' heads, made only while someone waits).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import operator
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import orjson

from edgekv._exceptions import NamespaceNotFound, StoreError
from edgekv._types import (
    DEFAULT_FEED_HISTORY,
    ChangePage,
    Condition,
    Entry,
    KeyInfo,
    NamespaceStats,
    Written,
    version_of,
)
from edgekv.store._feed import FeedWaiters, RawChange, poll
from edgekv.store.sqlite_catalog import SQLiteCatalog
from edgekv.store.sqlite_hot import HotRows
from edgekv.store.sqlite_schema import (
    BLOB_MIN,
    CHANGES,
    DELETE,
    DELETE_MANY,
    GET,
    GET_MANY,
    GET_SMALL,
    HEAD,
    LIST,
    LIST_ALL,
    LOG,
    LOG_DELETE,
    LOG_PUT,
    NS_EXISTS,
    PURGE,
    SCHEMA_VERSION,
    SET_HEAD,
    STATS,
    STATS_EXPIRED,
    UPSERT,
    UPSERT_SMALL,
    blob_columns,
    check,
    head_seq,
    heads_of,
    migrate,
    prefix_end,
    require_namespace,
    value_columns,
)
from edgekv.store.sqlite_snapshot import SQLiteSnapshot
from edgekv.store.sqlite_writer import Workers

__all__ = ["FILENAME", "SCHEMA_VERSION", "SQLiteStore"]

FILENAME = "edgekv.sqlite3"

_PURGE_BATCH = 256  # rows per purge transaction, so purging never stalls writers for long
_TRIM_BATCH = 2000  # change rows per history-trim transaction, for the same reason
_FOREIGN_POLL = 1.0  # seconds between checks for other processes' commits while polls wait
_INLINE_MAX_VALUE = 16 * 1024  # inline_reads: larger values are read on a reader thread
_NEW_TUPLE = tuple.__new__
_VALUE = operator.attrgetter("value")
_EXPIRATION = operator.attrgetter("expiration")
_METADATA = operator.attrgetter("metadata")


def _key_infos(page: tuple[bytes, bytes, bytes]) -> list[KeyInfo]:
    """The KeyInfo rows of a LIST page (one row of three JSON arrays: sqlite_schema.py):
    parsed and zipped in C, `tuple.__new__(KeyInfo, ...)` through `map`, no Python frame per
    key (half the cost of `KeyInfo._make`, a page holds a thousand)."""
    columns = map(orjson.loads, page)
    return list(map(_NEW_TUPLE, itertools.repeat(KeyInfo), zip(*columns, strict=True)))


def _entry(value: bytes, expiration: int | None, metadata: str | None, seq: int) -> Entry:
    return Entry(value, expiration, metadata, None, version_of(seq))


class SQLiteStore(SQLiteCatalog):
    """A `Store` in one SQLite file; open with `await SQLiteStore.open(directory)`.

    Cancelling a caller never undoes its write: an operation that reached the writer's queue is
    committed (or fails) whether or not anyone still awaits it.
    """

    def __init__(self, path: Path, *, readers: int, inline_reads: bool, feed_history: int) -> None:
        if feed_history < 1:
            raise ValueError("feed_history must be >= 1")
        self.path = path
        self.feed_history = feed_history
        self._workers = Workers(
            path,
            readers=readers,
            begin=self._reset_batch,
            finish=self._flush,
            committed=self._batch_committed,
        )
        self._read = self._workers.read
        self._write = self._workers.write
        self._inline = inline_reads
        self._local = threading.local()  # inline_reads: one connection per calling thread
        self._inline_conns: list[sqlite3.Connection] = []
        self._hot_rows: list[HotRows] = []  # each inline-reading thread's recently read rows
        self._default_account = None
        self._waiters = FeedWaiters()
        # Writer thread only, for the batch in progress: each namespace's [head, floor, head as
        # stored] (seqs are handed out here, the head written once per batch: `_flush`), the
        # change rows to insert, and the (head, floor) written, for the wake-ups after COMMIT.
        self._pending: dict[str, list[int]] = {}
        self._log_rows: list[tuple[Any, ...]] = []
        self._batch_heads: dict[str, tuple[int, int]] = {}
        self._trimming: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._foreign: asyncio.Task[None] | None = None
        self._revision_conn = None
        self._revision = None
        self._revision_checked = 0.0

    @classmethod
    async def open(
        cls,
        directory: Path | str,
        *,
        readers: int = 2,
        inline_reads: bool = False,
        feed_history: int = DEFAULT_FEED_HISTORY,
    ) -> SQLiteStore:
        """Create `directory` if needed, open (or create and migrate) its database, start the
        writer and `readers` reader threads. `feed_history`: changes kept per namespace."""
        store = cls(
            Path(directory) / FILENAME,
            readers=max(1, readers),
            inline_reads=inline_reads,
            feed_history=feed_history,
        )
        await store._workers.start(migrate)
        return store

    @property
    def commits(self) -> int:
        """Group commits done by the writer (for tests and benchmarks)."""
        return self._workers.commits

    @property
    def _closed(self) -> bool:
        return self._workers.closed

    @property
    def _threads(self) -> list[threading.Thread]:
        return self._workers.threads

    # -- entries ---------------------------------------------------------------------------
    async def get(
        self, namespace_id: str, key: str, *, now: int, cache_ttl: int | None = None
    ) -> Entry | None:
        params = (namespace_id, key.encode())
        if self._inline:
            found = self._get_inline(params)
            if found is not False:
                if found is None or (found.expiration is not None and found.expiration <= now):
                    return None
                return found

        def read(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = conn.execute(GET, params).fetchone()
            if row is None:
                require_namespace(conn, namespace_id)
            return row

        row = await self._read(read)
        if row is None:
            return None
        value, expiration, metadata, seq = row
        if expiration is not None and expiration <= now:
            return None
        # str(seq) is version_of(seq), without a call on the hottest path of the store.
        return Entry(value, expiration, metadata, None, str(seq))

    def _get_inline(self, params: tuple[str, bytes]) -> Entry | Literal[False] | None:
        """A point read on the calling thread, for `inline_reads=True`: an indexed lookup of a
        small value whose pages are almost always cached, answered from the thread's
        `HotRows` while nothing was committed since it was read (sqlite_hot.py). It never
        waits for a lock (timeout 0) and never loads a large value: both cases return False
        and go to a reader thread, as does an unknown namespace. None: the namespace exists,
        the key does not. The entry is returned whatever its expiration (the caller checks)."""
        try:
            conn = self._inline_conn()
            hot: HotRows | None = self._local.hot
            if hot is not None:
                kept = hot.look(params)  # before the row is read: see sqlite_hot.py
                if kept is not False:
                    return kept
            row: tuple[Any, ...] | None = conn.execute(GET_SMALL, params).fetchone()
            if row is None:
                if conn.execute(NS_EXISTS, (params[0],)).fetchone() is None:
                    return False  # unknown namespace: the reader path raises NamespaceNotFound
                if hot is not None:
                    hot.keep(params, None)
                return None
            value, expiration, metadata, seq = row
            if value is None:
                return False  # too large to read here
            entry = Entry(value, expiration, metadata, None, str(seq))
            if hot is not None:
                hot.keep(params, entry)
            return entry
        except (sqlite3.Error, OSError):
            return False  # busy or anything odd: the reader path decides

    def _inline_conn(self) -> sqlite3.Connection:
        """This thread's connection for inline reads: never waits for a lock (timeout 0)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._workers.connect(timeout=0)
            conn.execute("PRAGMA query_only = ON")
            self._inline_conns.append(conn)
            # after the connection: the -shm file exists while one is open (sqlite_hot.py)
            hot = self._local.hot = HotRows.open(self.path)
            if hot is not None:
                self._hot_rows.append(hot)
        return conn

    async def get_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int, cache_ttl: int | None = None
    ) -> dict[str, Entry]:
        by_raw = {key.encode(): key for key in keys}
        raws = list(by_raw)

        def read(conn: sqlite3.Connection) -> list[Any]:
            rows: list[Any] = []
            for i in range(0, len(raws), 500):  # well under SQLite's bound-parameter limit
                chunk = raws[i : i + 500]
                sql = GET_MANY.format(",".join("?" * len(chunk)))
                rows += conn.execute(sql, (namespace_id, *chunk)).fetchall()
            if not rows:
                require_namespace(conn, namespace_id)
            return rows

        found = {
            raw: _entry(value, expiration, metadata, seq)
            for raw, value, expiration, metadata, seq in await self._read(read)
            if expiration is None or expiration > now
        }
        return {key: found[raw] for raw, key in by_raw.items() if raw in found}

    def _reset_batch(self) -> None:
        self._pending = {}
        self._log_rows = []
        self._batch_heads = {}

    def _advance(self, conn: sqlite3.Connection, namespace_id: str, n: int) -> int:
        """Take the next `n` seqs of the namespace (NamespaceNotFound before any change);
        returns the last one. Writer thread, inside the batch's transaction: it holds the
        write lock (of every process), so the head read once stays right for the batch."""
        state = self._pending.get(namespace_id)
        if state is None:
            row = conn.execute(HEAD, (namespace_id,)).fetchone()
            if row is None:
                raise NamespaceNotFound(namespace_id)
            state = self._pending[namespace_id] = [row[0], row[1], row[0]]
        state[0] += n
        return state[0]

    def _flush(self, conn: sqlite3.Connection) -> None:
        """Write what the batch's writes so far allocated: their change rows and each
        namespace's new head (one UPDATE per namespace, not one per write)."""
        if self._log_rows:
            conn.executemany(LOG, self._log_rows)
            self._log_rows = []
        for namespace_id, (head, floor, stored) in self._pending.items():
            if head != stored:
                conn.execute(SET_HEAD, (head, namespace_id))
                self._batch_heads[namespace_id] = (head, floor)
        self._pending = {}  # read again if needed: a namespace op may follow

    async def put(
        self, namespace_id: str, key: str, entry: Entry, *, condition: Condition | None = None
    ) -> Written:
        raw = key.encode()
        value, expiration, metadata = entry.value, entry.expiration, entry.metadata

        def write(conn: sqlite3.Connection) -> int:
            if condition is not None:
                check(conn, namespace_id, raw, condition)
            seq = self._advance(conn, namespace_id, 1)
            stored = value_columns(conn, namespace_id, raw, value)
            conn.execute(UPSERT, (namespace_id, raw, *stored, expiration, metadata, seq))
            self._log_rows.append((namespace_id, seq, raw, 0, expiration, metadata))
            return seq

        seq = await self._write(write)
        return Written(seq, version_of(seq))

    async def put_many(self, namespace_id: str, items: Sequence[tuple[str, Entry]]) -> None:
        # Keys encoded here, so a bad one fails before anything is queued. Columns, not rows:
        # the writer zips them into executemany, so a 10,000-pair call runs no Python frame per
        # pair and holds no row tuples (each GC-tracked: collections, promotions to the old
        # generation, whose full scans grow with everything the process holds).
        raws = [key.encode() for key, _ in items]
        entries = [entry for _, entry in items]
        values = list(map(_VALUE, entries))
        expirations = list(map(_EXPIRATION, entries))
        metadata = list(map(_METADATA, entries))
        small = max(map(len, values), default=0) <= BLOB_MIN

        def write(conn: sqlite3.Connection) -> None:
            n = len(raws)
            if not n:
                require_namespace(conn, namespace_id)
                return
            first = self._advance(conn, namespace_id, n) - n + 1
            seqs = range(first, first + n)
            # In order: a later duplicate key wins, and each item is its own change. Its
            # change rows go in now: what `_flush` would do with them at the end of the batch.
            if small:  # the common case: two columns fewer to bind per row
                rows: Iterable[tuple[Any, ...]] = zip(
                    itertools.repeat(namespace_id), raws, values, expirations, metadata, seqs
                )
                conn.executemany(UPSERT_SMALL, rows)
            else:
                blobs = blob_columns(conn, namespace_id, raws, values)
                rows = zip(
                    itertools.repeat(namespace_id), raws, *blobs, expirations, metadata, seqs
                )
                conn.executemany(UPSERT, rows)
            conn.executemany(
                LOG_PUT, zip(itertools.repeat(namespace_id), seqs, raws, expirations, metadata)
            )

        await self._write(write)

    async def delete(
        self,
        namespace_id: str,
        key: str,
        *,
        condition: Condition | None = None,
        now: int | None = None,
    ) -> Written | None:
        raw = key.encode()

        def write(conn: sqlite3.Connection) -> int | None:
            if condition is not None:
                check(conn, namespace_id, raw, condition)
            rows = conn.execute(DELETE, (namespace_id, raw)).fetchall()
            if not rows:
                require_namespace(conn, namespace_id)
                return None
            expiration = rows[0][0]
            if now is not None and expiration is not None and expiration <= now:
                return None  # it had expired: expiry is not a change
            seq = self._advance(conn, namespace_id, 1)
            self._log_rows.append((namespace_id, seq, raw, 1, None, None))
            return seq

        seq = await self._write(write)
        return None if seq is None else Written(seq, version_of(seq))

    async def delete_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int | None = None
    ) -> None:
        raws = list(dict.fromkeys(key.encode() for key in keys))  # a repeat deletes nothing

        def write(conn: sqlite3.Connection) -> None:
            # A statement per 500 keys, not per key (the rows come back in no given order).
            live: set[bytes] = set()
            for i in range(0, len(raws), 500):  # well under SQLite's bound-parameter limit
                chunk = raws[i : i + 500]
                sql = DELETE_MANY.format(",".join("?" * len(chunk)))
                for raw, expiration in conn.execute(sql, (namespace_id, *chunk)):
                    if now is None or expiration is None or expiration > now:
                        live.add(raw)  # an expired one is gone too, but expiry is no change
            if not live:
                require_namespace(conn, namespace_id)
                return
            gone = [raw for raw in raws if raw in live]  # changes in the order given
            first = self._advance(conn, namespace_id, len(gone)) - len(gone) + 1
            # Its change rows go in now: what `_flush` would do with them at the end.
            seqs = range(first, first + len(gone))
            conn.executemany(LOG_DELETE, zip(itertools.repeat(namespace_id), seqs, gone))

        await self._write(write)

    async def list_keys(
        self, namespace_id: str, *, prefix: str, after: str | None, limit: int, now: int
    ) -> list[KeyInfo]:
        raw_prefix = prefix.encode()
        lower = raw_prefix
        if after is not None:
            # after + NUL is the smallest string greater than `after`: "key > after" as ">=".
            lower = max(lower, after.encode() + b"\x00")
        sql = LIST if raw_prefix else LIST_ALL  # no prefix, no upper bound to test per row
        params: tuple[Any, ...] = (
            (namespace_id, lower, prefix_end(raw_prefix), now, limit)
            if raw_prefix
            else (namespace_id, lower, now, limit)
        )
        if self._inline:
            rows = self._list_inline(sql, params)
            if rows is not None:
                return rows

        def read(conn: sqlite3.Connection) -> list[KeyInfo]:
            rows = _key_infos(conn.execute(sql, params).fetchone())
            if not rows:
                require_namespace(conn, namespace_id)
            return rows

        return await self._read(read)

    def _list_inline(self, sql: str, params: tuple[Any, ...]) -> list[KeyInfo] | None:
        """A list page on the calling thread, for `inline_reads=True`: a keyset seek of at most
        1,001 rows of small columns (keys <= 512 bytes, metadata <= 1 KiB) read as one row,
        ~0.4 ms, where a reader thread's round trip costs 50-100 us more. Like `_get_inline`
        it never waits for a lock: busy, an empty page (unknown namespace?) or any error
        returns None, and the reader path answers."""
        try:
            conn = self._inline_conn()
            rows = _key_infos(conn.execute(sql, params).fetchone())
        except sqlite3.Error:
            return None
        return rows or None

    async def namespace_stats(self, namespace_id: str, *, now: int) -> NamespaceStats:
        def read(conn: sqlite3.Connection) -> NamespaceStats:
            row = conn.execute(STATS, (namespace_id,)).fetchone()
            if row is None:
                require_namespace(conn, namespace_id)
                return NamespaceStats(0, 0)  # no entry was ever written
            expired, expired_bytes = conn.execute(STATS_EXPIRED, (now, namespace_id)).fetchone()
            return NamespaceStats(row[0] - expired, row[1] - expired_bytes)

        return await self._read(read)

    async def purge_expired(self, now: int, limit: int = 1000) -> int:
        def purge(size: int) -> Callable[[sqlite3.Connection], int]:
            return lambda conn: int(conn.execute(PURGE, (now, size)).rowcount)

        purged = 0
        while purged < limit:  # small transactions, so writers queue behind none for long
            size = min(_PURGE_BATCH, limit - purged)
            n = await self._write(purge(size))
            purged += n
            if n < size:
                break
        return purged

    # -- the change feed ---------------------------------------------------------------------
    def _batch_committed(self, loop: asyncio.AbstractEventLoop) -> None:
        """Writer thread, after COMMIT: hand the heads the batch wrote over to the loop."""
        if self._batch_heads:
            heads, self._batch_heads = self._batch_heads, {}
            loop.call_soon_threadsafe(self._after_commit, heads)

    def _after_commit(self, heads: dict[str, tuple[int, int]]) -> None:
        """On the event loop, after a commit: wake long polls, start trimming where due."""
        for namespace_id, (head, floor) in heads.items():
            self._waiters.notify(namespace_id, head)
            if head - floor >= 2 * self.feed_history and namespace_id not in self._trimming:
                self._trimming.add(namespace_id)
                self._spawn_task(self._trim(namespace_id))

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _trim(self, namespace_id: str) -> None:
        """Drop a namespace's oldest changes down to the newest N, a batch per transaction
        (queued behind the writes already waiting, never holding the writer long)."""
        keep = self.feed_history

        def trim(conn: sqlite3.Connection) -> bool:
            self._flush(conn)
            row = conn.execute(HEAD, (namespace_id,)).fetchone()
            if row is None:
                return False
            head, floor = row
            upto = min(head - keep, floor + _TRIM_BATCH)
            if upto <= floor:
                return False
            conn.execute(
                "DELETE FROM changes WHERE namespace_id = ? AND seq <= ?", (namespace_id, upto)
            )
            conn.execute("UPDATE namespaces SET floor = ? WHERE id = ?", (upto, namespace_id))
            return bool(upto < head - keep)

        try:
            while not self._closed and await self._write(trim):
                pass
        except StoreError:
            pass  # retried after the next commit that finds the history long
        finally:
            self._trimming.discard(namespace_id)

    async def changes(
        self,
        namespace_id: str,
        *,
        since: int | None,
        prefix: str = "",
        limit: int = 1000,
        wait: float = 0,
    ) -> ChangePage:
        async def read(after: int | None, scan: int) -> tuple[int, int, list[RawChange]]:
            def run(conn: sqlite3.Connection) -> tuple[int, int, list[RawChange]]:
                conn.execute("BEGIN")  # head, floor and rows from one snapshot
                try:
                    row = conn.execute(HEAD, (namespace_id,)).fetchone()
                    if row is None:
                        raise NamespaceNotFound(namespace_id)
                    rows: list[RawChange] = []
                    if after is not None and after < row[0]:
                        rows = conn.execute(CHANGES, (namespace_id, after, scan)).fetchall()
                finally:
                    conn.execute("COMMIT")
                return row[0], row[1], rows

            return await self._read(run)

        if wait > 0:
            self._watch_foreign()
        return await poll(
            read,
            self._waiters,
            namespace_id,
            since=since,
            prefix=prefix,
            limit=limit,
            wait=wait,
            history=self.feed_history,
        )

    def _watch_foreign(self) -> None:
        if self._foreign is None or self._foreign.done():
            self._foreign = asyncio.get_running_loop().create_task(self._foreign_loop())

    async def _foreign_loop(self) -> None:
        """While long polls wait: every `_FOREIGN_POLL` s, one query of the waited namespaces'
        heads, so commits of other processes on this file wake them too (this process's own
        commits wake them at once). Ends when nobody waits."""
        while not self._closed:
            await asyncio.sleep(_FOREIGN_POLL)
            waited = self._waiters.waited()[:500]  # well under the bound-parameter limit
            if not waited:
                return
            try:
                rows = await self._read(functools.partial(heads_of, waited))
            except StoreError:
                continue
            found = {namespace_id for namespace_id, _ in rows}
            for namespace_id, head in rows:
                self._waiters.notify(namespace_id, head)
            for namespace_id in waited:
                if namespace_id not in found:
                    self._waiters.forget(namespace_id)  # deleted by another process

    async def head(self, namespace_id: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            row = conn.execute(HEAD, (namespace_id,)).fetchone()
            if row is None:
                raise NamespaceNotFound(namespace_id)
            return int(row[0])

        return await self._read(run)

    @contextlib.asynccontextmanager
    async def snapshot(self, namespace_id: str, *, now: int) -> AsyncIterator[SQLiteSnapshot]:
        """One read transaction on a connection of its own (store/sqlite_snapshot.py)."""
        if self._closed:
            raise StoreError("the store is closed")
        snap = await SQLiteSnapshot.open(self._workers.connect, namespace_id, now, head_seq)
        try:
            yield snap
        finally:
            await snap.close()

    async def aclose(self) -> None:
        """Flush queued writes, stop the threads and close every connection. Idempotent."""
        if self._closed:
            return
        self._workers.closed = True  # from here on nothing is queued, _trim and polls stop
        tasks = [*self._tasks, *([self._foreign] if self._foreign is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._workers.stop()
        for hot in self._hot_rows:
            hot.close()
        self._hot_rows.clear()
        for conn in self._inline_conns:
            conn.close()
        self._inline_conns.clear()
        if self._revision_conn is not None:
            self._revision_conn.close()
            self._revision_conn = None
