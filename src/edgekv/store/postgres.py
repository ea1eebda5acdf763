"""The PostgreSQL engine: many central servers share one database.

The schema, its migrations (run on `open()` under an advisory lock, so several servers may start
at once) and the statements: store/pg_schema.py. Keys are `bytea`, so every comparison is by
bytes; listing is a keyset seek on the primary key `(namespace_id, key)`. Connection trouble
surfaces as `StoreUnavailable` (store/pg_pool.py). Accounts, tokens and namespaces:
store/pg_catalog.py.

The change feed (schema 2). Seqs come from a counter on the namespace row, advanced inside each
write's transaction: its row lock orders the writers of a namespace (on every server), so seq
order is commit order — a SEQUENCE would not be (A takes 5, B takes 6 and commits first, and a
reader at cursor 6 would never see 5). Every write takes that lock first, so writers of one key
never wait for each other in opposite orders. Conditional writes check the key in a statement
run after the lock was granted (READ COMMITTED: a fresh snapshot, which sees the previous
holder's commit), so of N concurrent writes against one version exactly one succeeds.
After a commit this process wakes its own long polls and tells the other servers
(store/pg_feed.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg

from edgekv._exceptions import NamespaceNotFound, PreconditionFailed, StoreError, StoreUnavailable
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
from edgekv.store.pg_catalog import PgCatalog
from edgekv.store.pg_feed import FeedSignals
from edgekv.store.pg_pool import (
    STALE,
    UNAVAILABLE,
    connection,
    no_reset,
    retry_once,
    split_dsn,
)
from edgekv.store.pg_schema import (
    ADVANCE,
    CHANGES,
    CURRENT,
    LIVE,
    LOCK,
    PUT,
    PUT_AT,
    SCHEMA_VERSION,
    SIZE,
    TRIM,
    UPSERT_TAIL,
    deleted_count,
    head_seq,
    live_version,
    migrate,
    prefix_end,
)
from edgekv.store.postgres_snapshot import PostgresSnapshot

__all__ = ["SCHEMA_VERSION", "PostgresStore"]

_TRIM_BATCH = 5000  # change rows per history-trim statement


class PostgresStore(PgCatalog):
    """A `Store` in a PostgreSQL database; open with `await PostgresStore.open(dsn)`."""

    def __init__(
        self,
        pool: Any,
        acquire_timeout: float,
        *,
        dsn: str = "",
        connect_timeout: float = 5.0,
        feed_history: int = DEFAULT_FEED_HISTORY,
    ) -> None:
        if feed_history < 1:
            raise ValueError("feed_history must be >= 1")
        self._pool = pool
        self._acquire_timeout = acquire_timeout
        self._default_account: str | None = None  # the oldest account never changes
        self.feed_history = feed_history
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._waiters = FeedWaiters()
        self._signals = FeedSignals(
            self._waiters,
            self._conn,
            self._spawn,
            lambda: self._closed,
            dsn=dsn,
            connect_timeout=connect_timeout,
        )
        self._trimming: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._token_watch = None

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        command_timeout: float = 30.0,
        acquire_timeout: float = 10.0,
        feed_history: int = DEFAULT_FEED_HISTORY,
    ) -> PostgresStore:
        """Connect, migrate the schema to `SCHEMA_VERSION`, and return the store.

        `max_size` bounds this process's connections (size it against the server's
        `max_connections` divided by the number of servers); every call holds one connection
        for one statement or one short transaction. Timeouts bound every wait so a dead or
        unreachable server yields `StoreUnavailable`, never a hang. The DSN's query string may
        set `pool_min_size`, `pool_max_size`, `connect_timeout` and `command_timeout` too
        (they win over the arguments). `feed_history`: changes kept per namespace.
        """
        dsn, opts = split_dsn(dsn)
        min_size = int(opts.get("pool_min_size", min_size))
        max_size = int(opts.get("pool_max_size", max_size))
        connect_timeout = float(opts.get("connect_timeout", connect_timeout))
        command_timeout = float(opts.get("command_timeout", command_timeout))
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=connect_timeout,
                command_timeout=command_timeout,
                reset=no_reset,
                server_settings={"application_name": "edgekv"},
            )
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"database unavailable: {exc}") from exc
        store = cls(
            pool,
            acquire_timeout,
            dsn=dsn,
            connect_timeout=connect_timeout,
            feed_history=feed_history,
        )
        try:
            async with store._conn() as con:
                await migrate(con)
        except BaseException:
            await store.aclose()
            raise
        return store

    def _conn(self) -> AbstractAsyncContextManager[Any]:
        """A pooled connection; connection-level failures become `StoreUnavailable`."""
        return connection(self._pool, self._acquire_timeout)

    # -- entries ---------------------------------------------------------------------------
    # Reads start from the namespace row (a primary-key probe on a small, hot table) and
    # LEFT JOIN the entries: one round trip tells "no such namespace" (no row) from "no such
    # key" (a row of NULLs).
    @retry_once
    async def get(
        self, namespace_id: str, key: str, *, now: int, cache_ttl: int | None = None
    ) -> Entry | None:
        async with self._conn() as con:
            row = await con.fetchrow(
                "SELECT e.value, e.expiration, e.metadata, e.seq FROM edgekv_namespaces n"
                " LEFT JOIN edgekv_entries e ON e.namespace_id = n.id AND e.key = $2"
                " AND (e.expiration IS NULL OR e.expiration > $3) WHERE n.id = $1",
                namespace_id,
                key.encode(),
                now,
            )
        if row is None:
            raise NamespaceNotFound(namespace_id)
        if row["value"] is None:
            return None
        return Entry(row["value"], row["expiration"], row["metadata"], None, str(row["seq"]))

    @retry_once
    async def get_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int, cache_ttl: int | None = None
    ) -> dict[str, Entry]:
        raw = list({k.encode(): None for k in keys})
        async with self._conn() as con:
            rows = await con.fetch(
                "SELECT e.key, e.value, e.expiration, e.metadata, e.seq FROM edgekv_namespaces n"
                " LEFT JOIN edgekv_entries e ON e.namespace_id = n.id AND e.key = ANY($2)"
                " AND (e.expiration IS NULL OR e.expiration > $3) WHERE n.id = $1",
                namespace_id,
                raw,
                now,
            )
        if not rows:
            raise NamespaceNotFound(namespace_id)
        return {
            r["key"].decode(): Entry(
                r["value"], r["expiration"], r["metadata"], None, version_of(r["seq"])
            )
            for r in rows
            if r["key"] is not None
        }

    def _committed(self, namespace_id: str, head: int, floor: int) -> None:
        """After a commit: wake long polls here and on the other servers; trim if due."""
        self._waiters.notify(namespace_id, head)
        self._signals.committed(namespace_id, head)
        if head - floor >= 2 * self.feed_history and namespace_id not in self._trimming:
            self._trimming.add(namespace_id)
            self._spawn(self._trim(namespace_id))

    @retry_once
    async def put(
        self, namespace_id: str, key: str, entry: Entry, *, condition: Condition | None = None
    ) -> Written:
        raw = key.encode()
        value = bytes(entry.value)
        async with self._conn() as con:
            if condition is None:
                row = await con.fetchrow(
                    PUT, namespace_id, raw, value, entry.expiration, entry.metadata
                )
            else:
                async with con.transaction():
                    row = await con.fetchrow(ADVANCE, namespace_id, 1)
                    if row is None:
                        raise NamespaceNotFound(namespace_id)
                    current = live_version(
                        await con.fetchrow(CURRENT, namespace_id, raw), condition.now
                    )
                    if current != condition.version:
                        raise PreconditionFailed(current)  # rolls the head back too
                    await con.execute(
                        PUT_AT,
                        namespace_id,
                        raw,
                        value,
                        entry.expiration,
                        entry.metadata,
                        row["head"],
                    )
        if row is None:
            raise NamespaceNotFound(namespace_id)
        self._committed(namespace_id, row["head"], row["floor"])
        return Written(row["head"], version_of(row["head"]))

    @retry_once
    async def put_many(self, namespace_id: str, items: Sequence[tuple[str, Entry]]) -> None:
        if not items:
            await self._require_namespace(namespace_id)
            return
        n = len(items)
        # ON CONFLICT cannot touch one row twice in a statement: each key's last item wins,
        # keeping that item's position (its seq is head - n + position).
        last: dict[bytes, tuple[int, Entry]] = {}
        raws = [key.encode() for key, _ in items]
        for i, (raw, (_, entry)) in enumerate(zip(raws, items, strict=True), 1):
            last[raw] = (i, entry)
        # Rows are locked in array order: sorted, two overlapping batches cannot deadlock.
        keys = sorted(last)
        chosen = [last[k] for k in keys]
        async with self._conn() as con:
            # One statement is one transaction: all or nothing.
            row = await con.fetchrow(
                "WITH h AS (UPDATE edgekv_namespaces SET head = head + $2 WHERE id = $1"
                " RETURNING head, floor),"
                " e AS (INSERT INTO edgekv_entries"
                " (namespace_id, key, value, expiration, metadata, seq)"
                " SELECT $1, k, v, x, m, h.head - $2 + p"
                " FROM h, unnest($3::bytea[], $4::bytea[], $5::bigint[], $6::text[], $7::bigint[])"
                " AS t (k, v, x, m, p)" + UPSERT_TAIL + "),"
                " c AS (INSERT INTO edgekv_changes"
                " (namespace_id, seq, key, deleted, expiration, metadata)"
                " SELECT $1, h.head - $2 + p, k, false, x, m"
                " FROM h, unnest($8::bytea[], $9::bigint[], $10::text[])"
                " WITH ORDINALITY AS t (k, x, m, p))"
                " SELECT head, floor FROM h",
                namespace_id,
                n,
                keys,
                [bytes(e.value) for _, e in chosen],
                [e.expiration for _, e in chosen],
                [e.metadata for _, e in chosen],
                [i for i, _ in chosen],
                raws,
                [e.expiration for _, e in items],
                [e.metadata for _, e in items],
            )
        if row is None:
            raise NamespaceNotFound(namespace_id)
        self._committed(namespace_id, row["head"], row["floor"])

    async def _require_namespace(self, namespace_id: str) -> None:
        async with self._conn() as con:
            found = await con.fetchval(
                "SELECT 1 FROM edgekv_namespaces WHERE id = $1", namespace_id
            )
        if found is None:
            raise NamespaceNotFound(namespace_id)

    @retry_once
    async def delete(
        self,
        namespace_id: str,
        key: str,
        *,
        condition: Condition | None = None,
        now: int | None = None,
    ) -> Written | None:
        raw = key.encode()
        async with self._conn() as con, con.transaction():
            # The lock first, then statements whose snapshot sees the previous holder's commit
            # (a DELETE in the same statement as the lock could miss a row it just inserted).
            if await con.fetchval(LOCK, namespace_id) is None:
                raise NamespaceNotFound(namespace_id)
            if condition is not None:
                current = live_version(
                    await con.fetchrow(CURRENT, namespace_id, raw), condition.now
                )
                if current != condition.version:
                    raise PreconditionFailed(current)
            expiration = await con.fetchrow(
                "DELETE FROM edgekv_entries WHERE namespace_id = $1 AND key = $2"
                " RETURNING expiration",
                namespace_id,
                raw,
            )
            if expiration is None:
                return None
            if now is not None and expiration[0] is not None and expiration[0] <= now:
                return None  # it had expired: expiry is not a change
            row = await con.fetchrow(
                "WITH h AS (" + ADVANCE + "),"
                " c AS (INSERT INTO edgekv_changes (namespace_id, seq, key, deleted)"
                " SELECT $1, head, $3, true FROM h)"
                " SELECT head, floor FROM h",
                namespace_id,
                1,
                raw,
            )
        self._committed(namespace_id, row["head"], row["floor"])
        return Written(row["head"], version_of(row["head"]))

    @retry_once
    async def delete_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int | None = None
    ) -> None:
        raws = list(dict.fromkeys(k.encode() for k in keys))  # a repeat deletes nothing
        async with self._conn() as con, con.transaction():
            if await con.fetchval(LOCK, namespace_id) is None:
                raise NamespaceNotFound(namespace_id)
            rows = await con.fetch(
                "DELETE FROM edgekv_entries WHERE namespace_id = $1 AND key = ANY($2)"
                " RETURNING key, expiration",
                namespace_id,
                raws,
            )
            live = {
                r["key"]
                for r in rows
                if now is None or r["expiration"] is None or r["expiration"] > now
            }
            if not live:
                return
            gone = [raw for raw in raws if raw in live]  # changes in the order given
            row = await con.fetchrow(
                "WITH h AS (" + ADVANCE + "),"
                " c AS (INSERT INTO edgekv_changes (namespace_id, seq, key, deleted)"
                " SELECT $1, h.head - $2 + n, k, true"
                " FROM h, unnest($3::bytea[]) WITH ORDINALITY AS t (k, n))"
                " SELECT head, floor FROM h",
                namespace_id,
                len(gone),
                gone,
            )
        self._committed(namespace_id, row["head"], row["floor"])

    @retry_once
    async def list_keys(
        self, namespace_id: str, *, prefix: str, after: str | None, limit: int, now: int
    ) -> list[KeyInfo]:
        # Both bounds are range conditions on the primary key (never `OR ... IS NULL`
        # tricks, which a generic plan would turn into filters and scan past the prefix).
        lower = prefix.encode()
        lower_op = ">="
        if after is not None and after.encode() >= lower:
            lower, lower_op = after.encode(), ">"
        upper = prefix_end(prefix.encode())
        sql = (
            "SELECT key, expiration, metadata FROM edgekv_entries"
            f" WHERE namespace_id = $1 AND key {lower_op} $2 AND {LIVE}"
        )
        args: list[Any] = [namespace_id, lower, now, limit]
        if upper is not None:
            sql += " AND key < $5"
            args.append(upper)
        sql += " ORDER BY key LIMIT $4"
        async with self._conn() as con:
            rows = await con.fetch(sql, *args)
        if not rows:
            await self._require_namespace(namespace_id)
        return [KeyInfo(r["key"].decode(), r["expiration"], r["metadata"]) for r in rows]

    @retry_once
    async def namespace_stats(self, namespace_id: str, *, now: int) -> NamespaceStats:
        # The expired-not-purged rows come from the expiration index (MATERIALIZED keeps the
        # planner from walking the namespace's primary key instead); the sweep keeps them few.
        async with self._conn() as con:
            row = await con.fetchrow(
                "WITH expired AS MATERIALIZED ("
                f" SELECT namespace_id, {SIZE.format(row='e')} AS size FROM edgekv_entries e"
                "  WHERE expiration IS NOT NULL AND expiration <= $2)"
                " SELECT (SELECT 1 FROM edgekv_namespaces WHERE id = $1) AS found,"
                " (SELECT coalesce(sum(key_count), 0) FROM edgekv_namespace_stats"
                "  WHERE namespace_id = $1) - (SELECT count(*) FROM expired"
                "  WHERE namespace_id = $1) AS key_count,"
                " (SELECT coalesce(sum(bytes), 0) FROM edgekv_namespace_stats"
                "  WHERE namespace_id = $1) - (SELECT coalesce(sum(size), 0) FROM expired"
                "  WHERE namespace_id = $1) AS bytes",
                namespace_id,
                now,
            )
        if row["found"] is None:
            raise NamespaceNotFound(namespace_id)
        return NamespaceStats(int(row["key_count"]), int(row["bytes"]))

    async def purge_expired(self, now: int, limit: int = 1000, *, batch: int = 500) -> int:
        """Deletes in batches of `batch` rows, each its own short transaction; rows another
        purger (or a writer) holds are skipped, and no table lock is ever taken."""
        purged = 0
        while purged < limit:
            n = min(batch, limit - purged)
            async with self._conn() as con:
                # ctid = ANY(ARRAY(...)) guarantees a TID scan for the delete itself.
                status = await con.execute(
                    "DELETE FROM edgekv_entries WHERE ctid = ANY (ARRAY ("
                    " SELECT ctid FROM edgekv_entries"
                    " WHERE expiration IS NOT NULL AND expiration <= $1"
                    " LIMIT $2 FOR UPDATE SKIP LOCKED))",
                    now,
                    n,
                )
            done = deleted_count(status)
            purged += done
            if done < n:
                break
        return purged

    # -- the change feed ---------------------------------------------------------------------
    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _trim(self, namespace_id: str) -> None:
        """Drop a namespace's oldest changes down to the newest N, a batch per statement."""
        try:
            while not self._closed:
                async with self._conn() as con:
                    row = await con.fetchrow(TRIM, namespace_id, self.feed_history, _TRIM_BATCH)
                if row is None or row["head"] - row["floor"] <= self.feed_history:
                    return
        except (StoreError, asyncpg.PostgresError, OSError):
            pass  # tried again after the next commit that finds the history long
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
            async with self._conn() as con:
                rows = await con.fetch(
                    CHANGES, namespace_id, (1 << 62) if after is None else after, scan
                )
            if not rows:
                raise NamespaceNotFound(namespace_id)
            head, floor = rows[0]["head"], rows[0]["floor"]
            if rows[0]["seq"] is None:
                return head, floor, []
            return head, floor, [(r[2], r[3], r[4], r[5], r[6]) for r in rows]

        if wait > 0:
            self._signals.listen()
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

    @retry_once
    async def head(self, namespace_id: str) -> int:
        async with self._conn() as con:
            head = await con.fetchval(
                "SELECT head FROM edgekv_namespaces WHERE id = $1", namespace_id
            )
        if head is None:
            raise NamespaceNotFound(namespace_id)
        return int(head)

    @contextlib.asynccontextmanager
    async def snapshot(self, namespace_id: str, *, now: int) -> AsyncIterator[PostgresSnapshot]:
        """One REPEATABLE READ READ ONLY transaction (store/postgres_snapshot.py)."""
        snap = await PostgresSnapshot.open(
            self._pool, self._acquire_timeout, namespace_id, now, head_seq, UNAVAILABLE + STALE
        )
        try:
            yield snap
        finally:
            await snap.close()

    async def aclose(self) -> None:
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._token_watch is not None:
            await self._token_watch.aclose()
        try:
            await asyncio.wait_for(self._pool.close(), timeout=10)
        except UNAVAILABLE:
            self._pool.terminate()  # a dead server must not hold up shutdown
