"""A real store standing in for the centre in unit tests: `CountingStore` wraps any `Store`
(a `MemoryStore` here), counts every call that reaches it, can be switched off (every call then
raises `StoreUnavailable`, as a `RemoteStore` does when its server is gone) and can hold reads
at a gate (to pile up concurrent readers, or to keep a background refresh in flight)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

from edgekv._exceptions import StoreUnavailable
from edgekv._types import (
    ChangePage,
    Condition,
    Entry,
    KeyInfo,
    NamespaceInfo,
    NamespaceStats,
    Snapshot,
    Store,
    TokenRecord,
    Written,
)


class CountingStore:
    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.available = True
        # Reads read the inner store first, then wait here: what they answer is the state at
        # their start, as with a slow network.
        self.gate = asyncio.Event()
        self.gate.set()
        # Writes wait here before reaching the inner store (to make two writes overlap).
        self.write_gate = asyncio.Event()
        self.write_gate.set()

    def _enter(self, name: str) -> None:
        self.calls[name] += 1
        if not self.available:
            raise StoreUnavailable("the centre is switched off")

    @property
    def reads(self) -> int:
        return self.calls["get"] + self.calls["get_many"]

    async def default_account(self) -> str:
        self._enter("default_account")
        return await self.inner.default_account()

    async def ensure_account(self, account_id: str, name: str = "") -> None:
        self._enter("ensure_account")
        await self.inner.ensure_account(account_id, name)

    async def account_exists(self, account_id: str) -> bool:
        self._enter("account_exists")
        return await self.inner.account_exists(account_id)

    async def create_token(self, token: TokenRecord) -> None:
        self._enter("create_token")
        await self.inner.create_token(token)

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        self._enter("find_token")
        return await self.inner.find_token(token_hash)

    async def list_tokens(self, account_id: str) -> list[TokenRecord]:
        self._enter("list_tokens")
        return await self.inner.list_tokens(account_id)

    async def revoke_token(self, token_id: str) -> TokenRecord | None:
        self._enter("revoke_token")
        return await self.inner.revoke_token(token_id)

    def token_revision(self) -> int | None:
        return self.inner.token_revision()

    async def namespace_stats(self, namespace_id: str, *, now: int) -> NamespaceStats:
        self._enter("namespace_stats")
        return await self.inner.namespace_stats(namespace_id, now=now)

    async def create_namespace(
        self,
        account_id: str,
        title: str,
        namespace_id: str | None = None,
        *,
        jurisdiction: str | None = None,
    ) -> NamespaceInfo:
        self._enter("create_namespace")
        return await self.inner.create_namespace(
            account_id, title, namespace_id, jurisdiction=jurisdiction
        )

    async def list_namespaces(self, account_id: str) -> list[NamespaceInfo]:
        self._enter("list_namespaces")
        return await self.inner.list_namespaces(account_id)

    async def get_namespace(self, account_id: str, namespace_id: str) -> NamespaceInfo | None:
        self._enter("get_namespace")
        return await self.inner.get_namespace(account_id, namespace_id)

    async def rename_namespace(
        self, account_id: str, namespace_id: str, title: str
    ) -> NamespaceInfo:
        self._enter("rename_namespace")
        return await self.inner.rename_namespace(account_id, namespace_id, title)

    async def delete_namespace(self, account_id: str, namespace_id: str) -> None:
        self._enter("delete_namespace")
        await self.inner.delete_namespace(account_id, namespace_id)

    async def get(
        self, namespace_id: str, key: str, *, now: int, cache_ttl: int | None = None
    ) -> Entry | None:
        self._enter("get")
        entry = await self.inner.get(namespace_id, key, now=now, cache_ttl=cache_ttl)
        await self.gate.wait()
        return entry

    async def get_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int, cache_ttl: int | None = None
    ) -> dict[str, Entry]:
        self._enter("get_many")
        found = await self.inner.get_many(namespace_id, keys, now=now, cache_ttl=cache_ttl)
        await self.gate.wait()
        return found

    async def put(
        self, namespace_id: str, key: str, entry: Entry, *, condition: Condition | None = None
    ) -> Written:
        self._enter("put")
        await self.write_gate.wait()
        return await self.inner.put(namespace_id, key, entry, condition=condition)

    async def put_many(self, namespace_id: str, items: Sequence[tuple[str, Entry]]) -> None:
        self._enter("put_many")
        await self.write_gate.wait()
        await self.inner.put_many(namespace_id, items)

    async def delete(
        self,
        namespace_id: str,
        key: str,
        *,
        condition: Condition | None = None,
        now: int | None = None,
    ) -> Written | None:
        self._enter("delete")
        await self.write_gate.wait()
        return await self.inner.delete(namespace_id, key, condition=condition, now=now)

    async def delete_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int | None = None
    ) -> None:
        self._enter("delete_many")
        await self.write_gate.wait()
        await self.inner.delete_many(namespace_id, keys, now=now)

    async def changes(
        self,
        namespace_id: str,
        *,
        since: int | None,
        prefix: str = "",
        limit: int = 1000,
        wait: float = 0,
    ) -> ChangePage:
        self._enter("changes")
        return await self.inner.changes(
            namespace_id, since=since, prefix=prefix, limit=limit, wait=wait
        )

    async def head(self, namespace_id: str) -> int:
        self._enter("head")
        return await self.inner.head(namespace_id)

    async def list_keys(
        self, namespace_id: str, *, prefix: str, after: str | None, limit: int, now: int
    ) -> list[KeyInfo]:
        self._enter("list_keys")
        return await self.inner.list_keys(
            namespace_id, prefix=prefix, after=after, limit=limit, now=now
        )

    def snapshot(self, namespace_id: str, *, now: int) -> AbstractAsyncContextManager[Snapshot]:
        self._enter("snapshot")
        return self.inner.snapshot(namespace_id, now=now)

    async def purge_expired(self, now: int, limit: int = 1000) -> int:
        self._enter("purge_expired")
        return await self.inner.purge_expired(now, limit)

    async def aclose(self) -> None:
        await self.inner.aclose()
