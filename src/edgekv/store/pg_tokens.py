"""Token revocations across servers on one PostgreSQL database: LISTEN / NOTIFY.

`PostgresStore.revoke_token` deletes the row and calls `pg_notify` in the same statement, so
the notification goes out at commit. Every server holds one extra connection that LISTENs
(`TokenWatch`); each notification bumps a counter, `revision()`, which the API's token cache
compares on every request (api/auth.py): a changed revision drops the cache. While the
listening connection is down (not yet connected, database restarting) `revision()` is None and
the cache trusts nothing, so a revocation can never be missed, only cost a store query more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

__all__ = ["TokenWatch"]

log = logging.getLogger("edgekv.store")

RECONNECT_SECONDS = 1.0


class TokenWatch:
    CHANNEL = "edgekv_token_revoked"

    def __init__(self, dsn: str, connect_timeout: float) -> None:
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._revision = 0
        self._listening = False
        self._task: asyncio.Task[None] | None = None

    def revision(self) -> int | None:
        """The number of notifications seen, or None while not listening. Starts the listener
        on first use (in the running event loop)."""
        if self._task is None:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to watch with
                self._task = asyncio.get_running_loop().create_task(
                    self._run(), name="edgekv-token-watch"
                )
        return self._revision if self._listening else None

    def _notified(self, *_: Any) -> None:
        self._revision += 1

    async def _run(self) -> None:
        while True:
            con: Any = None
            try:
                con = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
                lost = asyncio.Event()
                con.add_termination_listener(lambda _con, lost=lost: lost.set())
                await con.add_listener(self.CHANNEL, self._notified)
                # Anything may have been revoked while nobody listened.
                self._revision += 1
                self._listening = True
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("token watch: %r; retrying", exc)
            finally:
                self._listening = False
                if con is not None:
                    con.terminate()
            await asyncio.sleep(RECONNECT_SECONDS)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
