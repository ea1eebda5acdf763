"""`import asgi`, the older spelling of Cloudflare's docs: `edgekv.workers.asgi` itself."""

import sys

from edgekv.workers import asgi

sys.modules[__name__] = asgi
