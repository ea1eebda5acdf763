"""`js`: Pyodide's bridge to JavaScript, which edgekv's Python workers do not have."""

from edgekv.workers.compat import unsupported

__all__: list[str] = []

raise unsupported(
    "`js`",
    "is the JavaScript runtime of Cloudflare's Pyodide-based workers, which edgekv does not "
    "have: edgekv runs Python workers on CPython; use `from workers import Response`",
)
