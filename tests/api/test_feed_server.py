"""The change feed of a real `edgekv serve` process: a follower that passes the cursor back sees
every acknowledged write exactly once, in commit order, across a kill -9 and a restart; and
`--feed-history N` bounds what is kept (410 beyond it)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

import httpx

from tests.api.conftest import Central, start_central


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _follow(
    server: Central, ns: str, cursor: int, seen: list[dict[str, object]], until: float
) -> int:
    """Long-poll from `cursor`, appending every change, until `until` (monotonic) or the
    server goes away; returns the cursor to resume from."""
    async with httpx.AsyncClient(headers=auth(server.token), timeout=15) as client:
        while time.monotonic() < until:
            try:
                r = await client.get(
                    f"{server.namespaces}/{ns}/changes",
                    params={"since": cursor, "wait": 1},
                )
            except httpx.TransportError:
                return cursor
            if r.status_code != 200:
                return cursor
            body = r.json()
            seen.extend(body["result"])
            cursor = int(body["result_info"]["cursor"])
    return cursor


async def _write(server: Central, ns: str, w: int, acknowledged: dict[str, int]) -> None:
    async with httpx.AsyncClient(headers=auth(server.token), timeout=10) as client:
        for i in range(100_000):
            key = f"w{w}-{i}"
            try:
                r = await client.put(f"{server.namespaces}/{ns}/values/{key}", content=b"v")
            except httpx.TransportError:
                return  # the server is gone
            if r.status_code == 200:
                acknowledged[key] = int(r.headers["edgekv-seq"])


async def test_kill_9_during_a_feed_loses_and_repeats_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_central(data)
    async with httpx.AsyncClient(headers=auth(server.token)) as client:
        ns = (await client.post(server.namespaces, json={"title": "fed"})).json()["result"]["id"]
        start = int(
            (await client.get(f"{server.namespaces}/{ns}/changes")).json()["result_info"]["cursor"]
        )
    acknowledged: dict[str, int] = {}
    seen: list[dict[str, object]] = []
    follower = asyncio.ensure_future(_follow(server, ns, start, seen, time.monotonic() + 60))
    writers = [asyncio.ensure_future(_write(server, ns, w, acknowledged)) for w in range(8)]
    deadline = time.monotonic() + 20
    # A loaded machine writes slowly: kill once enough writes were acknowledged, not at a time.
    while len(acknowledged) < 100 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    server.proc.send_signal(signal.SIGKILL)  # mid-load: writes and a long poll in flight
    await asyncio.wait_for(asyncio.gather(*writers), 30)
    cursor = await asyncio.wait_for(follower, 30)
    assert server.proc.wait(10) == -signal.SIGKILL
    assert len(acknowledged) >= 100  # the load really ran

    again = start_central(data, account=server.account, token=server.token)
    try:
        await _follow(again, ns, cursor, seen, time.monotonic() + 3)
        seqs = [int(str(c["seq"])) for c in seen]
        assert seqs == sorted(set(seqs)), "a change seen twice or out of order"
        assert seqs == list(range(start + 1, start + 1 + len(seqs))), "a gap in the feed"
        by_key = {str(c["key"]): int(str(c["seq"])) for c in seen}
        lost = {k: s for k, s in acknowledged.items() if by_key.get(k) != s}
        assert not lost, f"{len(lost)} acknowledged writes missing from the feed"
    finally:
        again.stop()


async def test_feed_history_option_bounds_the_history(tmp_path: Path) -> None:
    with start_central(tmp_path / "data", args=("--feed-history", "3")) as server:
        async with httpx.AsyncClient(headers=auth(server.token), timeout=10) as client:
            r = await client.post(server.namespaces, json={"title": "short"})
            ns = r.json()["result"]["id"]
            url = f"{server.namespaces}/{ns}/changes"
            since = int((await client.get(url)).json()["result_info"]["cursor"])
            for i in range(7):  # more than 2N after `since`
                await client.put(f"{server.namespaces}/{ns}/values/k{i}", content=b"v")
            r = await client.get(url, params={"since": since})
            assert r.status_code == 410 and r.json()["errors"][0]["code"] == 10410
            message = r.json()["errors"][0]["message"]
            assert message.startswith("changes: 'history before ")
            r = await client.get(url, params={"since": since + 4})
            assert [c["key"] for c in r.json()["result"]] == ["k4", "k5", "k6"]


async def test_sigterm_does_not_wait_for_held_polls(tmp_path: Path) -> None:
    server = start_central(tmp_path / "data")
    async with httpx.AsyncClient(headers=auth(server.token), timeout=30) as client:
        ns = (await client.post(server.namespaces, json={"title": "t"})).json()["result"]["id"]
        polls = [
            asyncio.ensure_future(
                client.get(f"{server.namespaces}/{ns}/changes", params={"wait": 60})
            )
            for _ in range(5)
        ]
        await asyncio.sleep(0.5)
        started = time.monotonic()
        code = await asyncio.to_thread(server.stop, signal.SIGTERM, 15)
        assert code == 0 and time.monotonic() - started < 10
        for poll in polls:
            with contextlib.suppress(httpx.TransportError):
                r = await poll
                assert r.status_code == 200 and r.json()["result"] == []
