"""The in-memory engine: `edgekv.open()`, and the reference the other engines are tested against.

Entries of a namespace live in a dict plus a list of UTF-8 encoded keys kept sorted with `bisect`,
so listing is a keyset seek like the SQL engines. Its change history is a deque trimmed as it
grows (exactly the newest `feed_history` changes are kept).
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import secrets
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from edgekv._exceptions import (
    NamespaceIdTaken,
    NamespaceNotFound,
    NamespaceTitleTaken,
    PreconditionFailed,
    TooManyNamespaces,
)
from edgekv._export import ExportEntry
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

__all__ = ["MAX_NAMESPACES", "MemoryStore", "entry_size", "new_id"]

MAX_NAMESPACES = 1000


def new_id() -> str:
    """A fresh account / namespace / token id: 32 lowercase hex characters."""
    return secrets.token_hex(16)


@dataclass
class _Namespace:
    info: NamespaceInfo
    head: int = 0  # newest seq
    floor: int = 0  # newest seq no longer in `history`
    entries: dict[bytes, Entry] = field(default_factory=dict)
    order: list[bytes] = field(default_factory=list)  # sorted UTF-8 keys
    history: deque[RawChange] = field(default_factory=deque)
    # Running totals for namespace_stats (every stored entry, expired or not), and the keys
    # that can expire, so expired-not-yet-purged ones can be subtracted.
    key_count: int = 0
    size: int = 0
    expiring: dict[bytes, int] = field(default_factory=dict)


def _live(entry: Entry | None, now: int) -> bool:
    return entry is not None and (entry.expiration is None or entry.expiration > now)


def entry_size(raw_key: bytes, entry: Entry) -> int:
    """What an entry counts in `NamespaceStats.bytes`: key, value and metadata, in bytes."""
    meta = entry.metadata
    return len(raw_key) + len(entry.value) + (len(meta.encode()) if meta else 0)


class MemoryStore:
    """A `Store` held in process memory; nothing survives `aclose()`. `feed_history`: changes
    kept per namespace."""

    def __init__(self, *, feed_history: int = DEFAULT_FEED_HISTORY) -> None:
        if feed_history < 1:
            raise ValueError("feed_history must be >= 1")
        self.feed_history = feed_history
        self._accounts: list[str] = []
        self._tokens: dict[str, TokenRecord] = {}
        self._namespaces: dict[str, _Namespace] = {}
        self._retired = -1  # the newest seq any deleted namespace reached
        self._waiters = FeedWaiters()
        self._revision = 0  # bumped by every revocation (token_revision)

    # -- accounts and tokens -------------------------------------------------------------
    async def default_account(self) -> str:
        if not self._accounts:
            self._accounts.append(new_id())
        return self._accounts[0]

    async def ensure_account(self, account_id: str, name: str = "") -> None:
        if account_id not in self._accounts:
            self._accounts.append(account_id)

    async def account_exists(self, account_id: str) -> bool:
        return account_id in self._accounts

    async def create_token(self, token: TokenRecord) -> None:
        self._tokens[token.token_hash] = token

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        return self._tokens.get(token_hash)

    async def list_tokens(self, account_id: str) -> list[TokenRecord]:
        found = [t for t in self._tokens.values() if t.account_id == account_id]
        return sorted(found, key=lambda t: (t.name, t.id))

    async def revoke_token(self, token_id: str) -> TokenRecord | None:
        for token_hash, token in self._tokens.items():
            if token.id == token_id:
                self._tokens[token_hash] = revoked = dataclasses.replace(token, revoked=True)
                self._revision += 1
                return revoked
        return None

    def token_revision(self) -> int | None:
        return self._revision  # one process: the change is seen by the next request

    # -- namespaces ------------------------------------------------------------------------
    def _owned(self, account_id: str) -> list[_Namespace]:
        return [ns for ns in self._namespaces.values() if ns.info.account_id == account_id]

    async def create_namespace(
        self,
        account_id: str,
        title: str,
        namespace_id: str | None = None,
        *,
        jurisdiction: str | None = None,
    ) -> NamespaceInfo:
        owned = self._owned(account_id)
        if namespace_id in self._namespaces:
            raise NamespaceIdTaken(namespace_id or "")
        if any(ns.info.title == title for ns in owned):
            raise NamespaceTitleTaken(title)
        if len(owned) >= MAX_NAMESPACES:
            raise TooManyNamespaces(MAX_NAMESPACES)
        await self.ensure_account(account_id)
        info = NamespaceInfo(namespace_id or new_id(), title, account_id, jurisdiction)
        base = self._retired + 1  # above every seq of a deleted namespace (of this id too)
        self._namespaces[info.id] = _Namespace(info, head=base, floor=base)
        return info

    async def list_namespaces(self, account_id: str) -> list[NamespaceInfo]:
        return [ns.info for ns in self._owned(account_id)]

    async def get_namespace(self, account_id: str, namespace_id: str) -> NamespaceInfo | None:
        ns = self._namespaces.get(namespace_id)
        return ns.info if ns is not None and ns.info.account_id == account_id else None

    def _ns_of(self, account_id: str, namespace_id: str) -> _Namespace:
        ns = self._namespaces.get(namespace_id)
        if ns is None or ns.info.account_id != account_id:
            raise NamespaceNotFound(namespace_id)
        return ns

    async def rename_namespace(
        self, account_id: str, namespace_id: str, title: str
    ) -> NamespaceInfo:
        ns = self._ns_of(account_id, namespace_id)
        if any(o.info.title == title and o is not ns for o in self._owned(account_id)):
            raise NamespaceTitleTaken(title)
        ns.info = NamespaceInfo(namespace_id, title, account_id, ns.info.jurisdiction)
        return ns.info

    async def delete_namespace(self, account_id: str, namespace_id: str) -> None:
        ns = self._ns_of(account_id, namespace_id)
        self._retired = max(self._retired, ns.head)
        del self._namespaces[namespace_id]
        self._waiters.forget(namespace_id)

    # -- entries ---------------------------------------------------------------------------
    def _ns(self, namespace_id: str) -> _Namespace:
        ns = self._namespaces.get(namespace_id)
        if ns is None:
            raise NamespaceNotFound(namespace_id)
        return ns

    async def get(
        self, namespace_id: str, key: str, *, now: int, cache_ttl: int | None = None
    ) -> Entry | None:
        entry = self._ns(namespace_id).entries.get(key.encode())
        if entry is None or (entry.expiration is not None and entry.expiration <= now):
            return None
        return entry

    async def get_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int, cache_ttl: int | None = None
    ) -> dict[str, Entry]:
        entries = self._ns(namespace_id).entries
        found: dict[str, Entry] = {}
        for key in keys:
            entry = entries.get(key.encode())
            if entry is not None and (entry.expiration is None or entry.expiration > now):
                found[key] = entry
        return found

    def _log(self, ns: _Namespace, raw: bytes, entry: Entry | None) -> int:
        seq = ns.head = ns.head + 1
        if entry is None:
            ns.history.append((seq, raw, True, None, None))
        else:
            ns.history.append((seq, raw, False, entry.expiration, entry.metadata))
        while len(ns.history) > self.feed_history:
            ns.floor = ns.history.popleft()[0]
        return seq

    def _put(self, ns: _Namespace, key: str, entry: Entry) -> int:
        raw = key.encode()
        old = ns.entries.get(raw)
        if old is None:
            bisect.insort(ns.order, raw)
            ns.key_count += 1
        else:
            ns.size -= entry_size(raw, old)
        # Copy: a caller's bytearray must not change what was stored.
        seq = self._log(ns, raw, entry)
        stored = ns.entries[raw] = Entry(
            bytes(entry.value), entry.expiration, entry.metadata, None, version_of(seq)
        )
        ns.size += entry_size(raw, stored)
        if entry.expiration is not None:
            ns.expiring[raw] = entry.expiration
        elif old is not None and old.expiration is not None:
            del ns.expiring[raw]
        return seq

    @staticmethod
    def _check(ns: _Namespace, raw: bytes, condition: Condition) -> None:
        entry = ns.entries.get(raw)
        current = entry.version if entry is not None and _live(entry, condition.now) else None
        if current != condition.version:
            raise PreconditionFailed(current)

    async def put(
        self, namespace_id: str, key: str, entry: Entry, *, condition: Condition | None = None
    ) -> Written:
        ns = self._ns(namespace_id)
        if condition is not None:
            self._check(ns, key.encode(), condition)
        seq = self._put(ns, key, entry)
        self._waiters.notify(namespace_id, seq)
        return Written(seq, version_of(seq))

    async def put_many(self, namespace_id: str, items: Sequence[tuple[str, Entry]]) -> None:
        ns = self._ns(namespace_id)
        for key, entry in items:
            self._put(ns, key, entry)
        if items:
            self._waiters.notify(namespace_id, ns.head)

    def _delete(self, ns: _Namespace, key: str, now: int | None) -> int | None:
        """Remove `key`; its change's seq when it was there (and live at `now`)."""
        raw = key.encode()
        old = ns.entries.pop(raw, None)
        if old is None:
            return None
        del ns.order[bisect.bisect_left(ns.order, raw)]
        ns.key_count -= 1
        ns.size -= entry_size(raw, old)
        if old.expiration is not None:
            del ns.expiring[raw]
        if now is not None and not _live(old, now):
            return None  # it had expired: expiry is not a change
        return self._log(ns, raw, None)

    async def delete(
        self,
        namespace_id: str,
        key: str,
        *,
        condition: Condition | None = None,
        now: int | None = None,
    ) -> Written | None:
        ns = self._ns(namespace_id)
        if condition is not None:
            self._check(ns, key.encode(), condition)
        seq = self._delete(ns, key, now)
        if seq is None:
            return None
        self._waiters.notify(namespace_id, seq)
        return Written(seq, version_of(seq))

    async def delete_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int | None = None
    ) -> None:
        ns = self._ns(namespace_id)
        head = ns.head
        for key in keys:
            self._delete(ns, key, now)
        if ns.head != head:
            self._waiters.notify(namespace_id, ns.head)

    async def list_keys(
        self, namespace_id: str, *, prefix: str, after: str | None, limit: int, now: int
    ) -> list[KeyInfo]:
        ns = self._ns(namespace_id)
        raw_prefix = prefix.encode()
        start = raw_prefix
        if after is not None and after.encode() >= raw_prefix:
            start = after.encode()
            i = bisect.bisect_right(ns.order, start)
        else:
            i = bisect.bisect_left(ns.order, start)
        out: list[KeyInfo] = []
        while i < len(ns.order) and len(out) < limit:
            raw = ns.order[i]
            i += 1
            if not raw.startswith(raw_prefix):
                break
            entry = ns.entries[raw]
            if entry.expiration is not None and entry.expiration <= now:
                continue
            out.append(KeyInfo(raw.decode(), entry.expiration, entry.metadata))
        return out

    async def namespace_stats(self, namespace_id: str, *, now: int) -> NamespaceStats:
        ns = self._ns(namespace_id)
        count, size = ns.key_count, ns.size
        for raw, expiration in ns.expiring.items():
            if expiration <= now:
                count -= 1
                size -= entry_size(raw, ns.entries[raw])
        return NamespaceStats(count, size)

    async def purge_expired(self, now: int, limit: int = 1000) -> int:
        purged = 0
        for ns in self._namespaces.values():
            for raw, entry in list(ns.entries.items()):
                if purged >= limit:
                    return purged
                if entry.expiration is not None and entry.expiration <= now:
                    self._delete(ns, raw.decode(), now)  # expiry is not a change
                    purged += 1
        return purged

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
        async def read(after: int | None, scan: int) -> tuple[int, int, list[RawChange]]:
            ns = self._ns(namespace_id)
            if after is None or after >= ns.head:
                return ns.head, ns.floor, []
            history = ns.history
            # seqs in the deque are contiguous: the first one wanted sits at a known index
            start = max(0, after - ns.floor)
            stop = min(len(history), start + scan)
            return ns.head, ns.floor, [history[i] for i in range(start, stop)]

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

    async def head(self, namespace_id: str) -> int:
        return self._ns(namespace_id).head

    @contextlib.asynccontextmanager
    async def snapshot(self, namespace_id: str, *, now: int) -> AsyncIterator[_MemorySnapshot]:
        """A consistent copy: the sorted key list and the dict of entries, copied shallowly
        (entries are replaced on write, never changed in place), so later writes do not show."""
        ns = self._ns(namespace_id)
        yield _MemorySnapshot(list(ns.order), dict(ns.entries), now, ns.head)

    async def aclose(self) -> None:
        pass


class _MemorySnapshot:
    def __init__(self, order: list[bytes], entries: dict[bytes, Entry], now: int, seq: int) -> None:
        self.seq = seq
        self._order = order
        self._entries = entries
        self._now = now
        self._pos = 0

    async def page(self, limit: int) -> list[ExportEntry]:
        out: list[ExportEntry] = []
        order, entries, now = self._order, self._entries, self._now
        while self._pos < len(order) and len(out) < limit:
            raw = order[self._pos]
            self._pos += 1
            e = entries[raw]
            if e.expiration is None or e.expiration > now:
                out.append(ExportEntry(raw.decode(), e.value, e.expiration, e.metadata))
        return out
