"""PostgreSQL benchmark: the central server's REST read and write paths on PostgreSQL and on
SQLite, in one run, against a raw point read of the same row through asyncpg.

    python -m bench.bench_pg [--quick]

Starts its own throwaway PostgreSQL cluster (tests/pgcluster.py: loopback, fsync=on,
synchronous_commit=on) and two `python -m edgekv serve` subprocesses, one with
`--database postgresql://…` and one with `--data DIR` (SQLite), then stops them all. Load comes
from `wrk` on loopback, through the helpers of bench/bench_rest.py. Writes
bench/results/pg.{md,json,png} (pg-quick.* with --quick).

Cases: hot GET of a 100-byte value at concurrency 1 and 32; 64 concurrent single PUTs (each
answered only after its commit); bulk write of 10,000 pairs per request. The baseline of the
GET groups is a `pgbench -S`-style point read through asyncpg (the server's driver, a pool of
the server's default size, a prepared statement, uvloop) of the very row the REST GET reads;
`pgbench` itself (C client, one connection per client, prepared) is shown for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import orjson
import uvloop
from tests import pgcluster

from bench.bench_rest import (
    API,
    BULK,
    PUT_SCRIPT,
    VALUE,
    add_wrk_row,
    free_port,
    median_run,
    process,
    wrk,
)
from bench.harness import Report, Sample

ROOT = Path(__file__).resolve().parent.parent
GET_CONCURRENCY = (1, 32)
PUT_CONCURRENCY = 64
POOL_SIZE = 10  # PostgresStore.open's default max_size: the server's own pool
RAW_GET = (
    "SELECT value, expiration, metadata FROM edgekv_entries WHERE namespace_id = $1 AND key = $2"
)
PGBENCH_SCRIPT = (
    "SELECT value, expiration, metadata FROM edgekv_entries"
    " WHERE namespace_id = :ns AND key = :key;\n"
)


# -- the baselines -------------------------------------------------------------------------------
def _summary(latencies_ns: list[int], wall_s: float) -> dict[str, float]:
    """wrk's numbers (rate over wall time, p50/p99/mean in µs) from per-call latencies."""
    ordered = sorted(latencies_ns)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] / 1000

    return {
        "rate": len(ordered) / wall_s,
        "p50": pct(50),
        "p99": pct(99),
        "mean": sum(ordered) / len(ordered) / 1000,
        "calls": len(ordered),
    }


