"""The PostgreSQL engine: many central servers share one database.

Keys are stored as `bytea` (their UTF-8 bytes), so every comparison, index and `ORDER BY` is by
bytes, whatever the database's collation. Listing is a keyset seek on the primary key
`(namespace_id, key)`. Schema migrations run on `open()` under an advisory lock, so several
servers may start at once. Connection trouble (server down, refused, lost mid-query, timeouts)
surfaces as `StoreUnavailable`; the asyncpg pool reconnects by itself once the server is back.

The change feed (schema 2). Seqs come from a counter on the namespace row, advanced inside each
write's transaction: its row lock orders the writers of a namespace (on every server), so seq
order is commit order — a SEQUENCE would not be (A takes 5, B takes 6 and commits first, and a
reader at cursor 6 would never see 5). Every write takes that lock first, so writers of one key
never wait for each other in opposite orders. Conditional writes check the key in a statement
run after the lock was granted (READ COMMITTED: a fresh snapshot, which sees the previous
holder's commit), so of N concurrent writes against one version exactly one succeeds.
After a commit this process wakes its own long polls, and one coalesced `pg_notify` (sent beside
the write path, never inside its transaction: NOTIFY serialises the commits that carry it) tells
the other servers, whose `LISTEN` connection wakes theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from edgekv._exceptions import (
    InvalidText,
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
from edgekv.store.pg_tokens import TokenWatch
from edgekv.store.postgres_snapshot import PostgresSnapshot

__all__ = ["SCHEMA_VERSION", "PostgresStore"]

# Transaction-level advisory lock keys (arbitrary, fixed): one serialises migrations, the other
# account creation, so "the oldest account" is the same for every server.
_MIGRATION_LOCK = 0x6564_6765_6B76_0001
_ACCOUNT_LOCK = 0x6564_6765_6B76_0002

# What an entry counts in namespace_stats: key, value and metadata bytes (entry_size).
_SIZE = (
    "octet_length({row}.key) + octet_length({row}.value)"
    " + coalesce(octet_length({row}.metadata), 0)"
)

# Each entry moves the schema from version i to i + 1. Never edit one that has shipped: append.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE edgekv_accounts (
        id text COLLATE "C" PRIMARY KEY,
        name text NOT NULL DEFAULT '',
        seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE  -- creation order: oldest = default
    );
    CREATE TABLE edgekv_tokens (
        token_hash text COLLATE "C" PRIMARY KEY,
        id text NOT NULL,
        account_id text COLLATE "C" NOT NULL,
        read_only boolean NOT NULL,
        namespaces text[],
        name text NOT NULL DEFAULT ''
    );
    CREATE TABLE edgekv_namespaces (
        id text COLLATE "C" PRIMARY KEY,
        account_id text COLLATE "C" NOT NULL REFERENCES edgekv_accounts (id),
        title text NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        UNIQUE (account_id, title)
    );
    CREATE INDEX edgekv_namespaces_account ON edgekv_namespaces (account_id, seq);
    CREATE TABLE edgekv_entries (
        namespace_id text COLLATE "C" NOT NULL
            REFERENCES edgekv_namespaces (id) ON DELETE CASCADE,
        key bytea NOT NULL,
        value bytea NOT NULL,
        expiration bigint,
        metadata text,
        PRIMARY KEY (namespace_id, key)
    );
    -- Partial: only entries that can expire are indexed for purge_expired.
    CREATE INDEX edgekv_entries_expiration ON edgekv_entries (expiration)
        WHERE expiration IS NOT NULL;
    """,
    # 2: per-namespace totals for namespace_stats, kept by statement-level triggers (one stats
    # update per statement, not per row). Each namespace has up to 16 rows ("shards", chosen by
    # the writing backend) so concurrent writers to one namespace do not queue on one row lock.
    # The join with edgekv_namespaces skips namespaces being deleted (their rows cascade away).
    f"""
    ALTER TABLE edgekv_tokens ADD COLUMN revoked boolean NOT NULL DEFAULT false;
    CREATE TABLE edgekv_namespace_stats (
        namespace_id text COLLATE "C" NOT NULL
            REFERENCES edgekv_namespaces (id) ON DELETE CASCADE,
        shard smallint NOT NULL,
        key_count bigint NOT NULL,
        bytes bigint NOT NULL,
        PRIMARY KEY (namespace_id, shard)
    );
    INSERT INTO edgekv_namespace_stats
        SELECT n.id, 0, count(e.key), coalesce(sum({_SIZE.format(row="e")}), 0)
        FROM edgekv_namespaces n LEFT JOIN edgekv_entries e ON e.namespace_id = n.id
        GROUP BY n.id;
    CREATE FUNCTION edgekv_stats_apply(deltas jsonb) RETURNS void LANGUAGE sql AS $$
        INSERT INTO edgekv_namespace_stats AS s (namespace_id, shard, key_count, bytes)
        SELECT d.namespace_id, pg_backend_pid() % 16, d.n, d.size
        FROM jsonb_to_recordset(deltas) AS d (namespace_id text, n bigint, size bigint)
        JOIN edgekv_namespaces ns ON ns.id = d.namespace_id
        ON CONFLICT (namespace_id, shard) DO UPDATE
        SET key_count = s.key_count + EXCLUDED.key_count, bytes = s.bytes + EXCLUDED.bytes
    $$;
    -- One branch per event: a transition table exists only for its own event.
    CREATE FUNCTION edgekv_stats_add() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM edgekv_stats_apply((SELECT jsonb_agg(t) FROM (
                SELECT namespace_id, count(*) AS n, sum({_SIZE.format(row="r")}) AS size
                FROM added r GROUP BY namespace_id) t));
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM edgekv_stats_apply((SELECT jsonb_agg(t) FROM (
                SELECT namespace_id, -count(*) AS n, -sum({_SIZE.format(row="r")}) AS size
                FROM removed r GROUP BY namespace_id) t));
        ELSE
            PERFORM edgekv_stats_apply((SELECT jsonb_agg(t) FROM (
                SELECT namespace_id, 0 AS n, sum(size) AS size FROM (
                    SELECT namespace_id, {_SIZE.format(row="r")} AS size FROM added r
                    UNION ALL
                    SELECT namespace_id, -({_SIZE.format(row="r")}) FROM removed r) u
                GROUP BY namespace_id) t));
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER edgekv_entries_stats_insert AFTER INSERT ON edgekv_entries
        REFERENCING NEW TABLE AS added
        FOR EACH STATEMENT EXECUTE FUNCTION edgekv_stats_add();
    CREATE TRIGGER edgekv_entries_stats_update AFTER UPDATE ON edgekv_entries
        REFERENCING OLD TABLE AS removed NEW TABLE AS added
        FOR EACH STATEMENT EXECUTE FUNCTION edgekv_stats_add();
    CREATE TRIGGER edgekv_entries_stats_delete AFTER DELETE ON edgekv_entries
        REFERENCING OLD TABLE AS removed
        FOR EACH STATEMENT EXECUTE FUNCTION edgekv_stats_add();
    """,
    # 3: a namespace's jurisdiction (eu, us, fedramp; NULL = none), fixed at creation.
    "ALTER TABLE edgekv_namespaces ADD COLUMN jurisdiction text",
    # 4: versions and the change feed. Entries written before it have version "0" (seq 0).
    # A low fillfactor leaves room for the namespace row's frequent head updates (HOT).
    """
    ALTER TABLE edgekv_namespaces
        ADD COLUMN head bigint NOT NULL DEFAULT 0,
        ADD COLUMN floor bigint NOT NULL DEFAULT 0;
    ALTER TABLE edgekv_namespaces SET (fillfactor = 50);
    ALTER TABLE edgekv_entries ADD COLUMN seq bigint NOT NULL DEFAULT 0;
    CREATE TABLE edgekv_changes (
        namespace_id text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        key bytea NOT NULL,
        deleted boolean NOT NULL,
        expiration bigint,
        metadata text,
        PRIMARY KEY (namespace_id, seq)
    );
    CREATE TABLE edgekv_feed_state (
        id integer PRIMARY KEY CHECK (id = 1),
        retired bigint NOT NULL  -- the newest seq any deleted namespace reached
    );
    INSERT INTO edgekv_feed_state (id, retired) VALUES (1, -1);
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)

# What "the database cannot be reached right now" looks like from asyncpg.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable
    TimeoutError,  # connect, acquire or command timeout
    asyncpg.PostgresConnectionError,  # class 08, including "connection lost mid-query"
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,  # starting up, recovering
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # pointed at a standby during failover
)

# A pooled connection that turns out dead when used (server restarted, backend terminated):
# the pool replaces it, and idempotent operations retry once on a fresh connection.
_STALE: tuple[type[BaseException], ...] = (
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.InternalClientError,  # "cannot switch to state": a half-closed socket
)


# The statement was rolled back whole and may simply be run again (a distributed engine
# answers 40001 for any conflict and expects the client to retry).
_TRANSIENT: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
)


class _Retryable(StoreUnavailable):
    """503 if it escapes; `_retry_once` methods first run again, once."""


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _retry_once(
    method: Callable[_P, Coroutine[Any, Any, _R]],
) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Run an idempotent operation again, once, when it hit a dead pooled connection (so the
    first call after a database restart succeeds) or a deadlock / serialization failure. Only
    for operations whose repetition after an unseen commit is harmless (reads, upserts, deletes
    of keys): not for creating or deleting namespaces."""

    @functools.wraps(method)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(*args, **kwargs)
        except _Retryable:
            return await method(*args, **kwargs)

    return wrapper


