"""Workers benchmark: a worker answering `GET /<key>` with `await env.KV.get(key)` on a hot key,
served by `edgekv dev` (embedded SQLite) and by an `edgekv edge` location (its cache in front of
an `edgekv serve` centre), against a bare ASGI app on the same ASGI server and against nginx
serving the same 100 bytes as a static file; and the same worker's `KV.put` in both.

    python -m bench.bench_workers [--quick]

Load: `wrk` (apt-get install -y wrk nginx), 1 thread, 64 connections, on loopback. Each server
is a real process, stopped by PID at the end; they take turns under load, round after round,
and each case reports the median of its rounds (so that load from other processes on a shared
machine hits every case alike). The servers: the bare app
(`edgekv.asgi.server.serve_asgi`, the runner `edgekv dev` uses), `python -m edgekv dev --quiet`
(SQLite store; the access log is off for both Python servers) and nginx (one worker process,
access log off, a temporary config on a free port). Writes bench/results/workers.{md,json,png}
(workers-quick.* with --quick).

Targets (issue "hot paths"): the hot read at a location >= 0.7x nginx, in dev >= 0.6x, p99
<= 3 ms for both; `KV.put` (durable) >= 20,000/s in dev and >= 10,000/s through a location.
A second worker route answers without touching KV, to separate the runtime's own cost from the
KV read's. Last, the cost of the reload check `edgekv dev` runs every 0.5 s (off the request
path, so the worker numbers above already include it).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from bench.harness import Report
from bench.loadgen import ROOT, VALUE, bare_command, free_port, process, require, wrk

PUT_SCRIPT = """
wrk.method = "PUT"
wrk.body = string.rep("v", 100)
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, "/put-" .. counter)
end
"""

CONNECTIONS = 64
NS_ID = "0000000000000000000000000000beef"

WORKER = """
from edgekv.workers import Response

STATIC = "v" * 100


async def on_fetch(request, env, ctx):
    key = request.path[1:]
    if request.method == "PUT":
        await env.KV.put(key, await request.bytes())
        return Response(None, status=204)
    if key == "no-kv":
        return Response(STATIC)
    value = await env.KV.get(key)
    if value is None:
        return Response("missing", status=404)
    return Response(value)
"""


# -- the servers (started together, idle while another one is measured) -------------------------
class Target(NamedTuple):
    """A URL to load, and the PIDs whose CPU time its requests cost (wrk's `watch`)."""

    url: str
    pids: tuple[int, ...]


def start_bare(stack: contextlib.ExitStack, tmp: Path) -> dict[str, Target]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    args = bare_command(port, "text/plain;charset=UTF-8")
    proc = stack.enter_context(process(args, url, tmp / "bare.log"))
    return {"bare": Target(url, (proc.pid,))}


def _project(tmp: Path) -> Path:
    project = tmp / "worker"
    if not project.exists():
        (project / "src").mkdir(parents=True)
        (project / "src" / "worker.py").write_text(WORKER)
        (project / "wrangler.toml").write_text(
            f'name = "bench"\nmain = "src/worker.py"\n'
            f'kv_namespaces = [{{ binding = "KV", id = "{NS_ID}" }}]\n'
        )
    return project


def start_worker(stack: contextlib.ExitStack, tmp: Path) -> dict[str, Target]:
    project = _project(tmp)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "edgekv", "dev", "--config", str(project / "wrangler.toml")]
    args += ["--port", str(port), "--persist-to", str(tmp / "state"), "--quiet"]
    proc = stack.enter_context(process(args, f"{base}/healthz", tmp / "dev.log", cwd=project))
    httpx.put(f"{base}/hot", content=VALUE).raise_for_status()
    pids = (proc.pid,)
    return {"worker": Target(f"{base}/hot", pids), "worker-no-kv": Target(f"{base}/no-kv", pids)}