async def _raw_reads(
    dsn: str, namespace_id: str, concurrency: int, seconds: float
) -> dict[str, float]:
    pool = await asyncpg.create_pool(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE)
    key = b"hot"
    latencies: list[int] = []
    clock = time.perf_counter_ns

    async def worker(deadline: float) -> None:
        while time.perf_counter() < deadline:
            t0 = clock()
            async with pool.acquire() as con:
                row = await con.fetchrow(RAW_GET, namespace_id, key)
            latencies.append(clock() - t0)
            assert row is not None and row["value"] == VALUE

    try:
        await asyncio.gather(*(worker(time.perf_counter() + 0.3) for _ in range(concurrency)))
        latencies.clear()  # warm-up: connections open, statement prepared on each
        start = time.perf_counter()
        await asyncio.gather(*(worker(start + seconds) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    finally:
        await pool.close()
    return _summary(latencies, wall)


def raw_reads(dsn: str, namespace_id: str, concurrency: int, seconds: float) -> dict[str, float]:
    """`concurrency` tasks reading the row through one asyncpg pool, on uvloop as the server."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_raw_reads(dsn, namespace_id, concurrency, seconds))


def find_pgbench() -> str | None:
    """The cluster's own pgbench (Debian keeps it beside initdb), else one on PATH."""
    beside = pgcluster.bindir() / "pgbench"
    return str(beside) if beside.exists() else shutil.which("pgbench")


def pgbench(
    exe: str, dsn: str, namespace_id: str, concurrency: int, seconds: float, tmp: Path
) -> dict[str, float]:
    """`pgbench` on the same row: one C client thread, `concurrency` connections, prepared."""
    script = tmp / "point-read.sql"
    script.write_text(PGBENCH_SCRIPT)
    logs = tmp / f"pgbench-{concurrency}"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    args = [exe, "-n", "-M", "prepared", "-j", "1", "-c", str(concurrency)]
    args += ["-T", str(max(1, round(seconds))), "-f", str(script)]
    args += ["-D", f"ns={namespace_id}", "-D", "key=hot", "-l", f"--log-prefix={logs}/tx", dsn]
    out = subprocess.run(args, capture_output=True, text=True, check=True, cwd=tmp).stdout
    rate = float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # per-transaction log lines: client, transaction, latency µs, script, epoch s, µs
    latencies = [
        int(line.split()[2]) * 1000 for f in logs.iterdir() for line in f.read_text().splitlines()
    ]
    result = _summary(latencies, 1.0)
    result["rate"] = rate
    return result


# -- the servers -------------------------------------------------------------------------------
@contextlib.contextmanager
def servers(dsn: str, tmp: Path, account: str, token: str) -> Iterator[dict[str, int]]:
    """`edgekv serve` on PostgreSQL and on SQLite, side by side; yields their ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEKV_")}
    env.update(PYTHONUNBUFFERED="1", EDGEKV_ACCOUNT_ID=account, EDGEKV_API_TOKEN=token)
    serve = [sys.executable, "-m", "edgekv", "serve"]
    ports = {"PostgreSQL": free_port(), "SQLite": free_port()}
    pg = [*serve, "--database", dsn, "--port", str(ports["PostgreSQL"])]
    lite = [*serve, "--data", str(tmp / "data"), "--port", str(ports["SQLite"])]
    with (
        process(pg, ports["PostgreSQL"], env, tmp / "serve-pg.log"),
        process(lite, ports["SQLite"], env, tmp / "serve-sqlite.log"),
    ):
        yield ports


def bulk_writes(http: httpx.Client, namespace_url: str, rounds: int, tag: str) -> Sample:
    """One request of 10,000 new pairs at a time; the first round warms up."""
    latencies = []
    for r in range(rounds + 1):
        body = orjson.dumps(
            [{"key": f"bulk-{tag}-{r}-{i:05d}", "value": "v" * 100} for i in range(BULK)]
        )
        t0 = time.perf_counter_ns()
        http.put(
            f"{namespace_url}/bulk", content=body, headers={"Content-Type": "application/json"}
        ).raise_for_status()
        if r:
            latencies.append(time.perf_counter_ns() - t0)
    return Sample(latencies, BULK)


# -- the run -------------------------------------------------------------------------------------
def run(quick: bool) -> Report:
    seconds = 2.0 if quick else 4.0
    rounds = 1 if quick else 3
    bulk_rounds = 3 if quick else 8
    report = Report(
        "pg-quick" if quick else "pg",
        "edgekv REST API on PostgreSQL vs SQLite, against a raw asyncpg point read",
    )
    account, token = secrets.token_hex(16), secrets.token_urlsafe(30)
    with (
        pgcluster.running_cluster() as cluster,
        tempfile.TemporaryDirectory(prefix="edgekv-bench-pg-") as tmp_name,
    ):
        tmp = Path(tmp_name)
        dsn = asyncio.run(pgcluster.fresh_database(cluster.dsn))
        version = asyncio.run(_server_version(dsn))
        report.notes += [
            f"PostgreSQL {version}: throwaway cluster of tests/pgcluster.py on loopback TCP, "
            "fsync=on, synchronous_commit=on, shared_buffers=32MB; the server's pool is "
            f"PostgresStore's default ({POOL_SIZE} connections).",
            "Servers: `python -m edgekv serve --database URL` and `--data DIR` (SQLite, "
            "synchronous=FULL), one process each, default ASGI server (granian), uvloop, access "
            "log on and written to a file; both run side by side, each idle while the other is "
            "measured.",
            f"Load: wrk, 1 thread, loopback, {seconds:g} s per run; GET groups take the median "
            f"of {rounds} alternating run(s) per case. The machine's 2 CPUs are shared by "
            "PostgreSQL, the servers, the load generator and other work.",
            "Baseline (GET groups): the same row read by `SELECT value, expiration, metadata "
            "FROM edgekv_entries WHERE namespace_id = $1 AND key = $2` through an asyncpg pool "
            f"of {POOL_SIZE} (prepared, uvloop), with as many concurrent tasks as wrk has "
            "connections. `pgbench` (C, prepared, one connection per client) reads the same "
            "row for reference.",
            "Bulk: one request of 10,000 new pairs (100-byte values) at a time, httpx client; "
            "latency per request.",
        ]
        with (
            servers(dsn, tmp, account, token) as ports,
            httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http,
        ):
            paths: dict[str, str] = {}  # engine -> its namespace's path
            urls: dict[str, str] = {}  # engine -> its namespace's URL
            for engine, port in ports.items():
                base = f"http://127.0.0.1:{port}" + API.format(a=account)
                ns = http.post(base, json={"title": "bench"}).json()["result"]["id"]
                paths[engine] = API.format(a=account) + f"/{ns}"
                urls[engine] = f"http://127.0.0.1:{port}{paths[engine]}"
                http.put(f"{urls[engine]}/values/hot", content=VALUE).raise_for_status()
            pg_ns = paths["PostgreSQL"].rsplit("/", 1)[1]
            pgbench_exe = find_pgbench()

            for concurrency in GET_CONCURRENCY:
                runs: dict[str, list[dict[str, float]]] = {
                    "raw": [], "pgbench": [], "PostgreSQL": [], "SQLite": []
                }  # fmt: skip
                for _ in range(rounds):
                    runs["raw"].append(raw_reads(dsn, pg_ns, concurrency, seconds))
                    if pgbench_exe is not None:
                        runs["pgbench"].append(
                            pgbench(pgbench_exe, dsn, pg_ns, concurrency, seconds, tmp)
                        )
                    for engine in ("PostgreSQL", "SQLite"):
                        url = f"{urls[engine]}/values/hot"
                        runs[engine].append(wrk(url, seconds, token, connections=concurrency))
                group = f"hot GET, 100-byte value, concurrency {concurrency}"
                add_wrk_row(
                    report,
                    group,
                    "raw point read, asyncpg pool",
                    median_run(runs["raw"]),
                    baseline=True,
                )
                add_wrk_row(
                    report,
                    group,
                    "edgekv REST GET, PostgreSQL",
                    median_run(runs["PostgreSQL"]),
                    note="HTTP + auth + store read + access log",
                )
                add_wrk_row(report, group, "edgekv REST GET, SQLite", median_run(runs["SQLite"]))
                if runs["pgbench"]:
                    add_wrk_row(
                        report,
                        group,
                        "pgbench, same point read",
                        median_run(runs["pgbench"]),
                        note="C client, reference",
                    )

            script = tmp / "put.lua"
            for engine in ("PostgreSQL", "SQLite"):
                path = f"{paths[engine]}/values/put-"
                script.write_text(PUT_SCRIPT.replace("{path}", path))
                url = f"http://127.0.0.1:{ports[engine]}{path}"
                result = wrk(url, seconds, token, script, PUT_CONCURRENCY)
                add_wrk_row(
                    report,
                    f"{PUT_CONCURRENCY} concurrent PUTs of a 100-byte value (durable)",
                    f"edgekv REST PUT, {engine}",
                    result,
                    unit="puts/s",
                )
            for engine in ("PostgreSQL", "SQLite"):
                report.add(
                    "bulk write, 10,000 pairs per request",
                    f"edgekv REST PUT /bulk, {engine}",
                    bulk_writes(http, urls[engine], bulk_rounds, engine),
                    unit="pairs/s",
                )
    return report


async def _server_version(dsn: str) -> str:
    con = await asyncpg.connect(dsn)
    try:
        return str(await con.fetchval("SHOW server_version")).split()[0]
    finally:
        await con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (seconds per case)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    report = run(args.quick)
    for path in report.write():
        print(path)


if __name__ == "__main__":
    main()