_LIVE = "(expiration IS NULL OR expiration > $3)"
_UPSERT_TAIL = """
    ON CONFLICT (namespace_id, key) DO UPDATE
    SET value = EXCLUDED.value, expiration = EXCLUDED.expiration, metadata = EXCLUDED.metadata,
        seq = EXCLUDED.seq
"""
_CHANNEL = "edgekv_feed"  # LISTEN/NOTIFY channel; payload "<namespace id> <head>"
_TRIM_BATCH = 5000  # change rows per history-trim statement
_LISTEN_RETRY = 1.0  # seconds between attempts to re-establish the LISTEN connection
# One statement: the head advance takes the namespace's row lock first (seq allocation and the
# namespace check), then the upsert and the change row use it.
_PUT = (
    "WITH h AS (UPDATE edgekv_namespaces SET head = head + 1 WHERE id = $1"
    " RETURNING head, floor),"
    " e AS (INSERT INTO edgekv_entries (namespace_id, key, value, expiration, metadata, seq)"
    " SELECT $1, $2, $3, $4, $5, head FROM h" + _UPSERT_TAIL + "),"
    " c AS (INSERT INTO edgekv_changes (namespace_id, seq, key, deleted, expiration, metadata)"
    " SELECT $1, head, $2, false, $4, $5 FROM h)"
    " SELECT head, floor FROM h"
)
# The second statement of a conditional put, after the lock was taken by advancing the head.
_PUT_AT = (
    "WITH e AS (INSERT INTO edgekv_entries (namespace_id, key, value, expiration, metadata, seq)"
    " VALUES ($1, $2, $3, $4, $5, $6)" + _UPSERT_TAIL + ")"
    " INSERT INTO edgekv_changes (namespace_id, seq, key, deleted, expiration, metadata)"
    " VALUES ($1, $6, $2, false, $4, $5)"
)
_ADVANCE = "UPDATE edgekv_namespaces SET head = head + $2 WHERE id = $1 RETURNING head, floor"
_LOCK = "SELECT head FROM edgekv_namespaces WHERE id = $1 FOR NO KEY UPDATE"
_CURRENT = "SELECT seq, expiration FROM edgekv_entries WHERE namespace_id = $1 AND key = $2"
_CHANGES = (
    "SELECT n.head, n.floor, c.seq, c.key, c.deleted, c.expiration, c.metadata"
    " FROM edgekv_namespaces n LEFT JOIN LATERAL (SELECT seq, key, deleted, expiration, metadata"
    "  FROM edgekv_changes WHERE namespace_id = n.id AND seq > $2 ORDER BY seq LIMIT $3) c"
    " ON true WHERE n.id = $1"
)
_TRIM = (
    "WITH n AS (SELECT floor, LEAST(head - $2, floor + $3) AS upto"
    "  FROM edgekv_namespaces WHERE id = $1),"
    " d AS (DELETE FROM edgekv_changes c USING n WHERE c.namespace_id = $1"
    "  AND c.seq > n.floor AND c.seq <= n.upto),"
    " u AS (UPDATE edgekv_namespaces SET floor = GREATEST(floor, (SELECT upto FROM n))"
    "  WHERE id = $1 AND (SELECT upto > floor FROM n) RETURNING head, floor)"
    " SELECT head, floor FROM u"
)


