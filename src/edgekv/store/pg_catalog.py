"""Accounts, tokens and namespaces of the PostgreSQL engine: the `PostgresStore` methods that are
not about entries (store/postgres.py), kept apart so each module holds one concept.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg

from edgekv._exceptions import (
    NamespaceIdTaken,
    NamespaceNotFound,
    NamespaceTitleTaken,
    TooManyNamespaces,
)
from edgekv._types import NamespaceInfo, TokenRecord
from edgekv.store._feed import FeedWaiters
from edgekv.store.memory import MAX_NAMESPACES, new_id
from edgekv.store.pg_pool import retry_once
from edgekv.store.pg_schema import ACCOUNT_LOCK, OLDEST_ACCOUNT
from edgekv.store.pg_tokens import TokenWatch

__all__ = ["PgCatalog"]


class PgCatalog:
    """Mixed into `PostgresStore`, which sets these attributes up."""

    _default_account: str | None  # the oldest account never changes
    _dsn: str
    _connect_timeout: float
    _token_watch: TokenWatch | None  # started by the first token_revision()
    _waiters: FeedWaiters

    def _conn(self) -> AbstractAsyncContextManager[Any]:
        """The store's: a pooled connection (see `PostgresStore._conn`)."""
        raise NotImplementedError

    # -- accounts and tokens -------------------------------------------------------------
    @retry_once
    async def default_account(self) -> str:
        if self._default_account is not None:
            return self._default_account
        async with self._conn() as con:
            found: str | None = await con.fetchval(OLDEST_ACCOUNT)
            if found is None:
                async with con.transaction():
                    # Under the lock, a second server sees the first one's committed account.
                    await con.execute("SELECT pg_advisory_xact_lock($1)", ACCOUNT_LOCK)
                    found = await con.fetchval(OLDEST_ACCOUNT)
                    if found is None:
                        found = new_id()
                        await con.execute("INSERT INTO edgekv_accounts (id) VALUES ($1)", found)
        self._default_account = found
        return found

    async def _insert_account(self, con: Any, account_id: str, name: str) -> None:
        # Accounts are inserted under the lock so that identity order is commit order and
        # the oldest account, once visible, stays the oldest.
        async with con.transaction():
            await con.execute("SELECT pg_advisory_xact_lock($1)", ACCOUNT_LOCK)
            await con.execute(
                "INSERT INTO edgekv_accounts (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                account_id,
                name,
            )

    @retry_once
    async def ensure_account(self, account_id: str, name: str = "") -> None:
        async with self._conn() as con:
            if not await self._account_exists(con, account_id):
                await self._insert_account(con, account_id, name)

    @staticmethod
    async def _account_exists(con: Any, account_id: str) -> bool:
        found = await con.fetchval("SELECT 1 FROM edgekv_accounts WHERE id = $1", account_id)
        return found is not None

    @retry_once
    async def account_exists(self, account_id: str) -> bool:
        if "\x00" in account_id:
            return False  # as get_namespace
        async with self._conn() as con:
            return await self._account_exists(con, account_id)

    @retry_once
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

    @retry_once
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

    @retry_once
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

    @retry_once
    async def list_namespaces(self, account_id: str) -> list[NamespaceInfo]:
        async with self._conn() as con:
            rows = await con.fetch(
                "SELECT id, title, account_id, jurisdiction FROM edgekv_namespaces"
                " WHERE account_id = $1 ORDER BY seq",
                account_id,
            )
        return [self._ns_info(r) for r in rows]

    @retry_once
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

    @retry_once
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
