"""HTTP client benchmark for a location's cold read: one `GET …/values/{key}` of a 100-byte value
from a real central server on loopback, by each candidate client, at concurrency 1 and 64.

    python -m bench.bench_http_clients [--quick] [--loop uvloop|asyncio]

Needs aiohttp installed next to edgekv (`pip install aiohttp`); the decision it informed and its
figures: docs/dependencies.md, "HTTP client of locations".

The centre is `python -m edgekv serve` (SQLite, granian, access log off) in a child process, as
in bench/bench_edge.py; the clients run in this process (on uvloop by default, as `edgekv edge`
does). Every read is of a distinct key (a miss at the centre's SQLite too). Each client is set up
as `RemoteStore` would use it: one pool of 128 connections, keep-alive, the bearer token as a
default header, one overall deadline per request, the body read whole, the `expiration` and
`edgekv-metadata` headers looked up. The clients take turns in short rounds (A B C A B C …) so
that the noise of the two shared CPUs falls on all of them alike; latencies of all rounds are
pooled. Besides reads/s and latency, each row notes the client process's CPU time per read
(`time.process_time`), the figure least disturbed by other load on the machine.

Writes bench/results/http-clients[-quick][-asyncio].{md,json,png}.

Cases:
- `edge/http1.py`'s `Http1Pool` (the hand-written keep-alive HTTP/1.1 pool) — when present;
- aiohttp: one `ClientSession` over a `TCPConnector(limit=128)`, `auto_decompress=False`,
  `skip_auto_headers` (no User-Agent / Accept / Accept-Encoding), no cookie jar, a total and a
  connect timeout, pre-encoded `yarl.URL`s, `resp.read()`;
- httpx: one `AsyncClient` (HTTP/1.1, pooled, as `RemoteStore` used it for writes).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import itertools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import httpx
import yarl

from bench.bench_edge import central, write_cold
from bench.harness import Report, Sample, concurrent_sample
from bench.loadgen import VALUE
from edgekv.edge.remote import RemoteStore

CONCURRENCY = 64
MAX_CONNECTIONS = 128  # RemoteStore's default pool size


def check_answer(answer: tuple[int, bytes]) -> None:
    """Every read must get the 100-byte value."""
    status, body = answer
    if status != 200 or body != VALUE:
        raise AssertionError(f"unexpected answer {status} {body[:40]!r}")


class Client:
    """One candidate: `open()` inside the running loop, `read(key)`, `close()`."""

    name = ""

    def __init__(self, url: str, token: str, path: str) -> None:
        self.url, self.token, self.path = url, token, path  # path: …/namespaces/{ns}/values/

    async def open(self) -> None: ...

    async def read(self, key: str) -> tuple[int, bytes]:
        raise NotImplementedError

    async def close(self) -> None: ...


class Http1Client(Client):
    name = "edge/http1.py Http1Pool (hand-written)"

    async def open(self) -> None:
        http1: Any = importlib.import_module("edgekv.edge.http1")
        self.pool = http1.Http1Pool(
            self.url,
            headers={"authorization": f"Bearer {self.token}"},
            max_connections=MAX_CONNECTIONS,
            timeout=10.0,
            connect_timeout=2.0,
        )

    async def read(self, key: str) -> tuple[int, bytes]:
        # The pool applies its own overall deadline (`timeout`) to each request.
        answer = await self.pool.request("GET", self.path + quote(key, safe=""))
        answer.headers.get("expiration"), answer.headers.get("edgekv-metadata")
        return answer.status_code, answer.content

    async def close(self) -> None:
        await self.pool.aclose()


class AiohttpClient(Client):
    name = "aiohttp ClientSession (TCPConnector, keep-alive)"

    async def open(self) -> None:
        self.base = self.url + self.path
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=30.0),
            headers={"authorization": f"Bearer {self.token}"},
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # the centre sets no cookies
            timeout=aiohttp.ClientTimeout(total=10.0, connect=2.0),
        )

    async def read(self, key: str) -> tuple[int, bytes]:
        url = yarl.URL(self.base + quote(key, safe=""), encoded=True)
        async with self.session.get(url) as resp:
            body = await resp.read()
            resp.headers.get("expiration"), resp.headers.get("edgekv-metadata")
            return resp.status, body

    async def close(self) -> None:
        await self.session.close()


class HttpxClient(Client):
    name = "httpx AsyncClient (HTTP/1.1, pooled)"

    async def open(self) -> None:
        self.client = httpx.AsyncClient(
            base_url=self.url,
            headers={"authorization": f"Bearer {self.token}"},
            timeout=httpx.Timeout(10.0, connect=2.0),
            limits=httpx.Limits(
                max_connections=MAX_CONNECTIONS,
                max_keepalive_connections=MAX_CONNECTIONS,
                keepalive_expiry=30.0,
            ),
        )

    async def read(self, key: str) -> tuple[int, bytes]:
        async with asyncio.timeout(10.0):
            resp = await self.client.get(self.path + quote(key, safe=""))
        resp.headers.get("expiration"), resp.headers.get("edgekv-metadata")
        return resp.status_code, resp.content

    async def close(self) -> None:
        await self.client.aclose()


def candidates() -> list[type[Client]]:
    try:
        importlib.import_module("edgekv.edge.http1")
        found: list[type[Client]] = [Http1Client]
    except ImportError:  # replaced by aiohttp in RemoteStore; see docs/dependencies.md
        found = []
    return [*found, AiohttpClient, HttpxClient]


async def run(quick: bool, loop_name: str) -> Report:
    suffix = ("-quick" if quick else "") + ("" if loop_name == "uvloop" else f"-{loop_name}")
    report = Report(f"http-clients{suffix}", "HTTP clients for a location's cold read")
    rounds = 3 if quick else 6
    per_round = {1: 150 if quick else 400, CONCURRENCY: 4 if quick else 10}  # reads per worker
    httpx_c64 = 2 if quick else 4  # httpx collapses at 64: fewer reads keep the run short
    kinds = candidates()
    n_keys = sum(
        rounds * c * (per_round[c] if kind is not HttpxClient or c == 1 else httpx_c64)
        + c * 4  # warm-up
        for kind in kinds
        for c in per_round
    )
    report.notes += [
        "Centre: `python -m edgekv serve` (SQLite, granian, access log off) in a child process "
        f"on loopback; the clients in this process on {loop_name}. 2 CPUs shared by both "
        "(and by other work on the machine: compare rows of one run, not across runs).",
        "Each read: `GET /client/v4/accounts/{a}/storage/kv/namespaces/{ns}/values/{key}` of a "
        "distinct key (100-byte value), body read whole, value headers looked up.",
        f"Clients take turns in {rounds} rounds per concurrency; latencies are pooled. "
        "At concurrency 64 the rate is 64 / mean latency (Little's law).",
    ]
    with tempfile.TemporaryDirectory() as tmp, central(Path(tmp) / "central") as (url, tok, acct):
        setup = RemoteStore(url, token=tok, account_id=acct)
        info = await setup.create_namespace(acct, "bench")
        await write_cold(setup, info.id, n_keys)
        await setup.aclose()
        path = f"/client/v4/accounts/{acct}/storage/kv/namespaces/{info.id}/values/"
        keys = iter(f"cold:{i:07d}" for i in itertools.count())
        for c in (1, CONCURRENCY):
            group = f"cold read, 100-byte value, concurrency {c}"
            clients = [kind(url, tok, path) for kind in kinds]
            pooled: dict[str, list[int]] = {cl.name: [] for cl in clients}
            cpu: dict[str, float] = {cl.name: 0.0 for cl in clients}
            for cl in clients:
                await cl.open()
                # Open c connections, warm up.
                await concurrent_sample(cl.read, keys, 4, c, check_answer)
            for _ in range(rounds):
                for cl in clients:
                    per = httpx_c64 if isinstance(cl, HttpxClient) and c > 1 else per_round[c]
                    started = time.process_time()
                    sample = await concurrent_sample(cl.read, keys, per, c, check_answer)
                    cpu[cl.name] += time.process_time() - started
                    pooled[cl.name] += sample.latencies_ns
            for cl in clients:
                await cl.close()
            for i, cl in enumerate(clients):
                sample = Sample(pooled[cl.name], items=c)
                cpu_us = cpu[cl.name] / sample.calls * 1e6
                report.add(
                    group,
                    cl.name,
                    sample,
                    unit="reads/s",
                    baseline=i == 0,
                    note=f"client CPU {cpu_us:.0f} µs/read",
                )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (CI smoke test)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if args.loop == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        report = runner.run(run(args.quick, args.loop))
    for path in report.write():
        print(path)


if __name__ == "__main__":
    main()
