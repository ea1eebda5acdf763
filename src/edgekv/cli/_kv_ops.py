"""The work behind each `edgekv kv` command (cli/kv.py holds only the click declarations).

Each operation opens the store (local directory or central server), does its work through the
public API (`Client`, `KVNamespace`), closes it, and turns every expected failure into a one-line
`CLIError`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from edgekv import _rules as rules
from edgekv._client import Client
from edgekv._exceptions import ExportFormatError, KVError, NamespaceIdTaken
from edgekv._namespace import KVNamespace
from edgekv.cli._common import (
    CLIError,
    Credentials,
    central_credentials,
    print_json,
    run_async,
    write_stdout,
)
from edgekv.workers.config import ConfigError

__all__ = [
    "KVTarget",
    "bulk_delete",
    "bulk_get",
    "bulk_put",
    "key_delete",
    "key_get",
    "key_list",
    "key_put",
    "namespace_create",
    "namespace_delete",
    "namespace_export",
    "namespace_import",
    "namespace_list",
    "namespace_rename",
]

T = TypeVar("T")

WRITE_BATCH = rules.BULK_WRITE_MAX_PAIRS  # pairs per put_many / delete_many call
WRITE_BATCH_BYTES = 64 * 1024 * 1024  # and at most this much value data (REST bodies < 100 MB)
GET_BATCH = rules.BULK_GET_MAX_KEYS


@dataclass(frozen=True, slots=True)
class KVTarget:
    """Where a command works: a local directory or a central server, and which namespace."""

    url: str | None
    persist_to: Path
    namespace_id: str | None = None
    binding: str | None = None
    config_path: Path = Path("wrangler.toml")
    credentials_file: Path | None = None

    @property
    def where(self) -> str:
        return self.url or f"the local store in {self.persist_to}"


def _open(target: KVTarget) -> tuple[Client, Credentials | None]:
    import edgekv

    if target.url is None:
        return edgekv.open(target.persist_to), None
    found = central_credentials(
        target.url,
        "--url / EDGEKV_URL",
        credentials_file=target.credentials_file,
        data_dir=target.persist_to,
    )
    return edgekv.open(target.url, token=found.token, account_id=found.account_id), found


def _run(target: KVTarget, work: Callable[[Client], Awaitable[T]]) -> T:
    client, credentials = _open(target)

    async def main() -> T:
        try:
            return await work(client)
        finally:
            await client.aclose()

    try:
        result = run_async(main())
    except KVError as exc:
        # A refused token: say which one was used (errors stay one line).
        where = f" (credentials from {credentials.source})" if credentials else ""
        raise CLIError(f"{exc}{where if exc.status in (401, 403) else ''}") from None
    except ConfigError as exc:
        raise CLIError(str(exc)) from None
    if credentials is not None and credentials.source.endswith(".json"):
        _info(f"(credentials from {credentials.source})")  # found, not given: say where
    return result


async def _namespace(client: Client, target: KVTarget) -> KVNamespace:
    """The namespace of --namespace-id or --binding; a local binding is created on first use."""
    if target.binding is not None:
        from edgekv.workers.bindings import ensure_namespace
        from edgekv.workers.config import load_config

        config = load_config(target.config_path, need_main=False)
        binding = config.binding(target.binding)
        if target.url is None:
            await ensure_namespace(client, binding, config.name)
        namespace_id = binding.id
    else:
        assert target.namespace_id is not None
        namespace_id = target.namespace_id
    if await client.get_namespace(namespace_id) is None:
        raise CLIError(f"namespace {namespace_id} not found in {target.where}")
    return client.namespace(namespace_id)


def _info(message: str) -> None:
    click.echo(message, err=True)


# -- namespaces ----------------------------------------------------------------------------------
def namespace_create(
    target: KVTarget,
    title: str,
    *,
    namespace_id: str | None = None,
    jurisdiction: str | None = None,
) -> None:
    if namespace_id is not None:
        try:
            rules.check_namespace_id(namespace_id, "CREATE_NAMESPACE")
        except KVError:
            raise CLIError(
                f"--id {namespace_id!r}: a namespace id is 32 lowercase hexadecimal characters"
            ) from None

    async def work(client: Client) -> KVNamespace:
        try:
            return await client.create_namespace(
                title, namespace_id=namespace_id, jurisdiction=jurisdiction
            )
        except KVError as exc:
            if namespace_id is not None and NamespaceIdTaken.MESSAGE in str(exc):
                raise CLIError(
                    f"a namespace with id {namespace_id} already exists in {target.where}"
                ) from None
            raise

    ns = _run(target, work)
    shown: dict[str, Any] = {"id": ns.id, "title": ns.title}
    if jurisdiction is not None:
        shown["jurisdiction"] = jurisdiction
    print_json(shown)
    ident = "".join(c if c.isalnum() else "_" for c in title).upper().strip("_") or "KV"
    if not ident.isidentifier():
        ident = f"KV_{ident}"
    _info(
        "Add it to wrangler.toml:\n"
        f'kv_namespaces = [\n  {{ binding = "{ident}", id = "{ns.id}" }}\n]'
    )


def namespace_list(target: KVTarget) -> None:
    async def work(client: Client) -> list[dict[str, Any]]:
        return [ns.to_dict() for ns in await client.list_namespaces()]

    print_json(_run(target, work))


def namespace_rename(target: KVTarget, namespace_id: str, title: str) -> None:
    async def work(client: Client) -> dict[str, Any]:
        return (await client.rename_namespace(namespace_id, title)).to_dict()

    print_json(_run(target, work))


def namespace_delete(target: KVTarget, namespace_id: str) -> None:
    async def work(client: Client) -> None:
        if await client.get_namespace(namespace_id) is None:
            raise CLIError(f"namespace {namespace_id} not found in {target.where}")
        await client.delete_namespace(namespace_id)

    _run(target, work)
    _info(f"Deleted namespace {namespace_id}.")


def namespace_export(target: KVTarget, output: Path | None) -> None:
    async def work(client: Client) -> tuple[str, int, int]:
        ns = await _namespace(client, target)
        if output is None:
            sys.stdout.flush()
            try:
                header, count = await ns.export_to(sys.stdout.buffer)
            except BrokenPipeError:
                # The reader went away (`| head`): nothing more to say on stdout, ever.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                raise CLIError("stdout was closed before the export ended") from None
        else:
            try:
                file = output.open("wb")
            except OSError as exc:
                raise CLIError(f"cannot write {output}: {exc.strerror}") from None
            with file:
                header, count = await ns.export_to(file)
        return ns.id, header.seq, count

    namespace_id, seq, count = _run(target, work)
    _info(f"Exported {count} key(s) of namespace {namespace_id} at seq {seq}.")


class _ImportProgress:
    """The import's progress bar, made once the file was checked (its entry count known)."""

    def __init__(self) -> None:
        self.bar: _Progress | None = None

    def start(self, total: int) -> None:
        self.bar = _Progress(total, "Importing")

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def namespace_import(target: KVTarget, file: str, *, partial: bool) -> None:
    if file == "-":
        source: Any = sys.stdin.buffer
    else:
        source = Path(file)
        try:
            source.open("rb").close()
        except OSError as exc:
            raise CLIError(f"cannot read {file}: {exc.strerror}") from None
    name = "stdin" if file == "-" else file

    async def work(client: Client) -> tuple[str, Any]:
        ns = await _namespace(client, target)
        progress = _ImportProgress()
        try:
            return ns.id, await ns.import_from(source, partial=partial, progress=progress)
        except ExportFormatError as exc:
            hint = "; --partial imports what is there" if "no trailer" in exc.reason else ""
            raise CLIError(
                f"{name} line {exc.line}: {exc.reason}{hint} "
                f"({exc.written} entries written before it)"
            ) from None
        finally:
            progress.close()

    namespace_id, result = _run(target, work)
    if not result.complete:
        _info(f"{name} has no trailer (--partial): imported the entries it holds.")
    _info(f"Imported {result.written} key(s) into namespace {namespace_id}.")
    if result.skipped_expired:
        _info(f"skipped {result.skipped_expired} expired")


