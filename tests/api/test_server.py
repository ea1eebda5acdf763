"""server.py and `edgekv serve` as a real subprocess: first start, signals, logs, durability
under kill -9, memory under a huge upload, both ASGI servers."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Central, start_central
from tests.conftest import ENGINES
from tests.servers import ROOT


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_first_start_writes_credentials_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_central(data, env_credentials=False)
    try:
        path = data / "credentials.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        creds = json.loads(path.read_text())
        assert set(creds) == {"account_id", "api_token"}
        log = server.wait_log("listening on")
        assert creds["api_token"] in log  # printed once, on first start
        r = httpx.get(f"{server.api}/memberships", headers=auth(creds["api_token"]))
        assert r.json()["result"][0]["account"]["id"] == creds["account_id"]
    finally:
        assert server.stop() == 0
    before = path.read_bytes()
    again = start_central(data, env_credentials=False, port=None)
    try:
        log = again.wait_log("listening on", timeout=10)
        assert creds["api_token"] not in log and "Created account" not in log  # not again
        assert path.read_bytes() == before
        ns_url = f"{again.url}/client/v4/accounts/{creds['account_id']}/storage/kv/namespaces"
        assert httpx.get(ns_url, headers=auth(creds["api_token"])).status_code == 200
    finally:
        again.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_cleanly(tmp_path: Path, sig: int) -> None:
    server = start_central(tmp_path / "data")
    r = httpx.post(server.namespaces, json={"title": "t"}, headers=auth(server.token))
    assert r.status_code == 200
    assert server.stop(sig) == 0
    log = server.log()
    assert "stopped" in log and "Traceback" not in log


def test_listen_line_and_access_log(central: Central) -> None:
    log = central.wait_log("listening on")
    assert f"listening on {central.url}" in log
    headers = auth(central.token)
    httpx.post(central.namespaces, json={"title": "logged"}, headers=headers)
    httpx.get(central.namespaces + "/nope/values/k%2Fx", headers=headers)
    httpx.get(central.url + "/client/v4/none")
    central.stop()
    lines = [
        line
        for line in central.log().splitlines()
        if "edgekv.access" in line and "/healthz" not in line  # start_central's probes
    ]
    assert len(lines) == 3
    post, get, unknown = lines
    assert f'"POST /client/v4/accounts/{central.account}/storage/kv/namespaces" 200' in post
    assert '"GET ' in get and '/nope/values/k%2Fx" 404' in get
    assert '"GET /client/v4/none" 404' in unknown
    for line in lines:
        assert line.split()[-2].endswith("ms") and line.split()[-1].endswith("B")
    assert central.token not in central.log()  # tokens are never logged


def test_uvicorn_server_works_too(tmp_path: Path) -> None:
    server = start_central(tmp_path / "data", args=("--server", "uvicorn"))
    try:
        headers = auth(server.token)
        ns = httpx.post(server.namespaces, json={"title": "u"}, headers=headers).json()
        url = f"{server.namespaces}/{ns['result']['id']}/values/a%2Fb"
        assert httpx.put(url, content=b"v", headers=headers).status_code == 200
        assert httpx.get(url, headers=headers).content == b"v"
        assert "uvicorn" in server.wait_log("listening on")
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--data", "x", "--database", "postgresql://h/db"], "exclude each other"),
        (["--database", "mysql://h/db"], "postgresql://"),
        (["--server", "hypercorn"], "hypercorn"),
    ],
)
def test_bad_arguments(tmp_path: Path, args: list[str], text: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edgekv", "serve", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
    )
    assert result.returncode == 2
    assert text in result.stderr


def test_port_in_use_fails_clearly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "edgekv", "serve", "--data", str(tmp_path), "--port", str(port)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=30,
        )
    assert result.returncode == 1
    assert (
        result.stderr.strip() == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


# -- durability -------------------------------------------------------------------------------
async def _write_load(server: Central, ns: str, seconds: float) -> dict[str, bytes]:
    """Concurrent single and bulk writes until the server dies; returns what was acknowledged."""
    acknowledged: dict[str, bytes] = {}
    stop_at = time.monotonic() + seconds

    async def writer(client: httpx.AsyncClient, w: int) -> None:
        i = 0
        while time.monotonic() < stop_at + 30:
            i += 1
            try:
                if i % 10 == 0:
                    items = [{"key": f"w{w}-bulk{i}-{j}", "value": f"b{j}"} for j in range(50)]
                    r = await client.put(f"{server.namespaces}/{ns}/bulk", json=items)
                    if r.status_code == 200:
                        acknowledged.update((x["key"], x["value"].encode()) for x in items)
                else:
                    key, value = f"w{w}-{i}", os.urandom(random.randint(1, 300))
                    r = await client.put(f"{server.namespaces}/{ns}/values/{key}", content=value)
                    if r.status_code == 200:
                        acknowledged[key] = value
            except httpx.TransportError:
                return  # the server is gone

    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(headers=auth(server.token), limits=limits, timeout=10) as client:
        tasks = [asyncio.create_task(writer(client, w)) for w in range(32)]
        await asyncio.sleep(seconds)
        # On a loaded machine writes are slow: go on until enough were acknowledged (bounded).
        deadline = time.monotonic() + 30
        while len(acknowledged) <= 250 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        server.proc.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    return acknowledged


async def test_kill_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    started = time.monotonic()
    data = tmp_path / "data"
    server = start_central(data)
    headers = auth(server.token)
    async with httpx.AsyncClient(headers=headers) as client:
        ns = (await client.post(server.namespaces, json={"title": "durable"})).json()
    ns_id = ns["result"]["id"]
    acknowledged = await _write_load(server, ns_id, seconds=2.0)
    assert server.proc.wait(10) == -signal.SIGKILL
    assert len(acknowledged) > 200  # the load really ran
    again = start_central(data, account=server.account, token=server.token)
    try:
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            keys = sorted(acknowledged)
            missing = []
            for i in range(0, len(keys), 100):
                batch = keys[i : i + 100]
                r = await client.post(
                    f"{again.namespaces}/{ns_id}/bulk/get",
                    json={"keys": batch, "encoding": "base64"},
                )
                values = r.json()["result"]["values"]
                for key in batch:
                    got = values[key]
                    if got is None or base64.b64decode(got) != acknowledged[key]:
                        missing.append(key)
        assert missing == []
    finally:
        again.stop()
    assert time.monotonic() - started < 60


def test_huge_upload_is_not_buffered(central: Central) -> None:
    """A 1 GB streamed upload is refused early and the server's peak memory stays small."""
    headers = auth(central.token)
    ns = httpx.post(central.namespaces, json={"title": "big"}, headers=headers).json()
    url = f"{central.namespaces}/{ns['result']['id']}/values/huge"

    chunk = b"x" * (1024 * 1024)
    sent = 0

    def gen() -> Iterator[bytes]:  # 1 GB in 1 MiB chunks, sent chunked (no length)
        nonlocal sent
        for _ in range(1024):
            sent += len(chunk)
            yield chunk

    try:
        r = httpx.put(url, content=gen(), headers=headers, timeout=30)
        assert r.status_code == 413
    except httpx.TransportError:
        pass  # the server closed the connection while we were still sending: refused early
    assert sent < 200 * 1024 * 1024
    status = Path(f"/proc/{central.proc.pid}/status").read_text()
    peak_kb = int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])
    assert peak_kb < 250 * 1024, f"peak RSS {peak_kb} kB"
    assert httpx.get(url, headers=headers).status_code == 404
    assert httpx.get(central.url + "/healthz").status_code == 200


