"""Scale-out: several `edgekv serve --database postgresql://…` processes on one database are one
service. Real subprocesses on free loopback ports, a real PostgreSQL (tests/pgcluster.py), httpx
and the official `cloudflare` SDK as clients; no mocks, every wait bounded.

- data written through one server is read through the others (value bytes, metadata, the
  `expiration` header, listing with cursors handed from server to server, bulk calls);
- namespaces created / renamed / deleted through one are seen by the others at once, and tokens
  (the EDGEKV_API_TOKEN of one server, `edgekv token create --database …`) work on every server,
  with their limits (read-only, one namespace) enforced by every server;
- concurrent writers to one key through two servers end with exactly one whole written value
  (value and metadata of the same write), and readers never see a mix meanwhile;
- the database going down during traffic (crash, then a clean restart): every server answers
  503 with the error envelope (code 10050) promptly, never 500, 403, 404 or a hang; it serves
  again afterwards without help, and every write acknowledged with 200 is there.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from cloudflare import Cloudflare, PermissionDeniedError

from edgekv.store.postgres import SCHEMA_VERSION
from tests import pgcluster
from tests.servers import ROOT, CentralProcess, free_port, wait_ready

pytestmark = pytest.mark.skipif(
    "postgres" not in os.environ.get("EDGEKV_TEST_ENGINES", "postgres"),
    reason="postgres engine not selected (EDGEKV_TEST_ENGINES)",
)

START_TIMEOUT = 30.0  # seconds for a server to answer /healthz
STOP_TIMEOUT = 15.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_account() -> str:
    return os.urandom(16).hex()


def new_token() -> str:
    return base64.urlsafe_b64encode(os.urandom(30)).decode()


class Server(CentralProcess):
    """One `python -m edgekv serve --database DSN` child process, named by a letter."""

    def __init__(self, name: str, dsn: str, logs: Path, account: str, token: str | None) -> None:
        self.name = name
        port = free_port()
        super().__init__(
            ["--database", dsn],
            account=account,
            token=token,
            credentials=token is not None,
            log_path=logs / f"server-{name}-{port}.log",
            port=port,
        )

    def ns(self, namespace_id: str) -> str:
        return f"{self.namespaces}/{namespace_id}"

    def value(self, namespace_id: str, key: str) -> str:
        return f"{self.namespaces}/{namespace_id}/values/{quote(key, safe='')}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM by PID; SIGKILL by PID if it does not exit in time. Returns the exit code."""
        try:
            return super().stop(sig, timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} ignored SIGTERM:\n{self.log()[-3000:]}") from None


@contextlib.contextmanager
def serving(
    dsn: str, logs: Path, account: str, token: str, names: str, *, env_for: str | None = None
) -> Iterator[list[Server]]:
    """Start one server per letter of `names`, all at once, on `dsn`. EDGEKV_ACCOUNT_ID and
    EDGEKV_API_TOKEN go to the server named `env_for` only (default: every server)."""
    servers: list[Server] = []
    try:
        for name in names:
            given = env_for is None or name == env_for
            servers.append(Server(name, dsn, logs, account, token if given else None).launch())
        wait_ready(servers, START_TIMEOUT)
        yield servers
    finally:
        for server in servers:
            with contextlib.suppress(Exception):
                server.stop()


@dataclass
class Service:
    dsn: str
    account: str
    token: str  # the EDGEKV_API_TOKEN given to server a only
    servers: list[Server]
    clients: list[httpx.Client] = field(default_factory=list)

    def http(self, token: str | None = None) -> httpx.Client:
        client = httpx.Client(headers=bearer(token or self.token), timeout=30)
        self.clients.append(client)
        return client


