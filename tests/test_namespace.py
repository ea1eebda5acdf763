"""binding-rules.md, one test per rule, on every engine (see the `store` fixture)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from edgekv import Client, KVError, KVNamespace, KVTypeError, ValueStream
from tests.conftest import FakeClock

MiB = 1024 * 1024
LIMIT = 25 * MiB
NOW = 1_700_000_000


async def raises(coro: Any, message: str, status: int, cls: type[KVError] = KVError) -> KVError:
    with pytest.raises(cls) as info:
        await coro
    assert str(info.value) == message
    assert info.value.status == status
    return info.value


# -- errors and key checks ---------------------------------------------------------------------

KEY_CASES = [
    ("", "Key name cannot be empty."),
    (".", '"." is not allowed as a key name.'),
    ("..", '".." is not allowed as a key name.'),
]


@pytest.mark.parametrize(("key", "message"), KEY_CASES)
async def test_illegal_keys_are_type_errors_on_every_op(
    ns: KVNamespace, key: str, message: str
) -> None:
    for call in (ns.get(key), ns.get_with_metadata(key), ns.put(key, "v"), ns.delete(key)):
        err = await raises(call, message, 400, KVTypeError)
        assert isinstance(err, TypeError)


@pytest.mark.parametrize("key", ["...", "./", "a/b", " ", ".a", "a.."])
async def test_near_dot_keys_are_fine(ns: KVNamespace, key: str) -> None:
    await ns.put(key, "v")
    assert await ns.get(key) == "v"


async def test_key_must_be_str(ns: KVNamespace) -> None:
    for bad in (b"k", 1, None):
        await raises(ns.get(bad), "Key name must be a string.", 400, KVTypeError)  # type: ignore[arg-type]
        await raises(ns.put(bad, "v"), "Key name must be a string.", 400, KVTypeError)  # type: ignore[arg-type]


@pytest.mark.parametrize(("op", "method"), [("GET", "get"), ("PUT", "put"), ("DELETE", "delete")])
async def test_key_length_limit_counts_utf8_bytes(ns: KVNamespace, op: str, method: str) -> None:
    ok = "é" * 256  # 512 bytes
    long = "é" * 256 + "a"  # 513 bytes
    args = ("v",) if method == "put" else ()
    await getattr(ns, method)(ok, *args)
    await raises(
        getattr(ns, method)(long, *args),
        f"KV {op} failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512.",
        414,
    )


async def test_empty_key_checked_before_anything_else(ns: KVNamespace) -> None:
    await raises(ns.put("", object(), expiration_ttl=1), "Key name cannot be empty.", 400)
    await raises(ns.get("", "nope", cache_ttl=1), "Key name cannot be empty.", 400)


async def test_unknown_namespace_is_404(kv: Client) -> None:
    gone = kv.namespace("0" * 32)
    for call in (gone.get("k"), gone.put("k", "v"), gone.delete("k"), gone.list()):
        with pytest.raises(KVError) as info:
            await call
        assert info.value.status == 404
        assert str(info.value).startswith("KV ")
    with pytest.raises(KVError) as info:
        await gone.get(["k"])
    assert info.value.status == 404 and str(info.value).startswith("KV GET_BULK failed: 404")


# -- get -------------------------------------------------------------------------------------


async def test_get_types(ns: KVNamespace) -> None:
    await ns.put("k", '{"a": [1, "é"]}')
    assert await ns.get("k") == '{"a": [1, "é"]}'
    assert await ns.get("k", "text") == '{"a": [1, "é"]}'
    assert await ns.get("k", "json") == {"a": [1, "é"]}
    assert await ns.get("k", "bytes") == '{"a": [1, "é"]}'.encode()
    assert await ns.get("k", "arrayBuffer") == '{"a": [1, "é"]}'.encode()
    stream = await ns.get("k", "stream")
    assert isinstance(stream, ValueStream)
    assert b"".join([c async for c in stream]) == '{"a": [1, "é"]}'.encode()


async def test_get_empty_value(ns: KVNamespace) -> None:
    await ns.put("e", "")
    assert await ns.get("e") == ""
    assert await ns.get("e", "bytes") == b""
    assert [c async for c in await ns.get("e", "stream")] == []
    with pytest.raises(ValueError):
        await ns.get("e", "json")


async def test_get_json_of_non_json_is_value_error(ns: KVNamespace) -> None:
    await ns.put("k", "not json")
    with pytest.raises(json.JSONDecodeError):
        await ns.get("k", "json")


async def test_missing_key_is_none_for_every_type(ns: KVNamespace) -> None:
    for type_ in ("text", "json", "bytes", "arrayBuffer", "stream", "bogus"):
        assert await ns.get("missing", type_) is None  # type: ignore[arg-type]
    result = await ns.get_with_metadata("missing")
    assert result.value is None and result.metadata is None and result.cache_status is None


async def test_unknown_type_on_existing_key(ns: KVNamespace) -> None:
    await ns.put("k", "v")
    await raises(
        ns.get("k", "blob"),  # type: ignore[arg-type]
        'Unknown response type. Possible types are "text", "arrayBuffer", "json", and "stream".',
        400,
        KVTypeError,
    )


@pytest.mark.parametrize(
    ("cache_ttl", "shown"), [(59, 59), (0, 0), (-5, -5), ("abc", 0), (59.9, 59), ("30", 30)]
)
async def test_invalid_cache_ttl(ns: KVNamespace, cache_ttl: Any, shown: int) -> None:
    for method in (ns.get, ns.get_with_metadata):
        await raises(
            method("k", cache_ttl=cache_ttl),
            f"KV GET failed: 400 Invalid cache_ttl of {shown}. Cache TTL must be at least 60.",
            400,
        )


async def test_cache_ttl_checked_after_key_before_type(ns: KVNamespace) -> None:
    await raises(ns.get("", cache_ttl=1), "Key name cannot be empty.", 400)
    await ns.put("k", "v")
    await raises(
        ns.get("k", "blob", cache_ttl=1),  # type: ignore[arg-type]
        "KV GET failed: 400 Invalid cache_ttl of 1. Cache TTL must be at least 60.",
        400,
    )
    assert await ns.get("k", cache_ttl=60) == "v"
    assert await ns.get("k", cache_ttl="3600") == "v"  # type: ignore[arg-type]


async def test_get_with_metadata(ns: KVNamespace) -> None:
    await ns.put("k", "v", metadata={"someMetadataKey": "someMetadataValue"})
    result = await ns.get_with_metadata("k")
    assert result.value == "v"
    assert result.metadata == {"someMetadataKey": "someMetadataValue"}
    assert result.cache_status is None
    assert result.version is not None  # versions-and-changes.md: set for a stored key
    assert result.to_dict() == {
        "value": "v",
        "metadata": {"someMetadataKey": "someMetadataValue"},
        "version": result.version,
    }
    await ns.put("plain", "v")
    assert (await ns.get_with_metadata("plain")).metadata is None
    typed = await ns.get_with_metadata("k", "bytes")
    assert typed.value == b"v"


# -- put -------------------------------------------------------------------------------------

BAD_VALUE = (
    "KV put() accepts only strings, bytes-like objects, binary files and byte streams as values."
)


@pytest.mark.parametrize("value", [None, 1, 1.5, {"a": 1}, object(), True])
async def test_put_rejects_other_value_types(ns: KVNamespace, value: Any) -> None:
    await raises(ns.put("k", value), BAD_VALUE, 400, KVTypeError)
    assert await ns.get("k") is None


async def test_put_rejects_stream_of_non_bytes(ns: KVNamespace) -> None:
    await raises(ns.put("k", ["a", "b"]), BAD_VALUE, 400, KVTypeError)
    await raises(ns.put("k", [1, 2]), BAD_VALUE, 400, KVTypeError)
    assert await ns.get("k") is None


async def test_put_accepts_every_value_shape(ns: KVNamespace) -> None:
    async def agen() -> AsyncIterator[bytes]:
        yield b"as"
        yield b"ync"

    def gen() -> Iterator[bytes]:
        yield b"sy"
        yield bytearray(b"nc")

    cases: list[tuple[Any, bytes]] = [
        ("tëxt", "tëxt".encode()),
        (b"bytes", b"bytes"),
        (bytearray(b"ba"), b"ba"),
        (memoryview(b"mv"), b"mv"),
        (io.BytesIO(b"file"), b"file"),
        (agen(), b"async"),
        (gen(), b"sync"),
        ([b"li", b"st"], b"list"),
        ("", b""),
    ]
    for i, (value, expected) in enumerate(cases):
        await ns.put(f"k{i}", value)
        assert await ns.get(f"k{i}", "bytes") == expected


async def test_put_of_binary_file_on_disk(ns: KVNamespace, tmp_path: Any) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 100)
    with path.open("rb") as f:
        await ns.put("blob", f)
    assert await ns.get("blob", "bytes") == bytes(range(256)) * 100


@pytest.mark.parametrize(
    ("ttl", "message"),
    [
        (0, "Invalid expiration_ttl of 0. Please specify integer greater than 0."),
        (-1, "Invalid expiration_ttl of -1. Please specify integer greater than 0."),
        ("nan", "Invalid expiration_ttl of 0. Please specify integer greater than 0."),
        ([60], "Invalid expiration_ttl of 0. Please specify integer greater than 0."),
        (True, "Invalid expiration_ttl of 0. Please specify integer greater than 0."),
        (" -5 ", "Invalid expiration_ttl of -5. Please specify integer greater than 0."),
        (59, "Invalid expiration_ttl of 59. Expiration TTL must be at least 60."),
        (59.99, "Invalid expiration_ttl of 59. Expiration TTL must be at least 60."),
        ("1.5", "Invalid expiration_ttl of 1. Expiration TTL must be at least 60."),
    ],
)
async def test_invalid_expiration_ttl(ns: KVNamespace, ttl: Any, message: str) -> None:
    await raises(ns.put("k", "v", expiration_ttl=ttl), f"KV PUT failed: 400 {message}", 400)
    assert await ns.get("k") is None


PAST = "Please specify integer greater than the current number of seconds since the UNIX epoch."


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        (
            0,
            PAST,
        ),
        (
            -10,
            PAST,
        ),
        (1, "Expiration times must be at least 60 seconds in the future."),
        (59, "Expiration times must be at least 60 seconds in the future."),
    ],
)
async def test_invalid_expiration(ns: KVNamespace, offset: int, message: str) -> None:
    at = NOW + offset
    await raises(
        ns.put("k", "v", expiration=at),
        f"KV PUT failed: 400 Invalid expiration of {at}. {message}",
        400,
    )


MOST = "Expiration times must be at most 9007199254740991 seconds since the UNIX epoch."


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"expiration_ttl": 10**30},
            f"Invalid expiration_ttl of {10**30}. {MOST}",
        ),
        (
            {"expiration_ttl": "1000000000000000000000000000000"},
            f"Invalid expiration_ttl of {int(1e30)}. {MOST}",
        ),
        ({"expiration_ttl": 1e30}, f"Invalid expiration_ttl of {int(1e30)}. {MOST}"),
        ({"expiration_ttl": 2**53}, f"Invalid expiration_ttl of {2**53}. {MOST}"),
        ({"expiration": 2**63}, f"Invalid expiration of {2**63}. {MOST}"),
        ({"expiration": "9223372036854775808"}, f"Invalid expiration of {2**63}. {MOST}"),
        ({"expiration": 10**400}, f"Invalid expiration of {10**400}. {MOST}"),
        ({"expiration": 2**53}, f"Invalid expiration of {2**53}. {MOST}"),
    ],
)
async def test_numbers_too_large_are_400(
    ns: KVNamespace, options: dict[str, Any], message: str
) -> None:
    """A number that would overflow the store's 64-bit integers is the client's error, on
    every engine, for put and put_many alike."""
    error = await raises(ns.put("k", "v", **options), f"KV PUT failed: 400 {message}", 400)
    assert error.code == (10034 if "expiration_ttl" in options else 10033)
    with pytest.raises(KVError) as info:
        await ns.put_many([{"key": "k", "value": "v", **options}])
    assert info.value.status == 400 and message in str(info.value)
    assert await ns.get("k") is None


async def test_the_latest_expiration_is_stored_and_read_back(ns: KVNamespace) -> None:
    await ns.put("k", "v", expiration=2**53 - 1)
    await ns.put("t", "v", expiration_ttl=2**53 - 1 - NOW)
    listed = {k.name: k.expiration for k in (await ns.list()).keys}
    assert listed == {"k": 2**53 - 1, "t": 2**53 - 1}
    assert await ns.get("k") == "v"


@pytest.mark.parametrize("cache_ttl", [10**30, 2**63, 10**400, "1e300", 1e300])
async def test_a_huge_cache_ttl_is_a_valid_cache_ttl(ns: KVNamespace, cache_ttl: Any) -> None:
    await ns.put("k", "v")
    assert await ns.get("k", cache_ttl=cache_ttl) == "v"
    assert await ns.get("k", cache_ttl=cache_ttl) == "v"  # served from a location's cache
    assert (await ns.get_with_metadata("k", cache_ttl=cache_ttl)).value == "v"
    assert await ns.get(["k", "missing"], cache_ttl=cache_ttl) == {"k": "v", "missing": None}


async def test_expiration_junk_counts_as_zero(ns: KVNamespace) -> None:
    await raises(
        ns.put("k", "v", expiration="soon"),  # type: ignore[arg-type]
        "KV PUT failed: 400 Invalid expiration of 0. Please specify integer greater than the "
        "current number of seconds since the UNIX epoch.",
        400,
    )


async def test_expiration_uses_floor_of_clock(ns: KVNamespace, clock: FakeClock) -> None:
    clock.now = NOW + 0.999
    await ns.put("k", "v", expiration=NOW + 60)  # now is NOW, so +60 is allowed
    await ns.put("t", "v", expiration_ttl=60.9)  # type: ignore[arg-type]
    listed = {k.name: k.expiration for k in (await ns.list()).keys}
    assert listed == {"k": NOW + 60, "t": NOW + 60}


async def test_ttl_wins_and_expiration_not_checked(ns: KVNamespace) -> None:
    await ns.put("k", "v", expiration=1, expiration_ttl=600)
    assert (await ns.list()).keys[0].expiration == NOW + 600


async def test_expiration_is_exact_to_the_second(ns: KVNamespace, clock: FakeClock) -> None:
    await ns.put("k", "v", expiration=NOW + 60, metadata={"m": 1})
    await ns.put("t", "v", expiration_ttl="120")  # type: ignore[arg-type]
    clock.now = NOW + 59.999
    assert await ns.get("k") == "v"
    assert [k.name for k in (await ns.list()).keys] == ["k", "t"]
    clock.now = NOW + 60
    assert await ns.get("k") is None
    assert (await ns.get_with_metadata("k")).metadata is None
    assert await ns.get(["k", "t"]) == {"k": None, "t": "v"}
    assert [k.name for k in (await ns.list()).keys] == ["t"]
    clock.now = NOW + 120
    assert await ns.get("t") is None


async def test_metadata_size_limit_uses_js_serialisation(ns: KVNamespace) -> None:
    at_limit = {"k": "é" * 506}  # {"k":"…"} = 8 + 1012 bytes = 1020... pad to exactly 1024
    at_limit = {"k": "é" * 506 + "abcd"}
    assert len(json.dumps(at_limit, separators=(",", ":"), ensure_ascii=False).encode()) == 1024
    await ns.put("ok", "v", metadata=at_limit)
    assert (await ns.get_with_metadata("ok")).metadata == at_limit
    over = {"k": "é" * 506 + "abcde"}
    await raises(
        ns.put("over", "v", metadata=over),
        "KV PUT failed: 413 Metadata length of 1025 exceeds limit of 1024.",
        413,
    )
    assert await ns.get("over") is None


async def test_metadata_must_be_json_serialisable(ns: KVNamespace) -> None:
    for bad in ({1, 2}, object(), {"a": object()}):
        await raises(
            ns.put("k", "v", metadata=bad), "Metadata must be JSON-serializable.", 400, KVTypeError
        )


@pytest.mark.parametrize("metadata", [{"a": 1}, 0, "", False, [1, "x"], 1.5, "é"])
async def test_any_json_metadata_round_trips(ns: KVNamespace, metadata: Any) -> None:
    await ns.put("k", "v", metadata=metadata)
    assert (await ns.get_with_metadata("k")).metadata == metadata
    assert (await ns.list()).keys[0].metadata == metadata


async def test_value_size_limit(ns: KVNamespace) -> None:
    await ns.put("exact", b"x" * LIMIT)
    assert len(await ns.get("exact", "bytes")) == LIMIT
    await raises(
        ns.put("over", b"x" * (LIMIT + 1)),
        f"KV PUT failed: 413 Value length of {LIMIT + 1} exceeds limit of {LIMIT}.",
        413,
    )
    assert await ns.get("over") is None


async def test_streamed_value_size_is_full_length(ns: KVNamespace) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b"x" * MiB

    await raises(
        ns.put("big", chunks()),
        f"KV PUT failed: 413 Value length of {30 * MiB} exceeds limit of {LIMIT}.",
        413,
    )
    assert await ns.get("big") is None


async def test_check_order_value_type_then_expiration_then_metadata_then_size(
    ns: KVNamespace,
) -> None:
    big_meta = {"k": "x" * 2000}
    await raises(ns.put("k", 5, expiration_ttl=1, metadata=big_meta), BAD_VALUE, 400)
    await raises(
        ns.put("k", b"x" * (LIMIT + 1), expiration_ttl=1, metadata=big_meta),
        "KV PUT failed: 400 Invalid expiration_ttl of 1. Expiration TTL must be at least 60.",
        400,
    )
    await raises(
        ns.put("k", b"x" * (LIMIT + 1), metadata=big_meta),
        "KV PUT failed: 413 Metadata length of 2008 exceeds limit of 1024.",
        413,
    )


async def test_put_replaces_the_whole_entry(ns: KVNamespace) -> None:
    await ns.put("k", "v1", expiration_ttl=600, metadata={"a": 1})
    await ns.put("k", "v2")
    result = await ns.get_with_metadata("k")
    assert (result.value, result.metadata) == ("v2", None)
    assert (await ns.list()).keys[0].to_dict() == {"name": "k"}


async def test_put_and_delete_return_none(ns: KVNamespace) -> None:
    assert await ns.put("k", "v") is None
    assert await ns.delete("k") is None
    assert await ns.delete("never-there") is None
    assert await ns.get("k") is None


async def test_bytearray_changed_after_put_does_not_change_value(ns: KVNamespace) -> None:
    buf = bytearray(b"abc")
    await ns.put("k", buf)
    buf[0] = ord("z")
    assert await ns.get("k") == "abc"


# -- list ------------------------------------------------------------------------------------


async def test_list_orders_by_utf8_bytes(ns: KVNamespace) -> None:
    keys = ["a", "B", "\U00010000", "\uffff", "é", "z"]
    for k in keys:
        await ns.put(k, "v")
    names = [k.name for k in (await ns.list()).keys]
    assert names == ["B", "a", "z", "é", "\uffff", "\U00010000"]


async def test_list_prefix_is_literal_and_case_sensitive(ns: KVNamespace) -> None:
    for k in ["user:1:a", "user:1:b", "user:10:a", "User:1:c", "a%b", "axb", "a_b", "a\\b"]:
        await ns.put(k, "v")
    assert [k.name for k in (await ns.list(prefix="user:1:")).keys] == ["user:1:a", "user:1:b"]
    assert [k.name for k in (await ns.list(prefix="a%")).keys] == ["a%b"]
    assert [k.name for k in (await ns.list(prefix="a_")).keys] == ["a_b"]
    assert [k.name for k in (await ns.list(prefix="a\\")).keys] == ["a\\b"]
    assert len((await ns.list(prefix="")).keys) == 8
    assert len((await ns.list(prefix=None)).keys) == 8


async def test_list_prefix_too_long(ns: KVNamespace) -> None:
    await raises(
        ns.list(prefix="p" * 513),
        "KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512.",
        414,
    )
    assert (await ns.list(prefix="p" * 512)).keys == []


@pytest.mark.parametrize(("limit", "shown"), [(1001, 1001), ("5000", 5000), (1000.5, 1000)])
async def test_list_limit(ns: KVNamespace, limit: Any, shown: int) -> None:
    if shown <= 1000:
        assert (await ns.list(limit=limit)).list_complete
        return
    await raises(
        ns.list(limit=limit),
        f"KV GET failed: 400 Invalid key_count_limit of {shown}. Please specify an integer "
        "less than 1000.",
        400,
    )


async def test_list_limit_zero_or_negative_means_default(ns: KVNamespace) -> None:
    await ns.put_many([(f"k{i:04}", "v") for i in range(1001)])
    for limit in (0, -3, None, "abc"):
        page = await ns.list(limit=limit)  # type: ignore[arg-type]
        assert len(page.keys) == 1000 and not page.list_complete


async def test_list_result_shape_and_to_dict(ns: KVNamespace) -> None:
    await ns.put("a", "v", expiration_ttl=600, metadata={"m": 1})
    await ns.put("b", "v")
    page = await ns.list()
    assert page.list_complete is True and page.cursor is None and page.cache_status is None
    assert page.to_dict() == {
        "keys": [{"name": "a", "expiration": NOW + 600, "metadata": {"m": 1}}, {"name": "b"}],
        "list_complete": True,
    }


async def test_list_pagination_exact_pages_and_no_empty_last_page(ns: KVNamespace) -> None:
    await ns.put_many([(f"k{i:02}", "v") for i in range(10)])
    first = await ns.list(limit=4)
    assert [k.name for k in first.keys] == ["k00", "k01", "k02", "k03"]
    assert first.list_complete is False and first.cursor
    assert "cursor" in first.to_dict()
    second = await ns.list(limit=4, cursor=first.cursor)
    assert [k.name for k in second.keys] == ["k04", "k05", "k06", "k07"]
    third = await ns.list(limit=2, cursor=second.cursor)  # exactly the rest
    assert [k.name for k in third.keys] == ["k08", "k09"]
    assert third.list_complete is True and third.cursor is None


async def test_cursor_survives_deletes_and_sees_later_inserts(ns: KVNamespace) -> None:
    await ns.put_many([(f"k{i}", "v") for i in range(6)])
    page = await ns.list(limit=2)
    await ns.delete("k1")  # the cursor's own key
    await ns.put("k15", "v")  # after the cursor position
    await ns.put("k0a", "v")  # before it: not shown again
    rest = await ns.list(cursor=page.cursor)
    assert [k.name for k in rest.keys] == ["k15", "k2", "k3", "k4", "k5"]


async def test_cursor_with_prefix(ns: KVNamespace) -> None:
    await ns.put_many([(f"p{i}", "v") for i in range(5)] + [("a", "v"), ("z", "v")])
    page = await ns.list(prefix="p", limit=2)
    rest = await ns.list(prefix="p", cursor=page.cursor)
    assert [k.name for k in rest.keys] == ["p2", "p3", "p4"]


async def test_invalid_cursor(ns: KVNamespace) -> None:
    await raises(ns.list(cursor="!!!not base64!!!"), "KV GET failed: 400 Invalid cursor", 400)
    await raises(ns.list(cursor="_w"), "KV GET failed: 400 Invalid cursor", 400)  # 0xff: not UTF-8


async def test_list_skips_expired_keys_between_live_ones(ns: KVNamespace, clock: FakeClock) -> None:
    await ns.put_many(
        [
            {"key": f"k{i:02}", "value": "v", "expiration_ttl": 60 if i % 2 else 600}
            for i in range(20)
        ]
    )
    clock.advance(60)
    page = await ns.list(limit=5)
    assert [k.name for k in page.keys] == ["k00", "k02", "k04", "k06", "k08"]
    rest = await ns.list(cursor=page.cursor)
    assert [k.name for k in rest.keys] == ["k10", "k12", "k14", "k16", "k18"]
    assert rest.list_complete


# -- bulk get --------------------------------------------------------------------------------


async def test_bulk_get(ns: KVNamespace) -> None:
    await ns.put("a", '{"x": 1}', metadata={"m": "a"})
    await ns.put("b", "0", metadata="")
    assert await ns.get(["a", "missing", "a", "b"]) == {"a": '{"x": 1}', "missing": None, "b": "0"}
    assert list(await ns.get(["b", "a"])) == ["b", "a"]
    assert await ns.get(["a", "b"], "json") == {"a": {"x": 1}, "b": 0}
    with_meta = await ns.get_with_metadata(["a", "b", "missing"])
    assert with_meta["missing"] is None
    assert with_meta["a"] is not None and with_meta["a"].value == '{"x": 1}'
    assert with_meta["a"].metadata == {"m": "a"}
    assert with_meta["b"] is not None and with_meta["b"].metadata == ""


@pytest.mark.parametrize(
    ("keys", "type_", "cache_ttl", "message"),
    [
        (["a"], "bytes", None, '400 "bytes" is not a valid type. Use "json" or "text"'),
        ([""] * 101, "stream", None, '400 "stream" is not a valid type. Use "json" or "text"'),
        ([f"k{i}" for i in range(101)], "text", None, "400 You can request a maximum of 100 keys"),
        ([], "text", None, "400 You must request a minimum of 1 key"),
        (["a", ""], "text", 1, "400 Key names must not be empty"),
        (["a", "."], "text", None, '400 Illegal key name ".". Please use a different name.'),
        (["a", ".."], "text", None, '400 Illegal key name "..". Please use a different name.'),
        (
            ["x" * 513],
            "text",
            None,
            "414 UTF-8 encoded length of 513 exceeds key length limit of 512.",
        ),
        (["a"], "text", 59, "400 Invalid cache_ttl of 59. Cache TTL must be at least 60."),
    ],
)
async def test_bulk_get_checks_in_order(
    ns: KVNamespace, keys: list[str], type_: Any, cache_ttl: Any, message: str
) -> None:
    status = int(message[:3])
    await raises(ns.get(keys, type_, cache_ttl=cache_ttl), f"KV GET_BULK failed: {message}", status)


async def test_bulk_get_100_keys_is_fine(ns: KVNamespace) -> None:
    assert len(await ns.get([f"k{i}" for i in range(100)])) == 100


async def test_bulk_get_json_of_non_json(ns: KVNamespace) -> None:
    await ns.put("good", "1")
    for bad in ("not json", ""):
        await ns.put("bad", bad)
        await raises(
            ns.get(["good", "bad"], "json"),
            "KV GET_BULK failed: 400 At least one of the requested keys corresponds to a "
            "non-json value",
            400,
        )


async def test_bulk_get_total_size_limit(ns: KVNamespace) -> None:
    await ns.put("a", b"x" * (13 * MiB))
    await ns.put("b", b"x" * (13 * MiB))
    assert len((await ns.get(["a"]))["a"]) == 13 * MiB
    await raises(
        ns.get(["a", "b"]),
        "KV GET_BULK failed: 413 Total size of request exceeds the limit of 25MB",
        413,
    )


# -- bulk write / delete (beyond Workers) ----------------------------------------------------


async def test_put_many_rest_shape(ns: KVNamespace) -> None:
    await ns.put_many(
        [
            {"key": "a", "value": "1"},
            {"key": "b", "value": "aGVsbG8=", "base64": True, "metadata": {"m": 1}},
            {"key": "c", "value": b"3", "expiration_ttl": 600},
            ("d", "4"),
        ]
    )
    assert await ns.get(["a", "b", "c", "d"]) == {"a": "1", "b": "hello", "c": "3", "d": "4"}
    assert (await ns.get_with_metadata("b")).metadata == {"m": 1}
    assert (await ns.list(prefix="c")).keys[0].expiration == NOW + 600


async def test_put_many_is_all_or_nothing(ns: KVNamespace) -> None:
    await raises(
        ns.put_many([("ok", "v"), {"key": "bad", "value": "v", "expiration_ttl": 5}]),
        "KV PUT_BULK failed: 400 Invalid expiration_ttl of 5. Expiration TTL must be at least 60.",
        400,
    )
    await raises(ns.put_many([("ok", "v"), ("", "v")]), "Key name cannot be empty.", 400)
    assert await ns.get("ok") is None


async def test_put_many_and_delete_many_limits(ns: KVNamespace) -> None:
    await raises(
        ns.put_many([(f"k{i}", "v") for i in range(10_001)]),
        "KV PUT_BULK failed: 400 You can write a maximum of 10000 pairs",
        400,
    )
    await ns.put_many([(f"k{i}", "v") for i in range(10_000)])
    await raises(
        ns.delete_many([f"k{i}" for i in range(10_001)]),
        "KV DELETE_BULK failed: 400 You can delete a maximum of 10000 keys",
        400,
    )
    await ns.delete_many([f"k{i}" for i in range(10_000)])
    assert (await ns.list()).keys == []


async def test_delete_many(ns: KVNamespace) -> None:
    await ns.put_many([("a", "1"), ("b", "2"), ("c", "3")])
    await ns.delete_many(["a", "c", "never"])
    assert [k.name for k in (await ns.list()).keys] == ["b"]
    await raises(ns.delete_many(["b", ".."]), '".." is not allowed as a key name.', 400)
    assert await ns.get("b") == "2"


async def test_bulk_get_json_check_comes_before_size_check(ns: KVNamespace) -> None:
    await ns.put("a", b"x" * (13 * MiB))  # neither JSON nor small
    await ns.put("b", b"x" * (13 * MiB))
    await raises(
        ns.get(["a", "b"], "json"),
        "KV GET_BULK failed: 400 At least one of the requested keys corresponds to a "
        "non-json value",
        400,
    )


async def test_nul_in_a_namespace_id_or_title_is_a_4xx(kv: Client) -> None:
    """PostgreSQL text cannot hold NUL: a bad id or title is the caller's error on every
    engine, never a 500."""
    ns = kv.namespace("ab\x00cd")
    for call in (
        ns.get("k"),
        ns.get_with_metadata("k"),
        ns.get(["k"]),
        ns.put("k", "v"),
        ns.delete("k"),
        ns.list(),
        ns.put_many([("k", "v")]),
        ns.delete_many(["k"]),
    ):
        with pytest.raises(KVError) as info:
            await call
        assert 400 <= info.value.status < 500, info.value
    assert await kv.get_namespace("ab\x00cd") is None
    with pytest.raises(KVError) as info:
        await kv.create_namespace("a\x00b")
    assert info.value.status == 400
    assert "Namespace title must not contain NUL characters" in str(info.value)
