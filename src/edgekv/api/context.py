"""What a route handler is given: the request, its token and path parameters, and the services
of the app (the binding client over the store, namespace ownership)."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

import orjson

from edgekv import wire
from edgekv._client import Client
from edgekv._namespace import KVNamespace
from edgekv._rules import MIN_TTL
from edgekv._types import Store, TokenRecord
from edgekv.api.envelope import ApiError
from edgekv.api.http import Request
from edgekv.api.limits import JSON_BODY_LIMIT, read_body
from edgekv.metrics import Metrics

__all__ = ["Ctx", "Services"]

OWNER_CACHE_SECONDS = 10.0
OWNER_CACHE_MAX = 100_000


class Services:
    """Shared by every request: the binding client (one store, every account), the clock, the
    request counters (`metrics`) and a short-lived cache of which account owns a namespace
    (owners never change; a deleted namespace still answers 404 from the store itself)."""

    def __init__(self, client: Client, metrics: Metrics | None = None) -> None:
        self.client = client
        self.metrics = metrics or Metrics()
        self._owners: dict[str, tuple[str, float]] = {}
        self._binding_client: Client | None = None
        self.draining = asyncio.Event()  # set when the server begins to stop: long polls end

    async def store(self) -> Store:
        return await self.client.connect()

    def now(self) -> int:
        return math.floor(self.client.clock())

    def namespace(self, namespace_id: str) -> KVNamespace:
        return KVNamespace(self.client, namespace_id)

    async def binding_namespace(self, namespace_id: str) -> KVNamespace:
        """The binding for writes a remote binding already validated (`edgekv-binding: 1`)
        and that carry only absolute expirations: those must still be in the future, but not
        60 s ahead by this server's clock, since the location checked "≥ now + 60" a moment
        ago on its own (docs/edge-protocol.md). Same rules, run on a clock 59 s behind, so
        "at ≥ now' + 60" means "at > now"; only valid without `expiration_ttl`."""
        client = self._binding_client
        if client is None:
            base = self.client

            def behind() -> float:
                return base.clock() - (MIN_TTL - 1)

            client = Client(await self.store(), clock=behind, sweep_interval=None)
            await client.connect()  # never closed: the store belongs to `self.client`
            self._binding_client = client
        return KVNamespace(client, namespace_id)

    def owned(self, account_id: str, namespace_id: str) -> bool:
        """Whether the namespace is known (cached) to belong to the account: no I/O."""
        cached = self._owners.get(namespace_id)
        return cached is not None and cached[0] == account_id and cached[1] > time.monotonic()

    async def check_owner(self, account_id: str, namespace_id: str) -> None:
        """404 (code 10013) unless the namespace exists in `account_id`."""
        now = time.monotonic()
        cached = self._owners.get(namespace_id)
        if cached is not None and cached[1] > now:
            if cached[0] != account_id:
                raise namespace_not_found()
            return
        info = await (await self.store()).get_namespace(account_id, namespace_id)
        if info is None:
            raise namespace_not_found()
        if len(self._owners) >= OWNER_CACHE_MAX:
            self._owners.clear()
        self._owners[namespace_id] = (account_id, now + OWNER_CACHE_SECONDS)

    def forget_namespace(self, namespace_id: str) -> None:
        self._owners.pop(namespace_id, None)


def namespace_not_found() -> ApiError:
    return ApiError(404, wire.NAMESPACE_NOT_FOUND, "namespace not found")


@dataclass(slots=True)
class Ctx:
    services: Services
    request: Request
    token: TokenRecord | None = None
    account_id: str = ""
    namespace_id: str = ""
    key: str = ""

    async def json(self, limit: int = JSON_BODY_LIMIT, *, empty: Any = None) -> Any:
        """The JSON body (orjson); `empty` when there is none; invalid JSON is 400."""
        body = await read_body(self.request, limit)
        if not body.strip():
            return empty
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, wire.BAD_REQUEST, f"Invalid JSON in request body: {exc}") from None
