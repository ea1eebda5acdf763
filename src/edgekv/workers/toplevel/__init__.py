"""Not imported under this name: this directory goes on `sys.path` of a worker process
(edgekv.workers.compat.install), so that the modules in it are the top-level `workers`, `asgi`,
`js` and `pyodide` that a Cloudflare Python Worker imports."""

__all__: list[str] = []
