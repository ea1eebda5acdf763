"""REST benchmark: the central server (`edgekv serve`, SQLite store) over HTTP, against a bare
ASGI app on the same ASGI server and process model, for each candidate server; plus the JSON
library on the REST API's own payloads.

    python -m bench.bench_rest [--quick] [--servers granian,uvicorn]

Load comes from `wrk` (apt-get install wrk) on loopback; the servers are real subprocesses
(`python -m edgekv serve`, access log on and written to a file, as in production). Writes
bench/results/rest.{md,json,png} (rest-quick.* with --quick).

Cases: hot GET of a 100-byte value (64 connections) vs the bare app returning 100 bytes;
one bulk write of 10,000 pairs per request; 64 concurrent single PUTs (durable: each answered
only after its commit); JSON encode/decode with orjson vs the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.harness import Report, Sample, measure
from bench.loadgen import (
    VALUE,
    bare_command,
    bearer,
    free_port,
    median_run,
    process,
    require,
    serve_process,
    wrk,
)

BULK = 10_000
CONCURRENCY = 64
API = "/client/v4/accounts/{a}/storage/kv/namespaces"


# -- REST calls (bench/bench_pg.py makes them too) -----------------------------------------------
PUT_SCRIPT = """
wrk.method = "PUT"
wrk.body = string.rep("v", 100)
wrk.headers["Content-Type"] = "application/octet-stream"
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, "{path}" .. counter)
end
"""


def put_script(directory: Path, path: str) -> Path:
    """A wrk script in `directory`: PUTs of 100 bytes to `path` + a counter (a new key each)."""
    script = directory / "put.lua"
    script.write_text(PUT_SCRIPT.replace("{path}", path))
    return script


def hot_namespace(http: httpx.Client, url: str, account: str) -> str:
    """A new namespace on the server at `url`, holding the 100-byte value `hot`: its path."""
    path = API.format(a=account)
    ns = http.post(url + path, json={"title": "bench"}).json()["result"]["id"]
    http.put(f"{url}{path}/{ns}/values/hot", content=VALUE).raise_for_status()
    return f"{path}/{ns}"


def bulk_writes(http: httpx.Client, namespace_url: str, rounds: int, prefix: str) -> Sample:
    """One request of 10,000 new pairs (keys `prefix`ROUND-I) at a time; the first round warms
    up."""
    latencies = []
    for r in range(rounds + 1):
        body = orjson.dumps(
            [{"key": f"{prefix}{r}-{i:05d}", "value": "v" * 100} for i in range(BULK)]
        )
        t0 = time.perf_counter_ns()
        http.put(
            f"{namespace_url}/bulk", content=body, headers={"Content-Type": "application/json"}
        ).raise_for_status()
        if r:
            latencies.append(time.perf_counter_ns() - t0)
    return Sample(latencies, BULK)


# -- the cases -------------------------------------------------------------------------------
def bench_server(
    report: Report, server: str, seconds: float, rounds: int, bulk_rounds: int, tmp: Path
) -> None:
    get_group = f"hot GET, 100-byte value ({server})"
    account, token = secrets.token_hex(16), secrets.token_urlsafe(30)
    bare_port = free_port()
    bare = bare_command(bare_port, "application/octet-stream", server)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    data = ["--data", str(tmp / f"data-{server}"), "--server", server]
    off_data = ["--data", str(tmp / f"data-{server}-off"), "--server", server, "--no-metrics"]
    # Neither counters nor access log: what the read itself costs (not how anyone should run).
    bare_data = ["--data", str(tmp / f"data-{server}-bare"), "--server", server]
    bare_data += ["--no-metrics", "--quiet"]
    auth = bearer(token)
    login = {"account": account, "token": token}
    # The servers run at once (each idle while another is measured) and the rounds
    # alternate, so a change in the load of this shared machine hits every side alike.
    with (
        process(bare, f"http://127.0.0.1:{bare_port}/", tmp / f"bare-{server}.log", env=env) as b,
        serve_process(data, tmp / f"serve-{server}.log", **login) as (url, rest),
        serve_process(off_data, tmp / f"off-{server}.log", **login) as (off_url, off_proc),
        serve_process(bare_data, tmp / f"quiet-{server}.log", **login) as (quiet_url, quiet_proc),
        httpx.Client(headers=auth, timeout=60) as http,
    ):
        ns_path = hot_namespace(http, url, account)
        off_path = hot_namespace(http, off_url, account)
        quiet_path = hot_namespace(http, quiet_url, account)
        cases = {
            "bare": (f"http://127.0.0.1:{bare_port}/", b.pid),
            "off": (f"{off_url}{off_path}/values/hot", off_proc.pid),
            "quiet": (f"{quiet_url}{quiet_path}/values/hot", quiet_proc.pid),
            "rest": (f"{url}{ns_path}/values/hot", rest.pid),
        }
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, (case_url, pid) in cases.items():
                runs[name].append(wrk(case_url, seconds, headers=auth, watch=[pid]))
        bare_runs, rest_runs, off_runs = runs["bare"], runs["rest"], runs["off"]
        report.add(
            get_group,
            f"{server}: bare ASGI app, 100 bytes",
            median_run(bare_runs),
            unit="req/s",
            baseline=True,
        )
        report.add(
            get_group,
            f"{server}: edgekv REST GET value",
            median_run(rest_runs),
            unit="req/s",
            target_ratio=0.8,
            note="auth + store read (hot rows) + access log + request counters",
        )
        report.add(
            get_group,
            f"{server}: edgekv REST GET value, --no-metrics --quiet",
            median_run(runs["quiet"]),
            unit="req/s",
            note="no counters, no access log: the read alone (auth, owner, store, answer)",
        )
        # The cost of the request counters (edgekv.metrics), in the same run: ≤ 3 %.
        off = median_run(off_runs)
        report.add(
            f"hot GET, counters on vs off ({server})",
            f"{server}: edgekv REST GET value, --no-metrics",
            off,
            unit="req/s",
            baseline=True,
        )
        report.add(
            f"hot GET, counters on vs off ({server})",
            f"{server}: edgekv REST GET value, counters on",
            median_run(rest_runs),
            unit="req/s",
            target_ratio=0.97,
            note="edgekv_requests_total, duration histogram, per-namespace window",
        )
        path = f"{ns_path}/values/put-{server}-"
        script = put_script(tmp, path)
        puts = wrk(
            url + path,
            seconds,
            connections=CONCURRENCY,
            headers=auth,
            script=script,
            watch=[rest.pid],
        )
        report.add(
            "64 concurrent PUTs (durable)",
            f"{server}: PUT 100-byte value",
            puts,
            unit="puts/s",
            target_rate=10_000,
            note="SQLite synchronous=FULL, group commit",
        )
        report.add(
            "bulk write, 10,000 pairs per request",
            f"{server}: PUT /bulk",
            bulk_writes(http, url + ns_path, bulk_rounds, "bulk-"),
            unit="pairs/s",
            target_rate=100_000,
        )


async def _hot_get_app(metrics_on: bool, directory: Path) -> tuple[Any, Any, Any]:
    """An app over its own SQLite store holding `hot`, and the ASGI call of one hot GET."""
    from edgekv._client import Client
    from edgekv.api import create_app
    from edgekv.api.auth import create_token
    from edgekv.metrics import Metrics
    from edgekv.store.sqlite import SQLiteStore

    store = await SQLiteStore.open(directory, inline_reads=True)
    client = Client(store, sweep_interval=None)
    app = create_app(client, metrics=Metrics(enabled=metrics_on))
    await app.startup()
    account = client.account_id
    assert account is not None
    token, _ = await create_token(store, account)
    ns = await client.create_namespace("bench")
    await ns.put("hot", VALUE)
    path = f"{API.format(a=account)}/{ns.id}/values/hot".encode()
    scope = {
        "type": "http", "method": "GET", "path": path.decode(), "raw_path": path,
        "query_string": b"", "headers": [(b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 1),
    }  # fmt: skip

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: object) -> None:
        pass

    def call() -> Any:
        return app(dict(scope), receive, send)

    return call, client, store


def bench_counters_in_process(report: Report, calls: int, tmp: Path) -> None:
    """The request counters' cost on the app itself (no socket, no server, where it is not lost
    in the load generator's noise): two apps, counters off and on, called in turn, one call
    each at a time, so the machine's load hits both alike; 5 rounds, the best of each."""
    import asyncio

    async def both() -> tuple[list[Sample], list[Sample]]:
        off_call, *off_own = await _hot_get_app(False, tmp / "app-off")
        on_call, *on_own = await _hot_get_app(True, tmp / "app-on")
        clock = time.perf_counter_ns
        on_samples, off_samples = [], []
        for _ in range(5):
            on_ns: list[int] = []
            off_ns: list[int] = []
            for _ in range(calls):
                t0 = clock()
                await off_call()
                t1 = clock()
                await on_call()
                t2 = clock()
                off_ns.append(t1 - t0)
                on_ns.append(t2 - t1)
            on_samples.append(Sample(on_ns))
            off_samples.append(Sample(off_ns))
        for owned in (off_own, on_own):
            for closable in owned:
                await closable.aclose()
        return on_samples, off_samples

    on, off = asyncio.run(both())
    group = "hot GET in the ASGI app, counters on vs off (no network)"
    report.add(group, "app: counters off", max(off, key=lambda s: s.rate), baseline=True,
               unit="req/s")  # fmt: skip
    # No target here: the app alone is a part of a request's cost; the ≤ 3 % target is on
    # the whole request, served over HTTP (the "counters on vs off" group above).
    report.add(group, "app: counters on", max(on, key=lambda s: s.rate), unit="req/s",
               note="calls alternate with the other app, best of 5")  # fmt: skip