# -- keys ----------------------------------------------------------------------------------------
def key_put(
    target: KVTarget,
    key: str,
    value: str | None,
    value_path: Path | None,
    *,
    ttl: int | None,
    expiration: int | None,
    metadata: str | None,
) -> None:
    meta: Any = None
    if metadata is not None:
        try:
            meta = orjson.loads(metadata)
        except orjson.JSONDecodeError as exc:
            raise CLIError(f"--metadata is not valid JSON: {exc}") from None

    async def work(client: Client) -> int:
        ns = await _namespace(client, target)
        if value_path is None:
            assert value is not None
            await ns.put(key, value, expiration=expiration, expiration_ttl=ttl, metadata=meta)
            return len(value.encode("utf-8", "surrogatepass"))
        try:
            file = value_path.open("rb")
        except OSError as exc:
            raise CLIError(f"cannot read {value_path}: {exc.strerror}") from None
        with file:
            await ns.put(key, file, expiration=expiration, expiration_ttl=ttl, metadata=meta)
            return file.tell()

    size = _run(target, work)
    _info(f"Wrote {size} byte{'' if size == 1 else 's'} to key {key!r}.")


def key_get(target: KVTarget, key: str, *, text: bool) -> None:
    async def work(client: Client) -> bytes | None:
        ns = await _namespace(client, target)
        value: bytes | None = await ns.get(key, "bytes")
        return value

    value = _run(target, work)
    if value is None:
        raise CLIError(f"key {key!r} not found")
    if text:
        write_stdout(value.decode("utf-8", "replace").encode() + b"\n")
    else:
        write_stdout(value)


