"""`edgekv dev`: a worker and an embedded store in one process, reloading on change."""

from __future__ import annotations

from pathlib import Path

import click

from edgekv.cli._common import (
    OneLineCommand,
    config_option,
    env_option,
    host_option,
    port_option,
    quiet_option,
    workerd_option,
)

__all__ = ["dev"]


@click.command(cls=OneLineCommand)
@config_option
@host_option
@port_option(8787)
@click.option(
    "--persist-to",
    default=".edgekv",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the embedded store (shared with `edgekv kv` commands).",
)
@env_option
@workerd_option
@quiet_option
def dev(
    config_path: Path | None,
    host: str,
    port: int,
    persist_to: Path,
    env_name: str | None,
    workerd: Path | None,
    quiet: bool,
) -> None:
    """Run a worker locally, like `wrangler dev`.

    One process serves the worker of the config with its KV bindings in an embedded SQLite
    store in --persist-to; a binding whose namespace does not exist there yet is created under
    its id (its preview_id when it has one). A JavaScript worker (main = *.js / *.mjs) runs in
    workerd, its bindings served by this process. The worker is reloaded when its files (or the
    config) change. GET /healthz is answered by the runtime. Stops cleanly on SIGTERM/SIGINT.
    """
    import edgekv
    from edgekv._client import Client
    from edgekv.api.bootstrap import CREDENTIALS_FILE
    from edgekv.cli._serve import serve_worker

    if (persist_to / CREDENTIALS_FILE).exists():
        # The README's pitfall: dev over the directory of a running `edgekv serve` creates its
        # binding namespaces in that central store.
        click.echo(
            f"warning: {persist_to} is the data directory of an `edgekv serve` (it holds "
            f"{CREDENTIALS_FILE}): this worker's bindings use that central store",
            err=True,
        )

    async def open_store() -> Client:
        # SQLite with inline point reads (the default): a worker's hot path is KV reads.
        client = edgekv.open(persist_to)
        await client.list_namespaces()  # open it now: a broken store stops the command here
        return client

    serve_worker(
        command="edgekv dev",
        config_path=config_path,
        open_client=open_store,
        host=host,
        port=port,
        local=True,
        quiet=quiet,
        store_label=f"SQLite in {persist_to.resolve()}",
        env=env_name,
        workerd=workerd,
    )
