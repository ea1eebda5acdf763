"""What a handler gets besides the request: `env` (the bindings), `ctx` (`wait_until`), and the
`WorkerEntrypoint` base class of the class-style entry point."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgekv.workers.http import Request, Response

__all__ = ["BackgroundTasks", "Env", "ExecutionContext", "WorkerEntrypoint", "response_sent"]

log = logging.getLogger("edgekv.workers")


class Env:
    """The bindings of a worker as attributes: `env.TODO` is the `KVNamespace` bound as `TODO`
    (`[vars]` of wrangler.toml appear here too). Also readable as `env["TODO"]`."""

    def __init__(self, bindings: Mapping[str, Any]) -> None:
        self.__dict__.update(bindings)

    def __getattr__(self, name: str) -> Any:
        # Only reached when the attribute does not exist: say what does.
        if name.startswith("__"):
            raise AttributeError(name)
        have = ", ".join(sorted(self.__dict__)) or "none"
        raise AttributeError(f"no binding named {name!r} in env (bindings: {have})")

    def __getitem__(self, name: str) -> Any:
        return self.__dict__[name]

    def __contains__(self, name: object) -> bool:
        return name in self.__dict__

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dict__)

    def __repr__(self) -> str:
        return f"<Env {', '.join(self.__dict__) or '(no bindings)'}>"


class BackgroundTasks:
    """Work handed to `ctx.wait_until`: strong references until done, errors logged, and drained
    at shutdown so a graceful stop does not cut it short."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future[Any]] = set()

    def spawn(self, awaitable: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ctx.wait_until() task failed", exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, grace: float) -> None:
        """Wait for pending work up to `grace` seconds, then cancel what is left."""
        if not self._tasks:
            return
        pending = list(self._tasks)
        _, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            log.warning(
                "cancelled %d ctx.wait_until() task(s) still running at shutdown", len(late)
            )
            await asyncio.wait(late, timeout=1.0)


class ExecutionContext:
    """`ctx` of a request. `ctx.wait_until(awaitable)` runs that work after the response has
    been sent, without delaying it (logging, cache warming, analytics)."""

    __slots__ = ("_pending", "_tasks")

    def __init__(self, tasks: BackgroundTasks) -> None:
        self._tasks = tasks
        self._pending: list[Awaitable[Any]] | None = []

    def wait_until(self, awaitable: Awaitable[Any]) -> None:
        if not inspect.isawaitable(awaitable):
            raise TypeError(
                f"ctx.wait_until() takes an awaitable (a coroutine, task or future), "
                f"not {type(awaitable).__name__}"
            )
        if self._pending is None:  # the response is out already: start now
            self._tasks.spawn(awaitable)
        else:
            self._pending.append(awaitable)

    def pass_through_on_exception(self) -> None:
        """Accepted for compatibility with Workers; there is no origin to fall back to."""


def response_sent(ctx: ExecutionContext) -> None:
    """For the runtime: the response of `ctx`'s request is out (or failed: in Workers the
    promises would already be running), start its `wait_until` work. Not a method: a worker's
    `ctx` has only the Workers API."""
    pending, ctx._pending = ctx._pending, None
    for awaitable in pending or ():
        ctx._tasks.spawn(awaitable)


class WorkerEntrypoint:
    """Base class of the class-style entry point:

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response(await self.env.TODO.get("key"))

    One instance per request, with `self.env` (the bindings) and `self.ctx` (`wait_until`)."""

    def __init__(self, ctx: ExecutionContext, env: Env) -> None:
        self.ctx = ctx
        self.env = env

    async def fetch(self, request: Request) -> Response:
        raise NotImplementedError("a WorkerEntrypoint must define `async def fetch(self, request)`")
