"""Serving a worker, shared by `edgekv dev` and `edgekv edge`: check the config, open the store,
load the worker and its bindings before listening (anything broken stops the command with one
line), then serve with the shared runner (edgekv.asgi.server.serve_asgi) until
SIGTERM/SIGINT, then drain `wait_until` work and close the store."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import click

from edgekv._client import Client
from edgekv._exceptions import KVError, StoreError
from edgekv.asgi.accesslog import AccessLog
from edgekv.cli._common import CLIError, run_async, setup_logging
from edgekv.workers.app import WorkerApp
from edgekv.workers.config import ConfigError, load_config
from edgekv.workers.loader import WorkerImportError

__all__ = ["serve_worker"]

log = logging.getLogger("edgekv.workers")


def serve_worker(
    *,
    command: str,
    config_path: Path,
    open_client: Callable[[], Awaitable[Client]],
    host: str,
    port: int,
    local: bool,
    quiet: bool,
    store_label: str,
) -> None:
    """`local` (edgekv dev): create missing binding namespaces and reload the worker when its
    files change. `open_client` runs in the serving event loop (stores start their threads and
    tasks there)."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise CLIError(str(exc)) from None

    async def main() -> None:
        from edgekv.asgi.server import serve_asgi

        try:
            client = await open_client()
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
            await app.startup()
        except (ConfigError, KVError, OSError) as exc:
            await client.aclose()
            raise CLIError(f"cannot start: {exc}") from None

        def ready() -> None:
            bindings = ", ".join(f"{b.binding}={b.id}" for b in app.config.kv_namespaces) or "none"
            log.info(
                "%s: worker %s (%s) on http://%s:%d, store %s, KV bindings: %s%s",
                command,
                _display(app.worker.main),
                app.worker.style,
                host,
                port,
                store_label,
                bindings,
                " (reloads on change)" if app.reload else "",
            )

        try:
            await serve_asgi(app, host, port, ready=ready)
        except (OSError, RuntimeError) as exc:  # granian reports a busy port as RuntimeError
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            reason = reason.strip().splitlines()[0] if reason.strip() else type(exc).__name__
            raise CLIError(f"cannot listen on {host}:{port}: {reason}") from None
        finally:
            await app.shutdown()
        log.info("%s: stopped", command)

    run_async(main())


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
