"""JavaScript workers in workerd, Cloudflare's open-source Workers runtime, with their KV
bindings served by edgekv: the backend protocol (`KVBackend` over `BackendServer`), the
generated config (`render_config`), the supervised process (`WorkerdProcess`) and the whole
(`WorkerdRuntime`) that `edgekv dev` and `edgekv edge` run. docs/workers.md has the story."""

from edgekv.workers.workerd.backend import KVBackend, Reply
from edgekv.workers.workerd.capnp import render_config
from edgekv.workers.workerd.process import INSTALL_HINT, WorkerdError, WorkerdProcess, find_workerd
from edgekv.workers.workerd.runtime import WorkerdRuntime
from edgekv.workers.workerd.server import BackendServer

__all__ = [
    "INSTALL_HINT",
    "BackendServer",
    "KVBackend",
    "Reply",
    "WorkerdError",
    "WorkerdProcess",
    "WorkerdRuntime",
    "find_workerd",
    "render_config",
]
