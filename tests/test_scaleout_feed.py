"""Versions and the change feed with two `edgekv serve --database …` processes on one PostgreSQL
(real subprocesses, a real cluster from tests/pgcluster.py, httpx as the client):

- a long poll on one server wakes within a second of a commit on the other (LISTEN/NOTIFY);
- with writers on both servers at once, the feed is in commit order: a follower never sees a
  seq before an earlier one committed (every page continues exactly at its cursor), and every
  acknowledged write is in it once;
- of many conditional writes against one version, spread over both servers, exactly one wins;
  64 concurrent compare-and-swap increments end with the exact count.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests import pgcluster
from tests.test_scaleout import Server, bearer, new_account, new_token, serving

pytestmark = pytest.mark.skipif(
    "postgres" not in os.environ.get("EDGEKV_TEST_ENGINES", "postgres"),
    reason="postgres engine not selected (EDGEKV_TEST_ENGINES)",
)


@dataclass
class Pair:
    a: Server
    b: Server
    token: str

    def client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=100)
        return httpx.AsyncClient(headers=bearer(self.token), timeout=30, limits=limits)


@pytest.fixture(scope="module")
def pair(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    dsn = asyncio.run(pgcluster.fresh_database(postgres_dsn))
    account, token = new_account(), new_token()
    logs = tmp_path_factory.mktemp("scaleout-feed")
    with serving(dsn, logs, account, token, "ab") as (a, b):
        yield Pair(a, b, token)


async def new_namespace(http: httpx.AsyncClient, server: Server) -> str:
    r = await http.post(server.namespaces, json={"title": os.urandom(8).hex()})
    assert r.status_code == 200, r.text
    return str(r.json()["result"]["id"])


async def head(http: httpx.AsyncClient, server: Server, ns: str) -> int:
    r = await http.get(f"{server.ns(ns)}/changes")
    return int(r.json()["result_info"]["cursor"])


async def test_a_poll_on_one_server_wakes_at_a_commit_on_the_other(pair: Pair) -> None:
    async with pair.client() as http:
        ns = await new_namespace(http, pair.a)
        cursor = await head(http, pair.b, ns)
        latencies = []
        for i in range(5):
            poll = asyncio.ensure_future(
                http.get(f"{pair.b.ns(ns)}/changes", params={"since": cursor, "wait": 30})
            )
            await asyncio.sleep(0.3)
            assert not poll.done()
            r = await http.put(pair.a.value(ns, f"k{i}"), content=b"v")
            committed = time.monotonic()
            assert r.status_code == 200
            page = (await asyncio.wait_for(poll, 10)).json()
            latencies.append(time.monotonic() - committed)
            assert [c["key"] for c in page["result"]] == [f"k{i}"]
            assert page["result"][0]["seq"] == int(r.headers["edgekv-seq"])
            cursor = int(page["result_info"]["cursor"])
        assert max(latencies) < 1.0, latencies


async def test_the_feed_is_in_commit_order_across_servers(pair: Pair) -> None:
    async with pair.client() as http:
        ns = await new_namespace(http, pair.a)
        start = await head(http, pair.a, ns)
        acknowledged: dict[str, int] = {}
        stop_at = time.monotonic() + 3.0

        async def writer(server: Server, w: int) -> None:
            i = 0
            while time.monotonic() < stop_at:
                key = f"{server.name}{w}-{i}"
                i += 1
                if i % 7 == 0:
                    items = [{"key": f"{key}/{j}", "value": "b"} for j in range(5)]
                    r = await http.put(f"{server.ns(ns)}/bulk", json=items)
                    assert r.status_code == 200, r.text
                    continue
                r = await http.put(server.value(ns, key), content=b"v")
                assert r.status_code == 200, r.text
                acknowledged[key] = int(r.headers["edgekv-seq"])

        seen: list[dict[str, object]] = []

        async def follower(server: Server, wait: float) -> list[dict[str, object]]:
            got: list[dict[str, object]] = []
            cursor = start
            while time.monotonic() < stop_at + 2:
                r = await http.get(
                    f"{server.ns(ns)}/changes", params={"since": cursor, "wait": wait}
                )
                assert r.status_code == 200, r.text
                page = r.json()["result"]
                seqs = [int(str(c["seq"])) for c in page]
                # Commit order: what a reader sees is always a prefix, never a seq whose
                # predecessor is still to commit.
                assert seqs == list(range(cursor + 1, cursor + 1 + len(seqs))), (cursor, seqs)
                got += page
                cursor = int(r.json()["result_info"]["cursor"])
            return got

        followers = [
            asyncio.ensure_future(follower(pair.b, 0)),
            asyncio.ensure_future(follower(pair.a, 1)),
        ]
        await asyncio.gather(*(writer(server, w) for server in (pair.a, pair.b) for w in range(6)))
        results = await asyncio.gather(*followers)
        assert results[0] == results[1]
        seen = results[0]
        assert len(acknowledged) > 50
        by_key = {str(c["key"]): int(str(c["seq"])) for c in seen}
        assert all(by_key.get(k) == s for k, s in acknowledged.items())
        bulk = [str(c["key"]) for c in seen if "/" in str(c["key"])]
        assert len(bulk) % 5 == 0  # a bulk write is one change per item, all together


async def test_conditional_writes_across_servers_exactly_one_wins(pair: Pair) -> None:
    async with pair.client() as http:
        ns = await new_namespace(http, pair.a)
        tag = (await http.put(pair.a.value(ns, "k"), content=b"0")).headers["etag"]
        for round_ in range(3):
            rs = await asyncio.gather(
                *(
                    http.put(
                        (pair.a, pair.b)[i % 2].value(ns, "k"),
                        content=b"%d" % i,
                        headers={"If-Match": tag},
                    )
                    for i in range(24)
                )
            )
            won = [r for r in rs if r.status_code == 200]
            assert len(won) == 1, [r.status_code for r in rs]
            assert all(r.status_code == 412 for r in rs if r is not won[0])
            assert {r.headers["etag"] for r in rs} == {won[0].headers["etag"]}
            tag = won[0].headers["etag"]
            created = await asyncio.gather(
                *(
                    http.put(
                        (pair.a, pair.b)[i % 2].value(ns, f"new{round_}"),
                        content=b"x",
                        headers={"If-None-Match": "*"},
                    )
                    for i in range(24)
                )
            )
            assert sorted(r.status_code for r in created) == [200] + [412] * 23


async def test_64_concurrent_compare_and_swap_increments_are_exact(pair: Pair) -> None:
    async with pair.client() as http:
        ns = await new_namespace(http, pair.a)
        await http.put(pair.a.value(ns, "counter"), content=b"0")

        async def increment(server: Server) -> int:
            conflicts = 0
            while True:
                r = await http.get(server.value(ns, "counter"))
                count = int(r.content) + 1
                w = await http.put(
                    server.value(ns, "counter"),
                    content=str(count).encode(),
                    headers={"If-Match": r.headers["etag"]},
                )
                if w.status_code == 200:
                    return conflicts
                assert w.status_code == 412, w.text
                conflicts += 1

        await asyncio.gather(*(increment((pair.a, pair.b)[i % 2]) for i in range(64)))
        assert (await http.get(pair.b.value(ns, "counter"))).content == b"64"
