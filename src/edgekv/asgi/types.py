"""The ASGI types, in one place (as Starlette's `starlette/types.py`).

Messages are plain mappings: every server we embed (granian, uvicorn) and every test client
sends dicts, and typing them per message kind would cost a cast on each hot-path access.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ASGIApp", "Headers", "Message", "Receive", "Scope", "Send"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
"""Raw header pairs as ASGI carries them (names lower-case)."""
