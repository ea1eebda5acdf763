"""asgi/lifespan.py: the lifespan loop both ASGI apps answer."""

from __future__ import annotations

from typing import Any

from edgekv.asgi.lifespan import serve_lifespan


async def run(startup_fails: bool, shutdown_fails: bool = False) -> tuple[list[str], list[str]]:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []
    steps: list[str] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    async def startup() -> None:
        steps.append("startup")
        if startup_fails:
            raise RuntimeError("no store")

    async def shutdown() -> None:
        steps.append("shutdown")
        if shutdown_fails:
            raise RuntimeError("stuck")

    try:
        await serve_lifespan(receive, send, startup, shutdown, lambda e: steps.append(str(e)))
    except RuntimeError:
        steps.append("raised")
    return sent, steps


async def test_startup_then_shutdown() -> None:
    sent, steps = await run(False)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert steps == ["startup", "shutdown"]


async def test_failed_startup_is_reported_and_ends_the_loop() -> None:
    sent, steps = await run(True)
    assert sent == ["lifespan.startup.failed"]
    assert steps == ["startup", "no store"]


async def test_failed_shutdown_still_completes() -> None:
    sent, steps = await run(False, shutdown_fails=True)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert steps == ["startup", "shutdown", "raised"]
