"""The SQLite engine: the embedded default, one file `edgekv.sqlite3` in a directory.

- WAL and `synchronous=FULL`: a write is acknowledged only once its commit is on disk.
- Keys are BLOBs (their UTF-8 bytes), so every comparison and ORDER BY is memcmp, i.e. UTF-8 byte
  order. Entries are clustered on `(namespace_id, key)` (WITHOUT ROWID: one B-tree, measured
  faster and smaller than a rowid table plus index); listing is a keyset seek, never OFFSET.
  Values over `_BLOB_MIN` bytes live in `blobs` (a rowid table) and the entry keeps their id
  (schema 3): that B-tree copies whole rows into its interior pages, so one 25 MiB row made every
  write near it slow, and with one writer, every write (bench/bench_bigvalues.py).
- The event loop never runs SQLite. One writer thread owns the writing connection: callers
  enqueue an operation and await a future; the thread drains everything queued, runs it in ONE
  transaction, commits once (group commit: one fsync for many writers) and only then resolves
  the futures. Reads run on a small pool of reader threads, each with its own connection.
  A checkpointer thread copies the WAL into the database beside the writer, not in a commit.
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
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar

import orjson

from edgekv._exceptions import (
    NamespaceIdTaken,
    NamespaceNotFound,
    NamespaceTitleTaken,
    PreconditionFailed,
    StoreError,
    StoreUnavailable,
    TooManyNamespaces,
)
from edgekv._types import (
    DEFAULT_FEED_HISTORY,
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
from edgekv.store._feed import FeedWaiters, RawChange, poll
from edgekv.store.memory import MAX_NAMESPACES, new_id
from edgekv.store.sqlite_hot import HotRows
from edgekv.store.sqlite_snapshot import SQLiteSnapshot

__all__ = ["FILENAME", "SCHEMA_VERSION", "SQLiteStore"]

_T = TypeVar("_T")

FILENAME = "edgekv.sqlite3"

# What an entry counts in namespace_stats: key, value and metadata bytes (entry_size). _SIZE is
# migration 2's; from migration 3 a large value's length is `blob_size` (the row's value empty).
_SIZE = (
    "length({row}.key) + length({row}.value) + coalesce(length(CAST({row}.metadata AS BLOB)), 0)"
)
_SIZE_3 = _SIZE + " + coalesce({row}.blob_size, 0)"
# Values longer than this are kept out of the key B-tree (migration 3): rows of at most ~4 KiB
# keep SQLite's cells small, so page splits near them stay cheap.
_BLOB_MIN = 2048

# Each entry moves the schema from version i to i + 1 (PRAGMA user_version). Never edit one
# that has shipped: append. A string holds statements separated by ";" (no ";" inside them);
# a tuple holds one statement per item.
_MIGRATIONS: tuple[str | tuple[str, ...], ...] = (
    """
    CREATE TABLE accounts (
        seq INTEGER PRIMARY KEY,  -- creation order: the oldest is the default account
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE tokens (
        token_hash TEXT PRIMARY KEY,
        id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        read_only INTEGER NOT NULL,
        namespaces TEXT,  -- JSON array of ids, NULL = every namespace of the account
        name TEXT NOT NULL DEFAULT ''
    ) WITHOUT ROWID;
    CREATE TABLE namespaces (
        seq INTEGER PRIMARY KEY,  -- creation order
        id TEXT NOT NULL UNIQUE,
        account_id TEXT NOT NULL,
        title TEXT NOT NULL,
        UNIQUE (account_id, title)
    );
    CREATE TABLE entries (
        namespace_id TEXT NOT NULL,
        key BLOB NOT NULL,
        value BLOB NOT NULL,
        expiration INTEGER,
        metadata TEXT,
        PRIMARY KEY (namespace_id, key)
    ) WITHOUT ROWID;
    -- Partial: only entries that can expire are indexed, for purge_expired.
    CREATE INDEX entries_expiration ON entries (expiration) WHERE expiration IS NOT NULL
    """,
    # 2: per-namespace totals kept by triggers (namespace_stats), and a revision of the token
    # table that every revocation bumps (token_revision). A tuple: trigger bodies hold ";".
    (
        """CREATE TABLE namespace_stats (
            namespace_id TEXT PRIMARY KEY,
            key_count INTEGER NOT NULL,
            bytes INTEGER NOT NULL
        ) WITHOUT ROWID""",
        f"""INSERT INTO namespace_stats
            SELECT n.id, count(e.key), coalesce(sum({_SIZE.format(row="e")}), 0)
            FROM namespaces n LEFT JOIN entries e ON e.namespace_id = n.id GROUP BY n.id""",
        # INSERT OR REPLACE runs the DELETE trigger for the replaced row only with
        # recursive_triggers on, which every connection sets (_connect).
        f"""CREATE TRIGGER entries_stats_insert AFTER INSERT ON entries BEGIN
            INSERT INTO namespace_stats VALUES (NEW.namespace_id, 1, {_SIZE.format(row="NEW")})
            ON CONFLICT (namespace_id) DO UPDATE
            SET key_count = key_count + 1, bytes = bytes + excluded.bytes;
        END""",
        f"""CREATE TRIGGER entries_stats_delete AFTER DELETE ON entries BEGIN
            UPDATE namespace_stats
            SET key_count = key_count - 1, bytes = bytes - ({_SIZE.format(row="OLD")})
            WHERE namespace_id = OLD.namespace_id;
        END""",
        f"""CREATE TRIGGER entries_stats_update AFTER UPDATE ON entries BEGIN
            UPDATE namespace_stats
            SET bytes = bytes - ({_SIZE.format(row="OLD")}) + ({_SIZE.format(row="NEW")})
            WHERE namespace_id = NEW.namespace_id;
        END""",
        """CREATE TRIGGER namespaces_stats_delete AFTER DELETE ON namespaces BEGIN
            DELETE FROM namespace_stats WHERE namespace_id = OLD.id;
        END""",
        "ALTER TABLE tokens ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0",
        "CREATE TABLE token_revision (revision INTEGER NOT NULL)",
        "INSERT INTO token_revision VALUES (0)",
        """CREATE TRIGGER tokens_revoked AFTER UPDATE OF revoked ON tokens BEGIN
            UPDATE token_revision SET revision = revision + 1;
        END""",
    ),
    # 3: values over _BLOB_MIN bytes live in `blobs`, a rowid table, and the entry keeps their
    # id and length. A WITHOUT ROWID table copies whole rows into its interior pages when they
    # split, so one 25 MiB row made every write near it copy 25 MiB (a 10,000-key bulk delete
    # beside one took ~300x longer, and held every other writer meanwhile). Existing large
    # values move here; the stats triggers count `blob_size`; triggers drop a blob with its
    # entry (REPLACE included: recursive_triggers is on).
    (
        "CREATE TABLE blobs (id INTEGER PRIMARY KEY, namespace_id TEXT NOT NULL,"
        " key BLOB NOT NULL, value BLOB NOT NULL)",
        "ALTER TABLE entries ADD COLUMN blob INTEGER",  # NULL: the value is in the row
        "ALTER TABLE entries ADD COLUMN blob_size INTEGER",
        "DROP TRIGGER entries_stats_insert",
        "DROP TRIGGER entries_stats_delete",
        "DROP TRIGGER entries_stats_update",
        f"""CREATE TRIGGER entries_stats_insert AFTER INSERT ON entries BEGIN
            INSERT INTO namespace_stats VALUES (NEW.namespace_id, 1, {_SIZE_3.format(row="NEW")})
            ON CONFLICT (namespace_id) DO UPDATE
            SET key_count = key_count + 1, bytes = bytes + excluded.bytes;
        END""",
        f"""CREATE TRIGGER entries_stats_delete AFTER DELETE ON entries BEGIN
            UPDATE namespace_stats
            SET key_count = key_count - 1, bytes = bytes - ({_SIZE_3.format(row="OLD")})
            WHERE namespace_id = OLD.namespace_id;
        END""",
        f"""CREATE TRIGGER entries_stats_update AFTER UPDATE ON entries BEGIN
            UPDATE namespace_stats
            SET bytes = bytes - ({_SIZE_3.format(row="OLD")}) + ({_SIZE_3.format(row="NEW")})
            WHERE namespace_id = NEW.namespace_id;
        END""",
        "CREATE INDEX blobs_moving ON blobs (namespace_id, key)",
        "INSERT INTO blobs (namespace_id, key, value) SELECT namespace_id, key, value"
        f" FROM entries WHERE length(value) > {_BLOB_MIN}",
        "UPDATE entries SET value = x'', blob_size = length(value), blob = (SELECT id FROM blobs"
        " WHERE blobs.namespace_id = entries.namespace_id AND blobs.key = entries.key)"
        f" WHERE length(value) > {_BLOB_MIN}",
        "DROP INDEX blobs_moving",
        """CREATE TRIGGER entries_blob_deleted AFTER DELETE ON entries
            WHEN OLD.blob IS NOT NULL BEGIN
            DELETE FROM blobs WHERE id = OLD.blob;
        END""",
        """CREATE TRIGGER entries_blob_replaced AFTER UPDATE OF blob ON entries
            WHEN OLD.blob IS NOT NULL AND OLD.blob IS NOT NEW.blob BEGIN
            DELETE FROM blobs WHERE id = OLD.blob;
        END""",
    ),
    # 4: a namespace's jurisdiction (eu, us, fedramp; NULL = none), fixed at creation.
    "ALTER TABLE namespaces ADD COLUMN jurisdiction TEXT",
    # 5: versions and the change feed. Entries written before it have version "0" (seq 0);
    # their namespaces start their feed at 0 with no history.
    """
    ALTER TABLE namespaces ADD COLUMN head INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE namespaces ADD COLUMN floor INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE entries ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE changes (
        namespace_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        key BLOB NOT NULL,
        deleted INTEGER NOT NULL,
        expiration INTEGER,
        metadata TEXT,
        PRIMARY KEY (namespace_id, seq)
    ) WITHOUT ROWID;
    -- The newest seq any deleted namespace reached: a new namespace starts above it.
    CREATE TABLE feed_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        retired INTEGER NOT NULL
    );
    INSERT INTO feed_state (id, retired) VALUES (1, -1)
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)

