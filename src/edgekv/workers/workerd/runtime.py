"""A JavaScript worker served by workerd, its KV bindings by this process: the backend socket,
the listening socket, the generated config, workerd kept running (restarted after a crash) and,
for `edgekv dev`, reloaded when the worker's files or the config change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from pathlib import Path

from edgekv._client import Client
from edgekv.workers.bindings import check_namespaces, ensure_namespaces
from edgekv.workers.config import ConfigError, WorkerConfig
from edgekv.workers.loader import file_stamp
from edgekv.workers.workerd.backend import KVBackend
from edgekv.workers.workerd.capnp import module_files, render_config
from edgekv.workers.workerd.process import WorkerdError, WorkerdProcess, find_workerd
from edgekv.workers.workerd.server import BackendServer

__all__ = ["WorkerdRuntime"]

log = logging.getLogger("edgekv.workerd")

_RESTART_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)
"""Waits before restarting a crashed workerd: growing while it keeps crashing at once."""
_HEALTHY_AFTER = 30.0  # seconds up after which a crash counts as the first again


class WorkerdRuntime:
    """Serve the JavaScript worker of `config` on `host:port` with its bindings from `client`.

    `local=True` (edgekv dev) creates missing binding namespaces; otherwise (edgekv edge) they
    must exist on the central server. `reload=True` polls the worker's files and the config
    every `reload_interval` seconds and swaps in a new workerd once it listens (the previous one
    keeps serving when the new version fails). `start()` raises `ConfigError` / `WorkerdError`
    / `OSError` (port busy) with a one-line message; `aclose()` stops workerd and closes the
    store.
    """

    def __init__(
        self,
        config: WorkerConfig,
        client: Client,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        local: bool = True,
        reload: bool = False,
        reload_interval: float = 0.5,
        workerd: str | Path | None = None,
        remote_name: str = "the central server",
    ) -> None:
        if not config.javascript:
            raise ConfigError(f'{config.path.name}: "main" is not a JavaScript module')
        self.config = config
        self.client = client
        self.host = host
        self.port = port
        self.local = local
        self.reload = reload
        self.reload_interval = reload_interval
        self.remote_name = remote_name
        self.binary = find_workerd(workerd, config.path.parent)
        self.backend = KVBackend({})
        self.server = BackendServer(self.backend)
        self.current: WorkerdProcess | None = None
        self.restarts = 0
        self._sock: socket.socket | None = None
        self._generation = 0
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stamps: dict[Path, object] = {}

    # -- lifetime --------------------------------------------------------------------------
    async def start(self) -> None:
        await self._prepare_bindings(self.config)
        await self.server.start()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.create_server((self.host, self.port), family=family, backlog=1024)
        sock.set_inheritable(True)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._stamps = self._file_stamps(self.config)
        self.current = await self._launch(self.config)
        self._tasks.append(asyncio.create_task(self._supervise(), name="edgekv-workerd"))
        if self.reload:
            self._tasks.append(asyncio.create_task(self._watch(), name="edgekv-reload"))

    async def aclose(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()
        if self.current is not None:
            await self.current.stop()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        await self.server.aclose()
        await self.client.aclose()

    async def _prepare_bindings(self, config: WorkerConfig) -> None:
        if self.local:
            await ensure_namespaces(self.client, config)
        else:
            await check_namespaces(self.client, config, self.remote_name)
        if not config.kv_namespaces:
            await self.client.list_namespaces()  # opens the store all the same
        self.backend.namespaces = {b.id: self.client.namespace(b.id) for b in config.kv_namespaces}

    async def _launch(self, config: WorkerConfig) -> WorkerdProcess:
        assert self._sock is not None
        self._generation += 1
        path = self.server.path.parent / f"worker-{self._generation}.capnp"
        try:
            path.write_text(render_config(config, backend_address=self.server.address))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the worker's modules: {exc}") from None
        return await self._run(path)

    async def _run(self, config_file: Path) -> WorkerdProcess:
        assert self._sock is not None
        proc = WorkerdProcess(self.binary, config_file, self._sock.fileno(), name="workerd")
        proc.on_line = _log_line
        await proc.start()
        return proc

    # -- supervision -----------------------------------------------------------------------
    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        crashes = 0
        while not self._stopping:
            proc = self.current
            assert proc is not None
            started = loop.time()
            code = await proc.wait()
            if self._stopping:
                return
            if proc is not self.current:
                continue  # replaced by a reload
            crashes = 1 if loop.time() - started > _HEALTHY_AFTER else crashes + 1
            delay = _RESTART_DELAYS[min(crashes, len(_RESTART_DELAYS)) - 1]
            log.error("workerd (pid %d) exited with status %d; restarting it", proc.pid, code)
            await proc.stop()
            while not self._stopping:
                await asyncio.sleep(delay)
                try:
                    # The version that was running, not the files as they are now (they may
                    # hold a broken edit that a reload refused).
                    self.current = await self._run(proc.config_file)
                except WorkerdError as exc:
                    log.error("restarting workerd failed: %s", exc)
                    delay = _RESTART_DELAYS[-1]
                    continue
                self.restarts += 1
                log.info("workerd restarted (pid %s)", self.current.pid)
                break

    # -- reload ----------------------------------------------------------------------------
    def _file_stamps(self, config: WorkerConfig) -> dict[Path, object]:
        assert config.main is not None
        files = [config.path, *module_files(config.main)]
        return {p: file_stamp(p) for p in files}

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.reload_interval)
            try:
                stamps = self._file_stamps(self.config)
                if stamps != self._stamps:
                    self._stamps = stamps
                    await self._reload()
            except Exception:
                log.exception("reloading the worker failed; still serving the previous version")

    async def _reload(self) -> None:
        try:
            config = self.config.reload()
            if not config.javascript:
                raise ConfigError(f'{config.path.name}: "main" is no longer a JavaScript module')
        except ConfigError as exc:
            log.error("%s; still serving the previous version", exc)
            return
        previous = self.backend.namespaces
        await self._prepare_bindings(config)
        current = self.backend.namespaces
        self.backend.namespaces = {**previous, **current}  # the old workerd may still ask
        try:
            proc = await self._launch(config)
        except (WorkerdError, ConfigError) as exc:
            self.backend.namespaces = previous
            log.error("%s; still serving the previous version", exc)
            return
        old, self.current, self.config = self.current, proc, config
        self._stamps = self._file_stamps(config)
        if old is not None:
            await old.stop()
        self.backend.namespaces = current
        assert config.main is not None
        log.info("reloaded %s", config.main.name)


def _log_line(text: str) -> None:
    if text.strip():
        log.warning("workerd: %s", text)
