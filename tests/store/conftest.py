"""Fixtures of the PostgreSQL engine's tests: a fresh database, and two stores on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from edgekv.store.postgres import PostgresStore
from tests import pgcluster


@pytest.fixture
async def dsn(postgres_dsn: str) -> str:
    """An empty database of the session cluster."""
    return await pgcluster.fresh_database(postgres_dsn)


@pytest.fixture
async def pair(dsn: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database: two central servers."""
    a = await PostgresStore.open(dsn)
    b = await PostgresStore.open(dsn)
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()