def bench_json(report: Report, seconds: float) -> None:
    bulk_body = json.dumps([{"key": f"key-{i:05d}", "value": "v" * 100} for i in range(BULK)])
    keys = [{"name": f"user:{i:08d}", "metadata": {"n": i}} for i in range(1000)]
    envelope = {
        "success": True,
        "errors": [],
        "messages": [],
        "result": keys,
        "result_info": {"count": 1000, "cursor": "dXNlcjowMDAwMDk5OQ"},
    }
    group = "JSON: decode a 10,000-pair bulk body"
    report.add(
        group,
        "json.loads (stdlib)",
        measure(lambda: json.loads(bulk_body), seconds=seconds),
        unit="bodies/s",
        baseline=True,
    )
    encoded = bulk_body.encode()
    report.add(
        group,
        "orjson.loads",
        measure(lambda: orjson.loads(encoded), seconds=seconds),
        unit="bodies/s",
    )
    group = "JSON: encode a 1,000-key list envelope"
    report.add(
        group,
        "json.dumps (stdlib)",
        measure(lambda: json.dumps(envelope, separators=(",", ":")).encode(), seconds=seconds),
        unit="pages/s",
        baseline=True,
    )
    report.add(
        group,
        "orjson.dumps",
        measure(lambda: orjson.dumps(envelope), seconds=seconds),
        unit="pages/s",
    )


