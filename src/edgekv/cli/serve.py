"""`edgekv serve`: the central server (REST API v4 dialect) over SQLite or PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edgekv._types import DEFAULT_FEED_HISTORY
from edgekv.cli._common import setup_logging
from edgekv.store import is_database_url

if TYPE_CHECKING:
    from edgekv.api.bootstrap import Credentials

__all__ = ["print_credentials", "serve", "store_target"]

DEFAULT_DATA = Path(".edgekv")


def store_target(data: Path | None, database: str | None) -> tuple[str | Path, Path | None]:
    """What to open (`edgekv.open` target) and the data directory, if any."""
    if data is not None and database is not None:
        raise click.UsageError("--data and --database exclude each other")
    if database is not None:
        if not is_database_url(database):
            raise click.UsageError("--database takes a postgresql:// URL")
        return database, None
    directory = data if data is not None else DEFAULT_DATA
    return directory, directory


@click.command()
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory of the embedded SQLite store (default .edgekv).",
)
@click.option("--database", metavar="URL", default=None, help="A postgresql:// URL instead.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8787, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--server",
    type=click.Choice(["granian", "uvicorn"]),
    default=None,
    envvar="EDGEKV_ASGI_SERVER",
    help="ASGI server to run on (default: granian, chosen by measurement).",
)
@click.option("--quiet", is_flag=True, help="No access log (errors and warnings only).")
@click.option(
    "--feed-history",
    default=DEFAULT_FEED_HISTORY,
    show_default=True,
    type=click.IntRange(min=1),
    metavar="N",
    help="Changes kept per namespace for its change feed (an older `since` is answered 410).",
)
@click.option(
    "--no-metrics",
    is_flag=True,
    help="Do not count requests (GET /metrics then shows no requests; for measuring their cost).",
)
def serve(
    data: Path | None,
    database: str | None,
    host: str,
    port: int,
    server: str | None,
    quiet: bool,
    feed_history: int,
    no_metrics: bool,
) -> None:
    """Run the central server: the REST API under /client/v4, for wrangler, the cloudflare SDKs,
    remote bindings and locations.

    On first start it creates an account and an admin token, writes them to
    DIR/credentials.json (mode 0600) and prints them; with EDGEKV_ACCOUNT_ID and
    EDGEKV_API_TOKEN set, that account and token are created instead. The dashboard is at /,
    Prometheus counters at /metrics (same token). Stops cleanly on SIGTERM/SIGINT.
    """
    from edgekv.api.server import StartupError, run
    from edgekv.asgi.server import DEFAULT_SERVER

    target, data_dir = store_target(data, database)
    if server == "uvicorn":
        try:
            import uvicorn  # noqa: F401  # optional: only the `dev` extra installs it
        except ImportError:
            raise click.UsageError("--server uvicorn needs uvicorn: pip install uvicorn") from None
    setup_logging(quiet=quiet)
    try:
        run(
            target,
            data_dir=data_dir,
            host=host,
            port=port,
            server=server or DEFAULT_SERVER,  # type: ignore[arg-type]  # click.Choice checked it
            access_log=not quiet,
            on_credentials=print_credentials,
            feed_history=feed_history,
            metrics=not no_metrics,
        )
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None


def print_credentials(credentials: Credentials) -> None:
    where = f" (saved to {credentials.path}, mode 0600)" if credentials.path else ""
    click.echo(f"Created account {credentials.account_id} and its admin API token{where}:")
    click.echo(f"  EDGEKV_ACCOUNT_ID={credentials.account_id}")
    click.echo(f"  EDGEKV_API_TOKEN={credentials.api_token}")
    click.echo("The token is shown once; keep it secret.")
    sys.stdout.flush()
