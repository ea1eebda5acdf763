"""Loading a worker module: bindings as globals before the body runs, entry points, load errors,
reloading with siblings; and the bindings' namespaces (created locally on first use). In process,
over the in-memory store."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import edgekv
from edgekv import Client
from edgekv.workers import (
    ConfigError,
    Env,
    ExecutionContext,
    Request,
    Response,
    Worker,
    WorkerImportError,
    load_config,
    load_worker,
)
from edgekv.workers.bindings import ensure_namespace, ensure_namespaces, make_env
from edgekv.workers.config import KVBinding
from edgekv.workers.context import BackgroundTasks, response_sent
from tests.workers.projects import NS_ID, write_project


@pytest.fixture
async def kv() -> AsyncIterator[Client]:
    async with edgekv.open() as client:
        yield client


@pytest.fixture(autouse=True)
def _restore_sys_path() -> object:
    # The loader puts the worker's directory on sys.path (and its modules in sys.modules).
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


async def load(kv: Client, root: Path, source: str, extra_toml: str = "") -> tuple[Env, Worker]:
    config = load_config(write_project(root, source, extra_toml=extra_toml))
    await ensure_namespaces(kv, config)
    env = make_env(kv, config)
    assert config.main is not None
    return env, load_worker(config.main, env)


async def call(worker: Worker, url: str = "http://w/") -> Response:
    ctx = ExecutionContext(BackgroundTasks())
    response = await worker.handle(Request(url), ctx)
    response_sent(ctx)
    return response


ARITIES = {
    "(request, env, ctx)": "async def on_fetch(request, env, ctx):\n"
    "    return Response(await env.KV.get('k') or 'none')\n",
    "(request, env)": "async def on_fetch(request, env):\n"
    "    return Response(await env.KV.get('k') or 'none')\n",
    "(request)": "async def on_fetch(request):\n    return Response(await KV.get('k') or 'none')\n",
    "sync def": "def on_fetch(request, env, ctx):\n    return Response('sync')\n",
    "*args": "async def on_fetch(*args):\n    return Response(str(len(args)))\n",
}


@pytest.mark.parametrize("source", ARITIES.values(), ids=ARITIES.keys())
async def test_on_fetch_in_every_shape(kv: Client, tmp_path: Path, source: str) -> None:
    env, worker = await load(kv, tmp_path, "from edgekv.workers import Response\n" + source)
    await env.KV.put("k", "value")
    assert worker.style == "on_fetch"
    assert (await call(worker)).text() in {"value", "sync", "3"}


async def test_bindings_are_globals_before_the_module_body_runs(kv: Client, tmp_path: Path) -> None:
    source = (
        "from edgekv.workers import Response\n"
        "SEEN_AT_IMPORT = (KV.id, GREETING)\n"
        "async def on_fetch(request, env, ctx):\n"
        "    assert env.KV is KV and env.GREETING == GREETING\n"
        "    return Response(repr(SEEN_AT_IMPORT))\n"
    )
    _, worker = await load(kv, tmp_path, source, extra_toml='[vars]\nGREETING = "hi"\n')
    assert (await call(worker)).text() == repr((NS_ID, "hi"))


async def test_the_class_entry_point_gets_env_and_ctx_per_request(
    kv: Client, tmp_path: Path
) -> None:
    source = (
        "from edgekv.workers import Response, WorkerEntrypoint\n"
        "INSTANCES = []\n"
        "class Default(WorkerEntrypoint):\n"
        "    async def fetch(self, request):\n"
        "        INSTANCES.append(self)\n"
        "        await self.env.KV.put('seen', request.url)\n"
        "        return Response(type(self.ctx).__name__ + ' ' + str(len(INSTANCES)))\n"
    )
    env, worker = await load(kv, tmp_path, source)
    assert worker.style == "Default"
    assert (await call(worker, "http://w/1")).text() == "ExecutionContext 1"
    assert (await call(worker, "http://w/2")).text() == "ExecutionContext 2"
    assert await env.KV.get("seen") == "http://w/2"


async def test_wait_until_work_starts_after_the_response(kv: Client, tmp_path: Path) -> None:
    source = (
        "from edgekv.workers import Response\n"
        "async def on_fetch(request, env, ctx):\n"
        "    ctx.wait_until(KV.put('bg', 'done'))\n"
        "    assert await KV.get('bg') is None  # not started yet\n"
        "    return Response('ok')\n"
    )
    env, worker = await load(kv, tmp_path, source)
    tasks = BackgroundTasks()
    ctx = ExecutionContext(tasks)
    assert (await worker.handle(Request("http://w/"), ctx)).text() == "ok"
    assert len(tasks) == 0
    response_sent(ctx)
    assert len(tasks) == 1
    await tasks.drain(5)
    assert await env.KV.get("bg") == "done"
    with pytest.raises(TypeError, match="takes an awaitable"):
        ctx.wait_until("not awaitable")  # type: ignore[arg-type]


async def test_drain_cancels_work_that_outlives_the_grace_period() -> None:
    tasks = BackgroundTasks()
    tasks.spawn(asyncio.sleep(30))
    await tasks.drain(0.05)
    assert len(tasks) == 0


LOAD_ERRORS = {
    "no entry point": ("X = 1\n", "no entry point: define `async def on_fetch"),
    "both": (
        "from edgekv.workers import WorkerEntrypoint\n"
        "async def on_fetch(r, e, c): ...\n"
        "class Default(WorkerEntrypoint):\n    async def fetch(self, request): ...\n",
        "defines both on_fetch and Default",
    ),
    "not a WorkerEntrypoint": (
        "class Default:\n    async def fetch(self, request): ...\n",
        "Default must be a class subclassing edgekv.workers.WorkerEntrypoint",
    ),
    "no fetch": (
        "from edgekv.workers import WorkerEntrypoint\nclass Default(WorkerEntrypoint): pass\n",
        "class Default needs `async def fetch(self, request)`",
    ),
    "on_fetch not callable": ("on_fetch = 3\n", "on_fetch is not a function"),
    "on_fetch without arguments": ("async def on_fetch(): ...\n", "must take (request, env"),
    "syntax error": ("def on_fetch(:\n", "src/worker.py:1: "),
}


@pytest.mark.parametrize(("source", "message"), LOAD_ERRORS.values(), ids=LOAD_ERRORS.keys())
async def test_load_errors_are_one_line(
    kv: Client, tmp_path: Path, source: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        await load(kv, tmp_path, source)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


async def test_an_exception_at_import_keeps_its_traceback(kv: Client, tmp_path: Path) -> None:
    with pytest.raises(WorkerImportError) as info:
        await load(kv, tmp_path, "import json\nraise RuntimeError('at import')\n")
    assert "importing the worker raised RuntimeError: at import" in str(info.value)
    assert "Traceback" in info.value.details and "line 2" in info.value.details


async def test_reload_reimports_siblings_and_restores_them_on_failure(
    kv: Client, tmp_path: Path
) -> None:
    source = (
        "import helper\nfrom edgekv.workers import Response\n"
        "async def on_fetch(request, env, ctx):\n    return Response(helper.TEXT)\n"
    )
    (tmp_path / "src").mkdir()
    helper = tmp_path / "src" / "helper.py"
    helper.write_text("TEXT = 'one'\n")
    env, first = await load(kv, tmp_path, source)
    assert (await call(first)).text() == "one"
    assert "helper" in first.modules
    assert not first.changed()

    helper.write_text("TEXT = 'two!'\n")
    assert first.changed()
    main = tmp_path / "src" / "worker.py"
    second = load_worker(main, env, previous=first)
    assert (await call(second)).text() == "two!"
    old_helper = sys.modules["helper"]

    helper.write_text("raise ValueError('broken helper')\n")
    with pytest.raises(WorkerImportError):
        load_worker(main, env, previous=second)
    assert sys.modules["helper"] is old_helper  # the serving version's modules are intact
    assert (await call(second)).text() == "two!"


# -- namespaces of bindings ------------------------------------------------------------------------
async def test_a_missing_namespace_is_created_under_the_binding_id(kv: Client) -> None:
    binding = KVBinding("TODO", "06779da6940b431db6e566b4846d64db")
    assert await ensure_namespace(kv, binding, "todo") is True
    found = await kv.get_namespace(binding.id)
    assert found is not None and found.title == "todo-TODO"
    assert await ensure_namespace(kv, binding, "todo") is False  # already there


async def test_a_title_clash_falls_back_to_a_title_with_the_id(kv: Client) -> None:
    await kv.create_namespace("todo-TODO")  # someone else's namespace with that title
    binding = KVBinding("TODO", "06779da6940b431db6e566b4846d64db")
    assert await ensure_namespace(kv, binding, "todo") is True
    found = await kv.get_namespace(binding.id)
    assert found is not None and found.title == f"todo-TODO-{binding.id}"


async def test_env_lists_its_bindings_and_explains_a_missing_one(kv: Client) -> None:
    env = Env({"A": 1, "B": 2})
    assert env.A == 1 and env["B"] == 2 and "A" in env and list(env) == ["A", "B"]
    with pytest.raises(AttributeError, match="no binding named 'C' in env \\(bindings: A, B\\)"):
        _ = env.C
