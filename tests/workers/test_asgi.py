"""`asgi.fetch`: an ASGI application (Starlette, FastAPI, or bare) answering a worker's request:
the scope it sees, its lifespan (once, with state), streamed responses and their client going
away, work after the response, and applications that fail. In process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, StreamingResponse

from edgekv.workers import Env, ExecutionContext, Request, Response, asgi
from edgekv.workers.context import BackgroundTasks, response_sent


@pytest.fixture(autouse=True)
async def _stop_lifespans() -> AsyncIterator[None]:
    yield
    await asgi.shutdown_lifespans()


async def body_of(response: Response) -> bytes:
    if isinstance(response.body, bytes):
        return response.body
    return b"".join([chunk async for chunk in response.body])


async def test_the_scope_an_application_sees() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan here")  # how an app says it has none
        seen.update(scope)
        seen["message"] = await receive()
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-a", b"1")]})
        await send({"type": "http.response.body", "body": b"made"})
        seen["after"] = await receive()

    env = Env({"MESSAGE": "hi"})
    request = Request(
        "http://example.test:8787/a%20b/c?x=1&y=%C3%A9",
        method="POST",
        headers={"X-Test": "yes"},
        body=b"payload",
    )
    response = await asgi.fetch(app, request, env)
    assert (response.status, await body_of(response)) == (201, b"made")
    assert response.headers.get("x-a") == "1"
    await asyncio.sleep(0)
    assert seen["type"] == "http" and seen["method"] == "POST" and seen["scheme"] == "http"
    assert (seen["path"], seen["raw_path"]) == ("/a b/c", b"/a%20b/c")
    assert seen["query_string"] == b"x=1&y=%C3%A9"
    assert (b"x-test", b"yes") in seen["headers"]
    assert seen["env"] is env and "state" not in seen
    assert seen["message"] == {"type": "http.request", "body": b"payload", "more_body": False}
    assert seen["after"] == {"type": "http.disconnect"}  # once the response is complete


async def test_fastapi_lifespan_runs_once_and_its_state_reaches_handlers() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"pool": "db-pool"}
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/items/{item_id}")
    async def item(item_id: int, request: FastAPIRequest) -> dict[str, Any]:
        return {"id": item_id, "pool": request.state.pool, "env": request.scope["env"].NAME}

    env = Env({"NAME": "worker"})
    answers = await asyncio.gather(
        *(asgi.fetch(app, Request(f"http://h/items/{i}"), env) for i in range(5))
    )
    for i, response in enumerate(answers):
        assert await body_of(response) == b'{"id":%d,"pool":"db-pool","env":"worker"}' % i
    assert events == ["startup"]
    await asgi.shutdown_lifespans()
    assert events == ["startup", "shutdown"]
    await asgi.fetch(app, Request("http://h/items/9"), env)  # a new version starts afresh
    assert events == ["startup", "shutdown", "startup"]


async def test_a_failed_startup_fails_the_request_and_is_tried_again() -> None:
    attempts: list[int] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("database down")
        yield

    app = FastAPI(lifespan=lifespan)
    app.get("/")(lambda: {"ok": True})
    with pytest.raises(RuntimeError, match="ASGI lifespan startup failed"):
        await asgi.fetch(app, Request("http://h/"), Env({}))
    response = await asgi.fetch(app, Request("http://h/"), Env({}))
    assert await body_of(response) == b'{"ok":true}'
    assert len(attempts) == 2


async def test_a_streamed_response_arrives_chunk_by_chunk() -> None:
    app = FastAPI()

    @app.get("/")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(100):
                yield b"%d," % i

        return StreamingResponse(chunks(), media_type="text/csv")

    response = await asgi.fetch(app, Request("http://h/"), Env({}))
    assert not isinstance(response.body, bytes)
    assert response.headers.get("content-type") == "text/csv; charset=utf-8"
    assert await body_of(response) == b"".join(b"%d," % i for i in range(100))


async def test_a_head_request_to_a_streamed_response_is_not_buffered() -> None:
    app = FastAPI()
    produced: list[int] = []

    @app.api_route("/", methods=["GET", "HEAD"])
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(1000):  # Starlette streams a HEAD answer's body too
                produced.append(i)
                yield b"x"

        return StreamingResponse(chunks())

    response = await asgi.fetch(app, Request("http://h/", method="HEAD"), Env({}))
    assert (response.status, response.body) == (200, b"")
    for _ in range(100):
        await asyncio.sleep(0)
        if len(produced) == 1000:
            break
    assert len(produced) == 1000  # the application ran to its end, nothing waits on a client


async def test_a_client_that_goes_away_ends_the_applications_stream() -> None:
    sent: list[int] = []
    ended = asyncio.Event()

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return  # returning at once: no lifespan support either
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for i in range(10_000):  # far more than the stream buffers
                sent.append(i)
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
            assert (await receive())["type"] == "http.disconnect"
        finally:
            ended.set()

    response = await asgi.fetch(app, Request("http://h/"), Env({}))
    assert not isinstance(response.body, bytes)
    stream = aiter(response.body)
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]  # what a server does when its client leaves
    await asyncio.wait_for(ended.wait(), 5)
    assert len(sent) == 10_000  # the application ran to its end instead of hanging


async def test_work_after_the_response_runs_as_wait_until_work() -> None:
    done = asyncio.Event()

    async def audit() -> None:
        await asyncio.sleep(0.01)
        done.set()

    app = FastAPI()
    app.get("/")(lambda: JSONResponse({"ok": True}, background=BackgroundTask(audit)))
    tasks = BackgroundTasks()
    ctx = ExecutionContext(tasks)
    response = await asgi.fetch(app, Request("http://h/"), Env({}), ctx)
    assert await body_of(response) == b'{"ok":true}'
    assert not done.is_set()
    response_sent(ctx)
    await tasks.drain(5)
    assert done.is_set()


async def test_an_application_that_fails() -> None:
    async def raises(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raise ValueError("handler bug")

    with pytest.raises(ValueError, match="handler bug"):
        await asgi.fetch(raises, Request("http://h/"), Env({}))

    async def silent(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        return None

    with pytest.raises(RuntimeError, match="returned without sending a response"):
        await asgi.fetch(silent, Request("http://h/"), Env({}))

    async def body_first(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.body", "body": b"x"})

    with pytest.raises(RuntimeError, match=r"before http\.response\.start"):
        await asgi.fetch(body_first, Request("http://h/"), Env({}))

    with pytest.raises(TypeError, match="takes the worker's request, not dict"):
        await asgi.fetch(silent, {"url": "/"}, Env({}))  # type: ignore[arg-type]


async def test_the_fastapi_env_dependency() -> None:
    from fastapi import Depends

    app = FastAPI()

    @app.get("/")
    async def root(env: Any = asgi.env) -> dict[str, str]:
        return {"name": env.NAME}

    assert isinstance(asgi.env, type(Depends(lambda: None)))
    response = await asgi.fetch(app, Request("http://h/"), Env({"NAME": "w"}))
    assert await body_of(response) == b'{"name":"w"}'
