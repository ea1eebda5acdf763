"""`workers`: the module of Cloudflare's Python Workers, as edgekv provides it in a worker
process. Its objects are edgekv's own (`workers.Response is edgekv.workers.Response`), so

    from workers import Response, WorkerEntrypoint

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            return Response.json({"value": await self.env.KV.get("key")})

runs under `edgekv dev` and `edgekv edge` as written for Cloudflare. What needs Cloudflare's
JavaScript runtime (Durable Objects, Workflows, outbound `fetch`, RPC conversions, ...) is not
here: importing it fails with one line saying so.
"""

from typing import Any, TypeVar

from edgekv.workers import Headers, Request, Response, WorkerEntrypoint, asgi
from edgekv.workers.compat import unsupported
from edgekv.workers.context import ExecutionContext

__all__ = ["Context", "Headers", "Request", "Response", "WorkerEntrypoint", "asgi", "handler"]

Context = ExecutionContext
"""The type of `self.ctx` (`wait_until` / `waitUntil`)."""

_F = TypeVar("_F")


def handler(func: _F) -> _F:
    """Cloudflare's decorator converting a handler's JS arguments to Python: arguments are
    Python objects here already, so it returns `func` unchanged."""
    return func


_JS_ONLY = {
    "DurableObject": "Durable Objects are",
    "WorkflowEntrypoint": "Workflows are",
    "fetch": "outbound fetch() is",
    "FetchResponse": "outbound fetch() is",
    "FetchKwargs": "outbound fetch() is",
    "FormData": "FormData is",
    "Blob": "Blob is",
    "File": "File is",
    "import_from_javascript": "JavaScript modules are",
    "python_from_rpc": "Workers RPC is",
    "python_to_rpc": "Workers RPC is",
    "patch_env": "patch_env() is",
    "env": "the importable env is",
    "wait_until": "the module-level wait_until is",
    "waitUntil": "the module-level waitUntil is",
}


def __getattr__(name: str) -> Any:
    what = _JS_ONLY.get(name)
    if what is not None:
        # An ImportError (not AttributeError) so that `from workers import X` shows this line.
        raise unsupported(
            f"workers.{name}:",
            f"{what} not available in edgekv's Python workers, which run fetch handlers with "
            "KV bindings and vars (use self.env and self.ctx)",
        )
    raise AttributeError(f"module 'workers' has no attribute {name!r}")
