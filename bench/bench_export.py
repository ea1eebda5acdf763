"""Export and import of a whole namespace: keys/s and peak memory of the server and the CLI.

    .venv/bin/python -m bench.bench_export                # 100,000 and 1,000,000 keys
    .venv/bin/python -m bench.bench_export --keys 200000  # any sizes

For each size N: a fresh SQLite store with N keys (100-byte values, metadata on every tenth),
then, each as its own child process whose peak RSS is read from the kernel (`wait4`):

- export embedded: `edgekv kv namespace export --persist-to DIR --output FILE`;
- export over REST: the same with `--url` against `edgekv serve --data DIR` (the server's RSS is
  sampled every 20 ms while it streams);
- import embedded / over REST: `edgekv kv namespace import FILE` into an empty namespace (the
  file is checked whole first, then written in bulk batches of 10,000).

"Idle" RSS is the same process doing no data work (`kv namespace list`; the server after
start-up and one request); the target is a peak within 64 MiB of it whatever N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
from tests.servers import EDGEKV, CentralProcess

from bench.harness import Report, Sample
from edgekv._types import Entry
from edgekv.store.sqlite import SQLiteStore

VALUE_BYTES = 100
RSS_BUDGET_MIB = 64


async def populate(directory: Path, n: int, account: str) -> tuple[str, float]:
    """A store with one namespace of `n` keys in `account`: the namespace id, and the seconds
    its `Store.put_many` calls took (10,000 rows each: the write an import makes)."""
    store = await SQLiteStore.open(directory)
    try:
        await store.ensure_account(account)
        ns = await store.create_namespace(account, "bench")
        filler = b"v" * (VALUE_BYTES - 8)
        started = time.perf_counter()
        for start in range(0, n, 10_000):
            await store.put_many(
                ns.id,
                [
                    (
                        f"key:{i:09}",
                        Entry(
                            f"{i:08}".encode() + filler,
                            None,
                            f'{{"i":{i},"tag":"bench"}}' if i % 10 == 0 else None,
                        ),
                    )
                    for i in range(start, min(n, start + 10_000))
                ],
            )
        return ns.id, time.perf_counter() - started
    finally:
        await store.aclose()


async def read_snapshot(directory: Path, namespace: str) -> tuple[int, float]:
    """Every page of the namespace's snapshot, in process, not encoded: (keys, seconds)."""
    store = await SQLiteStore.open(directory)
    try:
        started = time.perf_counter()
        count = 0
        async with store.snapshot(namespace, now=int(time.time())) as snap:
            while rows := await snap.page(1000):
                count += len(rows)
        return count, time.perf_counter() - started
    finally:
        await store.aclose()


