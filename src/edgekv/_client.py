"""The handle `edgekv.open()` returns: picks the engine, owns its lifetime and the namespaces.

Opening is lazy: `edgekv.open(...)` does no I/O, the first operation (or `async with`) connects,
so `kv.namespace(id)` can be handed out at import time, as bindings are in Workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from math import floor
from pathlib import Path
from types import TracebackType
from typing import Any, TypedDict, Unpack

from edgekv import _rules as rules
from edgekv._exceptions import KVError, StoreError, kv_error, store_errors
from edgekv._models import Namespace
from edgekv._namespace import KVNamespace
from edgekv._types import Clock, Store
from edgekv.store import open_store

__all__ = ["Client", "OpenOptions", "open"]

log = logging.getLogger("edgekv")

SWEEP_INTERVAL = 30.0  # seconds between background purges of expired entries
_PROBE_ID = "0" * 32  # the namespace `ping` looks up: whether it exists does not matter


class Client:
    """An open store: namespaces and their bindings. Use `async with` or `await aclose()`."""

    def __init__(
        self,
        target: str | Path | Store | None = None,
        *,
        token: str | None = None,
        account_id: str | None = None,
        location: str | None = None,
        cache_bytes: int | None = None,
        clock: Clock | None = None,
        sweep_interval: float | None = SWEEP_INTERVAL,
        cache_options: Mapping[str, Any] | None = None,
        inline_reads: bool = True,
    ) -> None:
        self.target = target
        self.clock: Clock = clock or time.time
        self.account_id = account_id
        self._token = token
        self._location = location
        self._cache_bytes = cache_bytes
        self._sweep_interval = sweep_interval
        self._cache_options = dict(cache_options or {})
        self._inline_reads = inline_reads
        self._store: Store | None = None
        self._opening: asyncio.Lock | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<edgekv.Client {self.target!r}>"

    # -- lifetime --------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        """The open engine (after the first operation or `async with`)."""
        if self._store is None:
            raise RuntimeError("the store is not open yet: use `async with` or any operation")
        return self._store

    async def connect(self) -> Store:
        """Open the store now and return it (the first operation or `async with` does it
        otherwise); returns the open store at once when it is open already."""
        if self._store is not None:
            return self._store
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._store is None:
                store, local = await self._connect()
                if self.account_id is None:
                    self.account_id = await store.default_account()
                elif local:
                    await store.ensure_account(self.account_id)
                self._store = store
                if local and self._sweep_interval:
                    self._sweeper = asyncio.create_task(self._sweep(store, self._sweep_interval))
        assert self._store is not None
        return self._store

    async def _connect(self) -> tuple[Store, bool]:
        """The engine for `target`, and whether it is local (gets an expiry sweeper)."""
        target = self.target
        if target is not None and not isinstance(target, str | Path):
            return target, True
        if isinstance(target, str) and target.startswith(("http://", "https://")):
            return self._remote(target), False
        return await open_store(target, inline_reads=self._inline_reads), True

    def _remote(self, url: str) -> Store:
        if not self._token or not self.account_id:
            raise KVError("a central server needs token= and account_id=", 400)
        from edgekv.edge.remote import RemoteStore

        remote: Store = RemoteStore(url, token=self._token, account_id=self.account_id)
        if self._location is None:
            return remote
        from edgekv.edge.cache import LocationCache

        return LocationCache(
            remote,
            location=self._location,
            cache_bytes=self._cache_bytes,
            clock=self.clock,
            **self._cache_options,
        )

    async def _sweep(self, store: Store, interval: float) -> None:
        """Delete expired entries in the background so they never pile up (reads already hide
        them at their exact second)."""
        while True:
            await asyncio.sleep(interval)
            try:
                while await store.purge_expired(floor(self.clock())) >= 1000:  # noqa: ASYNC110
                    await asyncio.sleep(0)  # a full batch: more may be due, yield and go on
            except StoreError as exc:
                log.warning("expiry sweep failed: %s", exc)

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._store is not None:
            store, self._store = self._store, None
            await store.aclose()

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def ping(self, *, within: float = 5.0) -> None:
        """Touch the store with one cheap read (a namespace lookup): returns once it answered,
        raises KVError (status 503) when it cannot be reached or does not answer within
        `within` seconds. For readiness checks (`GET /readyz`)."""
        op = "PING"
        try:
            async with asyncio.timeout(within):
                store, account = await self._account()
                await store.get_namespace(account, _PROBE_ID)
        except TimeoutError:
            raise KVError.for_op(
                op, 503, f"the store did not answer within {within:g} s", code=10050
            ) from None
        except StoreError as exc:
            raise kv_error(op, exc) from None

    # -- namespaces ------------------------------------------------------------------------
    def namespace(self, namespace_id: str) -> KVNamespace:
        """The binding of an existing namespace id (no I/O; a wrong id fails on use with 404)."""
        return KVNamespace(self, namespace_id)

    async def _account(self) -> tuple[Store, str]:
        store = await self.connect()
        assert self.account_id is not None
        return store, self.account_id

    async def create_namespace(self, title: str, *, namespace_id: str | None = None) -> KVNamespace:
        op = "CREATE_NAMESPACE"
        rules.check_title(title, op)
        store, account = await self._account()
        with store_errors(op):
            info = await store.create_namespace(account, title, namespace_id)
        return KVNamespace(self, info.id, info.title)

    async def list_namespaces(self) -> list[Namespace]:
        store, account = await self._account()
        with store_errors("LIST_NAMESPACES"):
            return [Namespace(n.id, n.title) for n in await store.list_namespaces(account)]

    async def get_namespace(self, namespace_id: str) -> Namespace | None:
        store, account = await self._account()
        with store_errors("GET_NAMESPACE"):
            info = await store.get_namespace(account, namespace_id)
        return None if info is None else Namespace(info.id, info.title)

    async def rename_namespace(self, namespace_id: str, title: str) -> Namespace:
        op = "RENAME_NAMESPACE"
        rules.check_title(title, op)
        store, account = await self._account()
        with store_errors(op):
            info = await store.rename_namespace(account, namespace_id, title)
        return Namespace(info.id, info.title)

    async def delete_namespace(self, namespace_id: str) -> None:
        store, account = await self._account()
        with store_errors("DELETE_NAMESPACE"):
            await store.delete_namespace(account, namespace_id)


class OpenOptions(TypedDict, total=False):
    """The keyword options of `edgekv.open` (and `edgekv.sync.open`), checked by type checkers.

    `sweep_interval`: seconds between purges of expired entries (None disables).
    `cache_options`: more knobs of the location cache (`stale_if_error`, `refresh_ahead`,
    `retry_interval`; docs/locations.md). `inline_reads` (SQLite, default True): a point read of
    a small value runs on the caller's thread, never waiting for a lock, because a thread hop
    costs ten times the read; False sends every read to a reader thread."""

    token: str | None
    account_id: str | None
    location: str | None
    cache_bytes: int | None
    clock: Clock | None
    sweep_interval: float | None
    cache_options: Mapping[str, Any] | None
    inline_reads: bool


def open(target: str | Path | None = None, **options: Unpack[OpenOptions]) -> Client:
    """Open a store: in memory (no target), SQLite in a directory, `postgresql://…`, or a central
    server `http://…` (with `token` and `account_id`; `location` adds a location cache).
    Options: `OpenOptions`."""
    return Client(target, **options)
