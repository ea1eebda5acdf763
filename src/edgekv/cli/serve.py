"""`edgekv serve`: the central server (REST API v4 dialect) over SQLite or PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from edgekv._types import DEFAULT_FEED_HISTORY

__all__ = ["serve", "store_target"]

DEFAULT_DATA = Path(".edgekv")


def store_target(data: Path | None, database: str | None) -> tuple[str | Path, Path | None]:
    """What to open (`edgekv.open` target) and the data directory, if any."""
    if data is not None and database is not None:
        raise click.UsageError("--data and --database exclude each other")
    if database is not None:
        if not database.startswith(("postgresql://", "postgres://")):
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
    from edgekv.api import server as api_server

    target, data_dir = store_target(data, database)
    if server == "uvicorn":
        try:
            import uvicorn  # noqa: F401  # optional: only the `dev` extra installs it
        except ImportError:
            raise click.UsageError("--server uvicorn needs uvicorn: pip install uvicorn") from None
    api_server.configure_logging(logging.WARNING if quiet else logging.INFO)
    chosen = server or api_server.DEFAULT_SERVER
    api_server.run(
        target,
        data_dir=data_dir,
        host=host,
        port=port,
        server=chosen,  # type: ignore[arg-type]  # click.Choice checked it
        access_log=not quiet,
        feed_history=feed_history,
        metrics=not no_metrics,
    )