_BUSY_TIMEOUT = 5.0  # seconds another process may hold the write lock before StoreUnavailable
_MAX_WRITE_BATCH = 1024  # operations per group commit (bounds one transaction)
_MAX_READ_BATCH = 16  # reads a reader runs before handing results back to the loop
_CHECKPOINT_DELAY = 0.05  # seconds of commits a background checkpoint takes at once
_BACKSTOP_CHECKPOINT_PAGES = 16384  # the writer checkpoints itself past this (64 MiB of WAL)
_PURGE_BATCH = 256  # rows per purge transaction, so purging never stalls writers for long
_TRIM_BATCH = 2000  # change rows per history-trim transaction, for the same reason
_FOREIGN_POLL = 1.0  # seconds between checks for other processes' commits while polls wait
_INLINE_MAX_VALUE = 16 * 1024  # inline_reads: larger values are read on a reader thread
# Above every UTF-8 string (UTF-8 never contains 0xff): the upper bound of an empty prefix.
_NO_UPPER = b"\xff"

# A large value is in `blobs` (entries.blob its id, entries.value empty): one more seek.
_GET = (
    "SELECT coalesce(b.value, e.value), e.expiration, e.metadata, e.seq FROM entries e"
    " LEFT JOIN blobs b ON b.id = e.blob WHERE e.namespace_id = ? AND e.key = ?"
)
# Only values kept in the row are read inline (at most _BLOB_MIN bytes, under _INLINE_MAX_VALUE).
_GET_SMALL = (
    "SELECT CASE WHEN blob IS NULL THEN value END, expiration, metadata, seq FROM entries"
    " WHERE namespace_id = ? AND key = ?"
)
_GET_MANY = (
    "SELECT e.key, coalesce(b.value, e.value), e.expiration, e.metadata, e.seq FROM entries e"
    " LEFT JOIN blobs b ON b.id = e.blob WHERE e.namespace_id = ? AND e.key IN ({})"
)
_UPSERT = (
    "INSERT OR REPLACE INTO entries"
    " (namespace_id, key, value, blob, blob_size, expiration, metadata, seq)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_BLOB = "INSERT INTO blobs (namespace_id, key, value) VALUES (?, ?, ?)"
_DELETE = "DELETE FROM entries WHERE namespace_id = ? AND key = ? RETURNING expiration"
_CURRENT = "SELECT seq, expiration FROM entries WHERE namespace_id = ? AND key = ?"
# Reading the head is the namespace check of a write, and the start of its seq allocation.
_SET_HEAD = "UPDATE namespaces SET head = ? WHERE id = ?"
_LOG = (
    "INSERT INTO changes (namespace_id, seq, key, deleted, expiration, metadata)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_HEAD = "SELECT head, floor FROM namespaces WHERE id = ?"
_CHANGES = (
    "SELECT seq, key, deleted, expiration, metadata FROM changes"
    " WHERE namespace_id = ? AND seq > ? ORDER BY seq LIMIT ?"
)
# CAST decodes the key in C (Python's sqlite3 makes a str of TEXT), cheaper than bytes.decode.
_LIST = (
    "SELECT CAST(key AS TEXT), expiration, metadata FROM entries"
    " WHERE namespace_id = ? AND key >= ? AND key < ? AND (expiration IS NULL OR expiration > ?)"
    " ORDER BY key LIMIT ?"
)
_PURGE = (
    "DELETE FROM entries WHERE (namespace_id, key) IN"
    " (SELECT namespace_id, key FROM entries WHERE expiration <= ? LIMIT ?)"
)
_NS_EXISTS = "SELECT 1 FROM namespaces WHERE id = ?"
_NS_OWNED = "SELECT title, jurisdiction FROM namespaces WHERE id = ? AND account_id = ?"
_OLDEST_ACCOUNT = "SELECT id FROM accounts ORDER BY seq LIMIT 1"
_TOKEN_COLUMNS = "id, account_id, read_only, namespaces, name, token_hash, revoked"
_STATS = "SELECT key_count, bytes FROM namespace_stats WHERE namespace_id = ?"
# Entries expired but not purged yet, found by the expiration index (the sweep keeps them few).
_STATS_EXPIRED = (
    f"SELECT count(*), coalesce(sum({_SIZE_3.format(row='entries')}), 0)"
    " FROM entries INDEXED BY entries_expiration"
    " WHERE expiration IS NOT NULL AND expiration <= ? AND namespace_id = ?"
)
_REVISION_CHECK_SECONDS = 0.005  # token_revision re-reads the database at most this often


def _prefix_end(prefix: bytes) -> bytes:
    """The smallest byte string above every string starting with `prefix` (`_NO_UPPER` for the
    empty prefix; UTF-8 never contains 0xff, so incrementing the last byte is safe)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return _NO_UPPER
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def _stored(conn: sqlite3.Connection, namespace_id: str, raw: bytes, value: bytes) -> Any:
    """(value, blob, blob_size) of an entries row: a large value goes to `blobs` first."""
    if len(value) <= _BLOB_MIN:
        return value, None, None
    return b"", conn.execute(_BLOB, (namespace_id, raw, value)).lastrowid, len(value)


def _key_infos(rows: list[Any]) -> list[KeyInfo]:
    """KeyInfo of each row (a NamedTuple: built from the row tuple at C speed)."""
    return list(map(KeyInfo._make, rows))


def _head_seq(conn: sqlite3.Connection, namespace_id: str) -> int:
    """The namespace's latest sequence number, read in the caller's transaction."""
    row = conn.execute(_HEAD, (namespace_id,)).fetchone()
    return 0 if row is None else int(row[0])


def _require_namespace(conn: sqlite3.Connection, namespace_id: str) -> None:
    if conn.execute(_NS_EXISTS, (namespace_id,)).fetchone() is None:
        raise NamespaceNotFound(namespace_id)


def _heads_of(namespace_ids: list[str], conn: sqlite3.Connection) -> list[tuple[str, int]]:
    sql = "SELECT id, head FROM namespaces WHERE id IN ({})".format(
        ",".join("?" * len(namespace_ids))
    )
    return conn.execute(sql, namespace_ids).fetchall()


def _entry(value: bytes, expiration: int | None, metadata: str | None, seq: int) -> Entry:
    return Entry(value, expiration, metadata, None, version_of(seq))


def _check(
    conn: sqlite3.Connection, namespace_id: str, raw: bytes, condition: Condition
) -> tuple[int, int | None] | None:
    """Raise `PreconditionFailed` (before anything changed) unless `condition` holds; returns
    the current row's (seq, expiration)."""
    row: tuple[int, int | None] | None = conn.execute(_CURRENT, (namespace_id, raw)).fetchone()
    current = None
    if row is not None and (row[1] is None or row[1] > condition.now):
        current = version_of(row[0])
    if current != condition.version:
        if row is None:
            _require_namespace(conn, namespace_id)  # an unknown namespace is a 404 first
        raise PreconditionFailed(current)
    return row


def _wrap(exc: BaseException) -> BaseException:
    """SQLite's errors as the store errors the binding and REST layer understand."""
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return StoreUnavailable(f"SQLite database is busy: {exc}")
    if isinstance(exc, sqlite3.Error):
        return StoreError(f"SQLite error: {exc}")
    return exc


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already
            conn.execute("ROLLBACK")


class _Job(NamedTuple):
    """One operation for a worker thread; `fn` None asks the thread to stop."""

    fn: Callable[[sqlite3.Connection], Any] | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


_Done = tuple[_Job, BaseException | None, Any]


def _settle(items: list[tuple[asyncio.Future[Any], BaseException | None, Any]]) -> None:
    """Runs on the event loop: resolve the futures of finished jobs."""
    for future, exc, value in items:
        if future.done():  # the caller was cancelled; the work itself happened (or not)
            continue
        if exc is None:
            future.set_result(value)
        else:
            future.set_exception(exc)


def _dispatch(done: list[_Done]) -> None:
    """From a worker thread: one wake-up per event loop for a whole batch of results."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
    for job, exc, value in done:
        by_loop.setdefault(job.loop, []).append((job.future, exc, value))
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, items)


def _drain(q: queue.SimpleQueue[_Job], limit: int) -> tuple[list[_Job], _Job | None]:
    """Wait for a job, then take whatever else is queued (up to `limit`); and the stop job if
    one came (it is never followed by work: nothing is queued after aclose)."""
    batch: list[_Job] = []
    job = q.get()
    while job.fn is not None:
        batch.append(job)
        if len(batch) >= limit:
            return batch, None
        try:
            job = q.get_nowait()
        except queue.Empty:
            return batch, None
    return batch, job


def _migrate(conn: sqlite3.Connection) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal":
        raise StoreError(f"SQLite refused WAL mode (journal_mode is {mode})")
    conn.execute("BEGIN IMMEDIATE")  # several processes may open a new file at once
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"database schema version {version} is newer than this edgekv"
                f" supports ({SCHEMA_VERSION})"
            )
        for script in _MIGRATIONS[version:]:
            for statement in script if isinstance(script, tuple) else script.split(";"):
                conn.execute(statement)
        if version != SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


class SQLiteStore:
    """A `Store` in one SQLite file; open with `await SQLiteStore.open(directory)`.

    Cancelling a caller never undoes its write: an operation that reached the writer's queue is
    committed (or fails) whether or not anyone still awaits it.
    """

    def __init__(self, path: Path, *, readers: int, inline_reads: bool, feed_history: int) -> None:
        if feed_history < 1:
            raise ValueError("feed_history must be >= 1")
        self.path = path
        self.feed_history = feed_history
        self.commits = 0  # group commits done by the writer (for tests and benchmarks)
        self._readers = readers
        self._inline = inline_reads
        self._wq: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._rq: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._local = threading.local()  # inline_reads: one connection per calling thread
        self._inline_conns: list[sqlite3.Connection] = []
        self._hot_rows: list[HotRows] = []  # each inline-reading thread's recently read rows
        self._default_account: str | None = None  # the oldest account never changes
        self._committed = threading.Event()  # wakes the checkpointer
        self._closed = False
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
        # token_revision: a connection of the event loop's thread, what it read and when
        self._revision_conn: sqlite3.Connection | None = None
        self._revision: tuple[int, int] | None = None  # (data_version, revision)
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
        await store._start()
        return store

    def _connect(self, timeout: float = _BUSY_TIMEOUT) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=timeout,
            isolation_level=None,  # autocommit: transactions are explicit BEGIN/COMMIT
            check_same_thread=False,  # created and used by one thread; closed by aclose
            cached_statements=256,  # get_many's IN (?, ...) has one statement per key count
        )
        conn.execute("PRAGMA synchronous = FULL")  # fsync the WAL at every commit
        conn.execute("PRAGMA recursive_triggers = ON")  # stats triggers see REPLACE's deletes
        return conn

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._spawn(self._write_loop, "writer", _Job(None, loop, ready))
        await ready  # schema created or migrated; raises what the writer hit
        for i in range(self._readers):
            self._spawn(self._read_loop, f"reader-{i}")
        self._spawn(self._checkpoint_loop, "checkpointer")

    def _spawn(self, target: Callable[..., None], name: str, *args: Any) -> None:
        # daemon: a forgotten aclose() must not hang interpreter exit (commits are atomic)
        thread = threading.Thread(target=target, args=args, name=f"edgekv-sqlite-{name}")
        thread.daemon = True
        thread.start()
        self._threads.append(thread)

    # -- worker threads --------------------------------------------------------------------
    def _write_loop(self, ready: _Job) -> None:
        conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
            conn.execute("PRAGMA journal_size_limit = 67108864")  # shrink the WAL after a burst
            # Checkpoints run on their own thread (_checkpoint_loop); this is only a backstop.
            conn.execute(f"PRAGMA wal_autocheckpoint = {_BACKSTOP_CHECKPOINT_PAGES}")
            _migrate(conn)
        except BaseException as exc:
            self._closed = True
            if conn is not None:
                conn.close()
            _dispatch([(ready, _wrap(exc), None)])
            return
        _dispatch([(ready, None, None)])
        stop: _Job | None = None
        while stop is None:
            batch, stop = _drain(self._wq, _MAX_WRITE_BATCH)
            if batch:
                _dispatch(self._run_batch(conn, batch))
        conn.close()
        self._fail_queued(self._wq)
        _dispatch([(stop, None, None)])

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> list[_Done]:
        """Run `batch` in one transaction and commit once. An operation raises a StoreError only
        before changing anything (checked with total_changes), so it fails alone; anything else
        rolls the batch back and reruns each operation in its own transaction."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # the write lock stayed busy: nothing ran
            error = _wrap(exc)
            return [(job, error, None) for job in batch]
        self._reset_batch()
        done: list[_Done] = []
        try:
            for job in batch:
                assert job.fn is not None
                before = conn.total_changes
                try:
                    done.append((job, None, job.fn(conn)))
                except StoreError as exc:
                    if conn.total_changes != before:
                        raise  # it changed rows before failing: isolate it
                    done.append((job, exc, None))
            self._flush(conn)
            conn.execute("COMMIT")
            self.commits += 1
            self._committed.set()
            if self._batch_heads:
                heads, self._batch_heads = self._batch_heads, {}
                batch[0].loop.call_soon_threadsafe(self._after_commit, heads)
            return done
        except Exception as exc:
            self._reset_batch()
            _rollback(conn)
            if len(batch) == 1:
                return [(batch[0], _wrap(exc), None)]
            return [d for job in batch for d in self._run_batch(conn, [job])]

    def _checkpoint_loop(self) -> None:
        """Copy the WAL back into the database off the commit path. SQLite's automatic
        checkpoint runs inside a commit and stalled every writer of that batch ~10 ms each
        1000 pages; a PASSIVE checkpoint on its own connection runs beside the writer."""
        conn: sqlite3.Connection | None = None
        while not self._closed:  # checked after clear(): aclose sets _closed, then the event
            self._committed.wait()
            time.sleep(_CHECKPOINT_DELAY)  # one checkpoint for the commits of this interval
            self._committed.clear()
            try:
                conn = conn or self._connect()
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                pass  # retried after the next commit; the writer's backstop remains
        if conn is not None:
            conn.close()

    def _read_loop(self) -> None:
        conn: sqlite3.Connection | None = None
        stop: _Job | None = None
        while stop is None:
            batch, stop = _drain(self._rq, _MAX_READ_BATCH)
            done: list[_Done] = []
            for job in batch:
                assert job.fn is not None
                try:
                    if conn is None:
                        conn = self._connect()
                        conn.execute("PRAGMA query_only = ON")
                    done.append((job, None, job.fn(conn)))
                except Exception as exc:
                    done.append((job, _wrap(exc), None))
            _dispatch(done)
        if conn is not None:
            conn.close()
        _dispatch([(stop, None, None)])

    def _fail_queued(self, q: queue.SimpleQueue[_Job]) -> None:
        """After the writer stopped: fail what slipped in behind the stop (never hang)."""
        done: list[_Done] = []
        while True:
            try:
                job = q.get_nowait()
            except queue.Empty:
                break
            done.append((job, None if job.fn is None else StoreError("the store is closed"), None))
        _dispatch(done)

    def _submit(
        self, q: queue.SimpleQueue[_Job], fn: Callable[[sqlite3.Connection], _T]
    ) -> asyncio.Future[_T]:
        if self._closed:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        q.put(_Job(fn, loop, future))
        return future

    async def _read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        return await self._submit(self._rq, fn)

    async def _write(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `fn` on the writer thread inside a group-commit transaction; returns once the
        commit is durable. `fn` must raise StoreError only before it changes anything."""
        return await self._submit(self._wq, fn)

    # -- accounts and tokens -------------------------------------------------------------
    async def default_account(self) -> str:
        if self._default_account is None:
            row = await self._read(lambda c: c.execute(_OLDEST_ACCOUNT).fetchone())
            self._default_account = row[0] if row else await self._write(self._oldest_or_new)
        return self._default_account

    @staticmethod
    def _oldest_or_new(conn: sqlite3.Connection) -> str:
        row = conn.execute(_OLDEST_ACCOUNT).fetchone()  # another process may have made one
        if row is not None:
            return str(row[0])
        account_id = new_id()
        conn.execute("INSERT INTO accounts (id) VALUES (?)", (account_id,))
        return account_id

    async def ensure_account(self, account_id: str, name: str = "") -> None:
        await self._write(
            lambda c: c.execute(
                "INSERT OR IGNORE INTO accounts (id, name) VALUES (?, ?)", (account_id, name)
            )
        )

    async def account_exists(self, account_id: str) -> bool:
        row = await self._read(
            lambda c: c.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone()
        )
        return row is not None

    async def create_token(self, token: TokenRecord) -> None:
        t = token
        namespaces = None if t.namespaces is None else orjson.dumps(t.namespaces).decode()
        row = (t.token_hash, t.id, t.account_id, int(t.read_only), namespaces, t.name)
        await self._write(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO tokens"
                " (token_hash, id, account_id, read_only, namespaces, name)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
        )

    @staticmethod
    def _token(row: tuple[Any, ...]) -> TokenRecord:
        token_id, account_id, read_only, namespaces, name, token_hash, revoked = row
        return TokenRecord(
            token_id,
            account_id,
            token_hash,
            read_only=bool(read_only),
            namespaces=None if namespaces is None else tuple(orjson.loads(namespaces)),
            name=name,
            revoked=bool(revoked),
        )

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        sql = f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE token_hash = ?"
        row = await self._read(lambda c: c.execute(sql, (token_hash,)).fetchone())
        return None if row is None else self._token(row)

    async def list_tokens(self, account_id: str) -> list[TokenRecord]:
        sql = f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE account_id = ? ORDER BY name, id"
        rows = await self._read(lambda c: c.execute(sql, (account_id,)).fetchall())
        return [self._token(row) for row in rows]

    async def revoke_token(self, token_id: str) -> TokenRecord | None:
        def revoke(conn: sqlite3.Connection) -> TokenRecord | None:
            conn.execute("UPDATE tokens SET revoked = 1 WHERE id = ?", (token_id,))  # +revision
            row = conn.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE id = ?", (token_id,)
            ).fetchone()
            return None if row is None else self._token(row)

        return await self._write(revoke)

    def token_revision(self) -> int | None:
        """The token table's revision, re-read at most every 5 ms, and then only when the
        database changed (`PRAGMA data_version`, a read of the WAL index): a revocation by
        another process (`edgekv token revoke --data`) is seen within 5 ms, and a request costs
        a clock read."""
        now = time.monotonic()
        if self._revision is not None and now - self._revision_checked < _REVISION_CHECK_SECONDS:
            return self._revision[1]
        self._revision_checked = now
        try:
            conn = self._revision_conn
            if conn is None:
                conn = self._revision_conn = self._connect(timeout=0)
                conn.execute("PRAGMA query_only = ON")
            (version,) = conn.execute("PRAGMA data_version").fetchone()
            if self._revision is None or self._revision[0] != version:
                (revision,) = conn.execute("SELECT revision FROM token_revision").fetchone()
                self._revision = (version, revision)
        except sqlite3.Error:
            self._revision = None
            return None  # busy or closed: trust no cached token meanwhile
        return self._revision[1]

    # -- namespaces ------------------------------------------------------------------------
    async def create_namespace(
        self,
        account_id: str,
        title: str,
        namespace_id: str | None = None,
        *,
        jurisdiction: str | None = None,
    ) -> NamespaceInfo:
        def create(conn: sqlite3.Connection) -> NamespaceInfo:
            if (
                namespace_id is not None
                and conn.execute(_NS_EXISTS, (namespace_id,)).fetchone() is not None
            ):
                raise NamespaceIdTaken(namespace_id)
            taken = conn.execute(
                "SELECT 1 FROM namespaces WHERE account_id = ? AND title = ?", (account_id, title)
            ).fetchone()
            if taken is not None:
                raise NamespaceTitleTaken(title)
            (count,) = conn.execute(
                "SELECT count(*) FROM namespaces WHERE account_id = ?", (account_id,)
            ).fetchone()
            if count >= MAX_NAMESPACES:
                raise TooManyNamespaces(MAX_NAMESPACES)
            conn.execute("INSERT OR IGNORE INTO accounts (id) VALUES (?)", (account_id,))
            info = NamespaceInfo(namespace_id or new_id(), title, account_id, jurisdiction)
            # Above every seq a deleted namespace (maybe of this very id) handed out.
            (base,) = conn.execute("SELECT retired + 1 FROM feed_state").fetchone()
            conn.execute(
                "INSERT INTO namespaces (id, account_id, title, jurisdiction, head, floor)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (info.id, account_id, title, jurisdiction, base, base),
            )
            return info

        return await self._write(create)

    async def list_namespaces(self, account_id: str) -> list[NamespaceInfo]:
        rows = await self._read(
            lambda c: c.execute(
                "SELECT id, title, jurisdiction FROM namespaces WHERE account_id = ? ORDER BY seq",
                (account_id,),
            ).fetchall()
        )
        return [NamespaceInfo(i, t, account_id, j) for i, t, j in rows]

    async def get_namespace(self, account_id: str, namespace_id: str) -> NamespaceInfo | None:
        row = await self._read(
            lambda c: c.execute(_NS_OWNED, (namespace_id, account_id)).fetchone()
        )
        return None if row is None else NamespaceInfo(namespace_id, row[0], account_id, row[1])

    async def rename_namespace(
        self, account_id: str, namespace_id: str, title: str
    ) -> NamespaceInfo:
        def rename(conn: sqlite3.Connection) -> NamespaceInfo:
            row = conn.execute(_NS_OWNED, (namespace_id, account_id)).fetchone()
            if row is None:
                raise NamespaceNotFound(namespace_id)
            if row[0] != title:
                try:
                    conn.execute(
                        "UPDATE namespaces SET title = ? WHERE id = ?", (title, namespace_id)
                    )
                except sqlite3.IntegrityError:  # UNIQUE (account_id, title); nothing changed
                    raise NamespaceTitleTaken(title) from None
            return NamespaceInfo(namespace_id, title, account_id, row[1])

        return await self._write(rename)

    async def delete_namespace(self, account_id: str, namespace_id: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            if conn.execute(_NS_OWNED, (namespace_id, account_id)).fetchone() is None:
                raise NamespaceNotFound(namespace_id)
            self._flush(conn)  # the batch's earlier writes: their seqs count as handed out
            conn.execute(
                "UPDATE feed_state SET retired ="
                " max(retired, (SELECT head FROM namespaces WHERE id = ?))",
                (namespace_id,),
            )
            conn.execute("DELETE FROM entries WHERE namespace_id = ?", (namespace_id,))
            conn.execute("DELETE FROM changes WHERE namespace_id = ?", (namespace_id,))
            conn.execute("DELETE FROM namespaces WHERE id = ?", (namespace_id,))

        await self._write(delete)
        self._waiters.forget(namespace_id)

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
            row: tuple[Any, ...] | None = conn.execute(_GET, params).fetchone()
            if row is None:
                _require_namespace(conn, namespace_id)
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
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        try:
            if conn is None:
                conn = local.conn = self._connect(timeout=0)
                conn.execute("PRAGMA query_only = ON")
                self._inline_conns.append(conn)
                local.hot = HotRows.open(self.path)
                if local.hot is not None:
                    self._hot_rows.append(local.hot)
            hot: HotRows | None = local.hot
            if hot is not None:
                hot.check()  # before the row is read: see sqlite_hot.py
                kept = hot.get(params)
                if kept is not False:
                    return kept
            row: tuple[Any, ...] | None = conn.execute(_GET_SMALL, params).fetchone()
            if row is None:
                if conn.execute(_NS_EXISTS, (params[0],)).fetchone() is None:
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

    async def get_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int, cache_ttl: int | None = None
    ) -> dict[str, Entry]:
        by_raw = {key.encode(): key for key in keys}
        raws = list(by_raw)

        def read(conn: sqlite3.Connection) -> list[Any]:
            rows: list[Any] = []
            for i in range(0, len(raws), 500):  # well under SQLite's bound-parameter limit
                chunk = raws[i : i + 500]
                sql = _GET_MANY.format(",".join("?" * len(chunk)))
                rows += conn.execute(sql, (namespace_id, *chunk)).fetchall()
            if not rows:
                _require_namespace(conn, namespace_id)
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
            row = conn.execute(_HEAD, (namespace_id,)).fetchone()
            if row is None:
                raise NamespaceNotFound(namespace_id)
            state = self._pending[namespace_id] = [row[0], row[1], row[0]]
        state[0] += n
        return state[0]

    def _flush(self, conn: sqlite3.Connection) -> None:
        """Write what the batch's writes so far allocated: their change rows and each
        namespace's new head (one UPDATE per namespace, not one per write)."""
        if self._log_rows:
            conn.executemany(_LOG, self._log_rows)
            self._log_rows = []
        for namespace_id, (head, floor, stored) in self._pending.items():
            if head != stored:
                conn.execute(_SET_HEAD, (head, namespace_id))
                self._batch_heads[namespace_id] = (head, floor)
        self._pending = {}  # read again if needed: a namespace op may follow

    async def put(
        self, namespace_id: str, key: str, entry: Entry, *, condition: Condition | None = None
    ) -> Written:
        raw = key.encode()
        value, expiration, metadata = entry.value, entry.expiration, entry.metadata

        def write(conn: sqlite3.Connection) -> int:
            if condition is not None:
                _check(conn, namespace_id, raw, condition)
            seq = self._advance(conn, namespace_id, 1)
            stored = _stored(conn, namespace_id, raw, value)
            conn.execute(_UPSERT, (namespace_id, raw, *stored, expiration, metadata, seq))
            self._log_rows.append((namespace_id, seq, raw, 0, expiration, metadata))
            return seq

        seq = await self._write(write)
        return Written(seq, version_of(seq))

    async def put_many(self, namespace_id: str, items: Sequence[tuple[str, Entry]]) -> None:
        # Built here so a bad key fails before anything is queued; values are not copied.
        rows = [(k.encode(), e.value, e.expiration, e.metadata) for k, e in items]

        def write(conn: sqlite3.Connection) -> None:
            if not rows:
                _require_namespace(conn, namespace_id)
                return
            first = self._advance(conn, namespace_id, len(rows)) - len(rows) + 1
            # In order: a later duplicate key wins, and each item is its own change.
            conn.executemany(
                _UPSERT,
                [
                    (namespace_id, k, *_stored(conn, namespace_id, k, v), x, m, first + i)
                    for i, (k, v, x, m) in enumerate(rows)
                ],
            )
            self._log_rows += [
                (namespace_id, first + i, k, 0, x, m) for i, (k, _, x, m) in enumerate(rows)
            ]

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
                _check(conn, namespace_id, raw, condition)
            rows = conn.execute(_DELETE, (namespace_id, raw)).fetchall()
            if not rows:
                _require_namespace(conn, namespace_id)
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
            gone: list[bytes] = []
            for raw in raws:
                rows = conn.execute(_DELETE, (namespace_id, raw)).fetchall()
                if rows and (now is None or rows[0][0] is None or rows[0][0] > now):
                    gone.append(raw)
            if not gone:
                _require_namespace(conn, namespace_id)
                return
            first = self._advance(conn, namespace_id, len(gone)) - len(gone) + 1
            self._log_rows += [
                (namespace_id, first + i, raw, 1, None, None) for i, raw in enumerate(gone)
            ]

        await self._write(write)

    async def list_keys(
        self, namespace_id: str, *, prefix: str, after: str | None, limit: int, now: int
    ) -> list[KeyInfo]:
        raw_prefix = prefix.encode()
        lower = raw_prefix
        if after is not None:
            # after + NUL is the smallest string greater than `after`: "key > after" as ">=".
            lower = max(lower, after.encode() + b"\x00")
        params = (namespace_id, lower, _prefix_end(raw_prefix), now, limit)

        def read(conn: sqlite3.Connection) -> list[KeyInfo]:
            rows = conn.execute(_LIST, params).fetchall()
            if not rows:
                _require_namespace(conn, namespace_id)
            return _key_infos(rows)

        return await self._read(read)

    async def namespace_stats(self, namespace_id: str, *, now: int) -> NamespaceStats:
        def read(conn: sqlite3.Connection) -> NamespaceStats:
            row = conn.execute(_STATS, (namespace_id,)).fetchone()
            if row is None:
                _require_namespace(conn, namespace_id)
                return NamespaceStats(0, 0)  # no entry was ever written
            expired, expired_bytes = conn.execute(_STATS_EXPIRED, (now, namespace_id)).fetchone()
            return NamespaceStats(row[0] - expired, row[1] - expired_bytes)

        return await self._read(read)

    async def purge_expired(self, now: int, limit: int = 1000) -> int:
        def purge(size: int) -> Callable[[sqlite3.Connection], int]:
            return lambda conn: int(conn.execute(_PURGE, (now, size)).rowcount)

        purged = 0
        while purged < limit:  # small transactions, so writers queue behind none for long
            size = min(_PURGE_BATCH, limit - purged)
            n = await self._write(purge(size))
            purged += n
            if n < size:
                break
        return purged

    # -- the change feed ---------------------------------------------------------------------
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
            row = conn.execute(_HEAD, (namespace_id,)).fetchone()
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
                    row = conn.execute(_HEAD, (namespace_id,)).fetchone()
                    if row is None:
                        raise NamespaceNotFound(namespace_id)
                    rows: list[RawChange] = []
                    if after is not None and after < row[0]:
                        rows = conn.execute(_CHANGES, (namespace_id, after, scan)).fetchall()
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
                rows = await self._read(functools.partial(_heads_of, waited))
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
            row = conn.execute(_HEAD, (namespace_id,)).fetchone()
            if row is None:
                raise NamespaceNotFound(namespace_id)
            return int(row[0])

        return await self._read(run)

    @contextlib.asynccontextmanager
    async def snapshot(self, namespace_id: str, *, now: int) -> AsyncIterator[SQLiteSnapshot]:
        """One read transaction on a connection of its own (store/sqlite_snapshot.py)."""
        if self._closed:
            raise StoreError("the store is closed")
        snap = await SQLiteSnapshot.open(self._connect, namespace_id, now, _head_seq)
        try:
            yield snap
        finally:
            await snap.close()

    async def aclose(self) -> None:
        """Flush queued writes, stop the threads and close every connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        tasks = [*self._tasks, *([self._foreign] if self._foreign is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        loop = asyncio.get_running_loop()
        stops: list[asyncio.Future[Any]] = []
        for q, n in ((self._wq, 1), (self._rq, self._readers)):
            for _ in range(n):
                future: asyncio.Future[Any] = loop.create_future()
                q.put(_Job(None, loop, future))
                stops.append(future)
        await asyncio.gather(*stops)
        self._committed.set()  # wake the checkpointer so it sees _closed
        for thread in self._threads:
            await asyncio.to_thread(thread.join)
        for hot in self._hot_rows:
            hot.close()
        self._hot_rows.clear()
        for conn in self._inline_conns:
            conn.close()
        self._inline_conns.clear()
        if self._revision_conn is not None:
            self._revision_conn.close()
            self._revision_conn = None
