"""Random sequences of put / delete / get / list (paged) / clock moves, compared with a dict.

Runs on every engine (the `kv` fixture), each example in a fresh namespace.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekv import Client
from tests.conftest import FakeClock

keys = st.text(alphabet="ab:/é\uffff\U00010000%_", min_size=1, max_size=4).filter(
    lambda k: k not in (".", "..")
)
values = st.one_of(st.text(max_size=8), st.binary(max_size=8))
metadata = st.one_of(
    st.none(), st.integers(-5, 5), st.dictionaries(st.sampled_from("xy"), st.booleans())
)
ops = st.one_of(
    st.tuples(
        st.just("put"), keys, values, st.one_of(st.none(), st.sampled_from([60, 61, 120])), metadata
    ),
    st.tuples(st.just("delete"), keys),
    st.tuples(st.just("get"), keys),
    st.tuples(st.just("list"), st.text(alphabet="ab:é", max_size=2), st.integers(1, 4)),
    # Ticks land on expiration seconds often, so off-by-one errors show.
    st.tuples(st.just("tick"), st.sampled_from([0, 1, 59, 60, 61])),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(program=st.lists(ops, max_size=40))
async def test_matches_a_dict(kv: Client, clock: FakeClock, program: list[tuple[Any, ...]]) -> None:
    ns = await kv.create_namespace(f"model-{id(program)}-{clock.now}")
    model: dict[str, tuple[bytes, int | None, Any]] = {}

    def live() -> dict[str, tuple[bytes, int | None, Any]]:
        now = math.floor(clock())
        return {k: v for k, v in model.items() if v[1] is None or v[1] > now}

    for op, *args in program:
        if op == "put":
            key, value, ttl, meta = args
            await ns.put(key, value, expiration_ttl=ttl, metadata=meta)
            raw = value.encode() if isinstance(value, str) else value
            model[key] = (raw, None if ttl is None else math.floor(clock()) + ttl, meta)
        elif op == "delete":
            await ns.delete(args[0])
            model.pop(args[0], None)
        elif op == "get":
            got = await ns.get_with_metadata(args[0], "bytes")
            want = live().get(args[0])
            assert (got.value, got.metadata) == ((want[0], want[2]) if want else (None, None))
        elif op == "list":
            prefix, limit = args
            seen: list[tuple[str, int | None, Any]] = []
            cursor = None
            while True:
                page = await ns.list(prefix=prefix, limit=limit, cursor=cursor)
                assert len(page.keys) <= limit
                seen += [(k.name, k.expiration, k.metadata) for k in page.keys]
                if page.list_complete:
                    assert page.cursor is None
                    break
                assert len(page.keys) == limit and page.cursor
                cursor = page.cursor
            expected = sorted(
                ((k, v[1], v[2]) for k, v in live().items() if k.startswith(prefix)),
                key=lambda item: item[0].encode(),
            )
            assert seen == expected
        else:
            clock.advance(args[0])
    await kv.delete_namespace(ns.id)
