"""Where a hot request's time goes, without a server or a network in the way.

    python -m bench.profile_hot [--calls N] [--profile CASE] [--top K] [--write]

Calls each ASGI app directly (a prepared `scope`, a `receive` that ends the body at once, a
`send` that drops the messages) on one uvloop loop and reports µs per call for:

- `raw`: the SQLite point read the REST GET does, as a raw `sqlite3` loop (same schema, same row)
- `bare`: the bare ASGI app of bench/loadgen.py (100 bytes)
- `rest`: `edgekv serve`'s app answering `GET …/values/hot` (auth, owner check, store read,
  response, counters; access log to a file), and `rest-general`: the same with the app's fast
  path for value reads switched off (`EdgeKVApp._get_value_fast`: what it saves)
- `worker`: `edgekv dev`'s app running a worker whose `GET /hot` is `await env.KV.get(key)`
  (embedded SQLite; access log to a file), and `worker-put`: its `PUT /<new key>` (durable,
  so it includes the wait for the group commit: µs per call is latency here, not CPU)
- `location`: the same worker at a location: its KV is a `LocationCache` (here over the same
  SQLite store instead of a centre across the network; the hot read is a cache hit either
  way), so `worker - location` is what the embedded read costs beyond a cached one

The difference `rest - bare` is what edgekv adds to a request on top of what any ASGI app costs;
the server's own work (parsing, framing, the socket) is the same for both and not included.
With `--profile NAME` it runs that case under cProfile and prints the `--top` functions by
internal time. `--write` times every case and profiles `rest`, `worker` and `worker-put`, into
bench/results/profile-hot.md (the profiles committed beside the benchmarks' results).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import os
import platform
import pstats
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

from edgekv.api.app import create_app
from edgekv.api.auth import create_token
from edgekv.asgi.accesslog import AccessLog

VALUE = b"v" * 100
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    return None


def _scope(path: str, token: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"wrk"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    headers = [(b"content-type", b"application/octet-stream"), (b"content-length", b"100")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": VALUE})


WORKER = """
from edgekv.workers import Response


async def on_fetch(request, env, ctx):
    if request.method == "PUT":
        await env.KV.put(request.path[1:], await request.bytes())
        return Response(None, status=204)
    return Response(await env.KV.get(request.path[1:]))
"""


async def _put_body() -> dict[str, Any]:
    return {"type": "http.request", "body": VALUE, "more_body": False}


async def _time_puts(app: App, scope: dict[str, Any], calls: int) -> float:
    """`calls` PUTs of new keys, 64 at a time (as 64 clients would), µs per PUT."""
    start = time.perf_counter_ns()
    for base in range(0, calls, 64):
        scopes = []
        for i in range(base, min(calls, base + 64)):
            path = f"/put-{i}"
            scopes.append({**scope, "method": "PUT", "path": path, "raw_path": path.encode()})
        await asyncio.gather(*(app(one, _put_body, _send) for one in scopes))
    return (time.perf_counter_ns() - start) / calls / 1000


async def _worker_app(data: Path, *, location: bool = False) -> App:
    from edgekv._client import Client
    from edgekv.edge.cache import LocationCache
    from edgekv.store import open_store
    from edgekv.workers.app import WorkerApp
    from edgekv.workers.config import load_config

    project = data / "worker"
    if not project.exists():
        project.mkdir()
        (project / "worker.py").write_text(WORKER)
        (project / "wrangler.toml").write_text(
            'name = "profile"\nmain = "worker.py"\n'
            'kv_namespaces = [{ binding = "KV", id = "0000000000000000000000000000beef" }]\n'
        )
    name = "location" if location else "worker"
    log = AccessLog((data / f"{name}-access.log").open("a"))
    state = data / f"{name}-state"
    # A location's store: its cache over the central store (here the SQLite store in-process).
    client = (
        Client(LocationCache(await open_store(state), location="profile"))
        if location
        else Client(state)
    )
    app = WorkerApp(load_config(project / "wrangler.toml"), client, access_log=log)
    await app.startup()
    put = {**_scope("/hot", ""), "method": "PUT"}
    await app(put, _put_body, _send)
    return app


async def _general(app: Any, run: Callable[[], Awaitable[float]]) -> float:
    """`run` with the REST app's fast path for value reads switched off (the general path)."""
    app._fast_get = False
    try:
        return await run()
    finally:
        app._fast_get = True


async def _time_app(app: App, scope: dict[str, Any], calls: int) -> float:
    for _ in range(min(calls, 2000)):  # warm caches (token, owner, statements)
        await app(scope, _receive, _send)
    start = time.perf_counter_ns()
    for _ in range(calls):
        await app(scope, _receive, _send)
    return (time.perf_counter_ns() - start) / calls / 1000


