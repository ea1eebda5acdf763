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
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.harness import Report, Row, Sample, measure

ROOT = Path(__file__).resolve().parent.parent
BULK = 10_000
CONCURRENCY = 64
VALUE = b"v" * 100
API = "/client/v4/accounts/{a}/storage/kv/namespaces"


# -- the bare app (run in a child process: `--child-bare SERVER PORT`) -------------------------
async def bare_app(scope: Any, receive: Any, send: Any) -> None:
    """The least an ASGI app can do: 100 bytes, as the value read answers."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/octet-stream"),
                (b"content-length", b"100"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": VALUE})


def run_bare(server: str, port: int) -> None:
    import asyncio

    import uvloop

    from edgekv.api.server import serve_asgi

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_asgi(bare_app, "127.0.0.1", port, server=server))  # type: ignore[arg-type]


# -- processes and load ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code in (200, 404):
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


@contextlib.contextmanager
def process(args: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=out, cwd=ROOT)
        try:
            wait_ready(port, proc)
            yield
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


_UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def _us(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(
    url: str, seconds: float, token: str, script: Path | None = None, connections: int = 64
) -> dict[str, float]:
    """Run wrk (one thread: the server gets the other core) and read its summary."""
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    args += ["-H", f"Authorization: Bearer {token}"]
    if script is not None:
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    mean = re.search(r"Latency\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} error responses:\n{out}")
    return {
        "rate": rate,
        "p50": _us(pct["50"]),
        "p99": _us(pct["99"]),
        "mean": _us(mean),
        "calls": requests,
    }


def add_wrk_row(
    report: Report,
    group: str,
    case: str,
    result: dict[str, float],
    *,
    unit: str = "req/s",
    baseline: bool = False,
    target_ratio: float | None = None,
    target_rate: float | None = None,
    note: str = "",
) -> Row:
    """`Report.add` for a load generator that gives percentiles, not every latency."""
    base = next((r for r in report.rows if r.group == group and r.baseline), None)
    ratio = None if base is None else result["rate"] / base.rate
    targets, checks = [], []
    if target_ratio is not None:
        targets.append(f"≥ {target_ratio:g}x")
        checks.append(ratio is not None and ratio >= target_ratio)
    if target_rate is not None:
        targets.append(f"≥ {target_rate:,.0f} {unit}")
        checks.append(result["rate"] >= target_rate)
    row = Row(
        group=group,
        case=case,
        unit=unit,
        rate=result["rate"],
        p50_us=result["p50"],
        p99_us=result["p99"],
        mean_us=result["mean"],
        calls=int(result["calls"]),
        items=1,
        baseline=baseline,
        ratio=ratio,
        target=", ".join(targets),
        ok=all(checks) if checks else None,
        note=note,
    )
    report.rows.append(row)
    print(
        f"{group:>24} | {case:<40} {row.rate:>10,.0f} {unit} p50 {row.p50_us:,.0f}us "
        f"p99 {row.p99_us:,.0f}us" + ("" if ratio is None else f" {ratio:.2f}x"),
        flush=True,
    )
    return row


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


# -- the cases -------------------------------------------------------------------------------
def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run of median throughput (its own latencies with it)."""
    return sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]


def bench_server(
    report: Report, server: str, seconds: float, rounds: int, bulk_rounds: int, tmp: Path
) -> None:
    python = sys.executable
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    get_group = f"hot GET, 100-byte value ({server})"
    account, token = secrets.token_hex(16), secrets.token_urlsafe(30)
    serve_env = {**env, "EDGEKV_ACCOUNT_ID": account, "EDGEKV_API_TOKEN": token}
    bare_port, port = free_port(), free_port()
    bare = [python, "-m", "bench.bench_rest", "--child-bare", server, str(bare_port)]
    data = tmp / f"data-{server}"
    serve = [python, "-m", "edgekv", "serve", "--data", str(data), "--port", str(port)]
    serve += ["--server", server]
    # Both servers run at once (each idle while the other is measured) and the rounds
    # alternate, so a change in the load of this shared machine hits both sides alike.
    with (
        process(bare, bare_port, env, tmp / f"bare-{server}.log"),
        process(serve, port, serve_env, tmp / f"serve-{server}.log"),
        httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
    ):
        base_url = f"http://127.0.0.1:{port}" + API.format(a=account)
        ns = http.post(base_url, json={"title": "bench"}).json()["result"]["id"]
        value_url = f"{base_url}/{ns}/values/hot"
        http.put(value_url, content=VALUE).raise_for_status()
        bare_runs, rest_runs = [], []
        for _ in range(rounds):
            bare_runs.append(wrk(f"http://127.0.0.1:{bare_port}/", seconds, "x"))
            rest_runs.append(wrk(value_url, seconds, token))
        add_wrk_row(
            report,
            get_group,
            f"{server}: bare ASGI app, 100 bytes",
            median_run(bare_runs),
            baseline=True,
        )
        add_wrk_row(
            report,
            get_group,
            f"{server}: edgekv REST GET value",
            median_run(rest_runs),
            target_ratio=0.6,
            note="auth + store read + access log",
        )
        script = tmp / "put.lua"
        path = API.format(a=account) + f"/{ns}/values/put-{server}-"
        script.write_text(PUT_SCRIPT.replace("{path}", path))
        puts = wrk(f"http://127.0.0.1:{port}{path}", seconds, token, script, CONCURRENCY)
        add_wrk_row(
            report,
            "64 concurrent PUTs (durable)",
            f"{server}: PUT 100-byte value",
            puts,
            unit="puts/s",
            target_rate=10_000,
            note="SQLite synchronous=FULL, group commit",
        )
        latencies = []
        for r in range(bulk_rounds + 1):
            body = orjson.dumps(
                [{"key": f"bulk-{r}-{i:05d}", "value": "v" * 100} for i in range(BULK)]
            )
            t0 = time.perf_counter_ns()
            http.put(
                f"{base_url}/{ns}/bulk",
                content=body,
                headers={"Content-Type": "application/json"},
            ).raise_for_status()
            if r:  # the first round warms up
                latencies.append(time.perf_counter_ns() - t0)
        report.add(
            "bulk write, 10,000 pairs per request",
            f"{server}: PUT /bulk",
            Sample(latencies, BULK),
            unit="pairs/s",
            target_rate=100_000,
        )


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
        "(`edgekv.api.server.serve_asgi`, same server, same process model).",
        f"Load: wrk, 1 thread, {CONCURRENCY} connections, {seconds:g} s per run, loopback; "
        "the machine's 2 CPUs are shared by server, load generator and other work.",
        f"GET: bare and REST servers run side by side; {rounds} alternating runs each, the "
        "median run is shown (throughput ratio of medians).",
        "Bulk: one request of 10,000 pairs (100-byte values) at a time, httpx client; "
        "latency per request.",
    ]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    with tempfile.TemporaryDirectory(prefix="edgekv-bench-rest-") as tmp:
        for server in servers:
            bench_server(report, server, seconds, rounds, 3 if quick else 10, Path(tmp))
    bench_json(report, 0.5 if quick else 2.0)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (seconds per case)")
    parser.add_argument("--servers", default="granian,uvicorn", help="comma-separated")
    parser.add_argument("--child-bare", nargs=2, metavar=("SERVER", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_bare:
        run_bare(args.child_bare[0], int(args.child_bare[1]))
        return
    report = run(args.quick, [s for s in args.servers.split(",") if s])
    for path in report.write():
        print(path)


if __name__ == "__main__":
    main()
