"""Fixtures shared by the whole suite.

`store` is parametrised over every engine, so one test runs against the in-memory store, a real
SQLite file and a real PostgreSQL server (started once per session by `tests/pgcluster.py`).
Select engines with `-k memory`, `-k sqlite`, `-k postgres`, or EDGEKV_TEST_ENGINES=memory,sqlite.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from edgekv import Client, KVNamespace
from edgekv._types import Store

ALL_ENGINES = ("memory", "sqlite", "postgres")
ENGINES = tuple(
    e for e in os.environ.get("EDGEKV_TEST_ENGINES", ",".join(ALL_ENGINES)).split(",") if e
)


class FakeClock:
    """A clock tests move by hand: `clock.advance(61)`."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for the whole session (see tests/pgcluster.py)."""
    from tests import pgcluster

    with pgcluster.running() as dsn:
        yield dsn


async def make_store(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    if engine == "memory":
        from edgekv.store.memory import MemoryStore

        return MemoryStore()
    if engine == "sqlite":
        from edgekv.store.sqlite import SQLiteStore

        return await SQLiteStore.open(tmp_path / "kv")
    if engine == "postgres":
        from edgekv.store.postgres import PostgresStore
        from tests import pgcluster

        dsn = request.getfixturevalue("postgres_dsn")
        return await PostgresStore.open(await pgcluster.fresh_database(dsn))
    raise ValueError(engine)


@pytest.fixture(params=ENGINES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with contextlib.aclosing(await make_store(request.param, tmp_path, request)) as s:
        yield s


async def open_client(store: Store, clock: FakeClock, account_id: str | None = None) -> Client:
    """An open handle over `store` on `clock`, without the background sweep."""
    client = Client(store, clock=clock, account_id=account_id, sweep_interval=None)
    await client.connect()
    return client


@pytest.fixture
async def kv(store: Store, clock: FakeClock) -> Client:
    """A handle over the engine of `store`, on the fake clock (the store fixture closes it)."""
    return await open_client(store, clock)


@pytest.fixture
async def ns(kv: Client) -> KVNamespace:
    """A fresh namespace binding."""
    return await kv.create_namespace("test")
