"""The dashboard: a web page for the data, served by `edgekv serve` at `/` and by `edgekv dev`
at `/__edgekv/dash` (docs/dashboard.md). The page is static files (`static/`: HTML, ES modules,
one stylesheet) that call the REST API with the token the person typed; `pages.py` serves them
with a strict Content-Security-Policy, `mount.py` puts the page and the REST API of a local
store under `/__edgekv` for `edgekv dev`."""

__all__: list[str] = []