def _set_once(fut: asyncio.Future[None], *_args: Any) -> None:
    if not fut.done():
        fut.set_result(None)


def _current(row: Any, now: int) -> str | None:
    """The live version of a `_CURRENT` row, or None."""
    if row is None or (row["expiration"] is not None and row["expiration"] <= now):
        return None
    return version_of(row["seq"])


_OLDEST_ACCOUNT = "SELECT id FROM edgekv_accounts ORDER BY seq LIMIT 1"


def _prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with `prefix`, or None when
    there is none (empty prefix, or only 0xff bytes, which UTF-8 never produces)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


# Options edgekv reads from the DSN's query string (asyncpg would send unknown ones to the
# server as settings), so `edgekv serve --database URL` can size its pool.
_DSN_OPTIONS = ("pool_min_size", "pool_max_size", "connect_timeout", "command_timeout")


def _split_dsn(dsn: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _DSN_OPTIONS}
    if not ours:
        return dsn, {}
    rest = urlencode([(k, v) for k, v in query if k not in _DSN_OPTIONS])
    return urlunsplit(parts._replace(query=rest)), ours


async def _head_seq(con: Any, namespace_id: str) -> int:
    """The namespace's latest sequence number, read in the caller's transaction."""
    head = await con.fetchval("SELECT head FROM edgekv_namespaces WHERE id = $1", namespace_id)
    return 0 if head is None else int(head)


