"""The protocols and plain records shared by every layer.

`Store` is the storage engine contract: one method per operation, no validation (the binding
and the REST layer validate with `edgekv._rules` before calling it), no clock of its own for
reads (callers pass `now`, whole seconds). Keys are `str`; engines must order them by their
UTF-8 bytes. Metadata travels as the JSON text that was validated, never re-serialised.

Engines: `edgekv.store.memory.MemoryStore` (tests, `edgekv.open()`), `edgekv.store.sqlite`
(embedded default), `edgekv.store.postgres`, and the HTTP client of a central server in
`edgekv.edge` (optionally behind a location cache).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from edgekv._export import ExportEntry
from edgekv._models import KeyListEntry

__all__ = [
    "Clock",
    "Entry",
    "KeyInfo",
    "NamespaceInfo",
    "Snapshot",
    "Store",
    "TokenRecord",
]

Clock = Callable[[], float]
"""Zero-argument callable returning UNIX time in seconds (default `time.time`)."""


@dataclass(slots=True)
class Entry:
    """One stored value. `metadata` is JSON text (already validated) or None. Treat as
    immutable; not frozen because a frozen dataclass costs 3x to build (bulk writes build 10k).

    `cache_status` is set only by a location cache (`HIT`, `MISS`, `STALE`, `UPDATING`).
    """

    value: bytes
    expiration: int | None = None
    metadata: str | None = None
    cache_status: str | None = None


KeyInfo = KeyListEntry
"""One row of a key listing, as engines return it: the binding hands these to the caller
unchanged (`name`, `expiration`, `metadata_json` = the stored JSON text or None)."""


@dataclass(frozen=True, slots=True)
class NamespaceInfo:
    id: str
    title: str
    account_id: str


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token as stored: only the SHA-256 hex of the secret is kept.

    `namespaces` None means every namespace of the account.
    """

    id: str
    account_id: str
    token_hash: str
    read_only: bool = False
    namespaces: tuple[str, ...] | None = None
    name: str = ""


class Snapshot(Protocol):
    """One namespace exactly as of sequence number `seq`, read page by page (`Store.snapshot`):
    every live key committed at or before `seq` and nothing after, however long the reading
    takes and whatever is written meanwhile."""

    seq: int

    async def page(self, limit: int) -> list[ExportEntry]:
        """The next (at most `limit`) live entries in UTF-8 byte order of keys; [] at the end."""
        ...


@runtime_checkable
class Store(Protocol):
    """A storage engine. Entry methods raise `NamespaceNotFound` for an unknown namespace id;
    engines that depend on a service raise `StoreUnavailable` when it cannot be reached.
    Writes return only once durable (committed)."""

    # -- accounts and tokens -------------------------------------------------------------
    async def default_account(self) -> str:
        """The id of the store's default account (the oldest), created if there is none."""
        ...

    async def ensure_account(self, account_id: str, name: str = "") -> None: ...

    async def account_exists(self, account_id: str) -> bool: ...

    async def create_token(self, token: TokenRecord) -> None: ...

    async def find_token(self, token_hash: str) -> TokenRecord | None: ...

    # -- namespaces ------------------------------------------------------------------------
    async def create_namespace(
        self, account_id: str, title: str, namespace_id: str | None = None
    ) -> NamespaceInfo:
        """A new namespace with a fresh id, or with `namespace_id` when given (local `dev` creates
        bindings on first use under the id of wrangler.toml). Raises `NamespaceTitleTaken`
        (also when that id exists already) or `TooManyNamespaces` (1000 per account)."""
        ...

    async def list_namespaces(self, account_id: str) -> list[NamespaceInfo]:
        """Every namespace of the account (at most 1000), oldest first."""
        ...

    async def get_namespace(self, account_id: str, namespace_id: str) -> NamespaceInfo | None: ...

    async def rename_namespace(
        self, account_id: str, namespace_id: str, title: str
    ) -> NamespaceInfo: ...

    async def delete_namespace(self, account_id: str, namespace_id: str) -> None:
        """Removes the namespace and all its entries; `NamespaceNotFound` if unknown."""
        ...

    # -- entries ---------------------------------------------------------------------------
    async def get(
        self, namespace_id: str, key: str, *, now: int, cache_ttl: int | None = None
    ) -> Entry | None:
        """The live entry (expiration None or > now), else None. `cache_ttl` (validated, or
        None for the default) matters only to a location cache; other engines ignore it."""
        ...

    async def get_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int, cache_ttl: int | None = None
    ) -> dict[str, Entry]:
        """Live entries among `keys`; missing and expired keys are simply absent."""
        ...

    async def put(self, namespace_id: str, key: str, entry: Entry) -> None:
        """Replace the whole entry (value, expiration, metadata)."""
        ...

    async def put_many(self, namespace_id: str, items: Sequence[tuple[str, Entry]]) -> None:
        """All or nothing, one transaction; a later duplicate key wins."""
        ...

    async def delete(self, namespace_id: str, key: str) -> None: ...

    async def delete_many(self, namespace_id: str, keys: Sequence[str]) -> None: ...

    async def list_keys(
        self, namespace_id: str, *, prefix: str, after: str | None, limit: int, now: int
    ) -> list[KeyInfo]:
        """Up to `limit` live keys starting with `prefix` (literal, by bytes) and strictly
        greater than `after`, ascending by UTF-8 bytes. Keyset: cost independent of depth."""
        ...

    def snapshot(self, namespace_id: str, *, now: int) -> AbstractAsyncContextManager[Snapshot]:
        """A consistent read of one namespace (export): one read transaction from entering to
        leaving the context, which never locks writers out and holds memory flat; entries
        expired at `now` are left out. Leaving the context frees the transaction at once.
        `NamespaceNotFound` on entering for an unknown namespace."""
        ...

    async def purge_expired(self, now: int, limit: int = 1000) -> int:
        """Delete up to `limit` entries whose expiration <= now; returns how many."""
        ...

    async def aclose(self) -> None: ...
