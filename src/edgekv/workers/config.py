"""The worker's config, as wrangler reads it: `wrangler.toml`, `wrangler.json` or
`wrangler.jsonc` (comments and trailing commas allowed), with the worker's name, its module
(`main`: Python, or JavaScript for workerd), compatibility date and flags, KV bindings
(`preview_id` used by `edgekv dev`), `[vars]` and `[env.NAME]` sections.

Every problem is a `ConfigError` whose message is one line naming the file and the field, so the
command line can print it and stop before anything starts.
"""

from __future__ import annotations

import json
import keyword
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekv.workers._jsonc import strip_jsonc

__all__ = [
    "CONFIG_NAMES",
    "JS_SUFFIXES",
    "ConfigError",
    "KVBinding",
    "WorkerConfig",
    "find_config",
    "load_config",
]

CONFIG_NAMES = ("wrangler.json", "wrangler.jsonc", "wrangler.toml")
"""Looked for in this order when no config is named (wrangler's own order)."""
JS_SUFFIXES = (".js", ".mjs")
_DEFAULT_COMPATIBILITY_DATE = "2026-11-01"
# What an [env.NAME] section does not inherit from the top level (as in wrangler).
_NOT_INHERITED = ("vars", "kv_namespaces")


class ConfigError(Exception):
    """An invalid config file or worker module; the message is one line."""


@dataclass(frozen=True, slots=True)
class KVBinding:
    """`{ binding = "TODO", id = "...", preview_id = "..." }` of `kv_namespaces`. `id` is the
    namespace in use: the `preview_id` when the config was loaded for `edgekv dev` and has one."""

    binding: str
    id: str
    preview_id: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    path: Path
    """The config file itself (absolute)."""
    name: str | None
    main: Path | None
    """The worker module, absolute (relative paths in the file are relative to the file)."""
    kv_namespaces: tuple[KVBinding, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)
    compatibility_date: str = _DEFAULT_COMPATIBILITY_DATE
    compatibility_flags: tuple[str, ...] = ()
    env: str | None = None
    """The `[env.NAME]` section applied (`--env NAME`), or None."""
    preview: bool = False
    """Loaded for `edgekv dev`: bindings use their `preview_id`."""

    @property
    def javascript(self) -> bool:
        """Whether `main` is a JavaScript module (run in workerd)."""
        return self.main is not None and self.main.suffix in JS_SUFFIXES

    def binding(self, name: str) -> KVBinding:
        for b in self.kv_namespaces:
            if b.binding == name:
                return b
        have = ", ".join(b.binding for b in self.kv_namespaces) or "none"
        raise ConfigError(f"{self.path.name}: no KV binding named {name!r} (bindings: {have})")

    def reload(self) -> WorkerConfig:
        """The same file read again, with the same `--env` and preview choice."""
        return load_config(self.path, env=self.env, preview=self.preview)


def find_config(path: Path | None, base: Path | None = None) -> Path:
    """`path`, or when None the first of `CONFIG_NAMES` that exists in `base` (the current
    directory), or `wrangler.toml` when none does (its absence is then the error)."""
    if path is not None:
        return path
    base = Path.cwd() if base is None else base
    for name in CONFIG_NAMES:
        if (base / name).is_file():
            return base / name
    return base / CONFIG_NAMES[-1]


def _identifier(value: object) -> bool:
    return isinstance(value, str) and value.isidentifier() and not keyword.iskeyword(value)


def _parse(raw: str, path: Path, where: str) -> dict[str, Any]:
    if path.suffix in (".json", ".jsonc"):
        try:
            data = json.loads(strip_jsonc(raw))
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object at the top level")
        return data
    try:
        return tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from None


def load_config(
    path: str | Path,
    *,
    need_main: bool = True,
    env: str | None = None,
    preview: bool = False,
) -> WorkerConfig:
    """Read and check a config file. `need_main=False` skips `main` (the `kv` commands only
    need the bindings); `env` applies `[env.NAME]`; `preview` picks each binding's
    `preview_id` (edgekv dev)."""
    path = Path(path).absolute()
    where = str(path) if not path.is_relative_to(Path.cwd()) else str(path.relative_to(Path.cwd()))
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {where} not found") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {where}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    data = _apply_env(_parse(text, path, where), env, where)

    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise ConfigError(f'{where}: "name" must be a string')

    main: Path | None = None
    if need_main:
        main = _main(data.get("main"), path.parent, where)
    python = main is None or main.suffix == ".py"

    bindings = _bindings(data.get("kv_namespaces", []), where, preview=preview, python=python)
    variables = _vars(data.get("vars", {}), where, python=python)
    for b in bindings:
        if b.binding in variables:
            raise ConfigError(f"{where}: {b.binding!r} is both a KV binding and a var")
    return WorkerConfig(
        path=path,
        name=name,
        main=main,
        kv_namespaces=bindings,
        vars=variables,
        compatibility_date=_date(data.get("compatibility_date"), where),
        compatibility_flags=_flags(data.get("compatibility_flags", []), where),
        env=env,
        preview=preview,
    )


