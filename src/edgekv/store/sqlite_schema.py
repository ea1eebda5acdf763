"""The SQLite engine's schema: its tables, their migrations, and the statements run on them.

Keys are BLOBs (their UTF-8 bytes), so every comparison and ORDER BY is memcmp, i.e. UTF-8 byte
order. Entries are clustered on `(namespace_id, key)` (WITHOUT ROWID: one B-tree, measured
faster and smaller than a rowid table plus index); listing is a keyset seek, never OFFSET.
Values over `BLOB_MIN` bytes live in `blobs` (a rowid table) and the entry keeps their id
(schema 3). The helpers below run inside the caller's transaction, on any thread.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from edgekv._exceptions import NamespaceNotFound, PreconditionFailed, StoreError
from edgekv._types import Condition, version_of
from edgekv.store.sqlite_writer import rollback

__all__ = [
    "BLOB",
    "BLOB_MIN",
    "CHANGES",
    "CURRENT",
    "DELETE",
    "DELETE_MANY",
    "GET",
    "GET_MANY",
    "GET_SMALL",
    "HEAD",
    "LIST",
    "LIST_ALL",
    "LOG",
    "LOG_DELETE",
    "LOG_PUT",
    "MIGRATIONS",
    "NO_UPPER",
    "NS_EXISTS",
    "NS_OWNED",
    "OLDEST_ACCOUNT",
    "PURGE",
    "SCHEMA_VERSION",
    "SET_HEAD",
    "STATS",
    "STATS_EXPIRED",
    "TOKEN_COLUMNS",
    "UPSERT",
    "UPSERT_SMALL",
    "blob_columns",
    "check",
    "head_seq",
    "heads_of",
    "migrate",
    "prefix_end",
    "require_namespace",
    "value_columns",
]

# What an entry counts in namespace_stats: key, value and metadata bytes (entry_size). _SIZE is
# migration 2's; from migration 3 a large value's length is `blob_size` (the row's value empty).
_SIZE = (
    "length({row}.key) + length({row}.value) + coalesce(length(CAST({row}.metadata AS BLOB)), 0)"
)
_SIZE_3 = _SIZE + " + coalesce({row}.blob_size, 0)"
# Values longer than this are kept out of the key B-tree (migration 3): rows of at most ~4 KiB
# keep SQLite's cells small, so page splits near them stay cheap.
BLOB_MIN = 2048

# Each entry moves the schema from version i to i + 1 (PRAGMA user_version). Never edit one
# that has shipped: append. A string holds statements separated by ";" (no ";" inside them);
# a tuple holds one statement per item.
MIGRATIONS: tuple[str | tuple[str, ...], ...] = (
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
    # 3: values over BLOB_MIN bytes live in `blobs`, a rowid table, and the entry keeps their
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
        f" FROM entries WHERE length(value) > {BLOB_MIN}",
        "UPDATE entries SET value = x'', blob_size = length(value), blob = (SELECT id FROM blobs"
        " WHERE blobs.namespace_id = entries.namespace_id AND blobs.key = entries.key)"
        f" WHERE length(value) > {BLOB_MIN}",
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
SCHEMA_VERSION = len(MIGRATIONS)

# Above every UTF-8 string (UTF-8 never contains 0xff): the upper bound of an empty prefix.
NO_UPPER = b"\xff"

# A large value is in `blobs` (entries.blob its id, entries.value empty): one more seek.
GET = (
    "SELECT coalesce(b.value, e.value), e.expiration, e.metadata, e.seq FROM entries e"
    " LEFT JOIN blobs b ON b.id = e.blob WHERE e.namespace_id = ? AND e.key = ?"
)
# Only values kept in the row are read inline (at most BLOB_MIN bytes).
GET_SMALL = (
    "SELECT CASE WHEN blob IS NULL THEN value END, expiration, metadata, seq FROM entries"
    " WHERE namespace_id = ? AND key = ?"
)
GET_MANY = (
    "SELECT e.key, coalesce(b.value, e.value), e.expiration, e.metadata, e.seq FROM entries e"
    " LEFT JOIN blobs b ON b.id = e.blob WHERE e.namespace_id = ? AND e.key IN ({})"
)
UPSERT = (
    "INSERT OR REPLACE INTO entries"
    " (namespace_id, key, value, blob, blob_size, expiration, metadata, seq)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# UPSERT of a value kept in the row (at most BLOB_MIN bytes): two parameters fewer per row.
UPSERT_SMALL = (
    "INSERT OR REPLACE INTO entries"
    " (namespace_id, key, value, blob, blob_size, expiration, metadata, seq)"
    " VALUES (?, ?, ?, NULL, NULL, ?, ?, ?)"
)
BLOB = "INSERT INTO blobs (namespace_id, key, value) VALUES (?, ?, ?)"
DELETE = "DELETE FROM entries WHERE namespace_id = ? AND key = ? RETURNING expiration"
DELETE_MANY = (  # {}: one "?" per key
    "DELETE FROM entries WHERE namespace_id = ? AND key IN ({}) RETURNING key, expiration"
)
CURRENT = "SELECT seq, expiration FROM entries WHERE namespace_id = ? AND key = ?"
# Reading the head is the namespace check of a write, and the start of its seq allocation.
SET_HEAD = "UPDATE namespaces SET head = ? WHERE id = ?"
LOG = (
    "INSERT INTO changes (namespace_id, seq, key, deleted, expiration, metadata)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
LOG_PUT = (  # LOG of a put
    "INSERT INTO changes (namespace_id, seq, key, deleted, expiration, metadata)"
    " VALUES (?, ?, ?, 0, ?, ?)"
)
LOG_DELETE = (  # LOG of a delete
    "INSERT INTO changes (namespace_id, seq, key, deleted, expiration, metadata)"
    " VALUES (?, ?, ?, 1, NULL, NULL)"
)
HEAD = "SELECT head, floor FROM namespaces WHERE id = ?"
CHANGES = (
    "SELECT seq, key, deleted, expiration, metadata FROM changes"
    " WHERE namespace_id = ? AND seq > ? ORDER BY seq LIMIT ?"
)
# A list page comes back as ONE row of three JSON arrays (keys, expirations, metadata), which
# `orjson` parses in C: the sqlite3 module releases and retakes the GIL and builds a tuple for
# each row it steps, ~3x what SQLite spends finding the rows. The key is CAST to TEXT (its
# UTF-8 bytes, so it comes back as the same str), metadata is TEXT, so both are JSON strings:
# the stored text exactly, whatever characters it holds. Order: an aggregate is never
# flattened into a subquery with a LIMIT, so the subquery is a co-routine that the aggregate
# reads row by row in its ORDER BY (the plan is pinned by a test). CAST AS BLOB: orjson reads
# the bytes as they are, no str is decoded first.
_PAGE = (
    "SELECT CAST(json_group_array(CAST(key AS TEXT)) AS BLOB),"
    " CAST(json_group_array(expiration) AS BLOB), CAST(json_group_array(metadata) AS BLOB)"
    " FROM (SELECT key, expiration, metadata FROM entries"
    " WHERE namespace_id = ? AND key >= ?{} AND (expiration IS NULL OR expiration > ?)"
    " ORDER BY key LIMIT ?)"
)
LIST = _PAGE.format(" AND key < ?")
LIST_ALL = _PAGE.format("")  # an empty prefix: no upper bound
PURGE = (
    "DELETE FROM entries WHERE (namespace_id, key) IN"
    " (SELECT namespace_id, key FROM entries WHERE expiration <= ? LIMIT ?)"
)
NS_EXISTS = "SELECT 1 FROM namespaces WHERE id = ?"
NS_OWNED = "SELECT title, jurisdiction FROM namespaces WHERE id = ? AND account_id = ?"
OLDEST_ACCOUNT = "SELECT id FROM accounts ORDER BY seq LIMIT 1"
TOKEN_COLUMNS = "id, account_id, read_only, namespaces, name, token_hash, revoked"
STATS = "SELECT key_count, bytes FROM namespace_stats WHERE namespace_id = ?"
# Entries expired but not purged yet, found by the expiration index (the sweep keeps them few).
STATS_EXPIRED = (
    f"SELECT count(*), coalesce(sum({_SIZE_3.format(row='entries')}), 0)"
    " FROM entries INDEXED BY entries_expiration"
    " WHERE expiration IS NOT NULL AND expiration <= ? AND namespace_id = ?"
)


def prefix_end(prefix: bytes) -> bytes:
    """The smallest byte string above every string starting with `prefix` (`NO_UPPER` for the
    empty prefix; UTF-8 never contains 0xff, so incrementing the last byte is safe)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return NO_UPPER
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def value_columns(conn: sqlite3.Connection, namespace_id: str, raw: bytes, value: bytes) -> Any:
    """(value, blob, blob_size) of an entries row: a large value goes to `blobs` first."""
    if len(value) <= BLOB_MIN:
        return value, None, None
    return b"", conn.execute(BLOB, (namespace_id, raw, value)).lastrowid, len(value)


