"""GET …/{ns}/export: the streamed NDJSON snapshot over the real server, on every engine."""

from __future__ import annotations

import asyncio
import base64
import sqlite3

import orjson
import pytest

import edgekv
from edgekv._types import Entry
from edgekv.api.auth import create_token
from edgekv.store.postgres import PostgresStore
from edgekv.store.sqlite import SQLiteStore
from tests.api.conftest import Api, codes
from tests.exportload import Load, expected_at, populate, state_of


def lines(body: bytes) -> list[dict[str, object]]:
    assert body.endswith(b"\n")
    return [orjson.loads(line) for line in body.splitlines()]


async def test_export_streams_header_items_in_byte_order_and_trailer(api: Api, ns: str) -> None:
    base = f"{api.namespaces}/{ns}"
    at = int(api.clock()) + 3600
    r = await api.http.put(
        f"{base}/bulk",
        json=[
            {"key": "b", "value": base64.b64encode(b"\x80\xff").decode(), "base64": True},
            {"key": "a", "value": "text", "expiration": at, "metadata": {"x": [1, "é"]}},
            {"key": "é", "value": "accent"},
            {"key": "z", "value": "zed"},
        ],
    )
    assert r.status_code == 200, r.text
    r = await api.http.get(f"{base}/export")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-ndjson"
    header, *items, trailer = lines(r.content)
    assert header == {
        "edgekv_export": 1,
        "namespace": {"id": ns, "title": "test"},
        "seq": header["seq"],
        "exported_at": int(api.clock()),
    }
    assert isinstance(header["seq"], int)
    assert items == [
        {"key": "a", "value": "text", "expiration": at, "metadata": {"x": [1, "é"]}},
        {"key": "b", "value": "gP8=", "base64": True},
        {"key": "z", "value": "zed"},
        {"key": "é", "value": "accent"},  # UTF-8 byte order: 0xc3 sorts after "z"
    ]
    assert trailer == {"edgekv_export_end": True, "count": 4}


async def test_expired_keys_are_left_out_and_empty_namespace(api: Api, ns: str) -> None:
    base = f"{api.namespaces}/{ns}"
    r = await api.http.get(f"{base}/export")
    assert lines(r.content)[1:] == [{"edgekv_export_end": True, "count": 0}]
    await api.http.put(f"{base}/values/soon", content=b"x", params={"expiration_ttl": 60})
    api.clock.advance(61)
    r = await api.http.get(f"{base}/export")
    assert lines(r.content)[1:] == [{"edgekv_export_end": True, "count": 0}]


async def test_unknown_namespace_and_permissions(api: Api, ns: str) -> None:
    r = await api.http.get(f"{api.namespaces}/{'0' * 32}/export")
    assert r.status_code == 404 and codes(r) == [10013]
    read_only, _ = await create_token(api.store, api.account, read_only=True)
    async with api.client(read_only) as http:
        assert (await http.get(f"{api.namespaces}/{ns}/export")).status_code == 200
    other = await api.create_namespace("other")
    scoped, _ = await create_token(api.store, api.account, namespaces=(other,))
    async with api.client(scoped) as http:
        r = await http.get(f"{api.namespaces}/{ns}/export")
        assert r.status_code == 403
        assert (await http.get(f"{api.namespaces}/{other}/export")).status_code == 200
    async with api.client() as http:
        assert (await http.get(f"{api.namespaces}/{ns}/export")).status_code in (401, 403)


def _checkpoint_completes(store: SQLiteStore) -> bool:
    """Whether a TRUNCATE checkpoint can finish: it cannot while a reader holds an old
    snapshot of the WAL."""
    conn = sqlite3.connect(store.path, timeout=0.1)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return bool(busy == 0)
    finally:
        conn.close()


async def _open_transactions(store: PostgresStore) -> int:
    """Client backends of this database, other than the asking one, inside a transaction
    (autovacuum workers, which the bulk writes above wake, are not ours)."""
    count: int = await store._pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND backend_type = 'client backend'"
        " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
    )
    return count


async def _released(api: Api) -> bool:
    store = api.store
    await store.put(await _any_namespace(api), "probe", Entry(b"after"))
    if isinstance(store, SQLiteStore):
        return await asyncio.to_thread(_checkpoint_completes, store)
    assert isinstance(store, PostgresStore)
    return await _open_transactions(store) == 0


async def _until_released(api: Api, seconds: float = 5) -> None:
    """Wait until no snapshot is held (a background step, e.g. the feed trimmer, may hold a
    transaction for a moment)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await _released(api):
        assert asyncio.get_running_loop().time() < deadline, "snapshot still held"
        await asyncio.sleep(0.05)


async def _any_namespace(api: Api) -> str:
    return (await api.store.list_namespaces(api.account))[0].id


async def test_client_disconnect_frees_the_snapshot_at_once(api: Api, ns: str) -> None:
    if not isinstance(api.store, SQLiteStore | PostgresStore):
        pytest.skip("the memory engine holds no transaction")
    base = f"{api.namespaces}/{ns}"
    value = "v" * 4096
    for start in range(0, 20000, 2000):  # ~80 MB: far more than the socket buffers hold
        items = [{"key": f"k{i:06}", "value": value} for i in range(start, start + 2000)]
        assert (await api.http.put(f"{base}/bulk", json=items)).status_code == 200
    await _until_released(api)  # nothing holds a snapshot yet
    # A client that reads the first bytes, then stalls and hangs up (raw socket: no client
    # library reading ahead).
    host, port = api.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    path = base.removeprefix(api.url)
    writer.write(
        f"GET {path}/export HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {api.token}\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b'{"edgekv_export":1' in await reader.read(4096)
    await asyncio.sleep(0.2)
    # The export is paused on a full socket: its snapshot is held meanwhile.
    assert not await _released(api)
    writer.close()
    await writer.wait_closed()
    # The connection is closed: the server sees the client gone and frees the snapshot.
    await _until_released(api)
    # and the server goes on serving.
    r = await api.http.get(f"{base}/export")
    assert lines(r.content)[-1] == {"edgekv_export_end": True, "count": 20001}


async def test_an_export_streamed_under_writes_is_exact_at_its_seq(api: Api, ns: str) -> None:
    """Writers write through the REST API while a slow client reads the export; imported into
    an empty namespace, the lines give exactly the state at the header's seq (from the feed)."""
    async with edgekv.open(api.url, token=api.token, account_id=api.account) as kv:
        remote = kv.namespace(ns)
        await populate(remote)
        load = Load(remote).start()
        items: list[dict[str, object]] = []
        try:
            await load.until(30)
            async with api.http.stream("GET", f"{api.namespaces}/{ns}/export") as r:
                assert r.status_code == 200
                during = load.done
                async for line in r.aiter_lines():
                    items.append(orjson.loads(line))
                    if len(items) == 1:
                        # A slow reader: the writers go on while the export is open (waiting
                        # for their writes, not for a time, so a busy machine cannot skip it).
                        await asyncio.wait_for(load.until(during + 20), timeout=30)
                    elif len(items) % 200 == 0:
                        await asyncio.sleep(0.01)
            assert load.done >= during + 20, "writers did not write during the export"
        finally:
            await load.stop()
        header, *entries, trailer = items
        assert trailer == {"edgekv_export_end": True, "count": len(entries)}
        copy = await kv.create_namespace("copy")
        await copy.import_entries(entries)
        assert await state_of(copy) == await expected_at(remote, int(header["seq"]))  # type: ignore[call-overload]
