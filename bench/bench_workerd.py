"""JavaScript workers benchmark: a JS Worker doing `await env.KV.get("hot")` on a hot 100-byte
key in workerd at an `edgekv edge` location, against Miniflare 4 running the same worker (the
same runtime, with Miniflare's own KV) and against the same worker with no KV call.

    python -m bench.bench_workerd [--quick]

Load: `wrk` (apt-get install -y wrk), 1 thread, 64 connections, on loopback. The processes:
`edgekv serve` (SQLite) as the centre and `edgekv edge --quiet` (workerd from npm
`workerd@1.20261117.1`, installed into tests/.node/ like the tests do), and Miniflare
(`miniflare@4.20260730.0`, which brings its own workerd build) driven by a small Node script.
The cases take turns under load, round after round, and each reports the median of its rounds,
so that load from other processes on this shared machine hits every case alike: compare the
ratios of one run, not absolute figures across runs. Writes
bench/results/workerd.{md,json,png} (workerd-quick.* with --quick).

Targets: the edgekv location at least 5x Miniflare's requests/s, and the KV call costing at most
half of the no-KV figure (the worker with KV at least 0.5x the worker without).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from bench.harness import Report
from bench.loadgen import ROOT, VALUE, free_port, process, process_tree, require, serve, wrk

CONNECTIONS = 64
MINIFLARE = "miniflare@4.20260730.0"

WORKER = """\
const STATIC = "v".repeat(100);
export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname === "/no-kv") return new Response(STATIC);
    return new Response(await env.KV.get("hot"));
  },
};
"""

MINIFLARE_SCRIPT = """\
import { Miniflare } from "miniflare";
const [script, port] = process.argv.slice(2);
const mf = new Miniflare({
  modules: true,
  scriptPath: script,
  compatibilityDate: "2026-07-30",
  kvNamespaces: ["KV"],
  host: "127.0.0.1",
  port: Number(port),
});
await mf.ready;
const kv = await mf.getKVNamespace("KV");
await kv.put("hot", "v".repeat(100));
console.log("ready");
const stop = async () => { await mf.dispose(); process.exit(0); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
"""


def _node_package(spec: str, bin_path: str) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.workerd import ensure_package

    return ensure_package(spec, bin_path)


def start_edge(stack: contextlib.ExitStack, tmp: Path) -> dict[str, tuple[str, int]]:
    sys.path.insert(0, str(ROOT))
    from tests.workerd import ensure_installed

    binary = ensure_installed()
    account, token = secrets.token_hex(16), f"bench-{secrets.token_hex(16)}"
    centre = stack.enter_context(
        serve(
            ["--data", str(tmp / "central"), "--quiet"],
            tmp / "serve.log",
            account=account,
            token=token,
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEKV_")}
    env.update(EDGEKV_ACCOUNT_ID=account, EDGEKV_API_TOKEN=token, PYTHONUNBUFFERED="1")
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{centre}/client/v4/accounts/{account}/storage/kv/namespaces"
    created = httpx.post(base, json={"title": "bench"}, headers=headers)
    created.raise_for_status()
    ns = created.json()["result"]["id"]
    httpx.put(f"{base}/{ns}/values/hot", content=VALUE, headers=headers).raise_for_status()
    project = tmp / "edge"
    (project / "src").mkdir(parents=True)
    (project / "src" / "worker.js").write_text(WORKER)
    (project / "wrangler.toml").write_text(
        f'name = "bench"\nmain = "src/worker.js"\n'
        f'kv_namespaces = [{{ binding = "KV", id = "{ns}" }}]\n'
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "edgekv", "edge", "--central", centre, "--location", "bench"]
    args += ["--port", str(port), "--quiet", "--workerd", str(binary)]
    proc = stack.enter_context(
        process(args, f"{url}/healthz", tmp / "edge.log", env=env, cwd=project)
    )
    return {"edge": (f"{url}/hot", proc.pid), "edge-no-kv": (f"{url}/no-kv", proc.pid)}


def start_miniflare(stack: contextlib.ExitStack, tmp: Path) -> dict[str, tuple[str, int]]:
    node_modules = _node_package(MINIFLARE, "miniflare/package.json").parents[1]
    project = tmp / "miniflare"
    project.mkdir()
    (project / "worker.mjs").write_text(WORKER)
    script = project / "run.mjs"
    script.write_text(MINIFLARE_SCRIPT)
    (project / "node_modules").symlink_to(node_modules)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["node", str(script), str(project / "worker.mjs"), str(port)]
    proc = stack.enter_context(
        process(args, f"{url}/hot", tmp / "miniflare.log", cwd=project, timeout=60)
    )
    return {"miniflare": (f"{url}/hot", proc.pid), "miniflare-no-kv": (f"{url}/no-kv", proc.pid)}


def _cpu(pids: list[int]) -> dict[str, float]:
    """CPU seconds (user + system) of each process, by command name."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat.rsplit(")", 1)[1].split()
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def measure_rounds(
    urls: dict[str, str], owners: dict[str, int], rounds: int, seconds: float
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Per case: the median of its rounds, and the CPU µs per request of each process serving
    it (`owners`: the case's top process; its descendants count too)."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
    cpu: dict[str, dict[str, float]] = {name: {} for name in urls}
    for url in urls.values():  # correct answers, and a warm-up
        check = httpx.get(url)
        if check.content != VALUE:
            raise RuntimeError(f"{url} answered {check.status_code} {check.content[:80]!r}")
        wrk(url, 1, connections=CONNECTIONS)
    for _ in range(rounds):
        for name, url in urls.items():
            pids = process_tree(owners[name])
            before = _cpu(pids)
            result = wrk(url, seconds, connections=CONNECTIONS)
            after = _cpu(pids)
            runs[name].append(result)
            for proc, used in after.items():
                per = (used - before.get(proc, 0.0)) / max(result["calls"], 1) * 1e6
                cpu[name].setdefault(proc, 0.0)
                cpu[name][proc] += per / rounds
    medians = {
        name: {
            "rate": statistics.median(r["rate"] for r in results),
            "p50": statistics.median(r["p50"] for r in results),
            "p99": statistics.median(r["p99"] for r in results),
            "mean": statistics.median(r["mean"] for r in results),
            "calls": sum(r["calls"] for r in results),
        }
        for name, results in runs.items()
    }
    return medians, cpu


def _version(binary: Path) -> str:
    return subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()


def run(quick: bool) -> Report:
    rounds, seconds = (2, 1.0) if quick else (5, 3.0)
    report = Report(
        "workerd-quick" if quick else "workerd",
        "JavaScript workers: a hot env.KV.get at an edgekv location vs Miniflare 4",
    )
    require("wrk", "node", "npm")
    with tempfile.TemporaryDirectory(prefix="edgekv-bench-workerd-") as name:
        tmp = Path(name)
        with contextlib.ExitStack() as stack:
            cases = {**start_edge(stack, tmp), **start_miniflare(stack, tmp)}
            urls = {name: url for name, (url, _) in cases.items()}
            owners = {name: pid for name, (_, pid) in cases.items()}
            results, cpu = measure_rounds(urls, owners, rounds, seconds)
    sys.path.insert(0, str(ROOT))
    from tests.workerd import ensure_installed

    report.notes += [
        'The worker (the same file in both): `GET /hot` returns `await env.KV.get("hot")`, a '
        "100-byte value; `GET /no-kv` returns the same 100 bytes without a KV call (the "
        "runtime's own cost).",
        f"edgekv: `edgekv edge --quiet` with {_version(ensure_installed())} (npm "
        "workerd@1.20261117.1) in front of `edgekv serve` (SQLite); the hot key is in the "
        "location cache, so `get` is answered by the edgekv process over its Unix socket "
        "without a trip to the centre.",
        f"Miniflare: npm {MINIFLARE} (its own workerd build), its KV in memory, started by a "
        "Node script with the Miniflare API on a loopback port.",
        f"Load: wrk, 1 thread, {CONNECTIONS} connections, loopback; 2 CPUs shared by workerd, "
        "the edgekv processes, wrk and whatever else runs on this machine (it is shared and "
        f"loaded: absolute figures are noisy, the ratios of one run are what to compare). "
        f"The cases take turns: {rounds} rounds of {seconds:g} s each after a 1 s warm-up; "
        "each row is the median of its rounds.",
    ]
    for name, used in cpu.items():
        parts = ", ".join(f"{proc} {us:,.0f} µs" for proc, us in sorted(used.items()) if us >= 1)
        report.notes.append(f"CPU per request, `{name}`: {parts}.")
    row = functools.partial(report.add, unit="req/s")
    vs = "GET hot key: edgekv location vs Miniflare 4"
    row(vs, "Miniflare 4: env.KV.get", results["miniflare"], baseline=True)
    row(vs, "edgekv edge: env.KV.get", results["edge"], target_ratio=5.0)
    cost = "the KV call's cost: same worker without KV"
    row(cost, "edgekv edge: no KV call", results["edge-no-kv"], baseline=True)
    row(cost, "edgekv edge: env.KV.get", results["edge"], target_ratio=0.5)
    runtime = "the runtime alone: no KV call"
    row(runtime, "Miniflare 4: no KV call", results["miniflare-no-kv"], baseline=True)
    row(runtime, "edgekv edge: no KV call", results["edge-no-kv"])
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short rounds (smoke test)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is needed (apt-get install wrk)")
    report = run(args.quick)
    for path in report.write():
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
