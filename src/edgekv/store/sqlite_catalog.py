"""Accounts, tokens and namespaces of the SQLite engine: the `SQLiteStore` methods that are not
about entries (store/sqlite.py), kept apart so each module holds one concept.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import orjson

from edgekv._exceptions import (
    NamespaceIdTaken,
    NamespaceNotFound,
    NamespaceTitleTaken,
    TooManyNamespaces,
)
from edgekv._types import NamespaceInfo, TokenRecord
from edgekv.store._feed import FeedWaiters
from edgekv.store.memory import MAX_NAMESPACES, new_id
from edgekv.store.sqlite_schema import NS_EXISTS, NS_OWNED, OLDEST_ACCOUNT, TOKEN_COLUMNS
from edgekv.store.sqlite_writer import Workers

__all__ = ["SQLiteCatalog"]

_REVISION_CHECK_SECONDS = 0.005  # token_revision re-reads the database at most this often


class SQLiteCatalog:
    """Mixed into `SQLiteStore`, which sets these attributes up."""

    _workers: Workers
    _waiters: FeedWaiters
    _default_account: str | None  # the oldest account never changes
    # token_revision: a connection of the event loop's thread, what it read and when
    _revision_conn: sqlite3.Connection | None
    _revision: tuple[int, int] | None  # (data_version, revision)
    _revision_checked: float

    def _flush(self, conn: sqlite3.Connection) -> None:
        """The store's: write what the batch so far allocated (see `SQLiteStore._flush`)."""
        raise NotImplementedError

    # -- accounts and tokens -------------------------------------------------------------
    async def default_account(self) -> str:
        if self._default_account is None:
            row = await self._workers.read(lambda c: c.execute(OLDEST_ACCOUNT).fetchone())
            if row is None:
                row = (await self._workers.write(self._oldest_or_new),)
            self._default_account = row[0]
        return self._default_account

    @staticmethod
    def _oldest_or_new(conn: sqlite3.Connection) -> str:
        row = conn.execute(OLDEST_ACCOUNT).fetchone()  # another process may have made one
        if row is not None:
            return str(row[0])
        account_id = new_id()
        conn.execute("INSERT INTO accounts (id) VALUES (?)", (account_id,))
        return account_id

    async def ensure_account(self, account_id: str, name: str = "") -> None:
        await self._workers.write(
            lambda c: c.execute(
                "INSERT OR IGNORE INTO accounts (id, name) VALUES (?, ?)", (account_id, name)
            )
        )

    async def account_exists(self, account_id: str) -> bool:
        row = await self._workers.read(
            lambda c: c.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone()
        )
        return row is not None

    async def create_token(self, token: TokenRecord) -> None:
        t = token
        namespaces = None if t.namespaces is None else orjson.dumps(t.namespaces).decode()
        row = (t.token_hash, t.id, t.account_id, int(t.read_only), namespaces, t.name)
        await self._workers.write(
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
        sql = f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = ?"
        row = await self._workers.read(lambda c: c.execute(sql, (token_hash,)).fetchone())
        return None if row is None else self._token(row)

    async def list_tokens(self, account_id: str) -> list[TokenRecord]:
        sql = f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE account_id = ? ORDER BY name, id"
        rows = await self._workers.read(lambda c: c.execute(sql, (account_id,)).fetchall())
        return [self._token(row) for row in rows]

    async def revoke_token(self, token_id: str) -> TokenRecord | None:
        def revoke(conn: sqlite3.Connection) -> TokenRecord | None:
            conn.execute("UPDATE tokens SET revoked = 1 WHERE id = ?", (token_id,))  # +revision
            row = conn.execute(
                f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?", (token_id,)
            ).fetchone()
            return None if row is None else self._token(row)

        return await self._workers.write(revoke)

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
                conn = self._revision_conn = self._workers.connect(timeout=0)
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
                and conn.execute(NS_EXISTS, (namespace_id,)).fetchone() is not None
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

        return await self._workers.write(create)

    async def list_namespaces(self, account_id: str) -> list[NamespaceInfo]:
        rows = await self._workers.read(
            lambda c: c.execute(
                "SELECT id, title, jurisdiction FROM namespaces WHERE account_id = ? ORDER BY seq",
                (account_id,),
            ).fetchall()
        )
        return [NamespaceInfo(i, t, account_id, j) for i, t, j in rows]

    async def get_namespace(self, account_id: str, namespace_id: str) -> NamespaceInfo | None:
        row = await self._workers.read(
            lambda c: c.execute(NS_OWNED, (namespace_id, account_id)).fetchone()
        )
        return None if row is None else NamespaceInfo(namespace_id, row[0], account_id, row[1])

    async def rename_namespace(
        self, account_id: str, namespace_id: str, title: str
    ) -> NamespaceInfo:
        def rename(conn: sqlite3.Connection) -> NamespaceInfo:
            row = conn.execute(NS_OWNED, (namespace_id, account_id)).fetchone()
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

        return await self._workers.write(rename)

    async def delete_namespace(self, account_id: str, namespace_id: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            if conn.execute(NS_OWNED, (namespace_id, account_id)).fetchone() is None:
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

        await self._workers.write(delete)
        self._waiters.forget(namespace_id)