def _raw_loop(path: Path, ns: str, calls: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    query = (  # the engine's inline point read
        "SELECT CASE WHEN blob IS NULL THEN value END, expiration, metadata, seq FROM entries"
        " WHERE namespace_id = ? AND key = ?"
    )
    params = (ns, b"hot")
    try:
        conn.execute(query, params).fetchone()
    except sqlite3.Error as exc:  # the schema moved on: say so rather than time nothing
        raise SystemExit(f"raw query no longer matches the schema: {exc}") from None
    start = time.perf_counter_ns()
    for _ in range(calls):
        conn.execute(query, params).fetchone()
    conn.close()
    return (time.perf_counter_ns() - start) / calls / 1000


async def _setup(data: Path) -> tuple[App, dict[str, Any], str]:
    log = AccessLog((data / "access.log").open("a"))
    app = create_app(data, access_log=log)
    await app.startup()
    store = app.client._store
    assert store is not None
    account = await store.default_account()
    secret, _ = await create_token(store, account, name="profile")
    ns = app.client.namespace((await app.client.create_namespace("profile")).id)
    await ns.put("hot", VALUE)
    path = f"/client/v4/accounts/{account}/storage/kv/namespaces/{ns.id}/values/hot"
    return app, _scope(path, secret), ns.id


PROFILED = ("rest", "worker", "location", "worker-put")
ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "profile-hot.md"


async def _profile(run: Callable[[], Awaitable[float]], top: int) -> str:
    """`run` under cProfile: its `top` functions by internal time."""
    profiler = cProfile.Profile()
    profiler.enable()
    await run()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    # Paths relative to the project (the report must not name this machine's folders).
    text = out.getvalue().replace(f"{ROOT}{os.sep}", "")
    for prefix in {sys.prefix, sys.base_prefix}:
        text = text.replace(f"{prefix}{os.sep}", "")
    return re.sub(re.escape(tempfile.gettempdir()) + r"/[^/]+/", "<tmp>/", text)


def _write(timings: list[str], profiles: dict[str, str], args: argparse.Namespace) -> None:
    load = os.getloadavg()[0]
    parts = [
        "# Where a hot request's time goes (in-process, no server or network)",
        "",
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}, load average {load:.2f}. "
        f"`python -m bench.profile_hot --write --calls {args.calls}` (see its docstring).",
        "",
        "```",
        *timings,
        "```",
    ]
    for name, text in profiles.items():
        parts += ["", f"## cProfile of `{name}`, by internal time", "", "```", text.strip(), "```"]
    RESULT.write_text("\n".join(parts) + "\n")
    print(f"wrote {RESULT}")


async def _main(args: argparse.Namespace) -> None:
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        app, scope, ns = await _setup(data)
        worker = await _worker_app(data)
        location = await _worker_app(data, location=True)
        try:
            cases: dict[str, Callable[[], Awaitable[float]]] = {
                "raw": lambda: asyncio.to_thread(
                    _raw_loop, data / "edgekv.sqlite3", ns, args.calls
                ),
                "bare": lambda: _time_app(_bare, _scope("/", ""), args.calls),
                "rest": lambda: _time_app(app, scope, args.calls),
                "rest-general": lambda: _general(app, lambda: _time_app(app, scope, args.calls)),
                "worker": lambda: _time_app(worker, _scope("/hot", ""), args.calls),
                "worker-put": lambda: _time_puts(worker, _scope("/", ""), args.calls // 5),
                "location": lambda: _time_app(location, _scope("/hot", ""), args.calls),
            }
            if args.profile:
                print(await _profile(cases[args.profile], args.top))
                return
            results = {name: await run() for name, run in cases.items()}
            lines = [f"{name:>10}: {us:7.2f} µs per call" for name, us in results.items()]
            for name in ("rest", "rest-general", "worker", "location"):
                added = results[name] - results["bare"]
                lines.append(f"{name} - bare: {added:.2f} µs added by edgekv")
            embedded = results["worker"] - results["location"]
            lines.append(f"worker - location: {embedded:.2f} µs (the embedded read's extra)")
            print("\n".join(lines))
            if args.write:
                profiles = {name: await _profile(cases[name], args.top) for name in PROFILED}
                _write(lines, profiles, args)
        finally:
            await app.shutdown()
            await worker.shutdown()  # type: ignore[attr-defined]
            await location.shutdown()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument(
        "--profile",
        choices=["rest", "rest-general", "bare", "raw", "worker", "worker-put", "location"],
    )
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--write", action="store_true", help="write bench/results/profile-hot.md")
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_main(args))


if __name__ == "__main__":
    main()
