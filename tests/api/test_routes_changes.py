"""`GET …/{ns}/changes` (routes_changes.py): the feed over REST, its validation, long polls,
tokens, and what a client that goes away during a long poll costs (nothing)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from edgekv.api.auth import create_token
from tests.api.conftest import Api, codes, message


async def changes(api: Api, ns: str, **params: Any) -> httpx.Response:
    return await api.http.get(f"{api.namespaces}/{ns}/changes", params=params)


async def head(api: Api, ns: str) -> int:
    r = await changes(api, ns)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] == [] and body["result_info"]["count"] == 0
    return int(body["result_info"]["cursor"])


async def test_changes_page_and_cursor(api: Api, ns: str) -> None:
    since = await head(api, ns)
    base = f"{api.namespaces}/{ns}"
    r = await api.http.put(f"{base}/values/a?expiration_ttl=600", content=b"1")
    assert r.status_code == 200
    version = r.headers["etag"].strip('"')
    await api.http.put(f"{base}/bulk", json=[{"key": "b", "value": "2", "metadata": {"m": 2}}])
    await api.http.delete(f"{base}/values/missing")  # not a change
    await api.http.delete(f"{base}/values/a")
    r = await changes(api, ns, since=since)
    body = r.json()
    assert r.status_code == 200 and body["success"] is True
    seqs = [c["seq"] for c in body["result"]]
    assert seqs == [since + 1, since + 2, since + 3]
    assert body["result"] == [
        {
            "seq": since + 1,
            "key": "a",
            "op": "put",
            "version": version,
            "expiration": api.clock.now + 600,
        },
        {
            "seq": since + 2,
            "key": "b",
            "op": "put",
            "version": str(since + 2),
            "metadata": {"m": 2},
        },
        {"seq": since + 3, "key": "a", "op": "delete"},
    ]
    assert body["result_info"] == {"count": 3, "cursor": str(since + 3)}
    r = await changes(api, ns, since=since, limit=1, prefix="b")
    assert [c["key"] for c in r.json()["result"]] == ["b"]
    assert r.json()["result_info"]["cursor"] == str(since + 2)
    r = await changes(api, ns, since=since + 3)
    assert r.json()["result"] == [] and r.json()["result_info"]["cursor"] == str(since + 3)


@pytest.mark.parametrize(
    ("params", "code", "text"),
    [
        ({"since": "abc"}, 10001, "Invalid since of 'abc'"),
        ({"since": "-1"}, 10001, "Invalid since of '-1'"),
        ({"since": "1.5"}, 10001, "Invalid since"),
        ({"limit": "0"}, 10028, "Invalid limit of '0'. Please specify an integer from 1 to 1000."),
        ({"limit": "1001"}, 10028, "Invalid limit of '1001'"),
        ({"limit": "x"}, 10028, "Invalid limit of 'x'"),
        ({"wait": "61"}, 10001, "Invalid wait of '61'"),
        ({"wait": "-1"}, 10001, "Invalid wait of '-1'"),
        ({"wait": "nan"}, 10001, "Invalid wait of 'nan'"),
        ({"wait": "soon"}, 10001, "Invalid wait of 'soon'"),
    ],
)
async def test_bad_parameters_are_400(
    api: Api, ns: str, params: dict[str, str], code: int, text: str
) -> None:
    r = await changes(api, ns, **params)
    assert r.status_code == 400 and codes(r) == [code]
    assert message(r).startswith(f"changes: '{text}")


async def test_since_ahead_of_the_feed_is_400(api: Api, ns: str) -> None:
    now = await head(api, ns)
    r = await changes(api, ns, since=now + 5)
    assert r.status_code == 400 and codes(r) == [10001]
    assert "ahead of the newest change" in message(r)


async def test_since_older_than_the_history_is_410(api: Api) -> None:
    # A namespace re-created under a deleted one's id starts a new feed: old cursors are gone.
    ns_id = "0123456789abcdef0123456789abcdef"
    first = (await api.store.create_namespace(api.account, "old", ns_id)).id
    await api.http.put(f"{api.namespaces}/{first}/values/k", content=b"v")
    old_cursor = await head(api, first)
    assert (await api.http.delete(f"{api.namespaces}/{first}")).status_code == 200
    await api.store.create_namespace(api.account, "new", ns_id)
    api.app.services.forget_namespace(ns_id)
    r = await changes(api, ns_id, since=old_cursor)
    assert r.status_code == 410 and codes(r) == [10410]
    oldest = old_cursor + 2  # the new feed starts just above every seq handed out before
    assert await head(api, ns_id) == oldest - 1
    assert message(r) == f"changes: 'history before {oldest} is no longer kept'"


async def test_unknown_namespace_is_404(api: Api) -> None:
    r = await changes(api, "0" * 32, since=0)
    assert r.status_code == 404 and codes(r) == [10013]


async def test_long_poll_answers_at_the_commit(api: Api, ns: str) -> None:
    since = await head(api, ns)
    poll = asyncio.ensure_future(changes(api, ns, since=since, wait=20, prefix="user/"))
    await asyncio.sleep(0.2)
    await api.http.put(f"{api.namespaces}/{ns}/values/other", content=b"x")  # no match
    await asyncio.sleep(0.2)
    assert not poll.done()
    started = time.monotonic()
    await api.http.put(f"{api.namespaces}/{ns}/values/user%2F1", content=b"x")
    r = await asyncio.wait_for(poll, 10)
    assert time.monotonic() - started < 1.0
    assert [c["key"] for c in r.json()["result"]] == ["user/1"]


async def test_long_poll_times_out_with_an_empty_page(api: Api, ns: str) -> None:
    since = await head(api, ns)
    started = time.monotonic()
    r = await changes(api, ns, since=since, wait=0.5)
    assert time.monotonic() - started >= 0.5
    assert r.json()["result"] == [] and r.json()["result_info"]["cursor"] == str(since)


async def test_a_client_leaving_a_long_poll_costs_nothing(api: Api, ns: str) -> None:
    waiters = api.store._waiters  # type: ignore[attr-defined]
    since = await head(api, ns)
    host, port = api.url.removeprefix("http://").split(":")
    path = f"{api.namespaces.removeprefix(api.url)}/{ns}/changes?since={since}&wait=60"
    writers = []
    for _ in range(20):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"GET {path} HTTP/1.1\r\nhost: {host}\r\n"
            f"authorization: Bearer {api.token}\r\n\r\n".encode()
        )
        await writer.drain()
        writers.append((reader, writer))
    for _ in range(100):
        if len(waiters) == 20:
            break
        await asyncio.sleep(0.02)
    assert len(waiters) == 20
    for _, writer in writers:
        writer.close()
    for _ in range(100):  # well before the 60 s wait: the polls are gone
        if len(waiters) == 0:
            break
        await asyncio.sleep(0.02)
    assert len(waiters) == 0
    # The server carries on as before.
    await api.http.put(f"{api.namespaces}/{ns}/values/k", content=b"v")
    assert len((await changes(api, ns, since=since)).json()["result"]) == 1


async def test_stopping_the_server_ends_held_polls(api: Api, ns: str) -> None:
    since = await head(api, ns)
    poll = asyncio.ensure_future(changes(api, ns, since=since, wait=30))
    await asyncio.sleep(0.2)
    api.app.drain()
    r = await asyncio.wait_for(poll, 5)
    assert r.status_code == 200 and r.json()["result"] == []
    assert r.json()["result_info"]["cursor"] == str(since)


async def test_read_permission_and_scoped_tokens(api: Api) -> None:
    mine = await api.create_namespace("mine")
    other = await api.create_namespace("other")
    await api.http.put(f"{api.namespaces}/{mine}/values/k", content=b"v")
    read_only, _ = await create_token(api.store, api.account, read_only=True)
    scoped, _ = await create_token(api.store, api.account, read_only=True, namespaces=[mine])
    async with api.client(read_only) as ro, api.client(scoped) as one:
        assert (await ro.get(f"{api.namespaces}/{mine}/changes", params={"since": 0})).is_success
        r = await one.get(f"{api.namespaces}/{mine}/changes", params={"since": 0})
        assert r.status_code == 200 and [c["key"] for c in r.json()["result"]] == ["k"]
        r = await one.get(f"{api.namespaces}/{other}/changes", params={"since": 0})
        assert r.status_code == 403 and codes(r) == [10000]  # as for its values
        assert b'"key"' not in r.content
    async with api.client() as anonymous:
        r = await anonymous.get(f"{api.namespaces}/{mine}/changes")
        assert r.status_code in (400, 401, 403) and codes(r) == [10000]
