"""The access log of every edgekv server: one line per request (client, method, path, status,
duration, bytes).

By default lines go through the `edgekv.access` logger at INFO. The commands (`edgekv serve`,
`dev`, `edge`) instead give a stream: lines are then formatted like their log handler's and
written in batches (at most `FLUSH_SECONDS` late, or at once when `MAX_LINES` are waiting).
Measured: a `logging` record costs ~17 µs per request, as much as the rest of a hot GET
(bench/bench_rest.py); a buffered line ~2 µs. Call `flush()` at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TextIO

from edgekv.asgi.types import Scope

__all__ = ["AccessLog"]

FLUSH_SECONDS = 0.2
MAX_LINES = 1000

logger = logging.getLogger("edgekv.access")

# ",000" to ",999": a table lookup is a quarter of formatting `:03d` each time.
_MILLIS = tuple(f",{ms:03d}" for ms in range(1000))


class AccessLog:
    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._stamp = ""

    def _timestamp(self) -> str:
        """`2026-01-31 12:00:00,123`, as logging's default `asctime`; the date part is cached."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return self._stamp + _MILLIS[int((now - second) * 1000)]  # 0 <= now - second < 1

    def request(self, scope: Scope, status: int, started: float, size: int) -> None:
        """The line of one ASGI request: `started` is its `time.perf_counter()` at arrival,
        `size` the body bytes sent."""
        if not self.enabled:
            return
        client = scope.get("client")
        # raw_path is optional in ASGI, and some servers keep the query string in it.
        raw = scope.get("raw_path")
        path = scope["path"] if raw is None else raw.split(b"?", 1)[0].decode("latin-1")
        self.record(
            client[0] if client else "-",
            scope["method"],
            path,
            status,
            time.perf_counter() - started,
            size,
        )

    def record(
        self, client: str, method: str, path: str, status: int, seconds: float, size: int
    ) -> None:
        if not self.enabled:
            return
        if self.stream is None:
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    '%s "%s %s" %d %.1fms %dB', client, method, path, status, seconds * 1000, size
                )
            return
        # "%.1f" % x is the text of f"{x:.1f}", in half the time.
        self._lines.append(
            f'{self._timestamp()} INFO edgekv.access: {client} "{method} {path}" {status} '
            f"{'%.1f' % (seconds * 1000)}ms {size}B\n"
        )
        if len(self._lines) >= MAX_LINES:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lines and self.stream is not None:
            lines, self._lines = self._lines, []
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except (OSError, ValueError):  # stream closed or gone: logging must not fail requests
                pass