def _deleted_count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])  # "DELETE 3"


async def _no_reset(con: Any) -> None:
    """Pool `reset` hook: we keep no session state (no SET, LISTEN, cursors or session locks),
    so skip asyncpg's reset query and its round trip on every release. asyncpg still rolls
    back a transaction left open."""


class PostgresStore:
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
        self._listener: asyncio.Task[None] | None = None
        self._to_notify: dict[str, int] = {}  # namespace -> newest head not yet NOTIFY'd
        self._notifier: asyncio.Task[None] | None = None
        self._trimming: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._token_watch: TokenWatch | None = None  # started by the first token_revision()

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
        dsn, opts = _split_dsn(dsn)
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
                reset=_no_reset,
                server_settings={"application_name": "edgekv"},
            )
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"database unavailable: {exc}") from exc
        store = cls(
            pool,
            acquire_timeout,
            dsn=dsn,
            connect_timeout=connect_timeout,
            feed_history=feed_history,
        )
        try:
            await store._migrate()
        except BaseException:
            await store.aclose()
            raise
        return store

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        """A pooled connection; connection-level failures become `StoreUnavailable`."""
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout) as con:
                yield con
        except _STALE as exc:
            await self._stale(exc)
        except _TRANSIENT as exc:
            raise _Retryable(f"database busy: {exc!r}") from exc
        except asyncpg.exceptions.CharacterNotInRepertoireError as exc:
            # PostgreSQL text cannot hold NUL (SQLite can): the client's input, never a 500.
            raise InvalidText(f"text cannot contain NUL characters: {exc}") from exc
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"database unavailable: {exc!r}") from exc
        except asyncpg.InterfaceError as exc:
            # A connection that died between acquire and use reports itself as closed.
            if "connection is closed" in str(exc):
                await self._stale(exc)
            raise

    async def _stale(self, exc: BaseException) -> None:
        # One dead connection means the others (opened before the same event) are likely dead
        # too: have the pool replace them all rather than fail on each in turn.
        await self._pool.expire_connections()
        raise _Retryable(f"database connection lost: {exc!r}") from exc

    async def _migrate(self) -> None:
        async with self._conn() as con, con.transaction():
            # Serialises concurrent starts: DDL racing DDL fails on catalog unique indexes.
            await con.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await con.execute(
                "CREATE TABLE IF NOT EXISTS edgekv_schema ("
                " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            current: int = await con.fetchval("SELECT coalesce(max(version), 0) FROM edgekv_schema")
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"database schema version {current} is newer than this edgekv's "
                    f"({SCHEMA_VERSION}); upgrade edgekv"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                await con.execute(_MIGRATIONS[version - 1])
                await con.execute("INSERT INTO edgekv_schema (version) VALUES ($1)", version)

    # -- accounts and tokens -------------------------------------------------------------
    @_retry_once
    async def default_account(self) -> str:
        if self._default_account is not None:
            return self._default_account
        async with self._conn() as con:
            found: str | None = await con.fetchval(_OLDEST_ACCOUNT)
            if found is None:
                async with con.transaction():
                    # Under the lock, a second server sees the first one's committed account.
                    await con.execute("SELECT pg_advisory_xact_lock($1)", _ACCOUNT_LOCK)
                    found = await con.fetchval(_OLDEST_ACCOUNT)
                    if found is None:
                        found = new_id()
                        await con.execute("INSERT INTO edgekv_accounts (id) VALUES ($1)", found)
        self._default_account = found
        return found

    async def _insert_account(self, con: Any, account_id: str, name: str) -> None:
        # Accounts are inserted under the lock so that identity order is commit order and
        # the oldest account, once visible, stays the oldest.
        async with con.transaction():
            await con.execute("SELECT pg_advisory_xact_lock($1)", _ACCOUNT_LOCK)
            await con.execute(
                "INSERT INTO edgekv_accounts (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                account_id,
                name,
            )

    @_retry_once
    async def ensure_account(self, account_id: str, name: str = "") -> None:
        async with self._conn() as con:
            if not await self._account_exists(con, account_id):
                await self._insert_account(con, account_id, name)

    @staticmethod
    async def _account_exists(con: Any, account_id: str) -> bool:
        found = await con.fetchval("SELECT 1 FROM edgekv_accounts WHERE id = $1", account_id)
        return found is not None

    @_retry_once
    async def account_exists(self, account_id: str) -> bool:
        if "\x00" in account_id:
            return False  # as get_namespace
        async with self._conn() as con:
            return await self._account_exists(con, account_id)

    @_retry_once
    async def create_token(self, token: TokenRecord) -> None:
        async with self._conn() as con:
            await con.execute(
                "INSERT INTO edgekv_tokens (token_hash, id, account_id, read_only, namespaces,"
                " name) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (token_hash) DO UPDATE SET"
                " id = EXCLUDED.id, account_id = EXCLUDED.account_id,"
                " read_only = EXCLUDED.read_only, namespaces = EXCLUDED.namespaces,"
                " name = EXCLUDED.name",
                token.token_hash,
                token.id,
                token.account_id,
                token.read_only,
                None if token.namespaces is None else list(token.namespaces),
                token.name,
            )

    @_retry_once
    async def find_token(self, token_hash: str) -> TokenRecord | None:
        async with self._conn() as con:
            row = await con.fetchrow(
                "SELECT * FROM edgekv_tokens WHERE token_hash = $1", token_hash
            )
        return None if row is None else self._token(row)

    @staticmethod
    def _token(row: Any) -> TokenRecord:
        namespaces = row["namespaces"]
        return TokenRecord(
            id=row["id"],
            account_id=row["account_id"],
            token_hash=row["token_hash"],
            read_only=row["read_only"],
            namespaces=None if namespaces is None else tuple(namespaces),
            name=row["name"],
            revoked=row["revoked"],
        )

    @_retry_once
    async def list_tokens(self, account_id: str) -> list[TokenRecord]:
        async with self._conn() as con:
            rows = await con.fetch(
                "SELECT * FROM edgekv_tokens WHERE account_id = $1 ORDER BY name, id", account_id
            )
        return [self._token(row) for row in rows]

    async def revoke_token(self, token_id: str) -> TokenRecord | None:
        # The notification is delivered at commit, to every server listening (TokenWatch).
        async with self._conn() as con:
            row = await con.fetchrow(
                "WITH gone AS (UPDATE edgekv_tokens SET revoked = true WHERE id = $1"
                " RETURNING *) SELECT gone.*, pg_notify($2, gone.id) FROM gone",
                token_id,
                TokenWatch.CHANNEL,
            )
        return None if row is None else self._token(row)

    def token_revision(self) -> int | None:
        if self._token_watch is None:
            self._token_watch = TokenWatch(self._dsn, self._connect_timeout)
        return self._token_watch.revision()

    # -- namespaces ------------------------------------------------------------------------
    @staticmethod
    def _ns_info(row: Any) -> NamespaceInfo:
        return NamespaceInfo(row["id"], row["title"], row["account_id"], row["jurisdiction"])

    async def create_namespace(
        self,
        account_id: str,
        title: str,
        namespace_id: str | None = None,
        *,
        jurisdiction: str | None = None,
    ) -> NamespaceInfo:
        async with self._conn() as con:
            if not await self._account_exists(con, account_id):
                await self._insert_account(con, account_id, "")
            async with con.transaction():
                # Locking the account row makes the count-then-insert exact under concurrency.
                await con.execute(
                    "SELECT 1 FROM edgekv_accounts WHERE id = $1 FOR UPDATE", account_id
                )
                row = await con.fetchrow(
                    "SELECT (SELECT count(*) FROM edgekv_namespaces WHERE account_id = $1) AS n,"
                    " EXISTS (SELECT 1 FROM edgekv_namespaces WHERE id = $3) AS id_taken,"
                    " EXISTS (SELECT 1 FROM edgekv_namespaces"
                    "  WHERE account_id = $1 AND title = $2) AS taken",
                    account_id,
                    title,
                    namespace_id,
                )
                if row["id_taken"]:
                    raise NamespaceIdTaken(namespace_id or "")
                if row["taken"]:
                    raise NamespaceTitleTaken(title)
                if row["n"] >= MAX_NAMESPACES:
                    raise TooManyNamespaces(MAX_NAMESPACES)
                info = NamespaceInfo(namespace_id or new_id(), title, account_id, jurisdiction)
                # Locked: a delete of this very id commits its head before we read `retired`.
                base = await con.fetchval(
                    "SELECT retired + 1 FROM edgekv_feed_state WHERE id = 1 FOR UPDATE"
                )
                try:
                    await con.execute(
                        "INSERT INTO edgekv_namespaces (id, account_id, title, jurisdiction,"
                        " head, floor) VALUES ($1, $2, $3, $4, $5, $5)",
                        info.id,
                        account_id,
                        title,
                        jurisdiction,
                        base,
                    )
                except asyncpg.UniqueViolationError as exc:
                    # The same id created meanwhile under another account (different lock).
                    raise NamespaceIdTaken(info.id) from exc
        return info

    @_retry_once
    async def list_namespaces(self, account_id: str) -> list[NamespaceInfo]:
        async with self._conn() as con:
            rows = await con.fetch(
                "SELECT id, title, account_id, jurisdiction FROM edgekv_namespaces"
                " WHERE account_id = $1 ORDER BY seq",
                account_id,
            )
        return [self._ns_info(r) for r in rows]

    @_retry_once
    async def get_namespace(self, account_id: str, namespace_id: str) -> NamespaceInfo | None:
        if "\x00" in namespace_id or "\x00" in account_id:
            return None  # no id holds a NUL (PostgreSQL text cannot): unknown, as elsewhere
        async with self._conn() as con:
            row = await con.fetchrow(
                "SELECT id, title, account_id, jurisdiction FROM edgekv_namespaces"
                " WHERE id = $1 AND account_id = $2",
                namespace_id,
                account_id,
            )
        return None if row is None else self._ns_info(row)

    @_retry_once
    async def rename_namespace(
        self, account_id: str, namespace_id: str, title: str
    ) -> NamespaceInfo:
        if "\x00" in namespace_id:
            raise NamespaceNotFound(namespace_id)  # as get_namespace
        async with self._conn() as con:
            try:
                row = await con.fetchrow(
                    "UPDATE edgekv_namespaces SET title = $3 WHERE id = $1 AND account_id = $2"
                    " RETURNING id, title, account_id, jurisdiction",
                    namespace_id,
                    account_id,
                    title,
                )
            except asyncpg.UniqueViolationError as exc:
                raise NamespaceTitleTaken(title) from exc
        if row is None:
            raise NamespaceNotFound(namespace_id)
        return self._ns_info(row)

    async def delete_namespace(self, account_id: str, namespace_id: str) -> None:
        # Entries go with it (ON DELETE CASCADE), in the same transaction. The row lock first:
        # the statements after it see every write that committed before (their change rows).
        if "\x00" in namespace_id:
            raise NamespaceNotFound(namespace_id)  # as get_namespace
        async with self._conn() as con, con.transaction():
            head = await con.fetchval(
                "SELECT head FROM edgekv_namespaces WHERE id = $1 AND account_id = $2 FOR UPDATE",
                namespace_id,
                account_id,
            )
            if head is None:
                raise NamespaceNotFound(namespace_id)
            await con.execute(
                "UPDATE edgekv_feed_state SET retired = GREATEST(retired, $1) WHERE id = 1", head
            )
            await con.execute("DELETE FROM edgekv_changes WHERE namespace_id = $1", namespace_id)
            await con.execute("DELETE FROM edgekv_namespaces WHERE id = $1", namespace_id)
        self._waiters.forget(namespace_id)

    # -- entries ---------------------------------------------------------------------------
    # Reads start from the namespace row (a primary-key probe on a small, hot table) and
    # LEFT JOIN the entries: one round trip tells "no such namespace" (no row) from "no such
    # key" (a row of NULLs).
    @_retry_once
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

    @_retry_once
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
        if head > self._to_notify.get(namespace_id, -1):
            self._to_notify[namespace_id] = head
        if self._notifier is None or self._notifier.done():
            self._notifier = self._spawn(self._send_notifies())
        if head - floor >= 2 * self.feed_history and namespace_id not in self._trimming:
            self._trimming.add(namespace_id)
            self._spawn(self._trim(namespace_id))

    @_retry_once
    async def put(
        self, namespace_id: str, key: str, entry: Entry, *, condition: Condition | None = None
    ) -> Written:
        raw = key.encode()
        value = bytes(entry.value)
        async with self._conn() as con:
            if condition is None:
                row = await con.fetchrow(
                    _PUT, namespace_id, raw, value, entry.expiration, entry.metadata
                )
            else:
                async with con.transaction():
                    row = await con.fetchrow(_ADVANCE, namespace_id, 1)
                    if row is None:
                        raise NamespaceNotFound(namespace_id)
                    current = _current(
                        await con.fetchrow(_CURRENT, namespace_id, raw), condition.now
                    )
                    if current != condition.version:
                        raise PreconditionFailed(current)  # rolls the head back too
                    await con.execute(
                        _PUT_AT,
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

    @_retry_once
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
                " AS t (k, v, x, m, p)" + _UPSERT_TAIL + "),"
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

    @_retry_once
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
            if await con.fetchval(_LOCK, namespace_id) is None:
                raise NamespaceNotFound(namespace_id)
            if condition is not None:
                current = _current(await con.fetchrow(_CURRENT, namespace_id, raw), condition.now)
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
                "WITH h AS (" + _ADVANCE + "),"
                " c AS (INSERT INTO edgekv_changes (namespace_id, seq, key, deleted)"
                " SELECT $1, head, $3, true FROM h)"
                " SELECT head, floor FROM h",
                namespace_id,
                1,
                raw,
            )
        self._committed(namespace_id, row["head"], row["floor"])
        return Written(row["head"], version_of(row["head"]))

    @_retry_once
    async def delete_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int | None = None
    ) -> None:
        raws = list(dict.fromkeys(k.encode() for k in keys))  # a repeat deletes nothing
        async with self._conn() as con, con.transaction():
            if await con.fetchval(_LOCK, namespace_id) is None:
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
                "WITH h AS (" + _ADVANCE + "),"
                " c AS (INSERT INTO edgekv_changes (namespace_id, seq, key, deleted)"
                " SELECT $1, h.head - $2 + n, k, true"
                " FROM h, unnest($3::bytea[]) WITH ORDINALITY AS t (k, n))"
                " SELECT head, floor FROM h",
                namespace_id,
                len(gone),
                gone,
            )
        self._committed(namespace_id, row["head"], row["floor"])

    @_retry_once
    async def list_keys(
        self, namespace_id: str, *, prefix: str, after: str | None, limit: int, now: int
    ) -> list[KeyInfo]:
        # Both bounds are range conditions on the primary key (never `OR ... IS NULL`
        # tricks, which a generic plan would turn into filters and scan past the prefix).
        lower = prefix.encode()
        lower_op = ">="
        if after is not None and after.encode() >= lower:
            lower, lower_op = after.encode(), ">"
        upper = _prefix_end(prefix.encode())
        sql = (
            "SELECT key, expiration, metadata FROM edgekv_entries"
            f" WHERE namespace_id = $1 AND key {lower_op} $2 AND {_LIVE}"
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

    @_retry_once
    async def namespace_stats(self, namespace_id: str, *, now: int) -> NamespaceStats:
        # The expired-not-purged rows come from the expiration index (MATERIALIZED keeps the
        # planner from walking the namespace's primary key instead); the sweep keeps them few.
        async with self._conn() as con:
            row = await con.fetchrow(
                "WITH expired AS MATERIALIZED ("
                f" SELECT namespace_id, {_SIZE.format(row='e')} AS size FROM edgekv_entries e"
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
            done = _deleted_count(status)
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

    async def _send_notifies(self) -> None:
        """Tell the other servers about commits: one `pg_notify` statement for every head
        recorded since the last one (commits meanwhile coalesce into the next)."""
        while self._to_notify and not self._closed:
            batch, self._to_notify = self._to_notify, {}
            payloads = [f"{ns} {head}" for ns, head in batch.items()]
            try:
                async with self._conn() as con:
                    await con.execute(
                        "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS t (p)",
                        _CHANNEL,
                        payloads,
                    )
            except (StoreError, asyncpg.PostgresError, OSError):
                return  # the database is away: other servers' polls end at their timeout

    async def _trim(self, namespace_id: str) -> None:
        """Drop a namespace's oldest changes down to the newest N, a batch per statement."""
        try:
            while not self._closed:
                async with self._conn() as con:
                    row = await con.fetchrow(_TRIM, namespace_id, self.feed_history, _TRIM_BATCH)
                if row is None or row["head"] - row["floor"] <= self.feed_history:
                    return
        except (StoreError, asyncpg.PostgresError, OSError):
            pass  # tried again after the next commit that finds the history long
        finally:
            self._trimming.discard(namespace_id)

    def _on_notify(self, _con: Any, _pid: int, _channel: str, payload: str) -> None:
        namespace_id, _, head = payload.partition(" ")
        with contextlib.suppress(ValueError):  # not ours
            self._waiters.notify(namespace_id, int(head))

    async def _listen(self) -> None:
        """Hold a LISTEN connection (outside the pool) while this store is open; after it was
        lost, wake every poll to read again (a notification may have been missed)."""
        while not self._closed:
            con = None
            try:
                con = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
                await con.add_listener(_CHANNEL, self._on_notify)
                self._waiters.wake_all()
                lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                con.add_termination_listener(functools.partial(_set_once, lost))
                await lost
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass
            finally:
                if con is not None and not con.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(con.close(), timeout=2)
            self._waiters.wake_all()
            await asyncio.sleep(_LISTEN_RETRY)

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
                    _CHANGES, namespace_id, (1 << 62) if after is None else after, scan
                )
            if not rows:
                raise NamespaceNotFound(namespace_id)
            head, floor = rows[0]["head"], rows[0]["floor"]
            if rows[0]["seq"] is None:
                return head, floor, []
            return head, floor, [(r[2], r[3], r[4], r[5], r[6]) for r in rows]

        if wait > 0 and self._dsn and (self._listener is None or self._listener.done()):
            self._listener = self._spawn(self._listen())
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

    @_retry_once
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
            self._pool, self._acquire_timeout, namespace_id, now, _head_seq, _UNAVAILABLE + _STALE
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
        except _UNAVAILABLE:
            self._pool.terminate()  # a dead server must not hold up shutdown
