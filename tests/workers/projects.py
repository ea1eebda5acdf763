"""Worker projects (wrangler.toml + module) written into a temporary directory for the tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

NS_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"

# The on_fetch worker most tests talk to: one route per behaviour under test.
ON_FETCH_WORKER = """
import asyncio

from edgekv.workers import Response

IMPORTED_WITH = KV.id  # top-level code sees the binding as a module global


async def later(key, value):
    await asyncio.sleep(0.5)
    await KV.put(key, value)


async def on_fetch(request, env, ctx):
    path = request.path
    if path.startswith("/kv/"):
        key = path[len("/kv/"):]
        if request.method in ("GET", "HEAD"):
            value = await env.KV.get(key)
            if value is None:
                return Response("missing", status=404)
            return Response(value)
        if request.method == "PUT":
            ttl = request.query.get("ttl")
            await env.KV.put(
                key, await request.bytes(), expiration_ttl=int(ttl) if ttl else None
            )
            return Response("stored", status=201)
        if request.method == "DELETE":
            await env.KV.delete(key)
            return Response(None, status=204)
    if path.startswith("/global/"):
        value = await KV.get(path[len("/global/"):])
        return Response(value or "missing")
    if path == "/import-time":
        return Response(IMPORTED_WITH)
    if path.startswith("/later/"):
        ctx.wait_until(later(path[len("/later/"):], "done"))
        return Response("accepted", status=202)
    if path == "/crash":
        raise RuntimeError("boom-secret-detail")
    if path == "/not-a-response":
        return "just a string"
    if path == "/echo":
        return Response.json(
            {
                "method": request.method,
                "url": request.url,
                "x": request.headers.get("x-test"),
                "body": await request.text(),
                "query": request.query,
            },
            headers={"x-worker": "yes"},
        )
    if path == "/bytes":
        return Response(bytes(range(256)), headers={"content-type": "application/octet-stream"})
    if path == "/stream":
        return Response(await env.KV.get("streamed", "stream"))
    return Response("no route", status=404)
"""

DEFAULT_CLASS_WORKER = """
from edgekv.workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        key = request.path.strip("/")
        if request.method == "PUT":
            await self.env.KV.put(key, await request.text())
            self.ctx.wait_until(self.env.KV.put(key + ".audit", "written after the response"))
            return Response("ok", status=201)
        value = await self.env.KV.get(key)
        if value is None:
            return Response("missing", status=404)
        return Response(value)
"""


def write_project(
    root: Path,
    worker: str,
    *,
    name: str = "test-worker",
    bindings: dict[str, str] | None = None,
    main: str = "src/worker.py",
    extra_toml: str = "",
) -> Path:
    """wrangler.toml and its worker module under `root`; returns the config path."""
    bindings = {"KV": NS_ID} if bindings is None else bindings
    entries = ",\n".join(f'  {{ binding = "{b}", id = "{i}" }}' for b, i in bindings.items())
    config = root / "wrangler.toml"
    config.write_text(
        f'name = "{name}"\nmain = "{main}"\nkv_namespaces = [\n{entries}\n]\n{extra_toml}'
    )
    module = root / main
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(textwrap.dedent(worker).lstrip())
    return config
