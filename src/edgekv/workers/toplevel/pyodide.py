"""`pyodide` (and `pyodide.ffi`): the Pyodide runtime, which edgekv's Python workers do not use."""

from edgekv.workers.compat import unsupported

__all__: list[str] = []

raise unsupported(
    "`pyodide`",
    "(pyodide.ffi, JsProxy, to_js) is Cloudflare's Pyodide runtime, which edgekv does not "
    "have: edgekv runs Python workers on CPython, where values are Python objects already",
)
