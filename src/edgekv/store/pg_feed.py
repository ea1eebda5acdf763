"""The PostgreSQL engine's feed signals between servers: NOTIFY after commits, LISTEN for theirs.

After a commit this process wakes its own long polls (store/postgres.py), and one coalesced
`pg_notify` (sent beside the write path, never inside its transaction: NOTIFY serialises the
commits that carry it) tells the other servers, whose `LISTEN` connection wakes theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg

from edgekv._exceptions import StoreError
from edgekv.store._feed import FeedWaiters

__all__ = ["FeedSignals"]

_CHANNEL = "edgekv_feed"  # LISTEN/NOTIFY channel; payload "<namespace id> <head>"
_LISTEN_RETRY = 1.0  # seconds between attempts to re-establish the LISTEN connection


def _set_once(fut: asyncio.Future[None], *_args: Any) -> None:
    if not fut.done():
        fut.set_result(None)


class FeedSignals:
    """`committed` queues a head for the other servers; `listen` starts hearing theirs. Tasks
    are started with the store's `spawn` (cancelled by its aclose) and stop once `closed()`."""

    def __init__(
        self,
        waiters: FeedWaiters,
        conn: Callable[[], AbstractAsyncContextManager[Any]],
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[Any]],
        closed: Callable[[], bool],
        *,
        dsn: str,
        connect_timeout: float,
    ) -> None:
        self._waiters = waiters
        self._conn = conn
        self._spawn = spawn
        self._closed = closed
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._to_notify: dict[str, int] = {}  # namespace -> newest head not yet NOTIFY'd
        self._notifier: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None

    def committed(self, namespace_id: str, head: int) -> None:
        if head > self._to_notify.get(namespace_id, -1):
            self._to_notify[namespace_id] = head
        if self._notifier is None or self._notifier.done():
            self._notifier = self._spawn(self._send_notifies())

    def listen(self) -> None:
        """Hold a LISTEN connection from now on (for long polls; no DSN: nothing to hear)."""
        if self._dsn and (self._listener is None or self._listener.done()):
            self._listener = self._spawn(self._listen())

    async def _send_notifies(self) -> None:
        """Tell the other servers about commits: one `pg_notify` statement for every head
        recorded since the last one (commits meanwhile coalesce into the next)."""
        while self._to_notify and not self._closed():
            batch, self._to_notify = self._to_notify, {}
            payloads = [f"{ns} {head}" for ns, head in batch.items()]
            try:
                async with self._conn() as con:
                    await con.execute(
                        "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS t (p)",
                        _CHANNEL,
                        payloads,
                    )
            except (StoreError, asyncpg.PostgresError, OSError):
                return  # the database is away: other servers' polls end at their timeout

    def _on_notify(self, _con: Any, _pid: int, _channel: str, payload: str) -> None:
        namespace_id, _, head = payload.partition(" ")
        with contextlib.suppress(ValueError):  # not ours
            self._waiters.notify(namespace_id, int(head))

    async def _listen(self) -> None:
        """Hold a LISTEN connection (outside the pool) while the store is open; after it was
        lost, wake every poll to read again (a notification may have been missed)."""
        while not self._closed():
            con = None
            try:
                con = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
                await con.add_listener(_CHANNEL, self._on_notify)
                self._waiters.wake_all()
                lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                con.add_termination_listener(functools.partial(_set_once, lost))
                await lost
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass
            finally:
                if con is not None and not con.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(con.close(), timeout=2)
            self._waiters.wake_all()
            await asyncio.sleep(_LISTEN_RETRY)
