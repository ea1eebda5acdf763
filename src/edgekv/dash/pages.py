"""Serving the dashboard's files: `Pages.response(request)` answers `/`, `/dash`, `/dash/` (the
page) and `/dash/static/<file>` (its scripts and stylesheet), or None for any other path.

Every answer carries a strict Content-Security-Policy (scripts, styles and connections from this
origin only: no inline script, no `style=` attribute, no other origin) and `X-Frame-Options:
DENY`. The files are read once, at startup, from the package: nothing is fetched at run time.
The page learns where the API is from `data-` attributes of its `<body>`, filled in here.
"""

from __future__ import annotations

import html
import mimetypes
from importlib import resources

from edgekv._types import TokenRecord
from edgekv.api.http import Request, Response

__all__ = ["CSP", "LOCAL_HEADER", "SECURITY_HEADERS", "Pages", "local_access"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:;"
    " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self';"
    " frame-ancestors 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
# `edgekv dev` answers its own page without a token, but only requests that carry this header:
# a page of another origin cannot send it without a CORS preflight, which nothing here grants.
LOCAL_HEADER = b"x-edgekv-dashboard"

_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
}


def local_access(request: Request, token: TokenRecord) -> TokenRecord | None:
    """`token` for a request of `edgekv dev`'s own dashboard, else None."""
    return token if request.headers.get(LOCAL_HEADER) == b"1" else None


def _load() -> dict[str, bytes]:
    root = resources.files("edgekv.dash").joinpath("static")
    files: dict[str, bytes] = {}
    for item in root.iterdir():
        if item.is_file() and not item.name.startswith("."):
            files[item.name] = item.read_bytes()
    return files


class Pages:
    """`prefix`: the path the app is mounted under (`/__edgekv` for dev). `local`: the page
    signs in by itself (dev's store needs no token)."""

    def __init__(self, *, prefix: str = "", local: bool = False) -> None:
        files = _load()
        self._static = {
            name.encode(): (body, self._type(name))
            for name, body in files.items()
            if name != "index.html"
        }
        index = files["index.html"].decode()
        values = {
            "{{static}}": f"{prefix}/dash/static",
            "{{api}}": f"{prefix}/client/v4",
            "{{metrics}}": f"{prefix}/metrics",
            "{{auth}}": "local" if local else "token",
        }
        for placeholder, value in values.items():
            index = index.replace(placeholder, html.escape(value))
        self._index = index.encode()

    @staticmethod
    def _type(name: str) -> bytes:
        suffix = name[name.rfind(".") :]
        kind = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return (kind + ("; charset=utf-8" if kind.startswith("text/") else "")).encode()

    def response(self, request: Request) -> Response | None:
        if request.method not in ("GET", "HEAD"):
            return None
        path = request.raw_path
        if path in (b"/", b"/dash", b"/dash/"):
            return self._answer(self._index, b"text/html; charset=utf-8", b"no-store")
        if path.startswith(b"/dash/static/"):
            found = self._static.get(path[len(b"/dash/static/") :])
            if found is not None:
                return self._answer(found[0], found[1], b"no-cache")
        return None

    def _answer(self, body: bytes, kind: bytes, cache: bytes) -> Response:
        headers = [(b"content-type", kind), (b"cache-control", cache), *SECURITY_HEADERS]
        return Response(200, body, headers)
