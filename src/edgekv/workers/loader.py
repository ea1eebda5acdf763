"""Import a worker module from its file, with its bindings as module globals, and find its entry
point.

Bindings are injected into the module's namespace *before* its body runs, so top-level code and
functions can use `TODO` as a global, like the seed's service-worker syntax. The module's
directory goes on `sys.path` so it can import its siblings; modules imported from that directory
are tracked, watched and re-imported on reload.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from edgekv.workers import compat
from edgekv.workers.config import ConfigError
from edgekv.workers.context import Env, ExecutionContext, WorkerEntrypoint
from edgekv.workers.http import Request, Response

__all__ = ["Handler", "Worker", "WorkerImportError", "file_stamp", "load_worker"]

Handler = Callable[[Request, ExecutionContext], Awaitable[Response]]
"""The normalised entry point: one call per request."""

_MARK = "__edgekv_worker__"  # set on modules this loader created, to recognise them on reload

_ENTRY_HELP = (
    "define `async def on_fetch(request, env, ctx)` or "
    "`class Default(WorkerEntrypoint)` with `async def fetch(self, request)`"
)


class WorkerImportError(ConfigError):
    """Running the worker module raised; `details` holds the traceback to show the user."""

    def __init__(self, message: str, details: str) -> None:
        super().__init__(message)
        self.details = details


def file_stamp(path: Path) -> tuple[int, int] | None:
    """What tells a changed file (mtime in ns, size), None when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


@dataclass(slots=True)
class Worker:
    """A loaded worker: its module, how it is called, and the files it came from."""

    main: Path
    module: ModuleType
    style: str
    """`"on_fetch"` or `"Default"`."""
    handle: Handler
    modules: tuple[str, ...] = ()
    """Names in `sys.modules` this worker owns (its module and the siblings it imported)."""
    stamps: dict[Path, tuple[int, int] | None] = field(default_factory=dict)

    def changed(self) -> bool:
        """Whether any of its source files changed since it was loaded (a few `stat` calls)."""
        return any(file_stamp(path) != stamp for path, stamp in self.stamps.items())

    def unload(self) -> None:
        for name in self.modules:
            sys.modules.pop(name, None)


