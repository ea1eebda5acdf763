"""accesslog.py: one line per request, buffered to a stream or through `logging`."""

from __future__ import annotations

import asyncio
import io
import logging
import re

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