def start_location(stack: contextlib.ExitStack, tmp: Path) -> dict[str, Target]:
    """`edgekv serve` (the centre, SQLite) and one `edgekv edge` location running the worker."""
    project = _project(tmp)
    data = tmp / "centre"
    port = free_port()
    centre = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "edgekv", "serve", "--data", str(data), "--port", str(port)]
    centre_proc = stack.enter_context(process(args, f"{centre}/healthz", tmp / "serve.log"))
    credentials = data / "credentials.json"
    create = [sys.executable, "-m", "edgekv", "kv", "namespace", "create", "bench"]
    subprocess.run(
        [*create, "--id", NS_ID, "--url", centre, "--credentials", str(credentials)],
        check=True,
        capture_output=True,
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "edgekv", "edge", "--central", centre, "--location", "bench"]
    args += ["--config", str(project / "wrangler.toml"), "--port", str(port), "--quiet"]
    args += ["--credentials", str(credentials)]
    proc = stack.enter_context(process(args, f"{base}/healthz", tmp / "edge.log", cwd=project))
    httpx.put(f"{base}/hot", content=VALUE).raise_for_status()
    # A hot read costs the location only; a put costs the location and the centre.
    return {
        "location": Target(f"{base}/hot", (proc.pid,)),
        "location-put": Target(f"{base}/", (proc.pid, centre_proc.pid)),
    }


NGINX_CONF = """
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            root {root}/www;
            default_type text/plain;
        }}
    }}
}}
"""


def start_nginx(stack: contextlib.ExitStack, tmp: Path) -> dict[str, Target]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    root = tmp / "nginx"
    (root / "www").mkdir(parents=True)
    (root / "tmp").mkdir()
    (root / "www" / "hot").write_bytes(VALUE)
    for path in (tmp, root, root / "www", root / "www" / "hot"):
        path.chmod(0o755)  # nginx's worker runs as nobody when started by root
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(root=root, port=port))
    url = f"http://127.0.0.1:{port}/hot"
    args = [nginx, "-c", str(conf), "-p", str(root), "-g", "daemon off;"]
    proc = stack.enter_context(process(args, url, root / "stdout.log"))
    return {"nginx": Target(url, (proc.pid,))}  # the master; its worker is counted below it


