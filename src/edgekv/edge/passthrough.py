"""`CentrePassthrough`: the `Store` calls a location leaves to the centre as they are —
accounts, tokens, namespaces, the change feed, expiry sweeps — for `LocationCache` to inherit
(it overrides what touches its copies, e.g. `delete_namespace`)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from edgekv._types import (
    ChangePage,
    NamespaceInfo,
    NamespaceStats,
    Snapshot,
    Store,
    TokenRecord,
)

__all__ = ["CentrePassthrough"]


class CentrePassthrough:
    """Forwards to `self.inner`."""

    inner: Store

    async def default_account(self) -> str:
        return await self.inner.default_account()

    async def ensure_account(self, account_id: str, name: str = "") -> None:
        await self.inner.ensure_account(account_id, name)

    async def account_exists(self, account_id: str) -> bool:
        return await self.inner.account_exists(account_id)

    async def create_token(self, token: TokenRecord) -> None:
        await self.inner.create_token(token)

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        return await self.inner.find_token(token_hash)

    async def list_tokens(self, account_id: str) -> list[TokenRecord]:
        return await self.inner.list_tokens(account_id)

    async def revoke_token(self, token_id: str) -> TokenRecord | None:
        return await self.inner.revoke_token(token_id)

    def token_revision(self) -> int | None:
        return self.inner.token_revision()

    async def namespace_stats(self, namespace_id: str, *, now: int) -> NamespaceStats:
        return await self.inner.namespace_stats(namespace_id, now=now)

    async def create_namespace(
        self,
        account_id: str,
        title: str,
        namespace_id: str | None = None,
        *,
        jurisdiction: str | None = None,
    ) -> NamespaceInfo:
        if jurisdiction is None:  # as before: stores without jurisdictions keep working
            return await self.inner.create_namespace(account_id, title, namespace_id)
        return await self.inner.create_namespace(
            account_id, title, namespace_id, jurisdiction=jurisdiction
        )

    async def list_namespaces(self, account_id: str) -> list[NamespaceInfo]:
        return await self.inner.list_namespaces(account_id)

    async def get_namespace(self, account_id: str, namespace_id: str) -> NamespaceInfo | None:
        return await self.inner.get_namespace(account_id, namespace_id)

    async def rename_namespace(
        self, account_id: str, namespace_id: str, title: str
    ) -> NamespaceInfo:
        return await self.inner.rename_namespace(account_id, namespace_id, title)

    async def delete_namespace(self, account_id: str, namespace_id: str) -> None:
        await self.inner.delete_namespace(account_id, namespace_id)

    async def changes(
        self,
        namespace_id: str,
        *,
        since: int | None,
        prefix: str = "",
        limit: int = 1000,
        wait: float = 0,
    ) -> ChangePage:
        return await self.inner.changes(
            namespace_id, since=since, prefix=prefix, limit=limit, wait=wait
        )

    async def head(self, namespace_id: str) -> int:
        return await self.inner.head(namespace_id)

    def snapshot(self, namespace_id: str, *, now: int) -> AbstractAsyncContextManager[Snapshot]:
        return self.inner.snapshot(namespace_id, now=now)  # exports read the centre, uncached

    async def purge_expired(self, now: int, limit: int = 1000) -> int:
        return await self.inner.purge_expired(now, limit)
