"""A consistent read of one SQLite namespace, for export (`SQLiteStore.snapshot`).

A dedicated connection, on a thread of its own, opens a read transaction (`BEGIN`; the first
SELECT fixes the snapshot) and reads keyset pages inside it. In WAL mode a reader never blocks
the writer and keeps seeing the database as of its first read whatever is committed meanwhile:
a checkpoint copies no frame past the reader's mark while it lives. So the export is exact at
its `seq`, writers go on at full speed, and memory holds one page. Closing rolls back and closes
the connection at once, which lets the next checkpoint run to the end of the WAL again (the WAL
file itself grows while a long export holds the snapshot: disk, not memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from edgekv._exceptions import NamespaceNotFound, StoreError
from edgekv._export import ExportEntry

__all__ = ["SQLiteSnapshot"]

_T = TypeVar("_T")

# A large value lives in `blobs` (entries.blob its id, entries.value empty; store/sqlite_schema.py).
_PAGE = (
    "SELECT CAST(e.key AS TEXT), coalesce(b.value, e.value), e.expiration, e.metadata"
    " FROM entries e LEFT JOIN blobs b ON b.id = e.blob"
    " WHERE e.namespace_id = ? AND e.key > ? AND (e.expiration IS NULL OR e.expiration > ?)"
    " ORDER BY e.key LIMIT ?"
)

HeadSeq = Callable[[sqlite3.Connection, str], int]


class SQLiteSnapshot:
    """Open with `await SQLiteSnapshot.open(...)`, read with `page()`, end with `close()`."""

    def __init__(self, namespace_id: str, now: int) -> None:
        self.seq = 0
        self._namespace_id = namespace_id
        self._now = now
        self._after = b""  # every key is longer than b"": the first page starts at the first
        self._done = False
        self._conn: sqlite3.Connection | None = None
        # One thread for the whole read: a connection is used by one thread at a time.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="edgekv-sqlite-export")

    @classmethod
    async def open(
        cls,
        connect: Callable[[], sqlite3.Connection],
        namespace_id: str,
        now: int,
        head_seq: HeadSeq,
    ) -> SQLiteSnapshot:
        snapshot = cls(namespace_id, now)

        def begin() -> None:
            conn = snapshot._conn = connect()
            conn.execute("PRAGMA query_only = ON")
            conn.execute("BEGIN")
            # The first read of the transaction fixes its snapshot: the namespace check and
            # the head sequence number are read as of the same instant as every page.
            if conn.execute("SELECT 1 FROM namespaces WHERE id = ?", (namespace_id,)).fetchone():
                snapshot.seq = head_seq(conn, namespace_id)
                return
            raise NamespaceNotFound(namespace_id)

        try:
            await snapshot._run(begin)
        except BaseException:
            await snapshot.close()
            raise
        return snapshot

    async def _run(self, fn: Callable[[], _T]) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, fn)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite error: {exc}") from None

    async def page(self, limit: int) -> list[ExportEntry]:
        if self._done:
            return []
        conn = self._conn
        assert conn is not None, "the snapshot is closed"
        params = (self._namespace_id, self._after, self._now, limit)

        def read() -> list[Any]:
            return conn.execute(_PAGE, params).fetchall()

        rows = await self._run(read)
        if len(rows) < limit:
            self._done = True
        if not rows:
            return []
        self._after = rows[-1][0].encode()
        return list(map(ExportEntry._make, rows))

    async def close(self) -> None:
        """End the read transaction and close the connection (idempotent). Runs even when the
        caller was cancelled: a page still being read finishes first (one page, milliseconds)."""
        conn, self._conn = self._conn, None
        self._done = True

        def end() -> None:
            if conn is not None:
                try:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                finally:
                    conn.close()

        future = asyncio.get_running_loop().run_in_executor(self._thread, end)
        self._thread.shutdown(wait=False)
        with contextlib.suppress(sqlite3.Error):  # closing anyway
            await asyncio.shield(future)
