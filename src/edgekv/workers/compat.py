"""What makes a Python Worker written for Cloudflare import unchanged inside an edgekv worker
process: the top-level modules `workers` (and `workers.asgi`, plus the older `asgi`) that
Cloudflare's runtime provides, and a one-line error for what needs its JavaScript side (`js`,
`pyodide`).

They live in the `toplevel/` directory beside this file, which `install()` appends to the *end*
of `sys.path`: anything the user has under those names (a `workers` package of their own beside
the worker, an installed module) is found first and wins, and nothing is added to a process that
does not run a worker (`import edgekv` alone changes nothing). The one exception is Cloudflare's
own SDK package (`workers-runtime-sdk`, often installed for type checking): it only runs inside
Pyodide, so edgekv's modules go in front of it.
"""

from __future__ import annotations

import importlib.machinery
import logging
import sys
from pathlib import Path

__all__ = ["SHIM_DIR", "UnsupportedImport", "install", "unsupported"]

log = logging.getLogger("edgekv.workers")

SHIM_DIR = Path(__file__).with_name("toplevel")
_DOCS = 'docs/workers.md, "Cloudflare\'s Python Workers"'


class UnsupportedImport(ImportError):
    """A worker imported something that edgekv's Python runtime does not provide; the message
    is one line saying what and why."""


def unsupported(what: str, why: str) -> UnsupportedImport:
    return UnsupportedImport(f"{what} {why} ({_DOCS})")


def _cloudflare_sdk_dir() -> str | None:
    """The sys.path entry holding Cloudflare's `workers` SDK package, if one is installed."""
    spec = importlib.machinery.PathFinder.find_spec("workers")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    if not any(package.parent.glob("workers_runtime_sdk-*.dist-info")):
        return None
    return str(package.parent)


def install() -> None:
    """Make `workers`, `workers.asgi` and `asgi` importable by worker code (idempotent)."""
    shim = str(SHIM_DIR)
    if shim in sys.path:
        return
    sdk = _cloudflare_sdk_dir()
    if sdk is not None and sdk in sys.path:
        log.info("using edgekv's `workers` module in place of Cloudflare's SDK (it needs Pyodide)")
        sys.path.insert(sys.path.index(sdk), shim)
        stale = [n for n in sys.modules if n in ("workers", "asgi") or n.startswith("workers.")]
        for name in stale:
            del sys.modules[name]  # imported from the SDK before: import ours instead
    else:
        sys.path.append(shim)
