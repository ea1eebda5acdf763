"""app.py `_get_value_fast`: the hot value read answers exactly as the general path does.

Every request of the matrix runs twice through the same app over a real SQLite store: with the
fast path switched off (`_fast_get = False`: the general path alone), then on. Both runs must
send the same ASGI messages (status, headers in order, body), record the same counters and
per-namespace window, write the same access-log line and log the same records; and the fast
path must have answered exactly the requests it is meant to (the others fall back to the
general path, which then answers them). Durations and the wall clock are made deterministic
(a stepping `perf_counter`, a fixed `time`) so that counters and log lines compare exactly.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from edgekv._exceptions import StoreUnavailable
from edgekv._types import ABSENT_HIT, Entry
from edgekv.api import EdgeKVApp, create_app
from edgekv.api import app as app_module
from edgekv.api.auth import create_token
from edgekv.asgi import accesslog as accesslog_module
from edgekv.asgi.accesslog import AccessLog
from edgekv.metrics import Metrics
from edgekv.store.sqlite import SQLiteStore
from tests.conftest import FakeClock

NOW = 1_700_000_000.0  # the wall clock of the log lines and the counters' windows
OTHER_ACCOUNT = "0ther0ther0ther0ther0ther0ther00"
# Keys the store below answers itself, for what a plain SQLite store never returns.
SCRIPTED: dict[str, Entry | Exception] = {
    "absent": ABSENT_HIT,  # a location cache's miss
    "no-version": Entry(b"unversioned", expiration=1_900_000_000, metadata='{"m":1}'),
    "down": StoreUnavailable("database on db.internal:5432 unreachable"),
    "boom": RuntimeError("a bug in the store"),
}


class ScriptedStore(SQLiteStore):
    """A SQLite store whose `get` answers the `SCRIPTED` keys itself."""

    async def get(
        self, namespace_id: str, key: str, *, now: int, cache_ttl: int | None = None
    ) -> Entry | None:
        scripted = SCRIPTED.get(key)
        if isinstance(scripted, Exception):
            raise scripted
        if scripted is not None:
            return scripted
        return await super().get(namespace_id, key, now=now, cache_ttl=cache_ttl)


class _Time:
    """`time` for app.py and accesslog.py: `perf_counter` steps 1.25 ms per call (restarted
    by `restart`), `time` is fixed; the rest is the real module."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self._ticks = itertools.count()

    def perf_counter(self) -> float:
        return 100.0 + next(self._ticks) * 0.00125

    def time(self) -> float:
        return NOW + 0.25

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@dataclass
class World:
    app: EdgeKVApp
    store: SQLiteStore
    clock: FakeClock
    account: str
    ns: str  # the namespace every token may read
    ns2: str  # a second namespace of the account (the limited token may not read it)
    other_ns: str  # a namespace of another account
    tokens: dict[str, str] = field(default_factory=dict)  # name -> secret


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> _Time:
    shim = _Time()
    monkeypatch.setattr(app_module, "time", shim)
    monkeypatch.setattr(accesslog_module, "time", shim)
    return shim


@pytest.fixture
async def world(tmp_path: Path, clock: FakeClock, fake_time: _Time) -> AsyncIterator[World]:
    store = await ScriptedStore.open(tmp_path / "kv")
    app = create_app(store, clock=clock)
    await app.startup()
    account = app.client.account_id
    assert account is not None
    await store.ensure_account(OTHER_ACCOUNT, "other")
    ns = (await app.client.create_namespace("fast")).id
    ns2 = (await app.client.create_namespace("second")).id
    other_ns = (await store.create_namespace(OTHER_ACCOUNT, "theirs")).id
    w = World(app, store, clock, account, ns, ns2, other_ns)
    kinds: dict[str, dict[str, Any]] = {
        "admin": {},
        "read-only": {"read_only": True},
        "limited": {"namespaces": [ns]},
        "revoked": {},
    }
    for name, options in kinds.items():
        w.tokens[name], _ = await create_token(store, account, name=name, **options)
    w.tokens["other"], _ = await create_token(store, OTHER_ACCOUNT, name="other")
    kv = app.client.namespace(ns)
    await kv.put("plain", b"hello")
    await kv.put("meta", b"with metadata", metadata={"a": 1, "b": "é"})
    await kv.put("expiring", b"for an hour", expiration_ttl=3600)
    await kv.put("both", b"{}", expiration_ttl=600, metadata=[1, 2])
    await kv.put("soon-gone", b"expires", expiration_ttl=60)
    await kv.put("empty", b"")
    for key in ("a/b", "dir/a b:c!", "é/ü🙂", "a+b", "100%", "k" * 200):
        await kv.put(key, key.encode())
    await app.client.namespace(ns2).put("plain", b"second")
    await app.client.namespace(other_ns).put("plain", b"theirs")
    yield w
    await app.shutdown()
    await store.aclose()


