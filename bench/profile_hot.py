"""Where a hot request's time goes, without a server or a network in the way.

    python -m bench.profile_hot [--calls N] [--profile CASE] [--top K]

Calls each ASGI app directly (a prepared `scope`, a `receive` that ends the body at once, a
`send` that drops the messages) on one uvloop loop and reports µs per call for:

- `raw`: the SQLite point read the REST GET does, as a raw `sqlite3` loop (same schema, same row)
- `bare`: the bare ASGI app of bench/loadgen.py (100 bytes)
- `rest`: `edgekv serve`'s app answering `GET …/values/hot` (auth, owner check, store read,
  response, counters; access log to a file)
- `worker`: `edgekv dev`'s app running a worker whose `GET /hot` is `await env.KV.get(key)`
  (embedded SQLite; access log to a file), and `worker-put`: its `PUT /<new key>` (durable,
  so it includes the wait for the group commit: µs per call is latency here, not CPU)

The difference `rest - bare` is what edgekv adds to a request on top of what any ASGI app costs;
the server's own work (parsing, framing, the socket) is the same for both and not included.
With `--profile NAME` it runs that case under cProfile and prints the `--top` functions by
internal time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import pstats
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


async def _worker_app(data: Path) -> App:
    from edgekv._client import Client
    from edgekv.workers.app import WorkerApp
    from edgekv.workers.config import load_config

    project = data / "worker"
    project.mkdir()
    (project / "worker.py").write_text(WORKER)
    (project / "wrangler.toml").write_text(
        'name = "profile"\nmain = "worker.py"\n'
        'kv_namespaces = [{ binding = "KV", id = "0000000000000000000000000000beef" }]\n'
    )
    log = AccessLog((data / "worker-access.log").open("a"))
    client = Client(data / "worker-state")
    app = WorkerApp(load_config(project / "wrangler.toml"), client, access_log=log)
    await app.startup()
    put = {**_scope("/hot", ""), "method": "PUT"}
    await app(put, _put_body, _send)
    return app


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


async def _main(args: argparse.Namespace) -> None:
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        app, scope, ns = await _setup(data)
        worker = await _worker_app(data)
        try:
            cases: dict[str, Callable[[], Awaitable[float]]] = {
                "raw": lambda: asyncio.to_thread(
                    _raw_loop, data / "edgekv.sqlite3", ns, args.calls
                ),
                "bare": lambda: _time_app(_bare, _scope("/", ""), args.calls),
                "rest": lambda: _time_app(app, scope, args.calls),
                "worker": lambda: _time_app(worker, _scope("/hot", ""), args.calls),
                "worker-put": lambda: _time_puts(worker, _scope("/", ""), args.calls // 5),
            }
            if args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
                await cases[args.profile]()
                profiler.disable()
                pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(
                    args.top
                )
                return
            results = {name: await run() for name, run in cases.items()}
            for name, us in results.items():
                print(f"{name:>10}: {us:7.2f} µs per call")
            for name in ("rest", "worker"):
                added = results[name] - results["bare"]
                print(f"{name} - bare: {added:.2f} µs added by edgekv")
        finally:
            await app.shutdown()
            await worker.shutdown()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--profile", choices=["rest", "bare", "raw", "worker", "worker-put"])
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_main(args))


if __name__ == "__main__":
    main()
