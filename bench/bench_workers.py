"""Workers benchmark: a worker answering `GET /<key>` with `await env.KV.get(key)` on a hot key,
served by `edgekv dev`, against a bare ASGI app on the same ASGI server and against nginx serving
the same 100 bytes as a static file.

    python -m bench.bench_workers [--quick]

Load: `wrk` (apt-get install -y wrk nginx), 1 thread, 64 connections, on loopback. Each server
is a real process, stopped by PID at the end; they take turns under load, round after round,
and each case reports the median of its rounds (so that load from other processes on a shared
machine hits every case alike). The servers: the bare app
(`edgekv.api.server.serve_asgi`, the runner `edgekv dev` uses), `python -m edgekv dev --quiet`
(SQLite store; the access log is off for both Python servers) and nginx (one worker process,
access log off, a temporary config on a free port). Writes bench/results/workers.{md,json,png}
(workers-quick.* with --quick).

Targets: the worker reaches at least 0.5x the requests/s of the bare ASGI app and 0.25x nginx's.
A second worker route answers without touching KV, to separate the runtime's own cost from the
KV read's. Last, the cost of the reload check `edgekv dev` runs every 0.5 s (off the request
path, so the worker numbers above already include it).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.harness import Report, Row

ROOT = Path(__file__).resolve().parent.parent
VALUE = b"v" * 100
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


# -- the bare app (a child process: `--child-bare PORT`) -----------------------------------------
async def bare_app(scope: Any, receive: Any, send: Any) -> None:
    """The least an ASGI app can do: the same 100 bytes."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain;charset=UTF-8"),
                (b"content-length", b"100"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": VALUE})


def run_bare(port: int) -> None:
    import asyncio

    import uvloop

    from edgekv.api.server import serve_asgi

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_asgi(bare_app, "127.0.0.1", port))


# -- processes and load --------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.args!r} did not answer {url}")