def token_create(dsn: str, account: str, *args: str) -> str:
    """`edgekv token create --database DSN --json …`: the new secret."""
    result = subprocess.run(
        [sys.executable, "-m", "edgekv", "token", "create", "--database", dsn,
         "--account-id", account, "--json", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["account_id"] == account
    return str(payload["api_token"])


@pytest.fixture(scope="module")
def service(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Three servers started at the same moment on one fresh database of the session cluster;
    only server a is given EDGEKV_ACCOUNT_ID / EDGEKV_API_TOKEN."""
    dsn = asyncio.run(pgcluster.fresh_database(postgres_dsn))
    account, token = new_account(), new_token()
    logs = tmp_path_factory.mktemp("scaleout")
    with serving(dsn, logs, account, token, "abc", env_for="a") as servers:
        svc = Service(dsn, account, token, servers)
        try:
            yield svc
        finally:
            for client in svc.clients:
                client.close()


def create_namespace(http: httpx.Client, server: Server, title: str) -> str:
    r = http.post(server.namespaces, json={"title": title})
    assert r.status_code == 200, r.text
    return str(r.json()["result"]["id"])


def error_code(r: httpx.Response) -> int:
    body = r.json()
    assert body["success"] is False and body["result"] is None, body
    return int(body["errors"][0]["code"])


def metadata_of(r: httpx.Response) -> Any:
    """The `edgekv-metadata` header of a value read (base64url JSON), or None."""
    raw = r.headers.get("edgekv-metadata")
    if raw is None:
        return None
    return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))


# -- startup ---------------------------------------------------------------------------------
def test_servers_started_together_share_one_schema_and_the_bootstrap_token(
    service: Service,
) -> None:
    a, b, c = service.servers
    with service.http() as http:  # the EDGEKV_API_TOKEN that only server a was given
        for server in (a, b, c):
            r = http.get(server.api + "/user/tokens/verify")
            assert r.status_code == 200, (server.name, r.text)
            r = http.get(server.namespaces)
            assert r.status_code == 200 and r.json()["success"] is True, (server.name, r.text)
    # b and c had no credentials: if they made an admin token of their own, it works on a too
    for server in (b, c):
        for line in server.log().splitlines():
            if line.strip().startswith("EDGEKV_API_TOKEN="):
                admin = line.split("=", 1)[1].strip()
                r = httpx.get(a.api + "/user/tokens/verify", headers=bearer(admin), timeout=10)
                assert r.status_code == 200, r.text

    async def schema_versions() -> list[int]:
        con = await asyncpg.connect(service.dsn, timeout=10)
        try:
            return [r[0] for r in await con.fetch("SELECT version FROM edgekv_schema")]
        finally:
            await con.close()

    # three concurrent first starts migrated once
    assert sorted(asyncio.run(schema_versions())) == list(range(1, SCHEMA_VERSION + 1))


# -- (a) data ----------------------------------------------------------------------------------
def test_writes_through_one_server_are_read_through_the_others(service: Service) -> None:
    a, b, c = service.servers
    http = service.http()
    ns = create_namespace(http, a, "data")
    key = "dir/a b:é🙂%"
    value = bytes(range(256)) * 40
    metadata = {"who": "a", "n": [1, 2, 3], "s": "é"}
    r = http.put(
        a.value(ns, key),
        params={"expiration_ttl": 3600},
        files={"value": ("blob", value, "application/octet-stream")},
        data={"metadata": json.dumps(metadata)},
    )
    assert r.status_code == 200, r.text
    reads = [http.get(s.value(ns, key)) for s in (a, b, c)]
    for r in reads:
        assert r.status_code == 200 and r.content == value, r.text
        assert metadata_of(r) == metadata
    expiration = int(reads[0].headers["expiration"])
    assert abs(expiration - (time.time() + 3600)) < 30
    assert {r.headers["expiration"] for r in reads} == {str(expiration)}
    for server in (b, c):
        r = http.get(f"{server.ns(ns)}/metadata/{quote(key, safe='')}")
        assert r.status_code == 200 and r.json()["result"] == metadata
        r = http.get(f"{server.ns(ns)}/keys")
        assert r.json()["result"] == [{"name": key, "expiration": expiration, "metadata": metadata}]

    # a bulk write through c; listed in pages whose cursor is handed from server to server
    items = [{"key": f"item:{i:04d}", "value": f"v{i}", "metadata": {"i": i}} for i in range(250)]
    r = http.put(f"{c.ns(ns)}/bulk", json=items)
    assert r.status_code == 200, r.text
    names: list[str] = []
    cursor = ""
    for server in (a, b, c, a):
        params: dict[str, Any] = {"prefix": "item:", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = http.get(f"{server.ns(ns)}/keys", params=params).json()
        assert page["success"] is True, page
        names += [k["name"] for k in page["result"]]
        assert all(k["metadata"] == {"i": int(k["name"][5:])} for k in page["result"])
        cursor = page["result_info"]["cursor"]
        if not cursor:
            break
    assert names == [f"item:{i:04d}" for i in range(250)]
    r = http.post(
        f"{a.ns(ns)}/bulk/get", json={"keys": [f"item:{i:04d}" for i in range(0, 250, 3)]}
    )
    assert r.json()["result"]["values"] == {f"item:{i:04d}": f"v{i}" for i in range(0, 250, 3)}

    # overwrite through b, read through a at once; delete through c, gone everywhere at once
    assert http.put(b.value(ns, key), content=b"second").status_code == 200
    r = http.get(a.value(ns, key))
    assert r.content == b"second" and "expiration" not in r.headers and metadata_of(r) is None
    assert http.delete(c.value(ns, key)).status_code == 200
    for server in (a, b):
        r = http.get(server.value(ns, key))
        assert r.status_code == 404 and error_code(r) == 10009
    r = http.post(f"{a.ns(ns)}/bulk/delete", json=[f"item:{i:04d}" for i in range(250)])
    assert r.status_code == 200, r.text
    assert http.get(f"{b.ns(ns)}/keys").json()["result"] == []


def test_cloudflare_sdk_across_servers(service: Service) -> None:
    a, b, c = service.servers
    with (
        Cloudflare(base_url=a.api, api_token=service.token, max_retries=0) as cf_a,
        Cloudflare(base_url=b.api, api_token=service.token, max_retries=0) as cf_b,
        Cloudflare(base_url=c.api, api_token=service.token, max_retries=0) as cf_c,
    ):
        acct = service.account
        created = cf_a.kv.namespaces.create(account_id=acct, title="sdk")
        assert created is not None
        ns = created.id
        got = cf_b.kv.namespaces.get(ns, account_id=acct)
        assert got is not None and got.title == "sdk"
        data = os.urandom(5000)
        cf_a.kv.namespaces.values.update(
            "to-do:1",
            account_id=acct,
            namespace_id=ns,
            value=("blob.bin", data),
            metadata={"done": False},
            expiration_ttl=600,
        )
        raw = cf_b.kv.namespaces.values.with_raw_response.get(
            "to-do:1", account_id=acct, namespace_id=ns
        )
        assert raw.read() == data
        expiration = int(raw.headers["expiration"])
        assert abs(expiration - (time.time() + 600)) < 30
        assert cf_c.kv.namespaces.metadata.get("to-do:1", account_id=acct, namespace_id=ns) == {
            "done": False
        }
        listed = list(cf_c.kv.namespaces.keys.list(ns, account_id=acct, prefix="to-do:"))
        assert [(k.name, k.expiration, k.metadata) for k in listed] == [
            ("to-do:1", expiration, {"done": False})
        ]
        cf_b.kv.namespaces.update(ns, account_id=acct, title="sdk renamed")
        got = cf_c.kv.namespaces.get(ns, account_id=acct)
        assert got is not None and got.title == "sdk renamed"
        cf_c.kv.namespaces.delete(ns, account_id=acct)
        assert ns not in [n.id for n in cf_a.kv.namespaces.list(account_id=acct)]


# -- (b) namespaces and tokens ------------------------------------------------------------------
def test_namespace_changes_are_seen_by_every_server(service: Service) -> None:
    a, b, c = service.servers
    http = service.http()
    ns = create_namespace(http, a, "first title")
    for server in (b, c):
        r = http.get(server.ns(ns))
        assert r.status_code == 200 and r.json()["result"]["title"] == "first title"
    listed = http.get(c.namespaces, params={"per_page": 1000}).json()["result"]
    assert {"id": ns, "title": "first title"}.items() <= next(
        n for n in listed if n["id"] == ns
    ).items()
    # every server has now used the namespace (and may remember who owns it)
    for server in (a, b, c):
        assert http.put(server.value(ns, f"k-{server.name}"), content=b"v").status_code == 200

    r = http.put(b.ns(ns), json={"title": "second title"})
    assert r.status_code == 200, r.text
    for server in (a, c):
        assert http.get(server.ns(ns)).json()["result"]["title"] == "second title"
    titles = {
        n["title"] for n in http.get(a.namespaces, params={"per_page": 1000}).json()["result"]
    }
    assert "second title" in titles and "first title" not in titles
    r = http.post(c.namespaces, json={"title": "second title"})  # unique across servers
    assert r.status_code == 400 and error_code(r) == 10014
    other = create_namespace(http, c, "first title")  # free again since the rename

    assert http.delete(c.ns(ns)).status_code == 200
    for server in (a, b, c):
        r = http.get(server.ns(ns))
        assert r.status_code == 404 and error_code(r) == 10013, (server.name, r.text)
        r = http.get(server.value(ns, "k-a"))  # its entries went with it
        assert r.status_code == 404 and error_code(r) == 10013, (server.name, r.text)
        r = http.put(server.value(ns, "k-new"), content=b"v")  # no write resurrects it
        assert r.status_code == 404 and error_code(r) == 10013, (server.name, r.text)
        r = http.get(f"{server.ns(ns)}/keys")
        assert r.status_code == 404 and error_code(r) == 10013, (server.name, r.text)
    r = http.delete(b.ns(ns))
    assert r.status_code == 404 and error_code(r) == 10013
    assert http.get(a.ns(other)).json()["result"]["title"] == "first title"


def test_tokens_made_anywhere_work_everywhere_with_their_limits(service: Service) -> None:
    a, b, c = service.servers
    admin = service.http()
    ns = create_namespace(admin, a, "tokens")
    elsewhere = create_namespace(admin, b, "tokens elsewhere")
    assert admin.put(a.value(ns, "k"), content=b"original").status_code == 200

    # read-write, made by the command line while the servers run: works at once everywhere
    rw = service.http(token_create(service.dsn, service.account, "--name", "rw"))
    made = create_namespace(rw, b, "made with the cli token")
    assert rw.put(c.value(made, "x"), content=b"1").status_code == 200
    assert rw.get(a.value(made, "x")).content == b"1"
    assert rw.delete(a.ns(made)).status_code == 200

    ro = service.http(token_create(service.dsn, service.account, "--read-only"))
    for server in (a, b, c):
        r = ro.get(server.value(ns, "k"))
        assert r.status_code == 200 and r.content == b"original", (server.name, r.text)
        refused = [
            ro.put(server.value(ns, "k"), content=b"changed"),
            ro.delete(server.value(ns, "k")),
            ro.put(f"{server.ns(ns)}/bulk", json=[{"key": "k", "value": "changed"}]),
            ro.post(f"{server.ns(ns)}/bulk/delete", json=["k"]),
            ro.post(server.namespaces, json={"title": "by a read-only token"}),
            ro.put(server.ns(ns), json={"title": "renamed by a read-only token"}),
            ro.delete(server.ns(ns)),
        ]
        for r in refused:
            assert r.status_code == 403 and error_code(r) == 10037, (server.name, r.text)
    assert admin.get(c.value(ns, "k")).content == b"original"
    assert admin.get(b.ns(ns)).json()["result"]["title"] == "tokens"

    limited = service.http(token_create(service.dsn, service.account, "--namespace-id", ns))
    for server in (a, b, c):
        assert limited.get(server.value(ns, "k")).status_code == 200
        r = limited.get(server.value(elsewhere, "k"))
        assert r.status_code == 403 and error_code(r) == 10000, (server.name, r.text)

    with Cloudflare(base_url=c.api, api_token=ro.headers["Authorization"][7:], max_retries=0) as cf:
        assert cf.kv.namespaces.values.get(
            "k", account_id=service.account, namespace_id=ns
        ).read() == (b"original")
        with pytest.raises(PermissionDeniedError) as denied:
            cf.kv.namespaces.values.update(
                "k", account_id=service.account, namespace_id=ns, value=b"changed"
            )
        assert "10037" in str(denied.value)


# -- (c) concurrent writers --------------------------------------------------------------------
async def test_concurrent_writers_to_one_key_end_with_one_whole_value(service: Service) -> None:
    """64 concurrent PUTs (32 through each of two servers) of distinct 64 KiB values, each with
    metadata naming it, to one key, while a third server reads the key: every read and the final
    state are exactly one written value with its own metadata, identical on every server."""
    a, b, c = service.servers
    headers = bearer(service.token)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with (
        httpx.AsyncClient(headers=headers, timeout=60, limits=limits) as writer,
        httpx.AsyncClient(headers=headers, timeout=60) as reader,
    ):
        r = await reader.post(a.namespaces, json={"title": "hot key"})
        ns = r.json()["result"]["id"]
        written: dict[bytes, int] = {}  # value -> its index (also in its metadata)
        observed = 0

        async def put(server: Server, index: int, value: bytes) -> int:
            r = await writer.put(
                server.value(ns, "hot"),
                files={"value": ("v", value, "application/octet-stream")},
                data={
                    "metadata": json.dumps({"i": index, "sha": hashlib.sha256(value).hexdigest()})
                },
            )
            return r.status_code

        def check(r: httpx.Response, where: str) -> int:
            assert r.status_code == 200, (where, r.status_code, r.text[:200])
            index = written.get(r.content)
            assert index is not None, f"{where}: a value nobody wrote ({len(r.content)} bytes)"
            meta = metadata_of(r)
            assert meta == {"i": index, "sha": hashlib.sha256(r.content).hexdigest()}, where
            return index

        async def read_while(writes: asyncio.Future[list[int]], first: bool) -> None:
            nonlocal observed
            while not writes.done():
                r = await reader.get(c.value(ns, "hot"))
                if r.status_code == 404 and first:
                    continue  # nothing committed yet in the first round
                check(r, "read during the writes")
                observed += 1

        for round_ in range(3):
            values = [os.urandom(64 * 1024) for _ in range(64)]
            base = len(written)
            written.update({v: base + i for i, v in enumerate(values)})
            writes = asyncio.ensure_future(
                asyncio.gather(*(put(a if i % 2 else b, base + i, v) for i, v in enumerate(values)))
            )
            await asyncio.wait_for(
                asyncio.gather(writes, read_while(writes, round_ == 0)), timeout=120
            )
            assert writes.result() == [200] * 64, writes.result()
            finals = [await reader.get(s.value(ns, "hot")) for s in (a, b, c)]
            indexes = {check(r, f"final of round {round_}") for r in finals}
            assert len(indexes) == 1 and base <= indexes.pop() < base + 64
            assert len({r.content for r in finals}) == 1
        assert observed > 0  # the reader did overlap with the writers
        listed = (await reader.get(f"{b.ns(ns)}/keys")).json()["result"]
        assert [k["name"] for k in listed] == ["hot"]


# -- (d) the database restarts during traffic ---------------------------------------------------
@dataclass
class Traffic:
    acked: dict[str, bytes] = field(default_factory=dict)  # key -> value, answered 200
    ok: dict[str, int] = field(default_factory=dict)  # server -> 200 answers
    unavailable: dict[str, int] = field(default_factory=dict)  # server -> 503 answers
    wrong: list[str] = field(default_factory=list)  # anything else: the test fails on it
    slowest_failure: float = 0.0

    def count(self, bucket: dict[str, int], server: Server) -> None:
        bucket[server.name] = bucket.get(server.name, 0) + 1


def is_unavailable(r: httpx.Response) -> bool:
    """503 with the v4 error envelope and code 10050."""
    if r.status_code != 503:
        return False
    try:
        body = r.json()
    except ValueError:
        return False
    errors = body.get("errors", [])
    return (
        body.get("success") is False
        and body.get("result") is None
        and [e.get("code") for e in errors] == [10050]
        # the driver's text (host, port, errno) stays in the server's log
        and all("refused" not in e.get("message", "").lower() for e in errors)
    )


async def wait_for(cond: Any, within: float, what: str, traffic: Traffic) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert not traffic.wrong, traffic.wrong[:5]
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what}: {len(traffic.acked)} acknowledged writes, 200s "
            f"{traffic.ok}, 503s {traffic.unavailable}"
        )
        await asyncio.sleep(0.05)


async def test_database_restart_during_traffic(tmp_path: Path) -> None:
    """Writers and readers on two servers while the database crashes (immediate stop) and
    comes back, and then restarts cleanly: while it is down every answer is a prompt 503
    envelope; afterwards both servers serve again by themselves; every acknowledged write is
    in the database; both servers still stop cleanly."""
    account, token = new_account(), new_token()
    with pgcluster.running_cluster() as cluster:  # our own: stopping it disturbs no other test
        dsn = await pgcluster.fresh_database(cluster.dsn)
        with serving(dsn, tmp_path, account, token, "ab") as servers:
            await _restart_under_traffic(cluster, dsn, servers, account, token)
            codes = [await asyncio.to_thread(s.stop) for s in servers]
            logs = {s.name: s.log() for s in servers}
    assert codes == [0, 0], logs
    for name, log in logs.items():
        # (asyncpg itself logs its failed reconnections with tracebacks: not ours, not checked)
        assert '" 500 ' not in log and "unexpected error" not in log, f"{name}:\n{log[-3000:]}"


async def _restart_under_traffic(
    cluster: pgcluster.Cluster, dsn: str, servers: list[Server], account: str, token: str
) -> None:
    a, b = servers
    traffic = Traffic()
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=20)
    async with httpx.AsyncClient(headers=bearer(token), timeout=20, limits=limits) as http:
        r = await http.post(a.namespaces, json={"title": "restart"})
        ns = r.json()["result"]["id"]
        # Seen by neither server before the outage: its checks must reach the database then.
        r = await http.post(a.namespaces, json={"title": "never used"})
        unseen_ns = r.json()["result"]["id"]
        unseen_token = await asyncio.to_thread(token_create, dsn, account)
        await http.put(a.value(ns, "seed"), content=b"seed")

        async def call(server: Server, method: str, url: str, **kw: Any) -> httpx.Response | None:
            start = time.monotonic()
            try:
                r = await http.request(method, url, **kw)
            except httpx.HTTPError as exc:  # a hang (timeout) or a dropped connection
                traffic.wrong.append(f"{server.name} {method}: {exc!r}")
                return None
            if r.status_code == 200:
                traffic.count(traffic.ok, server)
            elif is_unavailable(r):
                traffic.count(traffic.unavailable, server)
                traffic.slowest_failure = max(traffic.slowest_failure, time.monotonic() - start)
            else:
                traffic.wrong.append(f"{server.name} {method} {url}: {r.status_code} {r.text}")
            return r

        async def writer(server: Server, w: int) -> None:
            for i in range(1_000_000):
                if stop.is_set():
                    return
                key = f"{server.name}{w}-{i:06d}"
                value = key.encode() * 8
                r = await call(server, "PUT", server.value(ns, key), content=value)
                if r is not None and r.status_code == 200:
                    traffic.acked[key] = value
                elif r is not None:
                    await asyncio.sleep(0.02)

        async def reader(server: Server) -> None:
            while not stop.is_set():
                r = await call(server, "GET", server.value(ns, "seed"))
                if r is not None and r.status_code == 200 and r.content != b"seed":
                    traffic.wrong.append(f"{server.name} read {r.content!r}")
                await asyncio.sleep(0.01 if r is not None and r.status_code == 200 else 0.02)

        def acked_by(name: str) -> int:
            return sum(1 for k in traffic.acked if k.startswith(name))

        async def more_acks(within: float, what: str) -> None:
            goal = {s.name: acked_by(s.name) + 30 for s in servers}
            await wait_for(
                lambda: all(acked_by(n) >= g for n, g in goal.items()), within, what, traffic
            )

        tasks = [asyncio.create_task(writer(s, w)) for s in servers for w in range(2)]
        tasks += [asyncio.create_task(reader(s)) for s in servers]
        try:
            await more_acks(30, "writes before the crash")
            await asyncio.to_thread(cluster.stop, "immediate")
            before = dict(traffic.unavailable)
            await wait_for(
                lambda: all(traffic.unavailable.get(s.name, 0) >= before.get(s.name, 0) + 5
                            for s in servers),
                20, "503s while the database is down", traffic,
            )  # fmt: skip
            # Every kind of call, including those whose token or namespace no server has
            # cached and a token nobody made (which cannot be told from a valid one now),
            # answers 503 (not 403 or 404) while the database is down.
            fresh = bearer(unseen_token)
            for server in servers:
                probes = [
                    await http.get(server.value(ns, "seed")),
                    await http.get(f"{server.ns(ns)}/keys"),
                    await http.put(server.value(ns, "down"), content=b"x"),
                    await http.put(f"{server.ns(ns)}/bulk", json=[{"key": "d", "value": "x"}]),
                    await http.post(server.namespaces, json={"title": "while down"}),
                    await http.get(server.namespaces),
                    await http.get(f"{server.ns(unseen_ns)}/keys"),
                    await http.get(server.value(ns, "seed"), headers=fresh),
                    await http.get(server.value(ns, "seed"), headers=bearer(new_token())),
                ]
                for r in probes:
                    assert is_unavailable(r), (server.name, r.request.url, r.status_code, r.text)
            await asyncio.to_thread(cluster.start_same_port)
            await more_acks(40, "writes after the crash")

            # A clean restart (fast shutdown, down for a second) while the traffic runs on.
            before = dict(traffic.unavailable)
            await asyncio.to_thread(pgcluster.restart, dsn, "fast", 1.0)
            await more_acks(40, "writes after the clean restart")
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
        assert not traffic.wrong, traffic.wrong[:10]
        assert all(traffic.unavailable.get(s.name, 0) > before.get(s.name, 0) for s in servers), (
            "the clean restart went unnoticed",
            before,
            traffic.unavailable,
        )
        assert traffic.slowest_failure < 10, f"a 503 took {traffic.slowest_failure:.1f} s"
        r = await http.get(b.value(ns, "seed"), headers=bearer(unseen_token))
        assert r.status_code == 200 and r.content == b"seed"

        # Every acknowledged write, read back through the other server than the one it went to.
        missing: list[str] = []
        for wrote, reads in ((a, b), (b, a)):
            keys = sorted(k for k in traffic.acked if k.startswith(wrote.name))
            for i in range(0, len(keys), 100):
                chunk = keys[i : i + 100]
                r = await http.post(f"{reads.ns(ns)}/bulk/get", json={"keys": chunk})
                assert r.status_code == 200, r.text
                got = r.json()["result"]["values"]
                missing += [k for k in chunk if got.get(k) != traffic.acked[k].decode()]
        total = len(traffic.acked)
        assert not missing, f"{len(missing)} of {total} acknowledged writes lost: {missing[:5]}"
