"""Where a live server's time goes under load: py-spy samples of every process a request touches.

    python -m bench.profile_live [--seconds S] [--rate HZ] [--write]

Starts the servers of bench/bench_workers.py (`edgekv dev` running the bench worker, and an
`edgekv serve` centre with an `edgekv edge` location running it), loads each case with wrk
(1 thread, 64 connections) and meanwhile records every process involved with
`py-spy record --threads --nonblocking` (sampling, not tracing: the process runs at full speed).
Cases: the worker's hot `GET /hot` and its durable `PUT /<new key>`, in dev and at the location
(a put through a location costs the location and the centre: both are recorded), and the REST
API's hot `GET …/values/hot` on `edgekv serve` (access log to a file, counters on).

Per process it reports the CPU time per request (/proc), where the samples fall by thread
(granian's own threads carry no Python frames: the HTTP server's parsing and I/O), and the
functions with the most samples on top of the stack (self) and anywhere in it (inclusive).
py-spy counts a thread that waits in a system call such as fsync as busy; the CPU columns
say what the processes really spent. `--write` puts it all in bench/results/profile-live.md.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.bench_rest import hot_namespace
from bench.bench_workers import PUT_SCRIPT, Target, start_location, start_worker
from bench.loadgen import ROOT, bearer, cpu_seconds, require, serve_process, wrk

RESULT = ROOT / "bench" / "results" / "profile-live.md"
_ROOTS = ("Runner.run ", "Thread.run ", "Thread._bootstrap_inner ", "_worker (concurrent")
_PREFIXES = (str(ROOT / "src") + os.sep, str(ROOT) + os.sep, sys.prefix + os.sep)


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy missing: pip install py-spy (it is in edgekv's dev extras)")
    return found


def _frame(text: str) -> str:
    """`fn (path:line)` with the project's and the environment's prefixes dropped."""
    for prefix in _PREFIXES:
        text = text.replace(prefix, "")
    return text


def _function(text: str) -> str:
    """`fn (path)`: a function's samples at all its lines together."""
    head, _, _ = _frame(text).rpartition(":")
    return f"{head})" if head else _frame(text)


class Profile:
    """One process's collapsed stacks (py-spy's raw format: `thread;frame;frame N`)."""

    def __init__(self, path: Path) -> None:
        self.threads: collections.Counter[str] = collections.Counter()
        self.self_time: collections.Counter[str] = collections.Counter()
        self.inclusive: collections.Counter[str] = collections.Counter()
        self.total = 0
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack:
                continue
            n = int(count)
            thread, *frames = stack.split(";")
            self.total += n
            # "thread (123): name" -> the name, or "granian (no Python frames)".
            name = thread.partition(": ")[2] or "granian (no Python frames)"
            self.threads[name] += n
            if frames:
                self.self_time[_frame(frames[-1])] += n
                # Below the loop or the thread's run(): what every sample of a thread shares
                # (the CLI's call chain, thread bootstrap) says nothing.
                starts = [i for i, f in enumerate(frames) if f.startswith(_ROOTS)]
                inner = frames[starts[-1] + 1 :] if starts else frames
                for frame in {_function(f) for f in inner}:
                    self.inclusive[frame] += n

    def markdown(self, top: int) -> list[str]:
        def share(n: int) -> str:
            return f"{100 * n / self.total:5.1f}%"

        out = [f"{self.total:,} samples. By thread:", "", "```"]
        out += [f"{share(n)}  {name}" for name, n in self.threads.most_common()]
        out += ["```", "", "Self (top of the stack):", "", "```"]
        out += [f"{share(n)}  {frame}" for frame, n in self.self_time.most_common(top)]
        out += ["```", "", "Inclusive (anywhere in the stack, by function):", "", "```"]
        out += [f"{share(n)}  {frame}" for frame, n in self.inclusive.most_common(top)]
        return [*out, "```", ""]


