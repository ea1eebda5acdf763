"""`edgekv edge`: a location serving a worker, its bindings read through a location cache."""

from __future__ import annotations

from pathlib import Path

import click

from edgekv.cli._common import (
    OneLineCommand,
    central_credentials,
    config_option,
    credentials_option,
    env_option,
    host_option,
    port_option,
    quiet_option,
    workerd_option,
)

__all__ = ["edge"]


@click.command(cls=OneLineCommand)
@click.option(
    "--central", required=True, metavar="URL", help="Base URL of the central server (edgekv serve)."
)
@click.option("--location", required=True, metavar="NAME", help="Name of this location, e.g. ams.")
@config_option
@host_option
@port_option(8788)
@click.option(
    "--cache-bytes",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Byte budget of the location cache (default: the cache's own, 64 MiB).",
)
@env_option
@workerd_option
@quiet_option
@credentials_option
def edge(
    central: str,
    location: str,
    config_path: Path | None,
    host: str,
    port: int,
    cache_bytes: int | None,
    env_name: str | None,
    workerd: Path | None,
    quiet: bool,
    credentials_file: Path | None,
) -> None:
    """Run a location: a worker with cached KV bindings.

    The worker's KV reads go through a bounded cache in front of a central server; writes go
    to the centre. A JavaScript worker (main = *.js / *.mjs) runs in workerd, its bindings
    served by this process through the same cache.

    Credentials for the centre come from --credentials FILE, else EDGEKV_API_TOKEN and
    EDGEKV_ACCOUNT_ID, else .edgekv/credentials.json (what `edgekv serve` writes). Every binding
    must exist on the centre (create it with `edgekv kv namespace create --url ...`). GET
    /healthz is answered by the runtime. Stops cleanly on SIGTERM/SIGINT.
    """
    import edgekv
    from edgekv._client import Client
    from edgekv.cli._serve import serve_worker

    found = central_credentials(central, "--central", credentials_file=credentials_file)

    async def open_client() -> Client:
        return edgekv.open(
            central,
            token=found.token,
            account_id=found.account_id,
            location=location,
            cache_bytes=cache_bytes,
        )

    serve_worker(
        command=f"edgekv edge ({location})",
        config_path=config_path,
        open_client=open_client,
        host=host,
        port=port,
        local=False,
        quiet=quiet,
        store_label=central,
        credentials_source=found.source,
        env=env_name,
        workerd=workerd,
    )
