"""What the `dev`, `edge` and `kv` commands share: one-line errors, JSON output, logging, and
running the async body of a command.

Every failure a user can cause prints ONE line to stderr (`error: ...`) and exits non-zero, never
a traceback: `CLIError` for our own checks, and usage errors (a missing option, a bad integer)
are shortened to one line by `OneLineCommand` / `OneLineGroup`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import click
import orjson

__all__ = [
    "CREDENTIALS_FILE",
    "CLIError",
    "Credentials",
    "OneLineCommand",
    "OneLineGroup",
    "central_credentials",
    "config_option",
    "credentials_option",
    "env_option",
    "host_option",
    "port_option",
    "print_json",
    "quiet_option",
    "read_credentials_file",
    "run_async",
    "setup_logging",
    "usage_error",
    "workerd_option",
    "write_stdout",
]

T = TypeVar("T")

_NO_ARGS_IS_HELP: tuple[type[BaseException], ...] = tuple(
    e for e in (getattr(click.exceptions, "NoArgsIsHelpError", None),) if e is not None
)


# Options the server commands (dev, edge) share, spelled once.
config_option = click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The worker's config: wrangler.toml, wrangler.json or wrangler.jsonc (default: the "
    "first of wrangler.json, wrangler.jsonc, wrangler.toml that exists).",
)
env_option = click.option(
    "--env",
    "env_name",
    default=None,
    metavar="NAME",
    help="Apply the config's [env.NAME] section.",
)
workerd_option = click.option(
    "--workerd",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The workerd binary for JavaScript workers (default: $EDGEKV_WORKERD, then "
    "node_modules/.bin/workerd beside the config, then PATH).",
)
host_option = click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
)
quiet_option = click.option(
    "--quiet", is_flag=True, help="No access log (errors and warnings only)."
)


def port_option(default: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--port", default=default, show_default=True, type=click.IntRange(0, 65535), help="Port."
    )


class CLIError(click.ClickException):
    """A failure to report as one line `error: <message>`, exit status 1."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class OneLineUsageError(click.UsageError):
    """A usage error in one line: what is wrong and where to look (exit status 2)."""

    def show(self, file: IO[Any] | None = None) -> None:
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(f"error: {self.format_message()}{hint}", err=True)


@dataclass(frozen=True, slots=True)
class Credentials:
    """A token and account for a central server, and where they came from (for messages)."""

    token: str
    account_id: str
    source: str


CREDENTIALS_FILE = "credentials.json"  # what `edgekv serve` writes in its data directory


def read_credentials_file(path: Path) -> Credentials:
    """`{"account_id", "api_token"}` as `edgekv serve` writes it; CLIError when unusable."""
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise CLIError(f"cannot read the credentials file {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise CLIError(f"{path}: invalid JSON: {exc}") from None
    token = data.get("api_token") if isinstance(data, dict) else None
    account = data.get("account_id") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token or not isinstance(account, str) or not account:
        raise CLIError(f'{path}: expected {{"account_id": ..., "api_token": ...}}')
    return Credentials(token, account, str(path))


def central_credentials(
    url: str,
    option: str,
    *,
    credentials_file: Path | None = None,
    data_dir: Path = Path(".edgekv"),
) -> Credentials:
    """Check a central server URL given as `option` and find its credentials, in this order:
    `--credentials FILE`; EDGEKV_API_TOKEN + EDGEKV_ACCOUNT_ID; `data_dir/credentials.json`
    (what `edgekv serve` wrote on its first start there). `.source` says which."""
    if not url.startswith(("http://", "https://")):
        raise CLIError(f"{option} must be an http:// or https:// URL, got {url!r}")
    if credentials_file is not None:
        return read_credentials_file(credentials_file)
    token = os.environ.get("EDGEKV_API_TOKEN")
    account = os.environ.get("EDGEKV_ACCOUNT_ID")
    if token and account:
        return Credentials(token, account, "EDGEKV_API_TOKEN / EDGEKV_ACCOUNT_ID")
    found = data_dir / CREDENTIALS_FILE
    if not token and not account and found.is_file():
        return read_credentials_file(found)
    if not token:
        raise CLIError(
            f"EDGEKV_API_TOKEN is not set (needed with {option}; or give --credentials FILE)"
        )
    raise CLIError(
        f"EDGEKV_ACCOUNT_ID is not set (needed with {option}; or give --credentials FILE)"
    )


credentials_option = click.option(
    "--credentials",
    "credentials_file",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON file with the central server's account_id and api_token (what `edgekv serve` "
    "writes to DIR/credentials.json) [default: EDGEKV_API_TOKEN and EDGEKV_ACCOUNT_ID, else "
    ".edgekv/credentials.json when present].",
)


def usage_error(message: str) -> OneLineUsageError:
    """A usage error found by a command's own checks (e.g. options that exclude each other)."""
    return OneLineUsageError(message, click.get_current_context(silent=True))


def _one_line(exc: click.UsageError, ctx: click.Context) -> click.UsageError:
    if isinstance(exc, (OneLineUsageError, *_NO_ARGS_IS_HELP)):
        return exc
    return OneLineUsageError(exc.format_message(), exc.ctx or ctx)


class OneLineCommand(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _one_line(exc, ctx) from None


class OneLineGroup(click.Group):
    """A group whose subcommands (and sub-groups) report usage errors in one line too."""

    command_class = OneLineCommand
    group_class = type  # sub-groups are OneLineGroups as well

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _one_line(exc, ctx) from None

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            raise _one_line(exc, ctx) from None


def print_json(data: Any) -> None:
    """`data` as indented JSON on stdout (UTF-8, one trailing newline), for humans and `jq`."""
    write_stdout(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")


def write_stdout(data: bytes) -> None:
    """Raw bytes to stdout (a value may be binary: no decoding, no added newline), all of them
    whatever the reader's speed. A single write(2) may take only part of the data: a pipe whose
    reader is slow, a stdout an event loop left non-blocking, a write interrupted by the loop's
    machinery (seen at 64 KiB). So the bytes go out in a loop that waits until stdout is writable
    again; a stdout that cannot take them (closed pipe, full disk) is a CLIError, never exit 0."""
    try:
        sys.stdout.flush()
        fd = sys.stdout.buffer.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (e.g. click's test runner)
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    view = memoryview(data)
    try:
        sys.stdout.buffer.flush()
        while view:
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                select.select([], [fd], [])
                continue
            view = view[written:]
    except OSError as exc:
        _discard_stdout()
        reason = "the reader closed it" if isinstance(exc, BrokenPipeError) else exc.strerror
        raise CLIError(
            f"cannot write to stdout ({reason}): {len(view)} of {len(data)} bytes not written"
        ) from None


def _discard_stdout() -> None:
    """After a failed write: point stdout at /dev/null so that the interpreter's own flush at
    exit does not add a second message (Python's advice for EPIPE)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def setup_logging(*, quiet: bool = False) -> None:
    """Our log lines to stderr, one per event, with a timestamp (the access log writes its own
    lines in the same format); `quiet`: warnings and errors only. For every server command."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("edgekv")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    root.propagate = False
    # asyncpg reports its reconnect attempts during a database outage: same format, no traceback.
    driver = logging.getLogger("asyncpg")
    driver.handlers[:] = [handler]
    driver.setLevel(logging.WARNING)
    driver.propagate = False
    driver.filters[:] = [_drop_traceback]


def _drop_traceback(record: logging.LogRecord) -> bool:
    record.exc_info = None
    record.exc_text = None
    return True


def new_loop() -> asyncio.AbstractEventLoop:
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run the async body of a command (on uvloop when installed)."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(coro)