def blob_columns(
    conn: sqlite3.Connection, namespace_id: str, raws: list[bytes], values: list[bytes]
) -> tuple[list[Any], list[Any], list[Any]]:
    """The value, blob and blob_size columns of a bulk write holding large values: those go
    to `blobs` first."""
    columns = [value_columns(conn, namespace_id, r, v) for r, v in zip(raws, values, strict=True)]
    return [c[0] for c in columns], [c[1] for c in columns], [c[2] for c in columns]


def head_seq(conn: sqlite3.Connection, namespace_id: str) -> int:
    """The namespace's latest sequence number, read in the caller's transaction."""
    row = conn.execute(HEAD, (namespace_id,)).fetchone()
    return 0 if row is None else int(row[0])


def require_namespace(conn: sqlite3.Connection, namespace_id: str) -> None:
    if conn.execute(NS_EXISTS, (namespace_id,)).fetchone() is None:
        raise NamespaceNotFound(namespace_id)


def heads_of(namespace_ids: list[str], conn: sqlite3.Connection) -> list[tuple[str, int]]:
    sql = "SELECT id, head FROM namespaces WHERE id IN ({})".format(
        ",".join("?" * len(namespace_ids))
    )
    return conn.execute(sql, namespace_ids).fetchall()


def check(
    conn: sqlite3.Connection, namespace_id: str, raw: bytes, condition: Condition
) -> tuple[int, int | None] | None:
    """Raise `PreconditionFailed` (before anything changed) unless `condition` holds; returns
    the current row's (seq, expiration)."""
    row: tuple[int, int | None] | None = conn.execute(CURRENT, (namespace_id, raw)).fetchone()
    current = None
    if row is not None and (row[1] is None or row[1] > condition.now):
        current = version_of(row[0])
    if current != condition.version:
        if row is None:
            require_namespace(conn, namespace_id)  # an unknown namespace is a 404 first
        raise PreconditionFailed(current)
    return row


def migrate(conn: sqlite3.Connection) -> None:
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
        for script in MIGRATIONS[version:]:
            for statement in script if isinstance(script, tuple) else script.split(";"):
                conn.execute(statement)
        if version != SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
