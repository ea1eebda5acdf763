"""server.py and `edgekv serve` as a real subprocess: first start, signals, logs, durability
under kill -9, memory under a huge upload, both ASGI servers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
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
from tests.servers import ROOT, free_port, healthy, wait_for


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


def _one_line_refusal(result: subprocess.CompletedProcess[bytes], port: int) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in lines[0]
    return lines[0]


def test_every_server_refuses_a_port_a_server_holds(tmp_path: Path) -> None:
    """granian binds with SO_REUSEPORT: without a check, `dev` and `edge` started on the port
    of a running `serve` and requests split between the processes at random."""
    from tests.workers.processes import run_cli
    from tests.workers.projects import ON_FETCH_WORKER, write_project

    server = start_central(tmp_path / "data")
    try:
        write_project(tmp_path, ON_FETCH_WORKER)
        env = {"EDGEKV_ACCOUNT_ID": server.account, "EDGEKV_API_TOKEN": server.token}
        port = str(server.port)
        for args in (
            ["dev", "--port", port, "--persist-to", "state"],
            ["edge", "--central", server.url, "--location", "x", "--port", port],
            ["serve", "--data", "other", "--port", port],
        ):
            _one_line_refusal(run_cli(args, cwd=tmp_path, env=env), server.port)
        with httpx.Client() as http:  # every request still reaches the one server
            for _ in range(20):
                r = http.get(server.url + "/client/v4/nope")
                assert r.status_code == 404 and r.json()["errors"][0]["code"] == 7003
    finally:
        assert server.stop() == 0


def test_two_servers_starting_at_once_on_one_port(tmp_path: Path) -> None:
    """The check and the bind are two steps; two servers started together must still not both
    listen: exactly one runs, the other stops with one line."""
    from tests.workers.processes import Server
    from tests.workers.projects import ON_FETCH_WORKER, write_project

    write_project(tmp_path, ON_FETCH_WORKER)
    port = free_port()
    servers = [
        Server(
            ["dev", "--persist-to", f"state-{i}", "--quiet"],
            cwd=tmp_path,
            log_path=tmp_path / f"dev-{i}.log",
            port=port,
        )
        for i in range(2)
    ]
    for server in servers:
        server.launch()
    try:
        wait_for(lambda: any(not s.running() for s in servers), 30, message="both kept running")
        running = [s for s in servers if s.running()]
        stopped = [s for s in servers if not s.running()]
        assert len(running) == 1 and len(stopped) == 1
        assert stopped[0].proc.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in stopped[0].log()
        wait_for(lambda: healthy(running[0].url), 20)
    finally:
        for server in servers:
            if server.running():
                assert server.stop() == 0


def test_the_start_lines_say_which_store_and_credentials(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_central(data, env_credentials=False)
    assert server.stop() == 0
    again = start_central(data, env_credentials=False)
    try:
        log = again.wait_log("listening on")
        assert f"store SQLite in {data.resolve()}" in log
        assert f"credentials: {(data / 'credentials.json').resolve()}" in log
    finally:
        assert again.stop() == 0


def raw_http(port: int, request: bytes, *, close_after: float | None = None) -> bytes:
    """Send `request` as it is on a new connection and read the answer until the server
    closes (or, with `close_after`, hang up that many seconds after sending)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        if close_after is not None:
            time.sleep(close_after)
            return b""
        answer = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
        return answer


BAD_CHUNKS = [
    b"zz\r\nhello\r\n0\r\n\r\n",  # a chunk size that is not hex
    b"5\r\nhello\r\nxyz\r\n\r\n",  # the second chunk size is not hex
    b"5\r\nhelloXX0\r\n\r\n",  # no CRLF after the chunk's data
]


@pytest.mark.parametrize("asgi", ["granian", "uvicorn"])
def test_malformed_chunked_framing_is_400(tmp_path: Path, asgi: str) -> None:
    server = start_central(tmp_path / "data", args=("--server", asgi))
    try:
        headers = auth(server.token)
        ns = httpx.post(server.namespaces, json={"title": "c"}, headers=headers).json()
        path = f"{server.namespaces}/{ns['result']['id']}".removeprefix(server.url)
        for tail in ("/values/k", "/bulk"):
            for body in BAD_CHUNKS:
                answer = raw_http(
                    server.port,
                    f"PUT {path}{tail} HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Bearer {server.token}\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n".encode()
                    + body,
                )
                assert answer.startswith(b"HTTP/1.1 400 "), answer
        # A client that hangs up mid-body is no error of the server either.
        raw_http(
            server.port,
            f"PUT {path}/values/k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            f"{server.token}\r\nContent-Length: 100\r\n\r\nabc".encode(),
            close_after=0.2,
        )
        url = f"{server.namespaces}/{ns['result']['id']}/values/k"
        assert httpx.get(url, headers=headers).status_code == 404  # nothing was written
        assert "Traceback" not in server.log()
    finally:
        assert server.stop() == 0


def test_sigterm_during_a_restart_after_kill_9_stops_cleanly(tmp_path: Path) -> None:
    """Crash (kill -9), restart, and SIGTERM at a random moment of the new start, repeatedly:
    once the server has begun (it has its store file open), every SIGTERM stops it within
    seconds with exit status 0, and every acknowledged write is still there. (A signal in the
    first instant, while Python itself is still loading, takes the default action: the process
    ends at once.)"""

    def store_open() -> bool:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{server.proc.pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd).endswith("edgekv.sqlite3"):
                        return True
        return False

    rng = random.Random(16)
    server = start_central(tmp_path / "data")
    headers = auth(server.token)
    ns = httpx.post(server.namespaces, json={"title": "r"}, headers=headers).json()["result"]["id"]
    values = f"{server.namespaces}/{ns}/values"
    for i in range(8):
        assert httpx.put(f"{values}/k{i}", content=str(i), headers=headers).status_code == 200
        server.kill()
        server.launch()
        if i % 2:  # at once: whatever the moment, it must not linger
            time.sleep(rng.uniform(0.0, 0.3))
            began = time.monotonic()
            assert server.stop(signal.SIGTERM, timeout=10) in (0, -signal.SIGTERM)
        else:
            wait_for(store_open, 30)
            time.sleep(rng.uniform(0.0, 0.5))
            began = time.monotonic()
            assert server.stop(signal.SIGTERM, timeout=10) == 0, server.log()[-2000:]
        assert time.monotonic() - began < 5
        server.start()
    for i in range(8):
        r = httpx.get(f"{values}/k{i}", headers=headers)
        assert (r.status_code, r.text) == (200, str(i))
    assert server.stop() == 0
    assert "Traceback" not in server.log()


def test_readyz_touches_the_store(tmp_path: Path) -> None:
    """/healthz is liveness; /readyz answers 200 only while the store answers (a PostgreSQL of
    its own here, stopped and started again)."""
    from tests import pgcluster

    with pgcluster.running_cluster() as cluster:
        server = start_central(tmp_path / "pg", database=cluster.dsn)
        try:
            r = httpx.get(server.url + "/readyz")
            assert (r.status_code, r.json()["result"]) == (200, {"status": "ready"})
            cluster.stop()
            r = httpx.get(server.url + "/readyz", timeout=30)
            assert r.status_code == 503 and r.json()["errors"][0]["code"] == 10050, r.text
            assert r.json()["errors"][0]["message"].startswith("ready: 'store unavailable")
            assert httpx.get(server.url + "/healthz").status_code == 200  # still alive
            cluster.start_same_port()
            wait_for(lambda: httpx.get(server.url + "/readyz").status_code == 200, 30)
        finally:
            assert server.stop() == 0


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
