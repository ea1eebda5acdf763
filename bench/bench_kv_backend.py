"""The HTTP/1.1 layer of the KV backend workerd talks to: httptools (what edgekv uses) against
h11 over asyncio streams, serving the same `KVBackend` (a hot 100-byte key, in memory).

    python -m bench.bench_kv_backend [--quick]

Why measured: ASGI servers cannot send a chosen reason phrase, which is the only error text
workerd reads, so the backend needs its own HTTP layer; h11 (well kept, pure Python) and
httptools (llhttp in C, uvicorn's parser) are the candidates. The load: a child process keeps
64 keep-alive connections busy with `GET /hot?urlencoded=true` as workerd sends it, over the
Unix socket, for a fixed time; the server's own CPU time per request (user + system, from
`resource.getrusage`) is what the layer costs, since on 2 shared cores CPU per request is what
limits the rate. Writes bench/results/kv-backend.{md,json,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench.harness import Report
from bench.loadgen import ROOT

NS = "0123456789abcdef0123456789abcdef"
REQUEST = (
    b"GET /hot?urlencoded=true HTTP/1.1\r\nHost: fake-host\r\n"
    b"CF-KV-FLPROD-405: https://fake-host/hot?urlencoded=true\r\n"
    b"X-KV-Namespace: " + NS.encode() + b"\r\n\r\n"
)
CONNECTIONS = 64


def _client(path: str, seconds: float, out: Any) -> None:
    """The load (a child process): CONNECTIONS connections, one request in flight each."""
    import uvloop

    async def one(count: list[int], latencies: list[float], deadline: float) -> None:
        reader, writer = await asyncio.open_unix_connection(path)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            count[0] += 1
        writer.close()

    async def main() -> None:
        count, latencies = [0], []
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(one(count, latencies, deadline) for _ in range(CONNECTIONS)))
        latencies.sort()
        out.put((count[0], latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]))

    uvloop.run(main())


async def _h11_server(backend: Any, path: str) -> asyncio.AbstractServer:
    import h11

    from edgekv.workers.workerd.backend import Body

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                while event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    conn.receive_data(data)
                    if not data:
                        return
                    event = conn.next_event()
                if not isinstance(event, h11.Request):
                    return

                async def chunks() -> Any:
                    while True:
                        item = conn.next_event()
                        if isinstance(item, h11.Data):
                            yield bytes(item.data)
                        elif isinstance(item, h11.EndOfMessage):
                            return
                        else:
                            conn.receive_data(await reader.read(65536))

                reply = await backend.handle(
                    event.method, event.target, event.headers, Body(chunks())
                )
                while conn.their_state is not h11.DONE:
                    item = conn.next_event()
                    if item is h11.NEED_DATA:
                        conn.receive_data(await reader.read(65536))
                headers = [*reply.headers, (b"content-length", b"%d" % len(reply.body))]
                data = conn.send(
                    h11.Response(status_code=reply.status, headers=headers, reason=reply.reason)
                )
                data += conn.send(h11.Data(data=reply.body)) + conn.send(h11.EndOfMessage())
                writer.write(data)
                await writer.drain()
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            pass
        finally:
            writer.close()

    return await asyncio.start_unix_server(handle, path=path)


async def _measure(
    make_server: Callable[[Any, str], Coroutine[Any, Any, Any]], seconds: float, tmp: Path
) -> dict[str, float]:
    import edgekv
    from edgekv.workers.workerd import KVBackend

    client = edgekv.open()
    ns = await client.create_namespace("bench", namespace_id=NS)
    await ns.put("hot", b"v" * 100)
    path = str(tmp / f"kv-{time.monotonic_ns()}.sock")
    server = await make_server(KVBackend({NS: ns}), path)
    queue: Any = multiprocessing.get_context("spawn").Queue()
    child = multiprocessing.get_context("spawn").Process(
        target=_client, args=(path, seconds, queue)
    )
    before = resource.getrusage(resource.RUSAGE_SELF)
    child.start()
    loop = asyncio.get_running_loop()
    count, p50, p99 = await loop.run_in_executor(None, queue.get)
    after = resource.getrusage(resource.RUSAGE_SELF)
    await loop.run_in_executor(None, child.join)
    server.close()
    with contextlib.suppress(Exception):
        await server.wait_closed()
    await client.aclose()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "rate": count / seconds,
        "p50": p50 * 1e6,
        "p99": p99 * 1e6,
        "mean": cpu / count * 1e6,  # reported as "mean": server CPU µs per request
        "calls": count,
    }


async def _httptools_server(backend: Any, path: str) -> Any:
    from edgekv.workers.workerd.server import _Protocol

    connections: set[Any] = set()
    loop = asyncio.get_running_loop()
    return await loop.create_unix_server(lambda: _Protocol(backend, connections), path=path)


def run(quick: bool) -> Report:
    import uvloop

    seconds = 2.0 if quick else 5.0
    report = Report(
        "kv-backend-quick" if quick else "kv-backend",
        "KV backend for workerd: HTTP/1.1 layer, httptools vs h11 (server CPU per request)",
    )
    report.notes += [
        f"Load: a child process with {CONNECTIONS} keep-alive connections over the Unix socket, "
        "one `GET /hot?urlencoded=true` in flight on each (the request workerd sends), "
        f"{seconds:g} s per case; the hot key is a 100-byte value in the memory store.",
        "The column `mean µs` here is the server process's CPU time per request (user + "
        "system): what the layer costs. p50/p99 are the client's latencies. 2 shared CPUs: the "
        "client competes with the server, so compare the two cases of one run.",
        "h11: h11 0.16 state machine over asyncio streams; httptools: httptools 0.9 (llhttp) "
        "under an asyncio protocol (`edgekv.workers.workerd.server`). Both on uvloop, both "
        "answering through the same `KVBackend`.",
    ]
    with tempfile.TemporaryDirectory(prefix="edgekv-bench-kvb-") as name:
        tmp = Path(name)
        h11 = uvloop.run(_measure(_h11_server, seconds, tmp))
        fast = uvloop.run(_measure(_httptools_server, seconds, tmp))
    group = "GET hot key over the backend's Unix socket"
    report.add(group, "h11 over asyncio streams", h11, unit="req/s", baseline=True)
    report.add(group, "httptools protocol (edgekv)", fast, unit="req/s")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    report = run(args.quick)
    for path in report.write():
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
