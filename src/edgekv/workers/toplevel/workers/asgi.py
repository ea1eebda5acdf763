"""`workers.asgi` is `edgekv.workers.asgi` itself (one registry of application lifespans)."""

import sys

from edgekv.workers import asgi

sys.modules[__name__] = asgi