def _apply_env(data: dict[str, Any], env: str | None, where: str) -> dict[str, Any]:
    """The top level with `[env.NAME]` laid over it: its keys win; `vars` and `kv_namespaces`
    come from the section alone; the name becomes `<name>-<NAME>` unless the section sets one."""
    envs = data.get("env", {})
    if not isinstance(envs, dict):
        raise ConfigError(f'{where}: "env" must be a table of [env.NAME] sections')
    if env is None:
        return data
    section = envs.get(env)
    if not isinstance(section, dict):
        have = ", ".join(sorted(envs)) or "none"
        raise ConfigError(f"{where}: no [env.{env}] section (environments: {have})")
    merged = {k: v for k, v in data.items() if k != "env" and k not in _NOT_INHERITED}
    if isinstance(merged.get("name"), str) and "name" not in section:
        merged["name"] = f"{merged['name']}-{env}"
    merged.update(section)
    return merged


def _main(value: object, base: Path, where: str) -> Path:
    if value is None:
        raise ConfigError(
            f'{where}: "main" is missing (the worker module, e.g. main = "src/worker.py")'
        )
    if not isinstance(value, str) or not value:
        raise ConfigError(f'{where}: "main" must be the path of a Python or JavaScript file')
    main = (base / value).absolute()
    if main.suffix != ".py" and main.suffix not in JS_SUFFIXES:
        raise ConfigError(
            f'{where}: "main" must be a Python file (.py) or a JavaScript module '
            f"(.js, .mjs), got {value!r}"
        )
    if not main.is_file():
        raise ConfigError(f"{where}: main file {value!r} not found (looked for {main})")
    return main


def _date(value: object, where: str) -> str:
    if value is None:
        return _DEFAULT_COMPATIBILITY_DATE
    if (
        not isinstance(value, str)
        or len(value) != 10
        or not value[:4].isdigit()
        or value[4::3] != "--"
        or not (value[5:7] + value[8:]).isdigit()
    ):
        raise ConfigError(f'{where}: "compatibility_date" must be a date "YYYY-MM-DD"')
    return value


def _flags(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(f, str) and f for f in value):
        raise ConfigError(f'{where}: "compatibility_flags" must be an array of strings')
    return tuple(value)


def _bindings(value: object, where: str, *, preview: bool, python: bool) -> tuple[KVBinding, ...]:
    if not isinstance(value, list):
        raise ConfigError(f'{where}: "kv_namespaces" must be an array of {{ binding, id }} tables')
    out: list[KVBinding] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        at = f"{where}: kv_namespaces[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{at}: expected a table {{ binding = ..., id = ... }}")
        binding, ns_id, preview_id = item.get("binding"), item.get("id"), item.get("preview_id")
        if binding is None:
            raise ConfigError(f'{at}: "binding" is missing')
        if python and not _identifier(binding):
            raise ConfigError(
                f"{at}: binding {binding!r} is not a valid Python identifier "
                "(bindings are module globals of the worker)"
            )
        if not isinstance(binding, str) or not binding:
            raise ConfigError(f"{at}: binding {binding!r} must be a non-empty string")
        if binding in seen:
            raise ConfigError(f"{at}: binding {binding!r} is defined twice")
        if preview_id is not None and (not isinstance(preview_id, str) or not preview_id.strip()):
            raise ConfigError(f"{at}: binding {binding!r}: preview_id must be a namespace id")
        if preview and preview_id is not None:
            ns_id = preview_id if ns_id is None else ns_id
        if not isinstance(ns_id, str) or not ns_id.strip():
            raise ConfigError(f'{at}: binding {binding!r} needs an "id" (a namespace id string)')
        seen.add(binding)
        out.append(KVBinding(binding, preview_id if preview and preview_id else ns_id, preview_id))
    return tuple(out)


def _vars(value: object, where: str, *, python: bool) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f'{where}: "vars" must be a table')
    for name in value:
        if python and not _identifier(name):
            raise ConfigError(f"{where}: vars.{name} is not a valid Python identifier")
        if not name:
            raise ConfigError(f"{where}: vars: a name must not be empty")
    return dict(value)