def record(
    name: str,
    url: str,
    processes: dict[str, int],
    tmp: Path,
    *,
    seconds: int,
    rate: int,
    script: Path | None,
    top: int,
    headers: dict[str, str] | None = None,
) -> list[str]:
    """wrk on `url` for `seconds` while py-spy records each of `processes` (label -> PID)."""
    wrk(url, 1, script=script, headers=headers)  # warm-up
    spies: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for label, pid in processes.items():
        out = tmp / (re.sub(r"[^\w.-]+", "_", f"{name}-{label}") + ".txt")  # names hold "/"
        args = [_py_spy(), "record", "--pid", str(pid), "--threads", "--nonblocking"]
        args += ["--format", "raw", "--rate", str(rate), "--duration", str(seconds)]
        proc = subprocess.Popen(
            [*args, "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        spies[label] = (proc, out)
    time.sleep(0.5)  # py-spy attaches
    before = {label: cpu_seconds([pid]) for label, pid in processes.items()}
    result = wrk(url, seconds - 1, script=script, headers=headers)
    spent = {label: cpu_seconds([pid]) - before[label] for label, pid in processes.items()}
    for proc, _ in spies.values():
        proc.wait(seconds + 30)
    lines = [
        f"## {name}",
        "",
        f"wrk: {result['rate']:,.0f} req/s, p50 {result['p50']:,.0f} µs, "
        f"p99 {result['p99']:,.0f} µs. CPU per request: "
        + ", ".join(f"{label} {spent[label] * 1e6 / result['calls']:.1f} µs" for label in processes)
        + ".",
        "",
    ]
    for label, (_, out) in spies.items():
        lines += [f"### {name}: {label}", ""]
        lines += Profile(out).markdown(top) if out.exists() else ["(py-spy recorded nothing)", ""]
    return lines


def run(seconds: int, rate: int, top: int) -> str:
    require("wrk")
    lines = [
        "# Where a live server's time goes under load (py-spy)",
        "",
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}, load average {os.getloadavg()[0]:.2f}. "
        f"`python -m bench.profile_live --write --seconds {seconds} --rate {rate}` "
        "(see its docstring). Percentages are shares of a process's samples.",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="edgekv-profile-live-") as name:
        tmp = Path(name)
        script = tmp / "put.lua"
        script.write_text(PUT_SCRIPT)
        with contextlib.ExitStack() as stack:
            dev: dict[str, Target] = start_worker(stack, tmp)
            location = start_location(stack, tmp)
            hot, put = dev["worker"], location["location-put"]
            edge, centre = put.pids
            cases = [
                ("dev worker, GET /hot (KV.get)", hot.url, {"edgekv dev": hot.pids[0]}, None),
                (
                    "dev worker, PUT (KV.put)",
                    hot.url[: -len("hot")],
                    {"edgekv dev": hot.pids[0]},
                    script,
                ),
                (
                    "location worker, GET /hot (KV.get)",
                    location["location"].url,
                    {"edgekv edge": edge},
                    None,
                ),
                (
                    "location worker, PUT (KV.put through the centre)",
                    put.url,
                    {"edgekv edge": edge, "edgekv serve (centre)": centre},
                    script,
                ),
            ]
            for case, url, processes, lua in cases:
                print(f"recording: {case}", flush=True)
                lines += record(
                    case, url, processes, tmp, seconds=seconds, rate=rate, script=lua, top=top
                )
            account, token = secrets.token_hex(16), secrets.token_urlsafe(30)
            served = serve_process(
                ["--data", str(tmp / "rest")], tmp / "rest.log", account=account, token=token
            )
            url, rest = stack.enter_context(served)
            with httpx.Client(headers=bearer(token)) as http:
                path = hot_namespace(http, url, account)
            case = "REST GET …/values/hot (edgekv serve)"
            print(f"recording: {case}", flush=True)
            lines += record(
                case,
                f"{url}{path}/values/hot",
                {"edgekv serve": rest.pid},
                tmp,
                seconds=seconds,
                rate=rate,
                script=None,
                top=top,
                headers=bearer(token),
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=6, help="load per case (default 6)")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples/s (default 200)")
    parser.add_argument("--top", type=int, default=20, help="functions listed (default 20)")
    parser.add_argument("--write", action="store_true", help=f"write {RESULT.relative_to(ROOT)}")
    args = parser.parse_args()
    text = run(args.seconds, args.rate, args.top)
    if args.write:
        RESULT.write_text(text + "\n")
        print(f"wrote {RESULT.relative_to(ROOT)}")
    else:
        print(text)


if __name__ == "__main__":
    main()
