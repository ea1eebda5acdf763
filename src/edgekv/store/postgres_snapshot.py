"""A consistent read of one PostgreSQL namespace, for export (`PostgresStore.snapshot`).

One pooled connection holds a `REPEATABLE READ READ ONLY` transaction for the whole export: every
statement in it sees the database as of its first one (MVCC: writers are never blocked, nothing
is locked), so the head sequence number and every keyset page agree exactly. Memory holds one
page. Closing rolls back and returns the connection to the pool at once; a connection whose
rollback fails (a cancelled query, a lost server) is terminated instead, so no transaction is
ever left open behind an export that ended.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from edgekv._exceptions import NamespaceNotFound, StoreUnavailable
from edgekv._export import ExportEntry

__all__ = ["PostgresSnapshot"]

_PAGE = (
    "SELECT key, value, expiration, metadata FROM edgekv_entries"
    " WHERE namespace_id = $1 AND key > $2 AND (expiration IS NULL OR expiration > $3)"
    " ORDER BY key LIMIT $4"
)

HeadSeq = Callable[[Any, str], Awaitable[int]]


class PostgresSnapshot:
    """Open with `await PostgresSnapshot.open(...)`, read with `page()`, end with `close()`."""

    def __init__(
        self,
        pool: Any,
        con: Any,
        namespace_id: str,
        now: int,
        unavailable: tuple[type[BaseException], ...],
    ) -> None:
        self.seq = 0
        self._unavailable = unavailable
        self._pool = pool
        self._con: Any = con
        self._transaction: Any = None
        self._namespace_id = namespace_id
        self._now = now
        self._after = b""  # below every key
        self._done = False

    @classmethod
    async def open(
        cls,
        pool: Any,
        acquire_timeout: float,
        namespace_id: str,
        now: int,
        head_seq: HeadSeq,
        unavailable: tuple[type[BaseException], ...],
    ) -> PostgresSnapshot:
        try:
            con = await pool.acquire(timeout=acquire_timeout)
        except unavailable as exc:
            raise StoreUnavailable(f"database unavailable: {exc!r}") from exc
        snapshot = cls(pool, con, namespace_id, now, unavailable)
        try:
            snapshot._transaction = con.transaction(isolation="repeatable_read", readonly=True)
            await snapshot._transaction.start()
            found = await con.fetchval(
                "SELECT 1 FROM edgekv_namespaces WHERE id = $1", namespace_id
            )
            if found is None:
                raise NamespaceNotFound(namespace_id)
            snapshot.seq = await head_seq(con, namespace_id)
        except unavailable as exc:
            await snapshot.close()
            raise StoreUnavailable(f"database unavailable: {exc!r}") from exc
        except BaseException:
            await snapshot.close()
            raise
        return snapshot

    async def page(self, limit: int) -> list[ExportEntry]:
        if self._done:
            return []
        con = self._con
        assert con is not None, "the snapshot is closed"
        try:
            rows = await con.fetch(_PAGE, self._namespace_id, self._after, self._now, limit)
        except self._unavailable as exc:
            raise StoreUnavailable(f"database unavailable: {exc!r}") from exc
        if len(rows) < limit:
            self._done = True
        if not rows:
            return []
        self._after = rows[-1][0]
        return [ExportEntry(r[0].decode(), r[1], r[2], r[3]) for r in rows]

    async def close(self) -> None:
        """Roll back and give the connection back (idempotent)."""
        con, self._con = self._con, None
        self._done = True
        if con is None:
            return
        try:
            if self._transaction is not None and not con.is_closed():
                await self._transaction.rollback()
        except BaseException:
            con.terminate()  # whatever state it is in, the server ends its transaction
            raise
        finally:
            await self._pool.release(con)
