"""From `kv_namespaces` to `KVNamespace` objects: the worker's `env`, creating local namespaces on
first use (as wrangler's local mode does) and checking remote ones exist."""

from __future__ import annotations

import logging

from edgekv._client import Client
from edgekv._exceptions import KVError
from edgekv._rules import TITLE_MAX_CHARS
from edgekv.workers.config import ConfigError, KVBinding, WorkerConfig
from edgekv.workers.context import Env
from edgekv.workers.kv import WorkerKV

__all__ = ["check_namespaces", "ensure_namespace", "ensure_namespaces", "make_env"]

log = logging.getLogger("edgekv.workers")


def make_env(client: Client, config: WorkerConfig) -> Env:
    """`env` of the worker: every KV binding (no I/O: bindings resolve on first use) and vars.
    A binding is a `WorkerKV`: the `KVNamespace` that also takes the JavaScript spellings."""
    bindings = {b.binding: WorkerKV(client, b.id) for b in config.kv_namespaces}
    return Env({**config.vars, **bindings})


def _titles(binding: KVBinding, worker_name: str | None) -> list[str]:
    # wrangler names the namespaces it creates "<worker>-<BINDING>"; on a clash with a namespace
    # that already has that title (another id), the id makes it unique.
    base = f"{worker_name}-{binding.binding}" if worker_name else binding.binding
    base = base[: TITLE_MAX_CHARS - len(binding.id) - 1]
    return [base, f"{base}-{binding.id}"]


async def ensure_namespace(client: Client, binding: KVBinding, worker_name: str | None) -> bool:
    """Create the namespace of a local binding under its configured id if it does not exist.
    Returns whether it was created. Safe against another process creating it concurrently."""
    if await client.get_namespace(binding.id) is not None:
        return False
    error: KVError | None = None
    for title in _titles(binding, worker_name):
        try:
            await client.create_namespace(title, namespace_id=binding.id)
        except KVError as exc:
            if exc.status != 400:
                raise
            error = exc
            if await client.get_namespace(binding.id) is not None:
                return False  # someone else (edgekv dev, a kv command) created it meanwhile
            continue
        log.info("created namespace %r (id %s) for binding %s", title, binding.id, binding.binding)
        return True
    assert error is not None
    raise error


async def ensure_namespaces(client: Client, config: WorkerConfig) -> None:
    for binding in config.kv_namespaces:
        await ensure_namespace(client, binding, config.name)


async def check_namespaces(client: Client, config: WorkerConfig, where: str) -> None:
    """Every binding must exist on the central server (remote namespaces are never created
    implicitly). An unreachable centre is only a warning: the location may start before it."""
    for binding in config.kv_namespaces:
        try:
            found = await client.get_namespace(binding.id)
        except KVError as exc:
            if exc.status in (401, 403):
                raise ConfigError(f"{where} refused the credentials: {exc}") from None
            if exc.status == 404:
                found = None
            else:
                log.warning("cannot check binding %s on %s: %s", binding.binding, where, exc)
                continue
        if found is None:
            raise ConfigError(
                f"binding {binding.binding}: namespace {binding.id} does not exist on {where}"
            )