def key_list(target: KVTarget, prefix: str | None) -> None:
    async def work(client: Client) -> list[dict[str, Any]]:
        ns = await _namespace(client, target)
        keys: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = await ns.list(prefix=prefix, cursor=cursor)
            keys.extend(k.to_dict() for k in page.keys)
            if page.list_complete:
                return keys
            cursor = page.cursor

    print_json(_run(target, work))


def key_delete(target: KVTarget, key: str) -> None:
    async def work(client: Client) -> None:
        ns = await _namespace(client, target)
        await ns.delete(key)

    _run(target, work)
    _info(f"Deleted key {key!r}.")


def key_watch(target: KVTarget, prefix: str | None, since: int | None) -> None:
    """Print each change as one line of compact JSON, flushed at once, until interrupted."""

    async def work(client: Client) -> None:
        ns = await _namespace(client, target)
        async for change in ns.changes(since=since, prefix=prefix):
            write_stdout(orjson.dumps(change.to_dict()) + b"\n")

    with contextlib.suppress(KeyboardInterrupt):  # the way to stop it: not an error
        _run(target, work)


# -- bulk ----------------------------------------------------------------------------------------
def _read_json(file: str) -> Any:
    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise CLIError(f"cannot read {file}: {exc.strerror}") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CLIError(f"{file}: invalid JSON: {exc}") from None


def _key_names(file: str) -> list[str]:
    """Key names from an array of strings or of objects with "name" (`key list` output)."""
    data = _read_json(file)
    if not isinstance(data, list):
        raise CLIError(f'{file}: expected a JSON array of key names or of {{"name": ...}} objects')
    names: list[str] = []
    for i, item in enumerate(data):
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str):
            raise CLIError(f'{file}[{i}]: expected a key name (string) or an object with "name"')
        names.append(name)
    return names


def _check_pair(item: object, where: str, now: int) -> int:
    """Validate one bulk-put pair before anything is written; returns its value size."""
    if not isinstance(item, dict):
        raise CLIError(f'{where}: expected an object {{"key": ..., "value": ...}}')
    key, value = item.get("key"), item.get("value")
    if not isinstance(key, str):
        raise CLIError(f'{where}: "key" must be a string')
    if not isinstance(value, str):
        raise CLIError(f'{where} (key {key!r}): "value" must be a string')
    encoded = item.get("base64", False)
    if not isinstance(encoded, bool):
        raise CLIError(f'{where} (key {key!r}): "base64" must be true or false')
    try:
        rules.encode_key(key, "PUT")
        rules.resolve_expiration(item.get("expiration"), item.get("expiration_ttl"), now, "PUT")
        rules.serialize_metadata(item.get("metadata"), "PUT")
        if encoded:
            size = len(base64.b64decode(value, validate=True))
        else:
            size = len(value.encode("utf-8", "surrogatepass"))
        rules.check_value_size(size, "PUT")
    except binascii.Error:
        raise CLIError(f"{where} (key {key!r}): invalid base64 value") from None
    except KVError as exc:
        raise CLIError(f"{where} (key {key!r}): {exc}") from None
    return size


