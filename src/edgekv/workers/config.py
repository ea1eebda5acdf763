"""`wrangler.toml`: the worker's name, its module (`main`), its KV bindings and `[vars]`.

Every problem is a `ConfigError` whose message is one line naming the file and the field, so the
command line can print it and stop before anything starts.
"""

from __future__ import annotations

import keyword
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "KVBinding", "WorkerConfig", "load_config"]


class ConfigError(Exception):
    """An invalid wrangler.toml or worker module; the message is one line."""


@dataclass(frozen=True, slots=True)
class KVBinding:
    """`{ binding = "TODO", id = "..." }` of `kv_namespaces`."""

    binding: str
    id: str


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    path: Path
    """The config file itself (absolute)."""
    name: str | None
    main: Path | None
    """The worker module, absolute (relative paths in the file are relative to the file)."""
    kv_namespaces: tuple[KVBinding, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)

    def binding(self, name: str) -> KVBinding:
        for b in self.kv_namespaces:
            if b.binding == name:
                return b
        have = ", ".join(b.binding for b in self.kv_namespaces) or "none"
        raise ConfigError(f"{self.path.name}: no KV binding named {name!r} (bindings: {have})")


def _identifier(value: object) -> bool:
    return isinstance(value, str) and value.isidentifier() and not keyword.iskeyword(value)


def load_config(path: str | Path, *, need_main: bool = True) -> WorkerConfig:
    """Read and check a wrangler.toml. `need_main=False` skips `main` (the `kv` commands only
    need the bindings)."""
    path = Path(path).absolute()
    where = str(path) if not path.is_relative_to(Path.cwd()) else str(path.relative_to(Path.cwd()))
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {where} not found") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {where}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from None

    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise ConfigError(f'{where}: "name" must be a string')

    main: Path | None = None
    if need_main:
        main = _main(data.get("main"), path.parent, where)

    bindings = _bindings(data.get("kv_namespaces", []), where)
    variables = _vars(data.get("vars", {}), where)
    for b in bindings:
        if b.binding in variables:
            raise ConfigError(f"{where}: {b.binding!r} is both a KV binding and a var")
    return WorkerConfig(path=path, name=name, main=main, kv_namespaces=bindings, vars=variables)


def _main(value: object, base: Path, where: str) -> Path:
    if value is None:
        raise ConfigError(
            f'{where}: "main" is missing (the worker module, e.g. main = "src/worker.py")'
        )
    if not isinstance(value, str) or not value:
        raise ConfigError(f'{where}: "main" must be the path of a Python file')
    main = (base / value).absolute()
    if main.suffix != ".py":
        raise ConfigError(f'{where}: "main" must be a Python file (.py), got {value!r}')
    if not main.is_file():
        raise ConfigError(f"{where}: main file {value!r} not found (looked for {main})")
    return main


def _bindings(value: object, where: str) -> tuple[KVBinding, ...]:
    if not isinstance(value, list):
        raise ConfigError(f'{where}: "kv_namespaces" must be an array of {{ binding, id }} tables')
    out: list[KVBinding] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        at = f"{where}: kv_namespaces[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{at}: expected a table {{ binding = ..., id = ... }}")
        binding, ns_id = item.get("binding"), item.get("id")
        if binding is None:
            raise ConfigError(f'{at}: "binding" is missing')
        if not _identifier(binding):
            raise ConfigError(
                f"{at}: binding {binding!r} is not a valid Python identifier "
                "(bindings are module globals of the worker)"
            )
        assert isinstance(binding, str)
        if binding in seen:
            raise ConfigError(f"{at}: binding {binding!r} is defined twice")
        if not isinstance(ns_id, str) or not ns_id.strip():
            raise ConfigError(f'{at}: binding {binding!r} needs an "id" (a namespace id string)')
        seen.add(binding)
        out.append(KVBinding(binding, ns_id))
    return tuple(out)


def _vars(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f'{where}: "vars" must be a table')
    for name in value:
        if not _identifier(name):
            raise ConfigError(f"{where}: vars.{name} is not a valid Python identifier")
    return dict(value)