@dataclass(frozen=True)
class Case:
    fast: bool  # whether the fast path must answer it (else it falls back)
    key: str = "plain"  # percent-encoded as one segment unless `raw_key` is given
    raw_key: bytes | None = None
    token: str | None = "admin"  # a name of World.tokens, or None
    header: str = "bearer"  # "bearer", "x-auth-key", "basic", or "bad"
    account: str = "mine"  # "mine", "other", "nonsense"
    namespace: str = "ns"  # a World attribute, or "unknown"
    query: bytes = b""
    query_in_raw_path: bool = False
    method: str = "GET"
    extra_headers: tuple[tuple[bytes, bytes], ...] = ()
    route: str = "values"
    no_raw_path: bool = False
    cold: bool = False  # token and owner caches emptied before each run
    warm: tuple[Case, ...] = ()  # requests sent first (they fill the token and owner caches)
    before: Callable[[World], Any] | None = None  # run once, before both runs


async def _send_first(w: World, case: Case) -> None:
    """`case` through the app, answered with 200 (its token and owner are then cached)."""
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await w.app(_scope(w, case), receive, send)
    assert sent[0]["status"] == 200


async def _revoke(w: World) -> None:
    """Revoke the token `revoked` once the app has it cached."""
    await _send_first(w, Case(True, token="revoked"))
    tokens = await w.store.list_tokens(w.account)
    (record,) = [t for t in tokens if t.name == "revoked"]
    await w.store.revoke_token(record.id)
    await asyncio.sleep(0.02)  # the store re-reads its token revision every 5 ms


def _expire(w: World) -> None:
    w.clock.advance(61)


CASES: dict[str, Case] = {
    # answered by the fast path
    "hit": Case(True),
    "hit-metadata": Case(True, "meta"),
    "hit-expiration": Case(True, "expiring"),
    "hit-expiration-and-metadata": Case(True, "both"),
    "hit-empty-value": Case(True, "empty"),
    "hit-without-version": Case(True, "no-version"),
    "missing": Case(True, "nope"),
    "expired": Case(True, "soon-gone", before=_expire),
    "absent-miss": Case(True, "absent"),
    "store-unavailable": Case(True, "down"),
    "store-bug": Case(True, "boom"),
    "encoded-slash": Case(True, "a/b"),
    "encoded-punctuation": Case(True, "dir/a b:c!"),
    "encoded-non-ascii": Case(True, "é/ü🙂"),
    "raw-utf8": Case(True, raw_key="é/ü🙂".encode()),
    "raw-colon-plus": Case(True, raw_key=b"a+b"),
    "percent-sign": Case(True, "100%"),
    "lowercase-escape": Case(True, raw_key=b"a%2fb"),
    "query": Case(True, query=b"cache_ttl=30&x=%FF"),
    "query-in-raw-path": Case(True, query=b"x=1", query_in_raw_path=True),
    "read-only-token": Case(True, token="read-only"),
    "limited-token-allowed": Case(True, token="limited"),
    "x-auth-key": Case(True, header="x-auth-key"),
    "other-account-own-namespace": Case(True, token="other", account="other", namespace="other_ns"),
    # a value read has no conditions: these headers change nothing
    "condition-headers": Case(
        True, extra_headers=((b"if-none-match", b"*"), (b"if-match", b'"1"'))
    ),
    # left to the general path
    "long-valid-key": Case(False, "k" * 200),
    "key-too-long": Case(False, "k" * 513),
    "empty-key": Case(False, raw_key=b""),
    "dot-key": Case(False, raw_key=b"."),
    "dot-dot-key": Case(False, raw_key=b"%2E%2E"),
    "key-not-utf8": Case(False, raw_key=b"%FF"),
    "no-token": Case(False, token=None),
    "unknown-token": Case(False, token="unknown"),
    "bad-scheme": Case(False, header="basic"),
    "empty-bearer": Case(False, header="bad"),
    "revoked-token": Case(False, token="revoked", before=_revoke),
    "wrong-account": Case(False, account="other"),
    "wrong-account-its-namespace-cached": Case(
        False,
        account="other",
        namespace="other_ns",
        warm=(Case(True, token="other", account="other", namespace="other_ns"),),
    ),
    "nonsense-account": Case(False, account="nonsense"),
    "unknown-namespace": Case(False, namespace="unknown"),
    "other-accounts-namespace": Case(False, namespace="other_ns"),
    "limited-token-refused": Case(
        False, token="limited", namespace="ns2", warm=(Case(True, namespace="ns2"),)
    ),
    "cold-caches": Case(False, cold=True),
    "head": Case(False, method="HEAD"),
    "post": Case(False, method="POST"),
    "declared-body": Case(False, extra_headers=((b"content-length", b"5"),)),
    "empty-declared-body": Case(False, extra_headers=((b"content-length", b"0"),)),
    "chunked-body": Case(False, extra_headers=((b"transfer-encoding", b"chunked"),)),
    "metadata-route": Case(False, route="metadata"),
    "no-raw-path": Case(False, no_raw_path=True),
}


