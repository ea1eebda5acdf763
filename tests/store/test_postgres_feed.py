"""The PostgreSQL engine's versions and feed with two stores on one database (two central
servers): a schema-1 database migrates, seqs are in commit order under racing writers on both,
a poll on one wakes at a commit on the other (LISTEN/NOTIFY), conditions hold across both."""

from __future__ import annotations

import asyncio
import os
import time

import asyncpg
import pytest

from edgekv._exceptions import PreconditionFailed
from edgekv._models import Change
from edgekv._types import Condition, Entry, Written
from edgekv.store import pg_schema
from edgekv.store.postgres import SCHEMA_VERSION, PostgresStore

pytestmark = pytest.mark.skipif(
    "postgres" not in os.environ.get("EDGEKV_TEST_ENGINES", "postgres"),
    reason="postgres engine not selected (EDGEKV_TEST_ENGINES)",
)

NOW = 1_700_000_000
ACCOUNT = "a" * 32
NS = "06779da6940b431db6e566b4846d64db"


async def test_a_schema_one_database_migrates(dsn: str) -> None:
    con = await asyncpg.connect(dsn)
    try:
        await con.execute(
            "CREATE TABLE edgekv_schema (version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await con.execute(pg_schema.MIGRATIONS[0])
        await con.execute("INSERT INTO edgekv_schema (version) VALUES (1)")
        await con.execute("INSERT INTO edgekv_accounts (id) VALUES ($1)", ACCOUNT)
        await con.execute(
            "INSERT INTO edgekv_namespaces (id, account_id, title) VALUES ($1, $2, 'old')",
            NS,
            ACCOUNT,
        )
        await con.execute(
            "INSERT INTO edgekv_entries (namespace_id, key, value) VALUES ($1, 'a', '1')", NS
        )
    finally:
        await con.close()
    store = await PostgresStore.open(dsn)
    try:
        entry = await store.get(NS, "a", now=NOW)
        assert entry is not None and entry.value == b"1" and entry.version == "0"
        head = await store.head(NS)
        written = await store.put(NS, "a", Entry(b"2"), condition=Condition("0", NOW))
        page = await store.changes(NS, since=head)
        assert [(c.key, c.version) for c in page.changes] == [("a", written.version)]
    finally:
        await store.aclose()
    con = await asyncpg.connect(dsn)
    try:
        assert await con.fetchval("SELECT max(version) FROM edgekv_schema") == SCHEMA_VERSION
    finally:
        await con.close()


async def test_seqs_are_in_commit_order_across_stores(
    pair: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = pair
    ns = (await a.create_namespace(await a.default_account(), "race")).id
    start = await a.head(ns)
    written: list[Written] = []
    stop_at = time.monotonic() + 2.0

    async def writer(store: PostgresStore, w: int) -> None:
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            if i % 5 == 0:
                await store.put_many(ns, [(f"{w}-{i}-{j}", Entry(b"b")) for j in range(3)])
            elif i % 11 == 0:
                await store.delete(ns, f"{w}-{i - 1}", now=NOW)
            else:
                written.append(await store.put(ns, f"{w}-{i}", Entry(b"v")))

    async def follower(store: PostgresStore) -> list[Change]:
        seen: list[Change] = []
        cursor = start
        while time.monotonic() < stop_at + 1:
            page = await store.changes(ns, since=cursor, wait=0.2)
            seqs = [c.seq for c in page.changes]
            # Never a seq whose predecessor has yet to commit (a SEQUENCE would allow it).
            assert seqs == list(range(cursor + 1, cursor + 1 + len(seqs)))
            seen += page.changes
            cursor = page.cursor
        return seen

    followers = [asyncio.ensure_future(follower(s)) for s in (a, b)]
    await asyncio.gather(*(writer(s, w) for w, s in enumerate((a, b, a, b, a, b, a, b))))
    seen_a, seen_b = await asyncio.gather(*followers)
    assert seen_a == seen_b and len(written) > 20
    assert {w.seq for w in written} <= {c.seq for c in seen_a}
    assert seen_a[-1].seq == await b.head(ns)


async def test_a_poll_on_one_store_wakes_at_a_commit_on_the_other(
    pair: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = pair
    ns = (await a.create_namespace(await a.default_account(), "wake")).id
    cursor = await b.head(ns)
    for i in range(5):
        poll = asyncio.ensure_future(b.changes(ns, since=cursor, wait=20))
        await asyncio.sleep(0.3)  # b's LISTEN connection is up by now
        assert not poll.done()
        await a.put(ns, f"k{i}", Entry(b"v"))
        committed = time.monotonic()
        page = await asyncio.wait_for(poll, 10)
        assert time.monotonic() - committed < 1.0
        assert [c.key for c in page.changes] == [f"k{i}"]
        cursor = page.cursor


async def test_conditions_hold_across_stores(pair: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = pair
    ns = (await a.create_namespace(await a.default_account(), "cas")).id
    base = await a.put(ns, "k", Entry(b"0"))

    async def attempt(store: PostgresStore, i: int) -> Written | None:
        try:
            return await store.put(
                ns, "k", Entry(b"%d" % i), condition=Condition(base.version, NOW)
            )
        except PreconditionFailed:
            return None

    results = await asyncio.gather(*(attempt((a, b)[i % 2], i) for i in range(30)))
    assert len([r for r in results if r is not None]) == 1
    head = await a.head(ns)
    assert head == base.seq + 1  # failed conditions took no seq


async def test_namespace_recreated_under_its_id_by_another_store(
    pair: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = pair
    acct = await a.default_account()
    await a.create_namespace(acct, "first", NS)
    old = await a.put(NS, "k", Entry(b"v"))
    await a.delete_namespace(acct, NS)
    await b.create_namespace(acct, "second", NS)
    new = await b.put(NS, "k", Entry(b"v"))
    assert new.seq > old.seq and new.version != old.version
