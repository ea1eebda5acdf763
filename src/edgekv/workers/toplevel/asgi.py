"""`import asgi`, the older spelling of Cloudflare's docs: `edgekv.workers.asgi` itself."""

import sys

from edgekv.workers import asgi

__all__: list[str] = []

sys.modules[__name__] = asgi