def _module_name(main: Path) -> str:
    stem = main.stem
    if stem.isidentifier():
        current = sys.modules.get(stem)
        if current is None or getattr(current, _MARK, False):
            return stem
    return f"_edgekv_worker_{abs(hash(str(main))):x}"


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_worker(main: Path, env: Env, previous: Worker | None = None) -> Worker:
    """Import `main` with every binding of `env` as a global and return the `Worker`. Raises
    `ConfigError` (one line) for a syntax error or a missing entry point, `WorkerImportError`
    when the module body raises. `previous` is the worker being replaced on reload."""
    main = main.absolute()
    compat.install()  # `from workers import ...` of Cloudflare's Python Workers
    root = str(main.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    name = _module_name(main)
    spec = importlib.util.spec_from_file_location(name, main)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{_display(main)}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    module.__dict__.update(vars(env))  # the bindings, before the body runs
    setattr(module, _MARK, True)

    stashed: dict[str, ModuleType] = {}
    if previous is not None:  # re-import the siblings too, but put them back if this fails
        stashed = {n: sys.modules.pop(n) for n in previous.modules if n in sys.modules}
    before = set(sys.modules)
    sys.modules[name] = module  # during the body too (dataclasses, pickling look it up)
    try:
        spec.loader.exec_module(module)
        style, handle = _entry_point(module, env, main)
    except BaseException as exc:
        for new in set(sys.modules) - before:
            sys.modules.pop(new, None)
        sys.modules.pop(name, None)
        sys.modules.update(stashed)
        if isinstance(exc, ConfigError):
            raise
        if isinstance(exc, compat.UnsupportedImport):
            raise ConfigError(f"{_where(exc, main.parent) or _display(main)}: {exc}") from None
        if isinstance(exc, SyntaxError):
            where = f"{_display(Path(exc.filename))}:{exc.lineno}" if exc.filename else name
            raise ConfigError(f"{where}: {exc.msg}") from None
        if not isinstance(exc, Exception):
            raise
        details = "".join(traceback.format_exception(exc))
        raise WorkerImportError(
            f"{_display(main)}: importing the worker raised {type(exc).__name__}: {exc}", details
        ) from None

    owned = [name]
    files = [main]
    for new in set(sys.modules) - before - {name}:
        file = getattr(sys.modules[new], "__file__", None)
        if file and Path(file).absolute().is_relative_to(main.parent):
            owned.append(new)
            files.append(Path(file).absolute())
    return Worker(
        main=main,
        module=module,
        style=style,
        handle=handle,
        modules=tuple(owned),
        stamps={f: file_stamp(f) for f in files},
    )


def _where(exc: BaseException, root: Path) -> str | None:
    """`file:line` of the innermost frame of the worker's own code in `exc`'s traceback."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).absolute().is_relative_to(root):
            found = f"{_display(Path(frame.filename))}:{frame.lineno}"
    return found


def _positional_arity(fn: Callable[..., Any]) -> int:
    """How many of (request, env, ctx) `fn` takes: Workers' Python handlers are often written
    `on_fetch(request, env)`; JS lets a handler ignore arguments, Python does not."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 3
    count = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return 3
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return min(count, 3)


async def _await_if_needed(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


def _entry_point(module: ModuleType, env: Env, main: Path) -> tuple[str, Handler]:
    on_fetch = getattr(module, "on_fetch", None)
    default = getattr(module, "Default", None)
    where = _display(main)
    if on_fetch is not None and default is not None:
        raise ConfigError(f"{where}: defines both on_fetch and Default; keep one entry point")
    if on_fetch is not None:
        return "on_fetch", _function_handler(on_fetch, env, where)
    if default is not None:
        return "Default", _class_handler(default, env, where)
    raise ConfigError(f"{where}: no entry point: {_ENTRY_HELP}")


def _function_handler(fn: object, env: Env, where: str) -> Handler:
    if not callable(fn):
        raise ConfigError(f"{where}: on_fetch is not a function")
    arity = _positional_arity(fn)
    if arity == 0:
        raise ConfigError(f"{where}: on_fetch must take (request, env, ctx)")
    is_async = inspect.iscoroutinefunction(fn)
    # Closures per arity so the common case is one direct call returning the coroutine.
    call: Callable[[Request, ExecutionContext], Any]
    if arity == 3:

        def call(request: Request, ctx: ExecutionContext) -> Any:
            return fn(request, env, ctx)

    elif arity == 2:

        def call(request: Request, ctx: ExecutionContext) -> Any:
            return fn(request, env)

    else:

        def call(request: Request, ctx: ExecutionContext) -> Any:
            return fn(request)

    if is_async:
        return call

    def handle(request: Request, ctx: ExecutionContext) -> Awaitable[Response]:
        return _await_if_needed(call(request, ctx))

    return handle


def _class_handler(cls: object, env: Env, where: str) -> Handler:
    if not (isinstance(cls, type) and issubclass(cls, WorkerEntrypoint)):
        raise ConfigError(
            f"{where}: Default must be a class subclassing edgekv.workers.WorkerEntrypoint"
        )
    fetch = getattr(cls, "fetch", None)
    if fetch is None or fetch is WorkerEntrypoint.fetch:
        raise ConfigError(f"{where}: class Default needs `async def fetch(self, request)`")
    entry: type[WorkerEntrypoint] = cls
    if inspect.iscoroutinefunction(fetch):

        def call(request: Request, ctx: ExecutionContext) -> Awaitable[Response]:
            return entry(ctx, env).fetch(request)

        return call

    def handle(request: Request, ctx: ExecutionContext) -> Awaitable[Response]:
        return _await_if_needed(entry(ctx, env).fetch(request))

    return handle
