"""`workers.asgi` is `edgekv.workers.asgi` itself (one registry of application lifespans)."""

import sys

from edgekv.workers import asgi

__all__: list[str] = []

sys.modules[__name__] = asgi
