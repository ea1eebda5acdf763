"""`edgekv kv`: namespaces and keys from the command line, the way `wrangler kv` does it.

Local by default (the embedded store in --persist-to, the one `edgekv dev` uses), or a central
server with --url / EDGEKV_URL (credentials from EDGEKV_API_TOKEN and EDGEKV_ACCOUNT_ID).
Data goes to stdout (raw values, or JSON that round-trips: `key list` output is `bulk delete`
input); confirmations and progress go to stderr; every error is one line on stderr.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from edgekv.cli._common import OneLineGroup, credentials_option, usage_error
from edgekv.cli._kv_ops import (
    KVTarget,
    bulk_delete,
    bulk_get,
    bulk_put,
    key_delete,
    key_get,
    key_list,
    key_put,
    key_watch,
    namespace_create,
    namespace_delete,
    namespace_export,
    namespace_import,
    namespace_list,
    namespace_rename,
)

__all__ = ["kv"]

_STORE_OPTIONS = [
    click.option(
        "--url",
        envvar="EDGEKV_URL",
        metavar="URL",
        default=None,
        help="Central server to use instead of the local store [env: EDGEKV_URL; credentials "
        "from --credentials, else EDGEKV_API_TOKEN and EDGEKV_ACCOUNT_ID, else "
        "<--persist-to>/credentials.json].",
    ),
    credentials_option,
    click.option(
        "--persist-to",
        default=".edgekv",
        show_default=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Directory of the local store (the one `edgekv dev` uses).",
    ),
]

_NAMESPACE_OPTIONS = [
    click.option("--namespace-id", metavar="ID", default=None, help="The namespace's id."),
    click.option(
        "--binding",
        metavar="NAME",
        default=None,
        help="A KV binding of wrangler.toml instead of --namespace-id (created on first use "
        "in the local store).",
    ),
    click.option(
        "--config",
        "config_path",
        default=None,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The config that defines --binding: wrangler.toml, wrangler.json or wrangler.jsonc "
        "(default: the first of wrangler.json, wrangler.jsonc, wrangler.toml that exists).",
    ),
]


F = TypeVar("F", bound=Callable[..., Any])


def _apply(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


store_options = _apply(_STORE_OPTIONS)
target_options = _apply(_NAMESPACE_OPTIONS + _STORE_OPTIONS)


def _target(kwargs: dict[str, Any]) -> KVTarget:
    from edgekv.workers.config import find_config

    namespace_id, binding = kwargs.get("namespace_id"), kwargs.get("binding")
    if namespace_id is not None and binding is not None:
        raise usage_error("give either --namespace-id or --binding, not both")
    if namespace_id is None and binding is None and "binding" in kwargs:
        raise usage_error("one of --namespace-id or --binding is required")
    return KVTarget(
        url=kwargs["url"] or None,
        persist_to=kwargs["persist_to"],
        namespace_id=namespace_id,
        binding=binding,
        config_path=find_config(kwargs.get("config_path")),
        credentials_file=kwargs.get("credentials_file"),
    )


@click.group(cls=OneLineGroup)
def kv() -> None:
    """Manage namespaces and keys, like `wrangler kv`.

    Commands work on the local store in --persist-to (the one `edgekv dev` uses), or on a
    central server with --url / EDGEKV_URL. Its credentials come from --credentials FILE,
    else EDGEKV_API_TOKEN and EDGEKV_ACCOUNT_ID, else the credentials.json that `edgekv serve`
    wrote in --persist-to (.edgekv). Data goes to stdout; errors are one line on stderr."""


# -- namespaces ----------------------------------------------------------------------------------
@kv.group()
def namespace() -> None:
    """Create, list, rename and delete namespaces."""


@namespace.command("create")
@click.argument("title")
@click.option(
    "--id",
    "namespace_id",
    metavar="ID",
    default=None,
    help="Create it under this id (32 lowercase hex characters), e.g. the id a wrangler.toml "
    "names; an id that exists already is an error.",
)
@click.option(
    "--jurisdiction",
    type=click.Choice(["eu", "us", "fedramp"]),
    default=None,
    help="Where its data must be kept; fixed at creation.",
)
@store_options
def namespace_create_cmd(
    title: str, namespace_id: str | None, jurisdiction: str | None, **kwargs: Any
) -> None:
    """Create a namespace titled TITLE.

    Prints it as JSON ({"id", "title"}, and "jurisdiction" when given), and on stderr the
    wrangler.toml line that binds it."""
    namespace_create(_target(kwargs), title, namespace_id=namespace_id, jurisdiction=jurisdiction)


@namespace.command("list")
@store_options
def namespace_list_cmd(**kwargs: Any) -> None:
    """Print every namespace as a JSON array of {"id", "title"}."""
    namespace_list(_target(kwargs))


@namespace.command("rename")
@click.option("--namespace-id", metavar="ID", required=True, help="The namespace to rename.")
@click.option("--new-name", metavar="TITLE", required=True, help="Its new title.")
@store_options
def namespace_rename_cmd(namespace_id: str, new_name: str, **kwargs: Any) -> None:
    """Give a namespace a new title; prints it as JSON."""
    namespace_rename(_target(kwargs), namespace_id, new_name)


@namespace.command("delete")
@click.option("--namespace-id", metavar="ID", required=True, help="The namespace to delete.")
@store_options
def namespace_delete_cmd(namespace_id: str, **kwargs: Any) -> None:
    """Delete a namespace and every key in it."""
    namespace_delete(_target(kwargs), namespace_id)


@namespace.command("export")
@target_options
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the export to FILE instead of stdout.",
)
def namespace_export_cmd(output: Path | None, **kwargs: Any) -> None:
    """Export every live key of a namespace as NDJSON, one consistent snapshot.

    Line 1 is a header with the snapshot's sequence number (seq), then one bulk-write item per
    key in UTF-8 byte order ({"key", "value", "base64"?, "expiration"?, "metadata"?}), then a
    trailer with the count. Writes go on meanwhile and are not in it. Memory stays flat
    whatever the size. The count and seq go to stderr."""
    namespace_export(_target(kwargs), output)


@namespace.command("import")
@click.argument("file", metavar="FILE")
@target_options
@click.option(
    "--partial",
    is_flag=True,
    help="Accept a file without its trailer (an export that was cut short): import what is there.",
)
def namespace_import_cmd(file: str, partial: bool, **kwargs: Any) -> None:
    """Import an export FILE ('-' reads stdin) into a namespace.

    The whole file is checked before the first write: a malformed line stops with its number
    and the reason, and a file without its trailer is refused unless --partial; a refused file
    writes nothing. Entries are written in bulk batches (progress on a terminal) and merge
    into the keys already there; running it twice leaves the same data. Entries whose
    expiration has passed are skipped ("skipped N expired" on stderr); the others keep their
    expiration, even one due in seconds. A JSON array (wrangler's bulk format) is read too."""
    namespace_import(_target(kwargs), file, partial=partial)


# -- keys ----------------------------------------------------------------------------------------
@kv.group()
def key() -> None:
    """Write, read, list and delete single keys."""


@key.command("put")
@click.argument("key")
@click.argument("value", required=False)
@target_options
@click.option(
    "--path",
    "value_path",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Read the value from FILE (bytes as they are) instead of VALUE.",
)
@click.option(
    "--ttl", type=int, default=None, metavar="N", help="Expire N seconds from now (≥ 60)."
)
@click.option(
    "--expiration", type=int, default=None, metavar="N", help="Expire at UNIX time N (seconds)."
)
@click.option("--metadata", default=None, metavar="JSON", help="Metadata: any JSON ≤ 1024 bytes.")
def key_put_cmd(
    key: str,
    value: str | None,
    value_path: Path | None,
    ttl: int | None,
    expiration: int | None,
    metadata: str | None,
    **kwargs: Any,
) -> None:
    """Write VALUE (or the contents of --path FILE) under KEY."""
    if (value is None) == (value_path is None):
        raise usage_error("give the value either as VALUE or as --path FILE")
    key_put(
        _target(kwargs),
        key,
        value,
        value_path,
        ttl=ttl,
        expiration=expiration,
        metadata=metadata,
    )


@key.command("get")
@click.argument("key")
@target_options
@click.option(
    "--text", is_flag=True, help="Decode the value as UTF-8 text (and end it with a newline)."
)
def key_get_cmd(key: str, text: bool, **kwargs: Any) -> None:
    """Print the value of KEY.

    Raw bytes by default (redirect to a file for binary values), or text with --text. Exits
    with status 1 when the key does not exist."""
    key_get(_target(kwargs), key, text=text)


@key.command("list")
@target_options
@click.option("--prefix", default=None, metavar="P", help="Only keys starting with P.")
def key_list_cmd(prefix: str | None, **kwargs: Any) -> None:
    """Print every key as JSON.

    The output is an array of {"name", "expiration"?, "metadata"?} over all pages: the input
    that `bulk delete` and `bulk get` accept."""
    key_list(_target(kwargs), prefix)


@key.command("delete")
@click.argument("key")
@target_options
def key_delete_cmd(key: str, **kwargs: Any) -> None:
    """Delete KEY (a missing key is not an error)."""
    key_delete(_target(kwargs), key)


@key.command("watch")
@target_options
@click.option("--prefix", default=None, metavar="P", help="Only keys starting with P.")
@click.option(
    "--since",
    default=None,
    metavar="SEQ",
    type=click.IntRange(min=0),
    help="Start after this change's seq (default: from now on).",
)
def key_watch_cmd(prefix: str | None, since: int | None, **kwargs: Any) -> None:
    """Print each change of the namespace as it commits, one compact JSON object per line
    ({"seq", "key", "op", "version"?, "expiration"?, "metadata"?}), until interrupted.

    Pass the last line's seq back as --since to resume exactly after it. A --since older than
    the history the store keeps is an error (status 410): read the keys again instead."""
    key_watch(_target(kwargs), prefix, since)


# -- bulk ----------------------------------------------------------------------------------------
_FILE = click.argument("file", metavar="FILE.json")


@kv.group()
def bulk() -> None:
    """Write, delete or read many keys from a JSON file ('-' reads stdin)."""


@bulk.command("put")
@_FILE
@target_options
def bulk_put_cmd(file: str, **kwargs: Any) -> None:
    """Write the key-value pairs of FILE.json.

    FILE.json is wrangler's format: an array of {"key", "value", "base64"?, "expiration"?,
    "expiration_ttl"?, "metadata"?}. Every pair is checked before the first write; pairs go
    in batches of 10,000, each all or nothing."""
    bulk_put(_target(kwargs), file)


@bulk.command("delete")
@_FILE
@target_options
def bulk_delete_cmd(file: str, **kwargs: Any) -> None:
    """Delete the keys listed in FILE.json.

    FILE.json is an array of key names, or of objects with a "name" (what `key list` prints).
    Missing keys are not an error."""
    bulk_delete(_target(kwargs), file)


@bulk.command("get")
@_FILE
@target_options
def bulk_get_cmd(file: str, **kwargs: Any) -> None:
    """Print the values of the keys listed in FILE.json.

    FILE.json is an array of key names, or of objects with a "name" (what `key list` prints).
    The output is a JSON object {key: value as text, or null when missing}."""
    bulk_get(_target(kwargs), file)
