"""docs/cli.md is generated from --help (`python -m edgekv.cli.docs`): fail when it drifts, when a
command is missing from it, or when a registered command cannot even be loaded."""

from __future__ import annotations

import os
import re
import subprocess

import click
from click.testing import CliRunner

from edgekv.cli import COMMANDS, cli, docs
from tests.servers import EDGEKV

REGENERATE = "docs/cli.md is out of date: run `python -m edgekv.cli.docs` and commit the result"


def sections() -> dict[str, str]:
    text = docs.DOCS.read_text(encoding="utf-8")
    found = re.findall(r"^## (edgekv[^\n]*)\n\n```text\n(.*?)\n```$", text, re.S | re.M)
    return dict(found)


def test_the_page_is_what_the_generator_writes() -> None:
    assert docs.DOCS.read_text(encoding="utf-8") == docs.render(), REGENERATE


def test_every_command_has_its_section_with_its_real_help() -> None:
    documented = sections()
    paths = docs.command_paths()
    assert set(paths) == set(documented), REGENERATE
    assert {p.split()[1] for p in paths if p != "edgekv"} == set(COMMANDS)
    for path in paths:
        result = CliRunner().invoke(
            cli, [*path.split()[1:], "--help"], prog_name="edgekv", terminal_width=docs.WIDTH
        )
        assert result.exit_code == 0, result.output
        assert result.stdout.rstrip() == documented[path], f"{path}: {REGENERATE}"


def test_every_registered_command_loads() -> None:
    ctx = click.Context(cli, info_name="edgekv")
    for name in COMMANDS:
        assert cli.get_command(ctx, name) is not None, name


def test_help_on_a_real_terminal_width_matches_the_page() -> None:
    result = subprocess.run(
        [EDGEKV, "kv", "key", "put", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=True,
    )
    assert result.stdout.rstrip() == sections()["edgekv kv key put"]


def test_check_mode_of_the_generator() -> None:
    assert docs.main(["--check"]) == 0