def test_python_m_edgekv_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edgekv", "serve", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert result.returncode == 0
    for option in ("--data", "--database", "--host", "--port"):
        assert option in result.stdout


@pytest.mark.skipif("postgres" not in ENGINES, reason="PostgreSQL engine not selected")
async def test_serve_with_postgres(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from tests import pgcluster

    dsn = await pgcluster.fresh_database(request.getfixturevalue("postgres_dsn"))
    server = await asyncio.to_thread(start_central, tmp_path / "pg", database=dsn)
    try:
        async with httpx.AsyncClient(headers=auth(server.token)) as http:
            ns = (await http.post(server.namespaces, json={"title": "pg"})).json()["result"]["id"]
            url = f"{server.namespaces}/{ns}/values/a%2Fb"
            assert (
                await http.put(url, content=b"v", params={"expiration_ttl": 90})
            ).status_code == 200
            r = await http.get(url)
            assert r.content == b"v" and "expiration" in r.headers
        assert "store postgresql://" in server.wait_log("listening on")
    finally:
        assert await asyncio.to_thread(server.stop) == 0
    # a second server over the same database serves the same data
    again = await asyncio.to_thread(
        start_central, tmp_path / "pg2", database=dsn, account=server.account, token=server.token
    )
    try:
        async with httpx.AsyncClient(headers=auth(server.token)) as http:
            assert (await http.get(f"{again.namespaces}/{ns}/values/a%2Fb")).content == b"v"
    finally:
        await asyncio.to_thread(again.stop)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--data", "/proc/edgekv-nope"], "Error: cannot open the store /proc/edgekv-nope:"),
        (
            ["--database", "postgresql://user:secret@127.0.0.1:1/db"],
            "Error: cannot open the store postgresql://user:***@127.0.0.1:1/db:",
        ),
    ],
)
def test_unusable_store_fails_in_one_line(tmp_path: Path, args: list[str], text: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edgekv", "serve", *args, "--port", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(text) and result.stderr.count("\n") == 1
    assert "secret" not in result.stderr
