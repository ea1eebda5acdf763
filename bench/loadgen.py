"""Load generation for the benchmarks: servers as child processes on free loopback ports, `wrk`
runs read into numbers, and a bare ASGI app to measure servers against.

    with serve(["--data", str(tmp / "data")], tmp / "serve.log", account=a, token=t) as url:
        result = wrk(f"{url}/healthz", 5, headers=bearer(t))
    report.add("GET", "edgekv", result, unit="req/s")  # bench/harness.py

A run's *summary* (what `wrk` returns, and what `Report.add` takes besides a `Sample`):
requests/s (`rate`), latencies in µs (`p50`, `p99`, `mean`) and the number of requests
(`calls`); given the servers' PIDs (`watch`), also the CPU time they spent per request (`cpu`,
µs, every thread and child process) and wrk's own (`load_cpu`): on a 2-CPU machine shared by
server and load generator, throughput is bounded by these, whatever the latencies. Every
process is stopped by its PID (SIGTERM, then SIGKILL) when its block ends.

The bare app runs as `python -m bench.loadgen bare PORT CONTENT_TYPE [SERVER]` (see
`bare_command`).
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "ROOT",
    "VALUE",
    "bare_command",
    "bearer",
    "cpu_seconds",
    "free_port",
    "median_run",
    "process",
    "process_tree",
    "require",
    "serve",
    "serve_process",
    "wait_ready",
    "wrk",
]

ROOT = Path(__file__).resolve().parent.parent
VALUE = b"v" * 100  # what the bare app answers


# -- processes -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require(*tools: str) -> None:
    """Exit, naming the packages to install, unless every one of `tools` is installed."""
    missing = [t for t in tools if shutil.which(t) is None and not Path("/usr/sbin", t).exists()]
    if missing:
        raise SystemExit(f"{', '.join(missing)} missing: apt-get install -y {' '.join(tools)}")


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until GET `url` answers 200; RuntimeError if `proc` exits or `timeout` s pass."""
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
def process(
    args: list[str],
    ready_url: str,
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """`args` as a child process for the block, once GET `ready_url` answers 200, its output in
    `log`; stopped by its PID at the end (SIGTERM, SIGKILL after 15 s)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=out, cwd=cwd)
        try:
            wait_ready(ready_url, proc, timeout)
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def serve_process(
    options: list[str], log: Path, *, account: str, token: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`python -m edgekv serve OPTIONS` on a free loopback port, given `account` and its admin
    `token` (EDGEKV_ACCOUNT_ID / EDGEKV_API_TOKEN; no other EDGEKV_* variable); yields its URL
    and its process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEKV_")}
    env.update(PYTHONUNBUFFERED="1", EDGEKV_ACCOUNT_ID=account, EDGEKV_API_TOKEN=token)
    args = [sys.executable, "-m", "edgekv", "serve", *options, "--port", str(port)]
    with process(args, f"{url}/healthz", log, env=env) as proc:
        yield url, proc


@contextlib.contextmanager
def serve(options: list[str], log: Path, *, account: str, token: str) -> Iterator[str]:
    """`serve_process`, yielding the URL only."""
    with serve_process(options, log, account=account, token=token) as (url, _):
        yield url


_TICK = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and every process below it (nginx's workers, a server's helpers)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time so far of `pids` and their descendants (all threads), from /proc."""
    total = 0
    for pid in {d for p in pids for d in process_tree(p)}:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / _TICK


# -- wrk -----------------------------------------------------------------------------------------
def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


_UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def _us(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.M)
    if match is None:
        raise ValueError(f"no {pattern!r} in wrk's output:\n{text}")
    return match.group(1)


def wrk(
    url: str,
    seconds: float,
    *,
    connections: int = 64,
    headers: Mapping[str, str] | None = None,
    script: Path | None = None,
    watch: Iterable[int] = (),
) -> dict[str, float]:
    """One wrk run on `url`: 1 thread (the server keeps the other core), `connections` open,
    `seconds` long (whole seconds), with `headers` and a Lua `script`; returns its summary,
    with the CPU per request of the processes `watch` and of wrk when `watch` is given.
    RuntimeError if any answer was not 2xx or 3xx."""
    watch = list(watch)
    before = cpu_seconds(watch) if watch else 0.0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    if script is not None:
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} error responses from {url}:\n{out}")
    summary = {
        "rate": float(_find(r"Requests/sec:\s+([\d.]+)", out)),
        "p50": _us(_find(r"^\s+50%\s+(\S+)", out)),
        "p99": _us(_find(r"^\s+99%\s+(\S+)", out)),
        "mean": _us(_find(r"Latency\s+(\S+)", out)),
        "calls": int(_find(r"(\d+) requests in", out)),
    }
    if watch:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        load = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
        summary["cpu"] = (cpu_seconds(watch) - before) * 1e6 / summary["calls"]
        summary["load_cpu"] = load * 1e6 / summary["calls"]
    return summary


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run of median throughput (its own latencies with it)."""
    return sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]


# -- the bare app --------------------------------------------------------------------------------
def bare_command(port: int, content_type: str, server: str | None = None) -> list[str]:
    """The command serving the bare app on `port` with `edgekv.asgi.server.serve_asgi` (the
    runner of `edgekv serve` and `edgekv dev`; `server`: its ASGI server, default its own)."""
    args = [sys.executable, "-m", "bench.loadgen", "bare", str(port), content_type]
    return args if server is None else [*args, server]


def _run_bare(port: int, content_type: str, server: str | None) -> None:
    import asyncio

    import uvloop

    from edgekv.asgi.server import serve_asgi

    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(VALUE))]

    async def bare_app(scope: Any, receive: Any, send: Any) -> None:
        """The least an ASGI app can do: 100 bytes, whatever the request."""
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": VALUE})

    options: dict[str, Any] = {} if server is None else {"server": server}
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_asgi(bare_app, "127.0.0.1", port, **options))


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5) or sys.argv[1] != "bare":
        raise SystemExit("usage: python -m bench.loadgen bare PORT CONTENT_TYPE [SERVER]")
    _run_bare(int(sys.argv[2]), sys.argv[3], sys.argv[4] if len(sys.argv) == 5 else None)
