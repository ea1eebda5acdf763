"""accesslog.py: one line per request, buffered to a stream or through `logging`."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time

import pytest

from edgekv.asgi.accesslog import FLUSH_SECONDS, MAX_LINES, AccessLog

LINE = re.compile(
    r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO edgekv.access: 1.2.3.4 "GET /p" 200 1.5ms 10B$'
)


async def test_stream_lines_are_flushed_soon() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    log.record("1.2.3.4", "GET", "/p", 200, 0.0015, 10)
    assert stream.getvalue() == ""  # batched
    await asyncio.sleep(FLUSH_SECONDS + 0.1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and LINE.match(lines[0]), lines


async def test_full_batch_is_written_at_once() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    for _ in range(MAX_LINES):
        log.record("1.2.3.4", "GET", "/p", 200, 0.0015, 10)
    assert len(stream.getvalue().splitlines()) == MAX_LINES
    log.flush()


def test_disabled_writes_nothing() -> None:
    stream = io.StringIO()
    log = AccessLog(stream, enabled=False)
    log.record("1.2.3.4", "GET", "/p", 200, 0.0015, 10)
    log.flush()
    assert stream.getvalue() == ""


def test_through_logging(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="edgekv.access"):
        AccessLog().record("1.2.3.4", "PUT", "/k", 413, 0.25, 99)
    assert caplog.messages == ['1.2.3.4 "PUT /k" 413 250.0ms 99B']


def test_closed_stream_does_not_fail() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    log.record("1.2.3.4", "GET", "/p", 200, 0.0015, 10)  # no loop: written at once
    stream.close()
    log.record("1.2.3.4", "GET", "/p", 200, 0.0015, 10)


def test_request_lines_come_from_the_asgi_scope() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    started = time.perf_counter()
    scopes = [
        {"client": ("10.0.0.1", 5), "method": "GET", "path": "/a b", "raw_path": b"/a%20b?x=1"},
        {"client": None, "method": "PUT", "path": "/plain"},  # raw_path is optional in ASGI
    ]
    for scope in scopes:
        log.request(scope, 200, started, 3)
    log.flush()
    lines = [line.split("edgekv.access: ", 1)[1] for line in stream.getvalue().splitlines()]
    assert lines[0].startswith('10.0.0.1 "GET /a%20b" 200 ') and lines[0].endswith(" 3B")
    assert lines[1].startswith('- "PUT /plain" 200 ')
    AccessLog(stream, enabled=False).request(scopes[0], 200, started, 3)
    assert len(stream.getvalue().splitlines()) == 2


@pytest.mark.parametrize(
    "now", [1_700_000_000.0, 1_700_000_000.0005, 1_700_000_000.0999, 1_700_000_000.999999]
)
@pytest.mark.parametrize("seconds", [0.0, 0.00004999, 0.00005, 0.00015, 0.0123456, 2.5, 1e-12])
def test_line_text_is_pinned(monkeypatch: pytest.MonkeyPatch, now: float, seconds: float) -> None:
    # The text the lines always had (logging's asctime, then f"{ms:.1f}"), however it is built.
    monkeypatch.setattr(time, "time", lambda: now)
    stream = io.StringIO()
    log = AccessLog(stream)
    log.record("1.2.3.4", "GET", "/p", 200, seconds, 10)
    log.flush()
    second = int(now)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
    expected = (
        f"{stamp},{int((now - second) * 1000):03d} INFO edgekv.access: "
        f'1.2.3.4 "GET /p" 200 {seconds * 1000:.1f}ms 10B\n'
    )
    assert stream.getvalue() == expected