def run(quick: bool, servers: list[str]) -> Report:
    seconds = 2.0 if quick else 5.0
    rounds = 3
    name = "rest-quick" if quick else "rest"
    report = Report(name, "edgekv REST API: central server vs a bare ASGI app, per ASGI server")
    report.notes += [
        "Server: `python -m edgekv serve --data DIR --server S` (SQLite, synchronous=FULL, "
        "inline point reads), one process, uvloop; access log on, written to a file.",
        "Baseline: a bare ASGI app returning 100 bytes, served by the same code path "
        "(`edgekv.asgi.server.serve_asgi`, same server, same process model).",
        f"Load: wrk, 1 thread, {CONCURRENCY} connections, {seconds:g} s per run, loopback; "
        "the machine's 2 CPUs are shared by server, load generator and other work.",
        f"GET: bare and REST servers run side by side; {rounds} alternating runs each, the "
        "median run is shown (throughput ratio of medians).",
        "Bulk: one request of 10,000 pairs (100-byte values) at a time, httpx client; "
        "latency per request.",
    ]
    require("wrk")
    with tempfile.TemporaryDirectory(prefix="edgekv-bench-rest-") as tmp:
        for server in servers:
            bench_server(report, server, seconds, rounds, 3 if quick else 10, Path(tmp))
        bench_counters_in_process(report, 5_000 if quick else 20_000, Path(tmp))
    bench_json(report, 0.5 if quick else 2.0)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (seconds per case)")
    parser.add_argument("--servers", default="granian,uvicorn", help="comma-separated")
    args = parser.parse_args()
    report = run(args.quick, [s for s in args.servers.split(",") if s])
    for path in report.write():
        print(path)


if __name__ == "__main__":
    main()
