"""The ASGI plumbing every edgekv server shares: the REST server (`edgekv.api`), the worker
runtime (`edgekv.workers`), and any further server (a KV backend for workerd, a long-poll feed).

- `types` — `Scope`, `Message`, `Receive`, `Send`, `ASGIApp` (as Starlette's `types.py`).
- `body` — `Body`: a request body read chunk by chunk under a limit, `ClientDisconnected`
  when the client goes away, and `Body.unread` (close the connection when bytes are left).
- `lifespan` — `serve_lifespan`: the ASGI lifespan loop around an app's startup/shutdown.
- `accesslog` — `AccessLog`: one line per request, buffered (cheap on the hot path).
- `server` — `serve_asgi`: granian or uvicorn embedded in the running loop, until SIGTERM.

Responses stay with each server (the REST envelope, the Fetch-API `Response`): they share
nothing but the two ASGI messages.
"""

from edgekv._exceptions import ClientDisconnected
from edgekv.asgi.accesslog import AccessLog
from edgekv.asgi.body import Body, TooLarge
from edgekv.asgi.lifespan import serve_lifespan
from edgekv.asgi.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ASGIApp",
    "AccessLog",
    "Body",
    "ClientDisconnected",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "TooLarge",
    "serve_lifespan",
]
