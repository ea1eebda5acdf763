"""The threads of a SQLite store: one writer with group commit, readers, a checkpointer.

The event loop never runs SQLite. One writer thread owns the writing connection: callers
enqueue an operation and await a future; the thread drains everything queued, runs it in ONE
transaction, commits once (group commit: one fsync for many writers) and only then resolves
the futures. Reads run on a small pool of reader threads, each with its own connection.
A checkpointer thread copies the WAL into the database beside the writer, not in a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from edgekv._exceptions import StoreError, StoreUnavailable

__all__ = ["BUSY_TIMEOUT", "Workers", "rollback", "wrap"]

_T = TypeVar("_T")

BUSY_TIMEOUT = 5.0  # seconds another process may hold the write lock before StoreUnavailable
_MAX_WRITE_BATCH = 1024  # operations per group commit (bounds one transaction)
_MAX_READ_BATCH = 16  # reads a reader runs before handing results back to the loop
_CHECKPOINT_DELAY = 0.05  # seconds of commits a background checkpoint takes at once
_BACKSTOP_CHECKPOINT_PAGES = 16384  # the writer checkpoints itself past this (64 MiB of WAL)


def wrap(exc: BaseException) -> BaseException:
    """SQLite's errors as the store errors the binding and REST layer understand."""
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return StoreUnavailable(f"SQLite database is busy: {exc}")
    if isinstance(exc, sqlite3.Error):
        return StoreError(f"SQLite error: {exc}")
    return exc


def rollback(conn: sqlite3.Connection) -> None:
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


class Workers:
    """The writer, reader and checkpointer threads of one database file, and their queues.

    The store that owns them keeps per-batch state of its own (seq allocation, change rows):
    `begin` resets it before a batch and after a rollback, `finish` writes it inside the
    transaction before COMMIT, and `committed` runs on the writer thread after COMMIT with
    the event loop of the batch (to hand wake-ups over to it).
    """

    def __init__(
        self,
        path: Path,
        *,
        readers: int,
        begin: Callable[[], None],
        finish: Callable[[sqlite3.Connection], None],
        committed: Callable[[asyncio.AbstractEventLoop], None],
    ) -> None:
        self.path = path
        self.commits = 0  # group commits done by the writer (for tests and benchmarks)
        self.closed = False  # set by the owner when closing (then `stop`), or by a failed start
        self.threads: list[threading.Thread] = []
        self._readers = readers
        self._begin = begin
        self._finish = finish
        self._after_commit = committed
        self._wq: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._rq: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._committed = threading.Event()  # wakes the checkpointer

    def connect(self, timeout: float = BUSY_TIMEOUT) -> sqlite3.Connection:
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

    async def start(self, prepare: Callable[[sqlite3.Connection], None]) -> None:
        """Start the writer, which runs `prepare` (the migration) on its connection first,
        then the readers and the checkpointer. Raises what `prepare` raised."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._spawn(self._write_loop, "writer", _Job(None, loop, ready), prepare)
        await ready
        for i in range(self._readers):
            self._spawn(self._read_loop, f"reader-{i}")
        self._spawn(self._checkpoint_loop, "checkpointer")

    def _spawn(self, target: Callable[..., None], name: str, *args: Any) -> None:
        # daemon: a forgotten aclose() must not hang interpreter exit (commits are atomic)
        thread = threading.Thread(target=target, args=args, name=f"edgekv-sqlite-{name}")
        thread.daemon = True
        thread.start()
        self.threads.append(thread)

    def _write_loop(self, ready: _Job, prepare: Callable[[sqlite3.Connection], None]) -> None:
        conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self.connect()
            conn.execute("PRAGMA journal_size_limit = 67108864")  # shrink the WAL after a burst
            # Checkpoints run on their own thread (_checkpoint_loop); this is only a backstop.
            conn.execute(f"PRAGMA wal_autocheckpoint = {_BACKSTOP_CHECKPOINT_PAGES}")
            prepare(conn)
        except BaseException as exc:
            self.closed = True
            if conn is not None:
                conn.close()
            _dispatch([(ready, wrap(exc), None)])
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
            error = wrap(exc)
            return [(job, error, None) for job in batch]
        self._begin()
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
            self._finish(conn)
            conn.execute("COMMIT")
            self.commits += 1
            self._committed.set()
            self._after_commit(batch[0].loop)
            return done
        except Exception as exc:
            self._begin()
            rollback(conn)
            if len(batch) == 1:
                return [(batch[0], wrap(exc), None)]
            return [d for job in batch for d in self._run_batch(conn, [job])]

    def _checkpoint_loop(self) -> None:
        """Copy the WAL back into the database off the commit path. SQLite's automatic
        checkpoint runs inside a commit and stalled every writer of that batch ~10 ms each
        1000 pages; a PASSIVE checkpoint on its own connection runs beside the writer."""
        conn: sqlite3.Connection | None = None
        while not self.closed:  # checked after clear(): stop sets closed, then the event
            self._committed.wait()
            time.sleep(_CHECKPOINT_DELAY)  # one checkpoint for the commits of this interval
            self._committed.clear()
            try:
                conn = conn or self.connect()
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
                        conn = self.connect()
                        conn.execute("PRAGMA query_only = ON")
                    done.append((job, None, job.fn(conn)))
                except Exception as exc:
                    done.append((job, wrap(exc), None))
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
        if self.closed:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        q.put(_Job(fn, loop, future))
        return future

    async def read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `fn` on a reader thread."""
        return await self._submit(self._rq, fn)

    async def write(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `fn` on the writer thread inside a group-commit transaction; returns once the
        commit is durable. `fn` must raise StoreError only before it changes anything."""
        return await self._submit(self._wq, fn)

    async def stop(self) -> None:
        """Run what is queued, then stop every thread and close its connection (after the
        owner set `closed`, so nothing new is queued)."""
        loop = asyncio.get_running_loop()
        stops: list[asyncio.Future[Any]] = []
        for q, n in ((self._wq, 1), (self._rq, self._readers)):
            for _ in range(n):
                future: asyncio.Future[Any] = loop.create_future()
                q.put(_Job(None, loop, future))
                stops.append(future)
        await asyncio.gather(*stops)
        self._committed.set()  # wake the checkpointer so it sees closed
        for thread in self.threads:
            await asyncio.to_thread(thread.join)
