"""Workers: Python request handlers with KV bindings, served by `edgekv dev` and `edgekv edge`.

    from edgekv.workers import Response

    async def on_fetch(request, env, ctx):      # env.TODO: the KVNamespace bound as "TODO"
        value = await env.TODO.get("to-do:123")  # (also the module global TODO)
        return Response(value or "Value not found", status=200 if value else 404)

or `class Default(WorkerEntrypoint)` with `async def fetch(self, request)`. docs/workers.md has
the whole story: config (wrangler.toml), bindings, Request/Response, ctx.wait_until, reload.
"""

from edgekv.workers.app import HEALTH_PATH, WorkerApp
from edgekv.workers.config import ConfigError, KVBinding, WorkerConfig, load_config
from edgekv.workers.context import Env, ExecutionContext, WorkerEntrypoint
from edgekv.workers.http import Headers, Request, Response
from edgekv.workers.loader import Worker, WorkerImportError, load_worker

__all__ = [
    "HEALTH_PATH",
    "ConfigError",
    "Env",
    "ExecutionContext",
    "Headers",
    "KVBinding",
    "Request",
    "Response",
    "Worker",
    "WorkerApp",
    "WorkerConfig",
    "WorkerEntrypoint",
    "WorkerImportError",
    "load_config",
    "load_worker",
]
