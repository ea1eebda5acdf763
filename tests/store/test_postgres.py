"""What only the PostgreSQL engine has: several servers on one database, migrations racing,
concurrent writers, and the database going away and coming back. Real server (tests/pgcluster.py),
no mocks; every wait is bounded."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import asyncpg
import pytest

from edgekv._exceptions import (
    NamespaceNotFound,
    StoreError,
    StoreUnavailable,
    TooManyNamespaces,
)
from edgekv._types import Entry, KeyInfo, TokenRecord
from edgekv.store import pg_schema
from edgekv.store.memory import MAX_NAMESPACES
from edgekv.store.postgres import SCHEMA_VERSION, PostgresStore
from tests import pgcluster

pytestmark = pytest.mark.skipif(
    "postgres" not in os.environ.get("EDGEKV_TEST_ENGINES", "postgres"),
    reason="postgres engine not selected (EDGEKV_TEST_ENGINES)",
)

NOW = 1_700_000_000


async def wait_until(cond: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_two_stores_see_each_others_data(pair: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = pair
    acct = await a.default_account()
    assert await b.default_account() == acct
    ns = await a.create_namespace(acct, "shared")
    assert await b.get_namespace(acct, ns.id) == ns
    assert await b.list_namespaces(acct) == [ns]

    await a.put(ns.id, "k", Entry(b"from a", NOW + 60, '{"m":1}'))
    assert await b.get(ns.id, "k", now=NOW) == Entry(b"from a", NOW + 60, '{"m":1}')
    await b.put_many(ns.id, [("k", Entry(b"from b")), ("l", Entry(b"2"))])
    assert await a.get_many(ns.id, ["k", "l"], now=NOW) == {
        "k": Entry(b"from b"),
        "l": Entry(b"2"),
    }
    assert await a.list_keys(ns.id, prefix="", after=None, limit=10, now=NOW) == [
        KeyInfo("k"),
        KeyInfo("l"),
    ]
    await b.delete(ns.id, "k")
    assert await a.get(ns.id, "k", now=NOW) is None

    token = TokenRecord("t" * 32, acct, "ab" * 32, namespaces=(ns.id,), name="ci")
    await a.create_token(token)
    assert await b.find_token("ab" * 32) == token

    renamed = await b.rename_namespace(acct, ns.id, "renamed")
    assert await a.get_namespace(acct, ns.id) == renamed
    await b.delete_namespace(acct, ns.id)
    with pytest.raises(NamespaceNotFound):
        await a.put(ns.id, "k", Entry(b"v"))  # the foreign key tells, no pre-check
    with pytest.raises(NamespaceNotFound):
        await a.get(ns.id, "k", now=NOW)


async def test_concurrent_opens_migrate_once_and_agree_on_default_account(dsn: str) -> None:
    opened = await asyncio.gather(
        *(PostgresStore.open(dsn) for _ in range(6)), return_exceptions=True
    )
    stores = [s for s in opened if isinstance(s, PostgresStore)]
    try:
        assert len(stores) == 6, opened
        accounts = await asyncio.gather(*(s.default_account() for s in stores))
        assert len(set(accounts)) == 1
        con = await asyncpg.connect(dsn)
        try:
            versions = [r[0] for r in await con.fetch("SELECT version FROM edgekv_schema")]
            assert sorted(versions) == list(range(1, SCHEMA_VERSION + 1))
            assert await con.fetchval("SELECT count(*) FROM edgekv_accounts") == 1
        finally:
            await con.close()
    finally:
        await asyncio.gather(*(s.aclose() for s in stores))
    again = await PostgresStore.open(dsn)  # reopening an up-to-date schema is a no-op
    try:
        assert await again.default_account() == accounts[0]
    finally:
        await again.aclose()


async def test_a_round_1_database_opens_with_its_data(dsn: str) -> None:
    con = await asyncpg.connect(dsn)
    try:  # schema version 1 as round 1 wrote it, with a namespace and an entry
        await con.execute(
            "CREATE TABLE edgekv_schema (version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await con.execute(pg_schema.MIGRATIONS[0])
        await con.execute("INSERT INTO edgekv_schema (version) VALUES (1)")
        await con.execute("INSERT INTO edgekv_accounts (id) VALUES ($1)", "a" * 32)
        await con.execute(
            "INSERT INTO edgekv_namespaces (id, account_id, title) VALUES ($1, $2, 'old')",
            "b" * 32,
            "a" * 32,
        )
        await con.execute(
            "INSERT INTO edgekv_entries (namespace_id, key, value) VALUES ($1, $2, $3)",
            "b" * 32,
            b"k",
            b"v",
        )
    finally:
        await con.close()
    store = await PostgresStore.open(dsn)
    try:
        (old,) = await store.list_namespaces("a" * 32)
        assert (old.id, old.title, old.jurisdiction) == ("b" * 32, "old", None)
        assert await store.get("b" * 32, "k", now=NOW) == Entry(b"v")
        us = await store.create_namespace("a" * 32, "new", jurisdiction="us")
        assert await store.get_namespace("a" * 32, us.id) == us
    finally:
        await store.aclose()


async def test_newer_schema_is_refused(dsn: str) -> None:
    store = await PostgresStore.open(dsn)
    await store.aclose()
    con = await asyncpg.connect(dsn)
    try:
        await con.execute("INSERT INTO edgekv_schema (version) VALUES ($1)", SCHEMA_VERSION + 1)
    finally:
        await con.close()
    with pytest.raises(StoreError, match="newer"):
        await PostgresStore.open(dsn)


async def test_concurrent_writers_to_one_key(pair: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = pair
    ns = (await a.create_namespace(await a.default_account(), "n")).id
    written = [f"{s}-{i}".encode() for s in ("a", "b") for i in range(40)]
    await asyncio.gather(
        *((a if v.startswith(b"a") else b).put(ns, "hot", Entry(v, None, None)) for v in written)
    )
    got = await b.get(ns, "hot", now=NOW)
    assert got is not None and got.value in written


async def test_overlapping_batches_neither_deadlock_nor_mix(
    pair: tuple[PostgresStore, PostgresStore],
) -> None:
    """Two servers write the same keys in opposite orders while a reader checks that every
    snapshot holds one whole batch (a batch is one transaction)."""
    a, b = pair
    ns = (await a.create_namespace(await a.default_account(), "n")).id
    keys = [f"k{i:04d}" for i in range(2000)]
    await a.put_many(ns, [(k, Entry(b"init")) for k in keys])

    async def writer(store: PostgresStore, name: str, order: list[str]) -> None:
        for gen in range(8):
            value = f"{name}{gen}".encode()
            await store.put_many(ns, [(k, Entry(value)) for k in order])

    seen: set[bytes] = set()

    async def reader() -> None:
        for _ in range(30):
            got = await b.get_many(ns, keys, now=NOW)
            values = {e.value for e in got.values()}
            assert len(got) == len(keys) and len(values) == 1, values
            seen.update(values)
            await asyncio.sleep(0)

    await asyncio.wait_for(
        asyncio.gather(writer(a, "a", keys), writer(b, "b", keys[::-1]), reader()), timeout=60
    )
    final = await a.get_many(ns, keys, now=NOW)
    assert len({e.value for e in final.values()}) == 1
    assert len(seen) > 1  # the reader did overlap with the writers


async def test_namespace_limit_holds_under_concurrent_creates(
    pair: tuple[PostgresStore, PostgresStore], dsn: str
) -> None:
    a, b = pair
    acct = await a.default_account()
    con = await asyncpg.connect(dsn)
    try:  # fill up to 5 below the limit directly: 995 round trips would only cost time
        await con.execute(
            "INSERT INTO edgekv_namespaces (id, account_id, title)"
            " SELECT md5(i::text), $1, 'pre' || i FROM generate_series(1, $2) AS i",
            acct,
            MAX_NAMESPACES - 5,
        )
    finally:
        await con.close()
    results = await asyncio.gather(
        *((a, b)[i % 2].create_namespace(acct, f"new{i}") for i in range(12)),
        return_exceptions=True,
    )
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, TooManyNamespaces)]
    assert len(created) == 5 and len(refused) == 7, results
    assert len(await b.list_namespaces(acct)) == MAX_NAMESPACES


async def test_concurrent_purges_share_the_work(pair: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = pair
    ns = (await a.create_namespace(await a.default_account(), "n")).id
    await a.put_many(ns, [(f"x{i:04d}", Entry(b"v", NOW + 1)) for i in range(3000)])
    await a.put_many(ns, [(f"keep{i}", Entry(b"v", NOW + 100)) for i in range(50)])

    async def purge_all(store: PostgresStore) -> int:
        total = 0
        while n := await store.purge_expired(NOW + 1, limit=700, batch=100):
            total += n
        return total

    counts = await asyncio.wait_for(asyncio.gather(purge_all(a), purge_all(b)), timeout=60)
    assert sum(counts) == 3000
    left = await b.list_keys(ns, prefix="", after=None, limit=1000, now=0)
    assert [k.name for k in left] == sorted(f"keep{i}" for i in range(50))


async def test_pool_options_in_the_dsn(dsn: str) -> None:
    store = await PostgresStore.open(dsn + "?pool_min_size=2&pool_max_size=3&sslmode=disable")
    try:
        assert (store._pool.get_min_size(), store._pool.get_max_size()) == (2, 3)
        await store.default_account()
    finally:
        await store.aclose()


async def test_unreachable_database_fails_fast() -> None:
    port = pgcluster._free_port()  # nothing listens there
    start = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await PostgresStore.open(f"postgresql://postgres@127.0.0.1:{port}/x", connect_timeout=2)
    assert time.monotonic() - start < 5


async def test_blocked_statement_times_out_then_pool_recovers(dsn: str) -> None:
    store = await PostgresStore.open(dsn, command_timeout=1)
    try:
        ns = (await store.create_namespace(await store.default_account(), "n")).id
        await store.put(ns, "k", Entry(b"v"))
        locker = await asyncpg.connect(dsn)
        try:
            tx = locker.transaction()
            await tx.start()
            await locker.execute("SELECT 1 FROM edgekv_entries FOR UPDATE")
            start = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await asyncio.wait_for(store.put(ns, "k", Entry(b"blocked")), timeout=10)
            assert time.monotonic() - start < 4
            await tx.rollback()
        finally:
            await locker.close()
        await store.put(ns, "k", Entry(b"after"))
        assert await store.get(ns, "k", now=NOW) == Entry(b"after")
    finally:
        await store.aclose()


async def test_killed_connections_are_replaced(dsn: str) -> None:
    store = await PostgresStore.open(dsn, min_size=3)
    try:
        ns = (await store.create_namespace(await store.default_account(), "n")).id
        await asyncio.gather(*(store.put(ns, f"k{i}", Entry(b"v")) for i in range(6)))
        con = await asyncpg.connect(dsn)
        try:
            killed = await con.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'edgekv' AND datname = current_database()"
            )
        finally:
            await con.close()
        assert killed >= 1
        # Every idle connection is dead now; the next calls still succeed (one retry each).
        await store.put(ns, "after", Entry(b"1"))
        got = await store.get_many(ns, ["after", "k0"], now=NOW)
        assert got == {"after": Entry(b"1"), "k0": Entry(b"v")}
    finally:
        await store.aclose()


async def test_database_restart_during_traffic() -> None:
    """Writers run while the server crashes (immediate stop) and comes back: calls fail with
    StoreUnavailable, promptly, while it is down, succeed again afterwards without any help,
    and every acknowledged write is there."""
    with pgcluster.running_cluster() as cluster:  # our own: stopping it disturbs no other test
        dsn = await pgcluster.fresh_database(cluster.dsn)
        store = await PostgresStore.open(
            dsn, max_size=4, connect_timeout=2, command_timeout=5, acquire_timeout=5
        )
        acked: list[str] = []
        failures: list[float] = []  # how long each failed call took
        stop = asyncio.Event()
        try:
            ns = (await store.create_namespace(await store.default_account(), "n")).id

            async def writer(w: int) -> None:
                for i in range(100_000):
                    if stop.is_set():
                        return
                    key = f"w{w}-{i}"
                    start = time.monotonic()
                    try:
                        await store.put(ns, key, Entry(key.encode()))
                    except StoreUnavailable:
                        failures.append(time.monotonic() - start)
                        await asyncio.sleep(0.01)
                    else:
                        acked.append(key)

            tasks = [asyncio.create_task(writer(w)) for w in range(3)]
            try:
                await wait_until(lambda: len(acked) >= 50, 20, "writes before the crash")
                await asyncio.to_thread(cluster.stop, "immediate")
                down_failures = len(failures)
                await wait_until(lambda: len(failures) >= down_failures + 10, 20, "failures")
                with pytest.raises(StoreUnavailable):
                    await store.get(ns, acked[0], now=NOW)
                with pytest.raises(StoreUnavailable):
                    await store.list_keys(ns, prefix="", after=None, limit=10, now=NOW)
                acked_while_down = len(acked)
                await asyncio.to_thread(cluster.start_same_port)
                await wait_until(
                    lambda: len(acked) >= acked_while_down + 50, 30, "writes after the restart"
                )
            finally:
                stop.set()
                await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
            assert await store.get(ns, acked[0], now=NOW) == Entry(acked[0].encode())
        finally:
            await store.aclose()
        assert max(failures) < 5, "a call hung instead of failing"

        check = await PostgresStore.open(dsn)  # a new pool: nothing cached anywhere
        try:
            got = await check.get_many(ns, acked, now=NOW)
        finally:
            await check.aclose()
        lost = [k for k in acked if got.get(k) != Entry(k.encode())]
        assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:5]}"
