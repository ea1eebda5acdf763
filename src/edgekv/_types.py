"""The protocols and plain records shared by every layer.

`Store` is the storage engine contract: one method per operation, no validation (the binding
and the REST layer validate with `edgekv._rules` before calling it), no clock of its own for
reads (callers pass `now`, whole seconds). Keys are `str`; engines must order them by their
UTF-8 bytes. Metadata travels as the JSON text that was validated, never re-serialised.

Engines: `edgekv.store.memory.MemoryStore` (tests, `edgekv.open()`), `edgekv.store.sqlite`
(embedded default), `edgekv.store.postgres`, and the HTTP client of a central server in
`edgekv.edge` (optionally behind a location cache).

Sequence numbers (versions-and-changes.md): every committed change of a namespace (a put, or a
delete of a key that was there) takes the next `seq` of that namespace, strictly increasing in
commit order; a bulk write takes one per item, in the order given. An entry's version is the
decimal `seq` of the write that made it (`version_of`), so versions of a key never repeat.
A namespace keeps `head` (its newest seq) and `floor` (the newest seq whose change is no longer
kept: `since < floor` is answered with `HistoryGone`). A namespace created under the id of a
deleted one starts above every seq the deleted one handed out (its first change is > its
`floor`), so an old cursor meets `HistoryGone` rather than a silent gap, and old versions can
never match again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

from edgekv._export import ExportEntry
from edgekv._models import Change, KeyListEntry

__all__ = [
    "ABSENT_HIT",
    "ABSENT_MISS",
    "DEFAULT_FEED_HISTORY",
    "Absent",
    "Change",
    "ChangePage",
    "Clock",
    "Condition",
    "Entry",
    "KeyInfo",
    "NamespaceInfo",
    "NamespaceStats",
    "Snapshot",
    "Store",
    "TokenRecord",
    "Written",
    "version_of",
]

DEFAULT_FEED_HISTORY = 100_000
"""Changes a store keeps per namespace, at least (`edgekv serve --feed-history N`); it may keep
up to twice as many before trimming back to N."""


def version_of(seq: int) -> str:
    """The version of the entry written by change `seq` (opaque to users; decimal here)."""
    return str(seq)


Clock = Callable[[], float]
"""Zero-argument callable returning UNIX time in seconds (default `time.time`)."""


@dataclass(slots=True)
class Entry:
    """One stored value. `metadata` is JSON text (already validated) or None. Treat as
    immutable; not frozen because a frozen dataclass costs 3x to build (bulk writes build 10k).

    `cache_status` is set only by a location cache (`HIT`, `MISS`, `STALE`, `UPDATING`).
    `version` is set on entries a store read back (`version_of` the seq that wrote them); it is
    ignored on entries given to `put`, and by `==` (which compares the stored data).
    """

    value: bytes
    expiration: int | None = None
    metadata: str | None = None
    cache_status: str | None = None
    version: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Condition:
    """What a conditional write expects, checked by the store in the same atomic step as the
    write: `version` None means "the key does not exist" (missing, or expired at `now`), else
    the key must be live at `now` with exactly that version. Failing raises
    `PreconditionFailed` carrying the current version, and nothing is written."""

    version: str | None
    now: int


class Written(NamedTuple):
    """What a committed single-key write made: its change's `seq` and the entry's `version`."""

    seq: int
    version: str


@dataclass(slots=True)
class ChangePage:
    """One read of a change feed. `changes` in seq order; `cursor` is the `since` to pass next
    (the last change's seq; on an empty page the `since` asked for, or with a prefix the
    newest seq examined); `head` the namespace's newest seq when the page was read."""

    changes: list[Change] = field(default_factory=list)
    cursor: int = 0
    head: int = 0


@dataclass(slots=True)
class Absent(Entry):
    """A location cache's answer "no such key" that keeps its `cache_status`: production
    reports `cacheStatus: "HIT"` for a miss served from cache. Readers treat it as missing."""


ABSENT_HIT = Absent(b"", cache_status="HIT")
ABSENT_MISS = Absent(b"", cache_status="MISS")


KeyInfo = KeyListEntry
"""One row of a key listing, as engines return it: the binding hands these to the caller
unchanged (`name`, `expiration`, `metadata_json` = the stored JSON text or None)."""


