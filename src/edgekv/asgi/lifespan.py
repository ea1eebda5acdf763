"""The ASGI lifespan protocol: start an app before its first request, stop it after its last.

`edgekv serve` and the worker runtime call `startup()` / `shutdown()` themselves around an
embedded server (`edgekv.asgi.server`); this loop serves the same two steps to a server that
drives the app's lifespan itself (e.g. `uvicorn edgekv...:app`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from edgekv.asgi.types import Receive, Send

__all__ = ["serve_lifespan"]


async def serve_lifespan(
    receive: Receive,
    send: Send,
    startup: Callable[[], Awaitable[None]],
    shutdown: Callable[[], Awaitable[None]],
    on_startup_error: Callable[[Exception], None] | None = None,
) -> None:
    """Answer `lifespan.startup` with `startup()` and `lifespan.shutdown` with `shutdown()`.
    A failed startup is reported to the server (`lifespan.startup.failed`, which then stops)
    after `on_startup_error(exc)`; `lifespan.shutdown.complete` is sent even if shutdown
    fails."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await startup()
            except Exception as exc:
                if on_startup_error is not None:
                    on_startup_error(exc)
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await shutdown()
            finally:
                await send({"type": "lifespan.shutdown.complete"})
            return
