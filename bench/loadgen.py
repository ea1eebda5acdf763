"""Load generation for the benchmarks: servers as child processes on free loopback ports, `wrk`
runs read into numbers, and a bare ASGI app to measure servers against.

    with serve(["--data", str(tmp / "data")], tmp / "serve.log", account=a, token=t) as url:
        result = wrk(f"{url}/healthz", 5, headers=bearer(t))
    report.add("GET", "edgekv", result, unit="req/s")  # bench/harness.py

A run's *summary* (what `wrk` returns, and what `Report.add` takes besides a `Sample`):
requests/s (`rate`), latencies in µs (`p50`, `p99`, `mean`) and the number of requests
(`calls`). Every process is stopped by its PID (SIGTERM, then SIGKILL) when its block ends.

The bare app runs as `python -m bench.loadgen bare PORT CONTENT_TYPE [SERVER]` (see
`bare_command`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "ROOT",
    "VALUE",
    "bare_command",
    "bearer",
    "free_port",
    "median_run",
    "process",
    "require",
    "serve",
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
def serve(options: list[str], log: Path, *, account: str, token: str) -> Iterator[str]:
    """`python -m edgekv serve OPTIONS` on a free loopback port, given `account` and its admin
    `token` (EDGEKV_ACCOUNT_ID / EDGEKV_API_TOKEN; no other EDGEKV_* variable); yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEKV_")}
    env.update(PYTHONUNBUFFERED="1", EDGEKV_ACCOUNT_ID=account, EDGEKV_API_TOKEN=token)
    args = [sys.executable, "-m", "edgekv", "serve", *options, "--port", str(port)]
    with process(args, f"{url}/healthz", log, env=env):
        yield url


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
) -> dict[str, float]:
    """One wrk run on `url`: 1 thread (the server keeps the other core), `connections` open,
    `seconds` long (whole seconds), with `headers` and a Lua `script`; returns its summary.
    RuntimeError if any answer was not 2xx or 3xx."""
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    if script is not None:
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} error responses from {url}:\n{out}")
    return {
        "rate": float(_find(r"Requests/sec:\s+([\d.]+)", out)),
        "p50": _us(_find(r"^\s+50%\s+(\S+)", out)),
        "p99": _us(_find(r"^\s+99%\s+(\S+)", out)),
        "mean": _us(_find(r"Latency\s+(\S+)", out)),
        "calls": int(_find(r"(\d+) requests in", out)),
    }


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