def child(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run `edgekv ARGS`: (seconds, peak RSS MiB, stderr)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [EDGEKV, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"edgekv {' '.join(args)} failed: {err}")
    return elapsed, usage.ru_maxrss / 1024, err


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler:
    """The peak RSS of a process, sampled every 20 ms while in the `with` block."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def sample(n: int, seconds: float, startup: float) -> Sample:
    """`n` keys in `seconds` of a child process, less its start-up (import, open, exit)."""
    return Sample([int(max(seconds - startup, 1e-3) * 1e9)], items=n)


def run(sizes: list[int]) -> Report:
    report = Report("export", "Export and import of a whole namespace (NDJSON), SQLite store")
    rss: list[str] = []
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix="edgekv-bench-export-"))
        data = work / "data"
        t0 = time.perf_counter()
        account = secrets.token_hex(16)
        namespace, put_secs = asyncio.run(populate(data, n, account))
        print(f"populated {n:,} keys in {time.perf_counter() - t0:.1f}s", flush=True)
        export_group, import_group = f"export, {n:,} keys", f"import, {n:,} keys"
        count, read_secs = asyncio.run(read_snapshot(data, namespace))
        assert count == n
        report.add(
            export_group,
            "Store.snapshot pages read in process, not encoded",
            Sample([int(read_secs * 1e9)], items=n),
            unit="keys/s",
            baseline=True,
        )
        imports: list[tuple[str, Sample, str]] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEKV_")}
        local = ["--persist-to", str(data)]
        startup, cli_idle, _ = child(["kv", "namespace", "list", *local], env)
        startup = min(startup, child(["kv", "namespace", "list", *local], env)[0])
        out = work / "export.ndjson"
        secs, peak, _ = child(
            ["kv", "namespace", "export", "--namespace-id", namespace, *local, "-o", str(out)],
            env,
        )
        size_mib = out.stat().st_size / 2**20
        report.add(
            export_group,
            "embedded (CLI --persist-to)",
            sample(n, secs, startup),
            unit="keys/s",
            target_rate=200_000,
            note=f"CLI peak RSS {peak:.0f} MiB (idle {cli_idle:.0f}); {size_mib:.0f} MiB file",
        )
        rss.append(f"export {n:,} embedded: CLI {peak:.0f} MiB peak vs {cli_idle:.0f} idle")
        created = subprocess.run(
            [EDGEKV, "kv", "namespace", "create", f"import {n}", *local],
            env=env,
            capture_output=True,
            check=True,
        )
        target = ["--namespace-id", json.loads(created.stdout)["id"], *local]
        secs, peak, _ = child(["kv", "namespace", "import", str(out), *target], env)
        imports.append(
            (
                "embedded (CLI --persist-to)",
                sample(n, secs, startup),
                f"CLI peak RSS {peak:.0f} MiB (idle {cli_idle:.0f})",
            )
        )
        rss.append(f"import {n:,} embedded: CLI {peak:.0f} MiB peak vs {cli_idle:.0f} idle")

        server = CentralProcess(
            ["--data", str(data), "--quiet"], account=account, log_path=work / "server.log"
        )
        with server:
            remote = {
                **env,
                "EDGEKV_URL": server.url,
                "EDGEKV_API_TOKEN": server.token,
                "EDGEKV_ACCOUNT_ID": server.account,
            }
            httpx.get(f"{server.url}/healthz")
            pid = server.proc.pid
            server_idle = rss_mib(pid)
            startup, cli_idle_remote, _ = child(["kv", "namespace", "list"], remote)
            rest_out = work / "rest.ndjson"
            with Sampler(pid) as sampler:
                secs, peak, _ = child(
                    ["kv", "namespace", "export", "--namespace-id", namespace, "-o", str(rest_out)],
                    remote,
                )
            report.add(
                export_group,
                "over REST (CLI --url)",
                sample(n, secs, startup),
                unit="keys/s",
                target_rate=100_000,
                note=f"server peak RSS {sampler.peak:.0f} MiB (idle {server_idle:.0f}), "
                f"CLI {peak:.0f} MiB (idle {cli_idle_remote:.0f})",
            )
            rss.append(
                f"export {n:,} REST: server {sampler.peak:.0f} MiB peak vs {server_idle:.0f} "
                f"idle; CLI {peak:.0f} vs {cli_idle_remote:.0f}"
            )
            made = httpx.post(
                f"{server.namespaces}",
                json={"title": f"rest import {n}"},
                headers={"Authorization": f"Bearer {server.token}"},
            ).json()["result"]["id"]
            with Sampler(pid) as sampler:
                secs, peak, _ = child(
                    ["kv", "namespace", "import", str(rest_out), "--namespace-id", made], remote
                )
            imports.append(
                (
                    "over REST (CLI --url)",
                    sample(n, secs, startup),
                    f"server peak RSS {sampler.peak:.0f} MiB (idle {server_idle:.0f}), "
                    f"CLI {peak:.0f} MiB (idle {cli_idle_remote:.0f})",
                )
            )
            rss.append(
                f"import {n:,} REST: server {sampler.peak:.0f} MiB peak vs {server_idle:.0f} "
                f"idle; CLI {peak:.0f} vs {cli_idle_remote:.0f}"
            )
        report.add(
            import_group,
            "Store.put_many in process, 10,000 rows a call (what the import writes)",
            Sample([int(put_secs * 1e9)], items=n),
            unit="keys/s",
            baseline=True,
        )
        for case, result, note in imports:
            report.add(import_group, case, result, unit="keys/s", target_rate=100_000, note=note)
        subprocess.run(["rm", "-rf", str(work)], check=False)
    load = os.getloadavg()
    report.notes += [
        "Each run once, one child process per row; keys/s counts its wall time less the time "
        "the same command takes to do nothing (`kv namespace list`: start-up, open, exit). "
        f"The 2 CPUs are shared with other work: load average {load[0]:.1f} / {load[1]:.1f} "
        "(1 / 5 min) at the end of the run, so absolute figures are low and noisy; compare rows "
        "of the same run.",
        f"Values {VALUE_BYTES} bytes, metadata on every tenth key; SQLite synchronous=FULL; "
        "import writes go through the change feed (two rows per key).",
        f"Peak RSS (kernel's maxrss for the CLI, 20 ms samples for the server); target: within "
        f"{RSS_BUDGET_MIB} MiB of idle whatever the size:",
        *(f"  {line}" for line in rss),
    ]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, action="append", help="namespace size (repeatable)")
    parser.add_argument("--quick", action="store_true", help="10,000 keys only")
    args = parser.parse_args()
    report = run(args.keys or ([10_000] if args.quick else [100_000, 1_000_000]))
    for path in report.write():
        print("wrote", path)


if __name__ == "__main__":
    main()
