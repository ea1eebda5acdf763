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


# A Python Worker written for Cloudflare, as Cloudflare's docs and examples write it: the
# `workers` module, `class Default(WorkerEntrypoint)`, and the binding's JavaScript spellings.
CLOUDFLARE_WORKER = """
from urllib.parse import parse_qs, urlparse

from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlparse(request.url)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        key = query.get("key", "")
        if url.path == "/":
            await self.env.FOO.put("bar", "baz")
            bar = await self.env.FOO.get("bar")
            return Response(bar)  # returns "baz"
        if url.path == "/put":
            await self.env.FOO.put(
                key, await request.text(), expirationTtl=int(query["ttl"]), metadata={"by": "cf"}
            )
            return Response("stored", status=201)
        if url.path == "/put-options":
            await self.env.FOO.put(key, await request.text(), {"metadata": {"opts": True}})
            return Response("stored", status=201)
        if url.path == "/get":
            return Response.json({"value": await self.env.FOO.get(key, cacheTtl=60)})
        if url.path == "/json":
            data = await self.env.FOO.get(key, {"type": "json"})
            return Response.json({"name": data["name"], "same": data.name})
        if url.path == "/meta":
            result = await self.env.FOO.getWithMetadata(key)
            return Response.json(
                {
                    "value": result["value"],
                    "metadata": result.metadata,
                    "cacheStatus": result["cacheStatus"],
                }
            )
        if url.path == "/list":
            options = {"prefix": query.get("prefix"), "limit": int(query.get("limit", "1000"))}
            if "cursor" in query:
                options["cursor"] = query["cursor"]
            result = await self.env.FOO.list(options)
            return Response.json(
                {
                    "names": [k["name"] for k in result["keys"]],
                    "metadata": [k.get("metadata") for k in result["keys"]],
                    "list_complete": result["list_complete"],
                    "cursor": result.get("cursor"),
                }
            )
        if url.path == "/later":
            self.ctx.waitUntil(self.env.FOO.put("later", "done"))
            return Response("accepted", status=202)
        if url.path == "/bad-ttl":
            await self.env.FOO.put(key, "x", expirationTtl=5)
        return Response("no route", status=404)
"""

# Cloudflare's FastAPI example (`import asgi`, `request.js_object`), with a KV binding, a
# lifespan, a streamed response and a background task added.
FASTAPI_WORKER = """
from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from workers import WorkerEntrypoint

STARTS = []


@asynccontextmanager
async def lifespan(app):
    STARTS.append(1)
    yield {"started": len(STARTS)}


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def root():
    message = "This is an example of FastAPI"
    return {"message": message}


@app.get("/env")
async def env(req: Request):
    env = req.scope["env"]
    message = f"Here is an example of getting an environment variable: {env.MESSAGE}"
    return {"message": message}


class Item(BaseModel):
    name: str
    price: float


@app.put("/items/{item_id}")
async def put_item(item_id: str, item: Item, req: Request, tasks: BackgroundTasks):
    await req.scope["env"].FOO.put(f"item:{item_id}", item.model_dump_json())
    tasks.add_task(req.scope["env"].FOO.put, f"audit:{item_id}", "written after the response")
    return item


@app.get("/items/{item_id}")
async def get_item(item_id: str, req: Request):
    item = await req.scope["env"].FOO.get(f"item:{item_id}", type="json")
    if item is None:
        raise HTTPException(status_code=404, detail="no such item")
    return item


@app.get("/items")
async def list_items(req: Request):
    result = await req.scope["env"].FOO.list(prefix="item:")
    return [k["name"] for k in result["keys"]]


@app.get("/lifespan")
async def started(req: Request):
    return {"starts": len(STARTS), "state": req.state.started}


@app.get("/stream")
async def stream():
    async def chunks():
        for i in range(3):
            yield f"chunk {i}\\n"

    return StreamingResponse(chunks(), media_type="text/plain")


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        import asgi

        return await asgi.fetch(app, request.js_object, self.env)
"""
