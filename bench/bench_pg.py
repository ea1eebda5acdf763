"""PostgreSQL benchmark: the central server's REST read and write paths on PostgreSQL and on
SQLite, in one run, against a raw point read of the same row through asyncpg.

    python -m bench.bench_pg [--quick]

Starts its own throwaway PostgreSQL cluster (tests/pgcluster.py: loopback, fsync=on,
synchronous_commit=on) and two `python -m edgekv serve` subprocesses, one with
`--database postgresql://…` and one with `--data DIR` (SQLite), then stops them all. Load comes
from `wrk` on loopback (bench/loadgen.py); the REST calls are bench/bench_rest.py's. Writes
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
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvloop
from tests import pgcluster

from bench.bench_rest import bulk_writes, hot_namespace, put_script
from bench.harness import Report, Sample
from bench.loadgen import VALUE, bearer, median_run, require, serve, wrk

GET_CONCURRENCY = (1, 32)
PUT_CONCURRENCY = 64
POOL_SIZE = 10  # PostgresStore.open's default max_size: the server's own pool
RAW_GET = (
    "SELECT value, expiration, metadata FROM edgekv_entries WHERE namespace_id = $1 AND key = $2"
)
REST_NOTE = "HTTP + auth + store read + access log"
PGBENCH_SCRIPT = (
    "SELECT value, expiration, metadata FROM edgekv_entries"
    " WHERE namespace_id = :ns AND key = :key;\n"
)


# -- the baselines -------------------------------------------------------------------------------
def _summary(latencies_ns: list[int], wall_s: float) -> dict[str, float]:
    """A run's summary (as wrk's: rate over wall time) from its per-call latencies."""
    return {**Sample(latencies_ns).summary(), "rate": len(latencies_ns) / wall_s}


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
    return {**Sample(latencies).summary(), "rate": rate}


# -- the servers -------------------------------------------------------------------------------
@contextlib.contextmanager
def servers(dsn: str, tmp: Path, account: str, token: str) -> Iterator[dict[str, str]]:
    """`edgekv serve` on PostgreSQL and on SQLite, side by side; yields their URLs."""
    with (
        serve(["--database", dsn], tmp / "serve-pg.log", account=account, token=token) as pg,
        serve(
            ["--data", str(tmp / "data")], tmp / "serve-sqlite.log", account=account, token=token
        ) as lite,
    ):
        yield {"PostgreSQL": pg, "SQLite": lite}


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
            servers(dsn, tmp, account, token) as urls,
            httpx.Client(headers=bearer(token), timeout=120) as http,
        ):
            paths = {engine: hot_namespace(http, url, account) for engine, url in urls.items()}
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
                        url = f"{urls[engine]}{paths[engine]}/values/hot"
                        runs[engine].append(
                            wrk(url, seconds, connections=concurrency, headers=bearer(token))
                        )
                group = f"hot GET, 100-byte value, concurrency {concurrency}"
                cases: list[tuple[str, str, dict[str, Any]]] = [
                    ("raw", "raw point read, asyncpg pool", {"baseline": True}),
                    ("PostgreSQL", "edgekv REST GET, PostgreSQL", {"note": REST_NOTE}),
                    ("SQLite", "edgekv REST GET, SQLite", {}),
                    ("pgbench", "pgbench, same point read", {"note": "C client, reference"}),
                ]
                for name, case, options in cases:
                    if runs[name]:
                        report.add(group, case, median_run(runs[name]), unit="req/s", **options)

            for engine in ("PostgreSQL", "SQLite"):
                path = f"{paths[engine]}/values/put-"
                result = wrk(
                    urls[engine] + path,
                    seconds,
                    connections=PUT_CONCURRENCY,
                    headers=bearer(token),
                    script=put_script(tmp, path),
                )
                report.add(
                    f"{PUT_CONCURRENCY} concurrent PUTs of a 100-byte value (durable)",
                    f"edgekv REST PUT, {engine}",
                    result,
                    unit="puts/s",
                )
            for engine in ("PostgreSQL", "SQLite"):
                report.add(
                    "bulk write, 10,000 pairs per request",
                    f"edgekv REST PUT /bulk, {engine}",
                    bulk_writes(http, urls[engine] + paths[engine], bulk_rounds, f"bulk-{engine}-"),
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
    require("wrk")
    report = run(args.quick)
    for path in report.write():
        print(path)


if __name__ == "__main__":
    main()
