"""Serving a worker, shared by `edgekv dev` and `edgekv edge`: check the config, open the store,
load the worker and its bindings before listening (anything broken stops the command with one
line), then serve with the shared runner (edgekv.asgi.server.serve_asgi) until
SIGTERM/SIGINT, then drain `wait_until` work and close the store."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import click

from edgekv._client import Client
from edgekv._exceptions import KVError, StoreError
from edgekv.asgi.accesslog import AccessLog
from edgekv.cli._common import CLIError, run_async, setup_logging
from edgekv.workers.app import WorkerApp
from edgekv.workers.config import ConfigError, WorkerConfig, find_config, load_config
from edgekv.workers.loader import WorkerImportError

__all__ = ["serve_worker"]

log = logging.getLogger("edgekv.workers")


def serve_worker(
    *,
    command: str,
    config_path: Path | None,
    open_client: Callable[[], Awaitable[Client]],
    host: str,
    port: int,
    local: bool,
    quiet: bool,
    store_label: str,
    credentials_source: str | None = None,
    env: str | None = None,
    workerd: Path | None = None,
) -> None:
    """`local` (edgekv dev): create missing binding namespaces, use their `preview_id`, and
    reload the worker when its files change. `open_client` runs in the serving event loop
    (stores start their threads and tasks there). A JavaScript `main` runs in workerd."""
    try:
        config = load_config(find_config(config_path), env=env, preview=local)
    except ConfigError as exc:
        raise CLIError(str(exc)) from None
    from edgekv.asgi.server import (
        Stopped,
        check_listen,
        serve_asgi,
        stop_signals,
        unless_stopped,
    )

    try:  # before the store is opened: a busy port must not create binding namespaces first
        check_listen(host, port)
    except OSError as exc:
        raise CLIError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    if config.javascript:
        run_async(
            _serve_javascript(
                command=command,
                config=config,
                open_client=open_client,
                host=host,
                port=port,
                local=local,
                quiet=quiet,
                store_label=store_label,
                workerd=workerd,
            )
        )
        return

    async def main() -> None:
        async with stop_signals() as stop:  # from the start: see stop_signals
            try:
                await start_and_serve(stop)
            except Stopped:
                log.info("%s: stopped during startup", command)

    async def start_and_serve(stop: asyncio.Event) -> None:
        try:
            client = await unless_stopped(stop, open_client())
        except (KVError, StoreError, OSError) as exc:
            raise CLIError(f"cannot open the store {store_label}: {exc}") from None
        try:
            app = WorkerApp(
                config,
                client,
                local=local,
                reload=local,
                remote_name=store_label,
                access_log=AccessLog(sys.stderr, enabled=not quiet),
            )
        except ConfigError as exc:
            await client.aclose()
            if isinstance(exc, WorkerImportError):
                click.echo(exc.details, err=True, nl=False)  # the user's bug: show where it is
            raise CLIError(str(exc)) from None
        setup_logging(quiet=quiet)
        try:
            await unless_stopped(stop, app.startup())
        except (ConfigError, KVError, OSError) as exc:
            await client.aclose()
            raise CLIError(f"cannot start: {exc}") from None
        except Stopped:
            await app.shutdown()
            raise

        def ready() -> None:
            bindings = ", ".join(f"{b.binding}={b.id}" for b in app.config.kv_namespaces) or "none"
            log.info(
                "%s: worker %s (%s) on http://%s:%d, store %s%s, KV bindings: %s%s",
                command,
                _display(app.worker.main),
                app.worker.style,
                host,
                port,
                store_label,
                f" (credentials from {credentials_source})" if credentials_source else "",
                bindings,
                " (reloads on change)" if app.reload else "",
            )

        try:
            await serve_asgi(app, host, port, ready=ready, stop=stop)
        except (OSError, RuntimeError) as exc:  # granian reports a busy port as RuntimeError
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            reason = reason.strip().splitlines()[0] if reason.strip() else type(exc).__name__
            raise CLIError(f"cannot listen on {host}:{port}: {reason}") from None
        finally:
            await app.shutdown()
        log.info("%s: stopped", command)

    run_async(main())


async def _serve_javascript(
    *,
    command: str,
    config: WorkerConfig,
    open_client: Callable[[], Awaitable[Client]],
    host: str,
    port: int,
    local: bool,
    quiet: bool,
    store_label: str,
    workerd: Path | None,
) -> None:
    """The JavaScript path: workerd runs the worker, this process serves its KV bindings."""
    from edgekv.workers.workerd import WorkerdError, WorkerdRuntime

    try:
        client = await open_client()
    except (KVError, StoreError, OSError) as exc:
        raise CLIError(f"cannot open the store {store_label}: {exc}") from None
    try:
        runtime = WorkerdRuntime(
            config,
            client,
            host=host,
            port=port,
            local=local,
            reload=local,
            workerd=workerd,
            remote_name=store_label,
        )
    except ConfigError as exc:
        await client.aclose()
        raise CLIError(str(exc)) from None
    setup_logging(quiet=quiet)
    try:
        await runtime.start()
    except (ConfigError, KVError, WorkerdError) as exc:
        await runtime.aclose()
        raise CLIError(f"cannot start: {exc}") from None
    except OSError as exc:
        await runtime.aclose()
        raise CLIError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    assert config.main is not None
    bindings = ", ".join(f"{b.binding}={b.id}" for b in config.kv_namespaces) or "none"
    log.info(
        "%s: worker %s (JavaScript, workerd pid %s) on http://%s:%d, store %s, KV bindings: %s%s",
        command,
        _display(config.main),
        runtime.current.pid if runtime.current else "?",
        host,
        runtime.port,
        store_label,
        bindings,
        " (reloads on change)" if runtime.reload else "",
    )
    try:
        await stop.wait()
    finally:
        await runtime.aclose()
    log.info("%s: stopped", command)


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