def _batches(items: Sequence[T], sizes: Sequence[int]) -> Iterator[Sequence[T]]:
    start, total = 0, 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= WRITE_BATCH or total + size > WRITE_BATCH_BYTES):
            yield items[start:i]
            start, total = i, 0
        total += size
    if start < len(items):
        yield items[start:]


class _Progress:
    """A one-line progress bar on stderr when it is a terminal; nothing otherwise. The cursor
    is hidden once for the bar's life and shown again by `close` (click's bar hid it again at
    every redraw); callers close it in a `finally`, so an error or Ctrl-C restores it too."""

    HIDE_CURSOR, SHOW_CURSOR = "\033[?25l", "\033[?25h"
    WIDTH = 36

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done = total, label, 0
        self.active = bool(total) and sys.stderr.isatty()
        if self.active:
            sys.stderr.write(self.HIDE_CURSOR)
            self._draw()

    def update(self, n: int) -> None:
        self.done += n
        if self.active:
            self._draw()

    def _draw(self) -> None:
        filled = self.WIDTH * self.done // self.total
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        percent = 100 * self.done // self.total
        sys.stderr.write(f"\r{self.label}  [{bar}]  {self.done}/{self.total}  {percent:3d}%")
        sys.stderr.flush()

    def close(self) -> None:
        if self.active:
            self.active = False
            sys.stderr.write(self.SHOW_CURSOR + "\n")
            sys.stderr.flush()


def bulk_put(target: KVTarget, file: str) -> None:
    pairs = _read_json(file)
    if not isinstance(pairs, list):
        raise CLIError(f'{file}: expected a JSON array of {{"key": ..., "value": ...}} objects')
    now = math.floor(time.time())
    sizes = [_check_pair(item, f"{file}[{i}]", now) for i, item in enumerate(pairs)]

    async def work(client: Client) -> int:
        ns = await _namespace(client, target)
        done = 0
        progress = _Progress(len(pairs), "Writing")
        try:
            for batch in _batches(pairs, sizes):
                try:
                    await ns.put_many(batch)
                except KVError as exc:
                    raise CLIError(
                        f"{exc} (pairs {done}..{done + len(batch) - 1} not written; "
                        f"{done} written before)"
                    ) from None
                done += len(batch)
                progress.update(len(batch))
        finally:
            progress.close()
        return done

    _info(f"Wrote {_run(target, work)} key(s).")


def bulk_delete(target: KVTarget, file: str) -> None:
    names = _key_names(file)
    for i, name in enumerate(names):
        try:
            rules.encode_key(name, "DELETE")
        except KVError as exc:
            raise CLIError(f"{file}[{i}]: {exc}") from None

    async def work(client: Client) -> int:
        ns = await _namespace(client, target)
        progress = _Progress(len(names), "Deleting")
        try:
            for start in range(0, len(names), WRITE_BATCH):
                batch = names[start : start + WRITE_BATCH]
                await ns.delete_many(batch)
                progress.update(len(batch))
        finally:
            progress.close()
        return len(names)

    _info(f"Deleted {_run(target, work)} key(s).")


def bulk_get(target: KVTarget, file: str) -> None:
    names = list(dict.fromkeys(_key_names(file)))

    async def work(client: Client) -> dict[str, Any]:
        ns = await _namespace(client, target)
        out: dict[str, Any] = {}
        progress = _Progress(len(names), "Reading")
        try:
            for start in range(0, len(names), GET_BATCH):
                batch = names[start : start + GET_BATCH]
                out.update(await ns.get(batch))
                progress.update(len(batch))
        finally:
            progress.close()
        return out

    print_json(_run(target, work))