def _headers(w: World, case: Case) -> list[tuple[bytes, bytes]]:
    out = [(b"host", b"testserver"), (b"user-agent", b"test")]
    if case.token is not None:
        secret = w.tokens.get(case.token, "an-unknown-token-of-forty-characters-xyz")
        if case.header == "bearer":
            out.append((b"authorization", f"Bearer {secret}".encode()))
        elif case.header == "x-auth-key":
            out += [(b"x-auth-email", b"someone@example.com"), (b"x-auth-key", secret.encode())]
        elif case.header == "basic":
            out.append((b"authorization", f"Basic {secret}".encode()))
        else:
            out.append((b"authorization", b"Bearer "))
    return out + list(case.extra_headers)


def _scope(w: World, case: Case) -> dict[str, Any]:
    account = {"mine": w.account, "other": OTHER_ACCOUNT, "nonsense": "no-such-account"}
    namespace = getattr(w, case.namespace) if case.namespace != "unknown" else "f" * 32
    raw_key = quote(case.key, safe="").encode() if case.raw_key is None else case.raw_key
    raw_path = (
        f"/client/v4/accounts/{account[case.account]}/storage/kv/namespaces/{namespace}/"
        f"{case.route}/".encode()
        + raw_key
    )
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": case.method,
        "scheme": "http",
        "path": raw_path.decode("latin-1"),  # what a server would decode does not matter here
        "raw_path": raw_path + b"?" + case.query if case.query_in_raw_path else raw_path,
        "query_string": case.query,
        "root_path": "",
        "headers": _headers(w, case),
        "client": ("203.0.113.7", 50000),
        "server": ("127.0.0.1", 8000),
    }
    if case.no_raw_path:
        del scope["raw_path"]
    return scope


@dataclass
class Run:
    """What one request did: the messages it sent, what it counted and logged."""

    messages: list[Any]
    prometheus: str
    windows: dict[str, Any]
    access_log: str
    records: list[tuple[str, str, str, str | None]]
    fast: list[bool]


async def _run(
    w: World,
    case: Case,
    *,
    fast: bool,
    fake_time: _Time,
    caplog: pytest.LogCaptureFixture,
    answered: list[bool],
) -> Run:
    app = w.app
    app._fast_get = fast
    app.metrics = app.services.metrics = Metrics(clock=lambda: NOW)
    stream = io.StringIO()
    app.access_log = AccessLog(stream)
    if case.cold:
        app.auth._cache.clear()
        app.services._owners.clear()
    body = [b"hello"] if (b"content-length", b"5") in case.extra_headers else [b""]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body.pop() if body else b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    caplog.clear()
    answered.clear()
    fake_time.restart()
    await app(_scope(w, case), receive, send)
    app.access_log.flush()
    records = [
        (r.name, r.levelname, r.getMessage(), None if r.exc_info is None else repr(r.exc_info[1]))
        for r in caplog.records
    ]
    namespaces = (w.ns, w.ns2, w.other_ns, "f" * 32, "")
    return Run(
        sent,
        app.metrics.prometheus(),
        {ns: app.metrics.namespace_window(ns) for ns in namespaces},
        stream.getvalue(),
        records,
        list(answered),
    )


@pytest.fixture
def answered(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """What each call of the fast path returned (True: it answered)."""
    calls: list[bool] = []
    real = world.app._get_value_fast

    async def spy(scope: Any, send: Any, started: float) -> bool:
        result = await real(scope, send, started)
        calls.append(result)
        return result

    monkeypatch.setattr(world.app, "_get_value_fast", spy)
    yield calls


@pytest.mark.parametrize("name", list(CASES))
async def test_fast_path_answers_as_the_general_path(
    name: str,
    world: World,
    fake_time: _Time,
    caplog: pytest.LogCaptureFixture,
    answered: list[bool],
) -> None:
    case = CASES[name]
    for first in case.warm:
        await _send_first(world, first)
    if case.before is not None:
        done = case.before(world)
        if asyncio.iscoroutine(done):
            await done
    caplog.set_level(logging.INFO)
    general = await _run(
        world, case, fast=False, fake_time=fake_time, caplog=caplog, answered=answered
    )
    fast = await _run(world, case, fast=True, fake_time=fake_time, caplog=caplog, answered=answered)
    assert general.fast == []
    assert fast.fast == ([case.fast] if case.method == "GET" else [])
    assert fast.messages == general.messages
    assert fast.prometheus == general.prometheus
    assert fast.windows == general.windows
    assert fast.access_log == general.access_log
    assert fast.records == general.records
    # The comparison means something: one answer, one counted request, one log line.
    assert [m["type"] for m in general.messages] == ["http.response.start", "http.response.body"]
    assert len(general.access_log.splitlines()) == 1
    assert "edgekv_requests_total{" in general.prometheus