def measure_rounds(
    targets: dict[str, Target], rounds: int, seconds: float
) -> dict[str, dict[str, float]]:
    """wrk on each URL in turn, `rounds` times over; per case the median of its rounds. Taking
    turns spreads a burst of load from other processes over every case alike."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for url, _ in targets.values():  # correct answers, and a warm-up
        check = httpx.get(url)
        if check.content != VALUE:
            raise RuntimeError(f"{url} answered {check.status_code} {check.content[:80]!r}")
        wrk(url, 1, connections=CONNECTIONS)
    for _ in range(rounds):
        for name, (url, pids) in targets.items():
            runs[name].append(wrk(url, seconds, connections=CONNECTIONS, watch=pids))
    return {
        name: {
            **{k: statistics.median(r[k] for r in results) for k in _MEDIANS},
            "calls": sum(r["calls"] for r in results),
        }
        for name, results in runs.items()
    }


_MEDIANS = ("rate", "p50", "p99", "mean", "cpu", "load_cpu")


def budget_notes(results: dict[str, dict[str, float]]) -> list[str]:
    """What the CPU columns say about the targets. A run keeps `rate x (server CPU + wrk CPU)`
    CPUs busy; at the same CPUs busy, a target ratio to nginx is a CPU budget per request."""

    def busy(r: dict[str, float]) -> float:
        return r["rate"] * (r["cpu"] + r["load_cpu"]) / 1e6

    nginx = results["nginx"]
    notes = [
        "CPU columns: user + system time per request of the server's processes (all threads, "
        "from /proc) and of wrk, medians of the rounds. CPUs busy per case = throughput x "
        "(server + wrk CPU): "
        + ", ".join(f"{name} {busy(r):.2f}" for name, r in results.items())
        + "."
    ]
    for name, ratio in (("location", 0.7), ("worker", 0.6)):
        r = results[name]
        rate = ratio * nginx["rate"]
        budget = busy(r) * 1e6 / rate - r["load_cpu"]
        notes.append(
            f"{ratio:g}x nginx is {rate:,.0f} req/s: at its {busy(r):.2f} CPUs busy the "
            f"{name} server may spend {budget:.1f} µs of CPU per request (beside wrk's "
            f"{r['load_cpu']:.1f}); it spends {r['cpu']:.1f}, the bare ASGI app on the same "
            f"server {results['bare']['cpu']:.1f}, nginx {nginx['cpu']:.1f}."
        )
    return notes


def measure_reload_check(tmp: Path) -> Any:
    """What `edgekv dev` spends every 0.5 s to notice a change: one `Worker.changed()`."""
    from bench.harness import measure
    from edgekv.workers import Env, load_worker

    worker = load_worker(tmp / "worker" / "src" / "worker.py", Env({"KV": None}))
    try:
        return measure(worker.changed, n=20_000)
    finally:
        worker.unload()


def run(quick: bool) -> Report:
    rounds, seconds = (3, 1.0) if quick else (5, 2.0)  # wrk takes whole seconds
    report = Report(
        "workers-quick" if quick else "workers",
        "Workers: a worker's hot KV read vs a bare ASGI app and nginx",
    )
    report.notes += [
        "Worker: `python -m edgekv dev --quiet` (SQLite store in a temp dir), `GET /hot` runs "
        "`await env.KV.get(key)` on a 100-byte value and returns it (`GET /no-kv`: the same "
        "100 bytes without KV, the runtime's own cost).",
        "Bare ASGI app: returns the same 100 bytes, served by `edgekv.asgi.server.serve_asgi` "
        "(the runner of `edgekv dev`: same ASGI server, same process model, uvloop).",
        "nginx: the same 100 bytes as a static file, 1 worker process, access log off.",
        f"Load: wrk, 1 thread, {CONNECTIONS} connections, loopback; 2 CPUs shared by the "
        f"servers, wrk and whatever else runs. The cases take turns: {rounds} rounds of "
        f"{seconds:g} s each (after a 1 s warm-up); each row is the median of its rounds.",
    ]
    require("wrk", "nginx")
    with tempfile.TemporaryDirectory(prefix="edgekv-bench-workers-") as name:
        tmp = Path(name)
        with contextlib.ExitStack() as stack:
            targets = {
                **start_bare(stack, tmp),
                **start_worker(stack, tmp),
                **start_location(stack, tmp),
                **start_nginx(stack, tmp),
            }
            puts_at = {
                "worker": targets["worker"]._replace(url=targets["worker"].url[: -len("hot")]),
                "location": targets.pop("location-put"),
            }
            results = measure_rounds(targets, rounds, seconds)
            script = tmp / "put.lua"
            script.write_text(PUT_SCRIPT)
            puts = {
                name: wrk(url, seconds * rounds, script=script, watch=pids)
                for name, (url, pids) in puts_at.items()
            }
        reload_check = measure_reload_check(tmp)

    report.notes += budget_notes(results)
    row = functools.partial(report.add, unit="req/s")
    vs_asgi = "GET 100 bytes: worker vs bare ASGI app"
    row(vs_asgi, "bare ASGI app", results["bare"], baseline=True)
    hot = results["worker"]
    row(vs_asgi, "dev worker: await env.KV.get(key)", hot)
    row(vs_asgi, "location worker: await env.KV.get(key)", results["location"])
    row(vs_asgi, "dev worker: no KV read", results["worker-no-kv"], note="runtime cost only")
    vs_nginx = "GET 100 bytes: worker vs nginx static file"
    row(vs_nginx, "nginx static file", results["nginx"], baseline=True)
    row(
        vs_nginx,
        "location worker: await env.KV.get(key)",
        results["location"],
        target_ratio=0.7,
        note="location cache hit",
    )
    row(vs_nginx, "dev worker: await env.KV.get(key)", hot, target_ratio=0.6, note="SQLite")
    put = "worker KV.put of 100 bytes, 64 concurrent (durable: answered after the commit)"
    row(put, "dev worker: await env.KV.put(key, value)", puts["worker"], target_rate=20_000)
    row(
        put,
        "location worker: await env.KV.put(key, value)",
        puts["location"],
        target_rate=10_000,
        note="through the centre (edgekv serve, SQLite)",
    )
    report.add(
        "edgekv dev: reload check, every 0.5 s in a background task",
        "Worker.changed(): stat the worker's files",
        reload_check,
        unit="checks/s",
        note="never on the request path",
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per case instead of 10 s")
    args = parser.parse_args()
    report = run(args.quick)
    for path in report.write():
        print(f"wrote {path.relative_to(ROOT)}")
    below = [r for r in report.rows if r.ok is False]
    if below:
        print(f"{len(below)} case(s) below target", file=sys.stderr)


if __name__ == "__main__":
    main()
