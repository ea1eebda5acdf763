"""`edgekv dev`: a worker and an embedded store in one process, reloading on change."""

from __future__ import annotations

from pathlib import Path

import click

from edgekv.cli._common import OneLineCommand

__all__ = ["dev"]


@click.command(cls=OneLineCommand)
@click.option(
    "--config",
    "config_path",
    default="wrangler.toml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The worker's wrangler.toml (name, main, kv_namespaces, vars).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8787, show_default=True, type=click.IntRange(0, 65535), help="Port."
)
@click.option(
    "--persist-to",
    default=".edgekv",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the embedded store (shared with `edgekv kv` commands).",
)
@click.option("--quiet", is_flag=True, help="No access log (errors and warnings only).")
def dev(config_path: Path, host: str, port: int, persist_to: Path, quiet: bool) -> None:
    """Run a worker locally, like `wrangler dev`.

    One process serves the worker of wrangler.toml with its KV bindings in an embedded SQLite
    store in --persist-to; a binding whose namespace does not exist there yet is created under
    its id. The worker is reloaded when its files (or the config) change. GET /healthz is
    answered by the runtime. Stops cleanly on SIGTERM/SIGINT.
    """
    from edgekv._client import Client
    from edgekv.cli._serve import serve_worker

    async def open_store() -> Client:
        # Point reads of small values on the event loop's thread (~6 us) rather than a reader
        # thread (~100 us a round trip): a worker's hot path is KV reads (bench_workers.py).
        from edgekv.store.sqlite import SQLiteStore

        return Client(await SQLiteStore.open(persist_to, inline_reads=True))

    serve_worker(
        command="edgekv dev",
        config_path=config_path,
        open_client=open_store,
        host=host,
        port=port,
        local=True,
        reload=True,
        quiet=quiet,
        store_label=str(persist_to),
    )
