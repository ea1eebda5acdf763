"""The PostgreSQL engine's schema: its tables, their migrations, and the statements on them.

Keys are stored as `bytea` (their UTF-8 bytes), so every comparison, index and `ORDER BY` is by
bytes, whatever the database's collation. Migrations run on `open()` under an advisory lock.
"""

from __future__ import annotations

from typing import Any

from edgekv._exceptions import StoreError
from edgekv._types import version_of

__all__ = [
    "ACCOUNT_LOCK",
    "ADVANCE",
    "CHANGES",
    "CURRENT",
    "LIVE",
    "LOCK",
    "MIGRATIONS",
    "OLDEST_ACCOUNT",
    "PUT",
    "PUT_AT",
    "SCHEMA_VERSION",
    "SIZE",
    "TRIM",
    "UPSERT_TAIL",
    "deleted_count",
    "head_seq",
    "live_version",
    "migrate",
    "prefix_end",
]


# Transaction-level advisory lock keys (arbitrary, fixed): one serialises migrations, the other
# account creation, so "the oldest account" is the same for every server.
_MIGRATION_LOCK = 0x6564_6765_6B76_0001
ACCOUNT_LOCK = 0x6564_6765_6B76_0002

# What an entry counts in namespace_stats: key, value and metadata bytes (entry_size).
SIZE = (
    "octet_length({row}.key) + octet_length({row}.value)"
    " + coalesce(octet_length({row}.metadata), 0)"
)

# Each entry moves the schema from version i to i + 1. Never edit one that has shipped: append.
MIGRATIONS: tuple[str, ...] = (
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
        SELECT n.id, 0, count(e.key), coalesce(sum({SIZE.format(row="e")}), 0)
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
                SELECT namespace_id, count(*) AS n, sum({SIZE.format(row="r")}) AS size
                FROM added r GROUP BY namespace_id) t));
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM edgekv_stats_apply((SELECT jsonb_agg(t) FROM (
                SELECT namespace_id, -count(*) AS n, -sum({SIZE.format(row="r")}) AS size
                FROM removed r GROUP BY namespace_id) t));
        ELSE
            PERFORM edgekv_stats_apply((SELECT jsonb_agg(t) FROM (
                SELECT namespace_id, 0 AS n, sum(size) AS size FROM (
                    SELECT namespace_id, {SIZE.format(row="r")} AS size FROM added r
                    UNION ALL
                    SELECT namespace_id, -({SIZE.format(row="r")}) FROM removed r) u
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
SCHEMA_VERSION = len(MIGRATIONS)

LIVE = "(expiration IS NULL OR expiration > $3)"
UPSERT_TAIL = """
    ON CONFLICT (namespace_id, key) DO UPDATE
    SET value = EXCLUDED.value, expiration = EXCLUDED.expiration, metadata = EXCLUDED.metadata,
        seq = EXCLUDED.seq
"""
# One statement: the head advance takes the namespace's row lock first (seq allocation and the
# namespace check), then the upsert and the change row use it.
PUT = (
    "WITH h AS (UPDATE edgekv_namespaces SET head = head + 1 WHERE id = $1"
    " RETURNING head, floor),"
    " e AS (INSERT INTO edgekv_entries (namespace_id, key, value, expiration, metadata, seq)"
    " SELECT $1, $2, $3, $4, $5, head FROM h" + UPSERT_TAIL + "),"
    " c AS (INSERT INTO edgekv_changes (namespace_id, seq, key, deleted, expiration, metadata)"
    " SELECT $1, head, $2, false, $4, $5 FROM h)"
    " SELECT head, floor FROM h"
)
# The second statement of a conditional put, after the lock was taken by advancing the head.
PUT_AT = (
    "WITH e AS (INSERT INTO edgekv_entries (namespace_id, key, value, expiration, metadata, seq)"
    " VALUES ($1, $2, $3, $4, $5, $6)" + UPSERT_TAIL + ")"
    " INSERT INTO edgekv_changes (namespace_id, seq, key, deleted, expiration, metadata)"
    " VALUES ($1, $6, $2, false, $4, $5)"
)
ADVANCE = "UPDATE edgekv_namespaces SET head = head + $2 WHERE id = $1 RETURNING head, floor"
LOCK = "SELECT head FROM edgekv_namespaces WHERE id = $1 FOR NO KEY UPDATE"
CURRENT = "SELECT seq, expiration FROM edgekv_entries WHERE namespace_id = $1 AND key = $2"
CHANGES = (
    "SELECT n.head, n.floor, c.seq, c.key, c.deleted, c.expiration, c.metadata"
    " FROM edgekv_namespaces n LEFT JOIN LATERAL (SELECT seq, key, deleted, expiration, metadata"
    "  FROM edgekv_changes WHERE namespace_id = n.id AND seq > $2 ORDER BY seq LIMIT $3) c"
    " ON true WHERE n.id = $1"
)
TRIM = (
    "WITH n AS (SELECT floor, LEAST(head - $2, floor + $3) AS upto"
    "  FROM edgekv_namespaces WHERE id = $1),"
    " d AS (DELETE FROM edgekv_changes c USING n WHERE c.namespace_id = $1"
    "  AND c.seq > n.floor AND c.seq <= n.upto),"
    " u AS (UPDATE edgekv_namespaces SET floor = GREATEST(floor, (SELECT upto FROM n))"
    "  WHERE id = $1 AND (SELECT upto > floor FROM n) RETURNING head, floor)"
    " SELECT head, floor FROM u"
)


OLDEST_ACCOUNT = "SELECT id FROM edgekv_accounts ORDER BY seq LIMIT 1"


def live_version(row: Any, now: int) -> str | None:
    """The live version of a `CURRENT` row, or None."""
    if row is None or (row["expiration"] is not None and row["expiration"] <= now):
        return None
    return version_of(row["seq"])


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with `prefix`, or None when
    there is none (empty prefix, or only 0xff bytes, which UTF-8 never produces)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


async def head_seq(con: Any, namespace_id: str) -> int:
    """The namespace's latest sequence number, read in the caller's transaction."""
    head = await con.fetchval("SELECT head FROM edgekv_namespaces WHERE id = $1", namespace_id)
    return 0 if head is None else int(head)


def deleted_count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])  # "DELETE 3"


async def migrate(con: Any) -> None:
    """Bring the schema to `SCHEMA_VERSION` in one transaction of `con` (under an advisory
    lock: several servers may start at once)."""
    async with con.transaction():
        # Serialises concurrent starts: DDL racing DDL fails on catalog unique indexes.
        await con.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await con.execute(
            "CREATE TABLE IF NOT EXISTS edgekv_schema ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied: int = await con.fetchval("SELECT coalesce(max(version), 0) FROM edgekv_schema")
        if applied > SCHEMA_VERSION:
            raise StoreError(
                f"database schema version {applied} is newer than this edgekv's "
                f"({SCHEMA_VERSION}); upgrade edgekv"
            )
        for version in range(applied + 1, SCHEMA_VERSION + 1):
            await con.execute(MIGRATIONS[version - 1])
            await con.execute("INSERT INTO edgekv_schema (version) VALUES ($1)", version)