@dataclass(frozen=True, slots=True)
class NamespaceInfo:
    id: str
    title: str
    account_id: str
    jurisdiction: str | None = None
    """`eu`, `us` or `fedramp` when set at creation (fixed from then on), else None."""


@dataclass(frozen=True, slots=True)
class NamespaceStats:
    """Live keys of a namespace and the bytes of their keys, values and metadata (UTF-8)."""

    key_count: int
    bytes: int


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
    revoked: bool = False  # kept after `edgekv token revoke`, so it is refused with a 401


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

    async def list_tokens(self, account_id: str) -> list[TokenRecord]:
        """Every token of the account, by name then id."""
        ...

    async def revoke_token(self, token_id: str) -> TokenRecord | None:
        """Mark the token with this id revoked (`find_token` then returns it with `revoked`
        set); returns its record, or None if there is no such token. Every server sharing the
        store refuses it from then on (see `token_revision`)."""
        ...

    def token_revision(self) -> int | None:
        """Cheap, no I/O to speak of: a number that changes whenever a token of this store may
        have been revoked, by any process sharing it. Callers that cache tokens drop their cache
        when it changes; None means "cannot tell right now" (cache nothing)."""
        ...

    # -- namespaces ------------------------------------------------------------------------
    async def create_namespace(
        self,
        account_id: str,
        title: str,
        namespace_id: str | None = None,
        *,
        jurisdiction: str | None = None,
    ) -> NamespaceInfo:
        """A new namespace with a fresh id, or with `namespace_id` when given (local `dev` creates
        bindings on first use under the id of wrangler.toml; `kv namespace create --id`), and
        its `jurisdiction` (validated by the caller). Raises `NamespaceIdTaken` when that id
        exists already, `NamespaceTitleTaken`, or `TooManyNamespaces` (1000 per account)."""
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
        """The live entry (expiration None or > now), else None (a location cache may answer
        an `Absent` entry instead, to tell a cached miss). `cache_ttl` (validated, or None for
        the default) matters only to a location cache; other engines ignore it."""
        ...

    async def get_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int, cache_ttl: int | None = None
    ) -> dict[str, Entry]:
        """Live entries among `keys`; missing and expired keys are simply absent."""
        ...

    async def put(
        self, namespace_id: str, key: str, entry: Entry, *, condition: Condition | None = None
    ) -> Written:
        """Replace the whole entry (value, expiration, metadata): one change. With `condition`,
        only if it holds (else `PreconditionFailed`, nothing written), in one atomic step."""
        ...

    async def put_many(self, namespace_id: str, items: Sequence[tuple[str, Entry]]) -> None:
        """All or nothing, one transaction; a later duplicate key wins. One change per item,
        in the order given."""
        ...

    async def delete(
        self,
        namespace_id: str,
        key: str,
        *,
        condition: Condition | None = None,
        now: int | None = None,
    ) -> Written | None:
        """Remove the key. A change (returned) only when a live entry was there at `now`
        (None: any stored entry counts); deleting a missing key changes nothing (None).
        `condition` (a version; never "must not exist") as for `put`."""
        ...

    async def delete_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int | None = None
    ) -> None:
        """One transaction; one change per key that was there (first occurrence), in order."""
        ...

    # -- the change feed ---------------------------------------------------------------------
    async def changes(
        self,
        namespace_id: str,
        *,
        since: int | None,
        prefix: str = "",
        limit: int = 1000,
        wait: float = 0,
    ) -> ChangePage:
        """Up to `limit` changes with seq > `since` (None: the head; an empty page) whose key
        starts with `prefix`, read in one snapshot with the namespace's head and floor.
        `since` below the kept history: `HistoryGone`; above the head: `SinceAhead`.
        `wait` > 0: when nothing matches yet, hold until a matching change commits (on any
        server sharing the store) or `wait` seconds pass, without polling."""
        ...

    async def head(self, namespace_id: str) -> int:
        """The namespace's newest seq (its floor when nothing was written yet)."""
        ...

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

    async def namespace_stats(self, namespace_id: str, *, now: int) -> NamespaceStats:
        """Live keys and their bytes, from totals the engine maintains on every write (not a
        count per call); entries expired but not yet purged are subtracted (they are few: the
        sweep purges them). `NamespaceNotFound` for an unknown id."""
        ...

    async def purge_expired(self, now: int, limit: int = 1000) -> int:
        """Delete up to `limit` entries whose expiration <= now; returns how many."""
        ...

    async def aclose(self) -> None: ...