@contextlib.contextmanager
def process(args: list[str], ready_url: str, log: Path, **kw: Any) -> Iterator[None]:
    """A server process for the duration of the block, stopped by its PID."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=out, **kw)
        try:
            wait_ready(ready_url, proc)
            yield
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


_UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def _us(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, seconds: float) -> dict[str, float]:
    """One wrk run (1 thread: the server keeps the other core) and its summary."""
    args = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--latency", url]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} error responses from {url}:\n{out}")
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    return {
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "calls": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "mean": _us(re.search(r"Latency\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _us(pct["50"]),
        "p99": _us(pct["99"]),
    }


def add_row(
    report: Report,
    group: str,
    case: str,
    result: dict[str, float],
    *,
    baseline: bool = False,
    target_ratio: float | None = None,
    note: str = "",
) -> Row:
    """`Report.add` for wrk, which gives percentiles rather than every latency."""
    base = next((r for r in report.rows if r.group == group and r.baseline), None)
    ratio = None if base is None or baseline else result["rate"] / base.rate
    row = Row(
        group=group,
        case=case,
        unit="req/s",
        rate=result["rate"],
        p50_us=result["p50"],
        p99_us=result["p99"],
        mean_us=result["mean"],
        calls=int(result["calls"]),
        items=1,
        baseline=baseline,
        ratio=ratio,
        target="" if target_ratio is None else f"≥ {target_ratio:g}x",
        ok=None if target_ratio is None else (ratio is not None and ratio >= target_ratio),
        note=note,
    )
    report.rows.append(row)
    shown = "" if ratio is None else f"  {ratio:.2f}x"
    print(
        f"{case:<44} {row.rate:>10,.0f} req/s  p50 {row.p50_us:>8,.0f}us  "
        f"p99 {row.p99_us:>8,.0f}us{shown}",
        flush=True,
    )
    return row


# -- the three servers (started together, idle while another one is measured) -------------------
def start_bare(stack: contextlib.ExitStack, tmp: Path) -> dict[str, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    args = [sys.executable, "-m", "bench.bench_workers", "--child-bare", str(port)]
    stack.enter_context(process(args, url, tmp / "bare.log", cwd=ROOT))
    return {"bare": url}


def start_worker(stack: contextlib.ExitStack, tmp: Path) -> dict[str, str]:
    project = tmp / "worker"
    (project / "src").mkdir(parents=True)
    (project / "src" / "worker.py").write_text(WORKER)
    (project / "wrangler.toml").write_text(
        f'name = "bench"\nmain = "src/worker.py"\n'
        f'kv_namespaces = [{{ binding = "KV", id = "{NS_ID}" }}]\n'
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "edgekv", "dev", "--config", str(project / "wrangler.toml")]
    args += ["--port", str(port), "--persist-to", str(tmp / "state"), "--quiet"]
    stack.enter_context(process(args, f"{base}/healthz", tmp / "dev.log", cwd=project))
    httpx.put(f"{base}/hot", content=VALUE).raise_for_status()
    return {"worker": f"{base}/hot", "worker-no-kv": f"{base}/no-kv"}


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


def start_nginx(stack: contextlib.ExitStack, tmp: Path) -> dict[str, str]:
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
    stack.enter_context(process(args, url, root / "stdout.log"))
    return {"nginx": url}


def measure_rounds(
    urls: dict[str, str], rounds: int, seconds: float
) -> dict[str, dict[str, float]]:
    """wrk on each URL in turn, `rounds` times over; per case the median of its rounds. Taking
    turns spreads a burst of load from other processes over every case alike."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
    for url in urls.values():  # correct answers, and a warm-up
        check = httpx.get(url)
        if check.content != VALUE:
            raise RuntimeError(f"{url} answered {check.status_code} {check.content[:80]!r}")
        wrk(url, 1)
    for _ in range(rounds):
        for name, url in urls.items():
            runs[name].append(wrk(url, seconds))
    return {
        name: {
            "rate": statistics.median(r["rate"] for r in results),
            "p50": statistics.median(r["p50"] for r in results),
            "p99": statistics.median(r["p99"] for r in results),
            "mean": statistics.median(r["mean"] for r in results),
            "calls": sum(r["calls"] for r in results),
        }
        for name, results in runs.items()
    }


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
        "Bare ASGI app: returns the same 100 bytes, served by `edgekv.api.server.serve_asgi` "
        "(the runner of `edgekv dev`: same ASGI server, same process model, uvloop).",
        "nginx: the same 100 bytes as a static file, 1 worker process, access log off.",
        f"Load: wrk, 1 thread, {CONNECTIONS} connections, loopback; 2 CPUs shared by the "
        f"servers, wrk and whatever else runs. The cases take turns: {rounds} rounds of "
        f"{seconds:g} s each (after a 1 s warm-up); each row is the median of its rounds.",
    ]
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is missing: apt-get install -y wrk nginx")
    with tempfile.TemporaryDirectory(prefix="edgekv-bench-workers-") as name:
        tmp = Path(name)
        with contextlib.ExitStack() as stack:
            urls = {
                **start_bare(stack, tmp),
                **start_worker(stack, tmp),
                **start_nginx(stack, tmp),
            }
            results = measure_rounds(urls, rounds, seconds)
        reload_check = measure_reload_check(tmp)

    vs_asgi = "GET 100 bytes: worker vs bare ASGI app"
    add_row(report, vs_asgi, "bare ASGI app", results["bare"], baseline=True)
    hot = results["worker"]
    add_row(report, vs_asgi, "worker: await env.KV.get(key)", hot, target_ratio=0.5)
    add_row(
        report, vs_asgi, "worker: no KV read", results["worker-no-kv"], note="runtime cost only"
    )
    vs_nginx = "GET 100 bytes: worker vs nginx static file"
    add_row(report, vs_nginx, "nginx static file", results["nginx"], baseline=True)
    add_row(report, vs_nginx, "worker: await env.KV.get(key)", hot, target_ratio=0.25)
    report.add(
        "edgekv dev: reload check, every 0.5 s in a background task",
        "Worker.changed(): stat the worker's files",
        reload_check,
        unit="checks/s",
        note="never on the request path",
    )
    return report


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child-bare":
        run_bare(int(sys.argv[2]))
        return
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
