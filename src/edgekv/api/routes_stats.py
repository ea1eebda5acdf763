"""What the dashboard reads besides the data: a namespace's totals (`…/{ns}/stats`), its last
hour of requests (`…/{ns}/metrics`, the JSON twin of `/metrics` for one namespace) and the
server's counters in Prometheus text (`GET /metrics`).

Totals are maintained by the store on every write (`Store.namespace_stats`), never counted per
call; the request counters live in `edgekv.metrics.Metrics`, one per app.
"""

from __future__ import annotations

from edgekv.api.context import Ctx
from edgekv.api.envelope import ok
from edgekv.api.http import Response

__all__ = ["namespace_metrics", "namespace_stats", "prometheus"]

PROMETHEUS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


async def namespace_stats(ctx: Ctx) -> Response:
    store = await ctx.services.store()
    stats = await store.namespace_stats(ctx.namespace_id, now=ctx.services.now())
    return ok({"key_count": stats.key_count, "bytes": stats.bytes})


async def namespace_metrics(ctx: Ctx) -> Response:
    return ok(ctx.services.metrics.namespace_window(ctx.namespace_id))


async def prometheus(ctx: Ctx) -> Response:
    body = ctx.services.metrics.prometheus().encode()
    return Response(200, body, [(b"content-type", PROMETHEUS_TYPE)])
