"""`edgekv backup` and `edgekv restore`: the whole SQLite store, as one consistent file.

A thin layer over `edgekv.store.sqlite_backup`; PostgreSQL stores are backed up with the
database's own tools (`pg_dump`, docs/data.md).
"""

from __future__ import annotations

from pathlib import Path

import click

from edgekv._exceptions import StoreError
from edgekv.cli._common import CLIError, OneLineCommand

__all__ = ["backup", "restore"]

_DATA = click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".edgekv"),
    show_default=True,
    help="Directory of the embedded SQLite store (as `edgekv serve --data`).",
)


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


@click.command(cls=OneLineCommand)
@_DATA
@click.option(
    "--database",
    metavar="URL",
    default=None,
    help="A postgresql:// store: refused, with the pg_dump command to use instead.",
)
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
def backup(data: Path, database: str | None, output: Path) -> None:
    """Copy the whole store (every account, token, namespace and key) to the file OUTPUT.

    Safe while `edgekv serve` runs and writes: the copy is the store exactly as of one commit
    (SQLite's online backup), checked, and renamed into place only once complete. OUTPUT must
    not exist. Restore it with `edgekv restore OUTPUT --data DIR`."""
    if database is not None:
        raise CLIError(
            "PostgreSQL stores are backed up with pg_dump: "
            "pg_dump --format=custom --file=edgekv.dump URL (see docs/data.md)"
        )
    from edgekv.store.sqlite_backup import backup as run_backup

    try:
        info = run_backup(data, output)
    except StoreError as exc:
        raise CLIError(str(exc)) from None
    click.echo(
        f"Backed up {info.namespaces} namespace(s), {info.entries} key(s) "
        f"({_size(info.size)}) to {output}.",
        err=True,
    )


@click.command(cls=OneLineCommand)
@click.argument("backup_file", metavar="BACKUP", type=click.Path(dir_okay=False, path_type=Path))
@_DATA
@click.option("--force", is_flag=True, help="Replace the store DIR holds already.")
def restore(backup_file: Path, data: Path, force: bool) -> None:
    """Restore a file made by `edgekv backup` into the store in --data DIR.

    Stop the server that uses DIR first. A DIR that already holds a store is refused unless
    --force. Keep DIR/credentials.json yourself: tokens are in the backup (as hashes), the
    plaintext admin token is not."""
    from edgekv.store.sqlite_backup import restore as run_restore

    try:
        info = run_restore(backup_file, data, force=force)
    except StoreError as exc:
        raise CLIError(str(exc)) from None
    click.echo(
        f"Restored {info.namespaces} namespace(s), {info.entries} key(s) into {data}.", err=True
    )
