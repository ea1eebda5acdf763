"""The `edgekv` command: a thin layer over the library (one module per command group).

Every command is documented in docs/cli.md, generated from `--help` (tests/cli/test_docs.py).
"""

from __future__ import annotations

import importlib

import click

__all__ = ["cli", "main"]

# command name -> "module:attribute" of a click command, imported on use so that
# `edgekv --help` stays fast and a command's dependencies load only when it runs.
COMMANDS = {
    "backup": "edgekv.cli.backup:backup",
    "restore": "edgekv.cli.backup:restore",
    "serve": "edgekv.cli.serve:serve",
    "edge": "edgekv.cli.edge:edge",
    "dev": "edgekv.cli.dev:dev",
    "kv": "edgekv.cli.kv:kv",
    "token": "edgekv.cli.token:token",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgekv")
def cli() -> None:
    """edgekv: Workers KV semantics on your own machines.

    Run a central server (serve), a location (edge) or a local dev server (dev),
    and manage namespaces and keys (kv) the way wrangler does.
    """


def main() -> None:
    cli()
