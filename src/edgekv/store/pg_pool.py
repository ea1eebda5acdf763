"""Connections of the PostgreSQL engine: the asyncpg pool, what its failures mean, one retry.

Connection trouble (server down, refused, lost mid-query, timeouts) surfaces as
`StoreUnavailable`; the asyncpg pool reconnects by itself once the server is back. A dead pooled
connection or a deadlock makes an idempotent operation (`retry_once`) run again, once.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from edgekv._exceptions import InvalidText, StoreUnavailable

__all__ = ["STALE", "UNAVAILABLE", "connection", "no_reset", "retry_once", "split_dsn"]

# What "the database cannot be reached right now" looks like from asyncpg.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable
    TimeoutError,  # connect, acquire or command timeout
    asyncpg.PostgresConnectionError,  # class 08, including "connection lost mid-query"
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,  # starting up, recovering
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # pointed at a standby during failover
)

# A pooled connection that turns out dead when used (server restarted, backend terminated):
# the pool replaces it, and idempotent operations retry once on a fresh connection.
STALE: tuple[type[BaseException], ...] = (
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.InternalClientError,  # "cannot switch to state": a half-closed socket
)


# The statement was rolled back whole and may simply be run again (a distributed engine
# answers 40001 for any conflict and expects the client to retry).
_TRANSIENT: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
)


class _Retryable(StoreUnavailable):
    """503 if it escapes; `retry_once` methods first run again, once."""


_P = ParamSpec("_P")
_R = TypeVar("_R")


def retry_once(
    method: Callable[_P, Coroutine[Any, Any, _R]],
) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Run an idempotent operation again, once, when it hit a dead pooled connection (so the
    first call after a database restart succeeds) or a deadlock / serialization failure. Only
    for operations whose repetition after an unseen commit is harmless (reads, upserts, deletes
    of keys): not for creating or deleting namespaces."""

    @functools.wraps(method)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(*args, **kwargs)
        except _Retryable:
            return await method(*args, **kwargs)

    return wrapper


# Options edgekv reads from the DSN's query string (asyncpg would send unknown ones to the
# server as settings), so `edgekv serve --database URL` can size its pool.
DSN_OPTIONS = ("pool_min_size", "pool_max_size", "connect_timeout", "command_timeout")


def split_dsn(dsn: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in DSN_OPTIONS}
    if not ours:
        return dsn, {}
    rest = urlencode([(k, v) for k, v in query if k not in DSN_OPTIONS])
    return urlunsplit(parts._replace(query=rest)), ours


async def no_reset(con: Any) -> None:
    """Pool `reset` hook: we keep no session state (no SET, LISTEN, cursors or session locks),
    so skip asyncpg's reset query and its round trip on every release. asyncpg still rolls
    back a transaction left open."""


@contextlib.asynccontextmanager
async def connection(pool: Any, acquire_timeout: float) -> AsyncIterator[Any]:
    """A pooled connection; connection-level failures become `StoreUnavailable`."""
    try:
        async with pool.acquire(timeout=acquire_timeout) as con:
            yield con
    except STALE as exc:
        await _stale(pool, exc)
    except _TRANSIENT as exc:
        raise _Retryable(f"database busy: {exc!r}") from exc
    except asyncpg.exceptions.CharacterNotInRepertoireError as exc:
        # PostgreSQL text cannot hold NUL (SQLite can): the client's input, never a 500.
        raise InvalidText(f"text cannot contain NUL characters: {exc}") from exc
    except UNAVAILABLE as exc:
        raise StoreUnavailable(f"database unavailable: {exc!r}") from exc
    except asyncpg.InterfaceError as exc:
        # A connection that died between acquire and use reports itself as closed.
        if "connection is closed" in str(exc):
            await _stale(pool, exc)
        raise


async def _stale(pool: Any, exc: BaseException) -> None:
    # One dead connection means the others (opened before the same event) are likely dead
    # too: have the pool replace them all rather than fail on each in turn.
    await pool.expire_connections()
    raise _Retryable(f"database connection lost: {exc!r}") from exc
