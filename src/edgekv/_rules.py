"""The validation rules of Workers KV's binding, shared by the binding and the REST API.

Each check raises `KVError` / `KVTypeError` with the exact message of the spec for the operation
named by `op` (`GET`, `PUT`, `DELETE`, `GET_BULK`, ...). Errors also carry `code`, the Cloudflare
API error code the REST layer answers with, and `detail`, the message without the prefix.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from edgekv import wire
from edgekv._exceptions import KVError, KVTypeError

__all__ = [
    "BULK_GET_MAX_KEYS",
    "BULK_WRITE_MAX_PAIRS",
    "KEY_MAX_BYTES",
    "LIST_LIMIT_MAX",
    "MAX_EXPIRATION",
    "METADATA_MAX_BYTES",
    "MIN_TTL",
    "SHORT_KEY_CHARS",
    "TITLE_MAX_CHARS",
    "VALUE_MAX_BYTES",
    "cache_ttl_seconds",
    "check_bulk_get",
    "check_cache_ttl",
    "check_key",
    "check_list_limit",
    "check_prefix",
    "check_title",
    "check_value_size",
    "decode_cursor",
    "encode_cursor",
    "encode_key",
    "encode_text",
    "fail",
    "is_plain_key",
    "resolve_expiration",
    "serialize_metadata",
    "to_number",
]

KEY_MAX_BYTES = 512
VALUE_MAX_BYTES = 25 * 1024 * 1024
METADATA_MAX_BYTES = 1024
MIN_TTL = 60
LIST_LIMIT_MAX = 1000
BULK_GET_MAX_KEYS = 100
BULK_WRITE_MAX_PAIRS = 10_000
TITLE_MAX_CHARS = 512
# The latest expiration second: JS's Number.MAX_SAFE_INTEGER, the largest whole number every
# client (wrangler, the JS SDK, a JS worker) reads back exactly; it also fits the stores' 64-bit
# integers, which a larger number overflowed (a 500 instead of a 400).
MAX_EXPIRATION = 2**53 - 1
SHORT_KEY_CHARS = KEY_MAX_BYTES // 4  # characters that can never exceed the byte limit


def fail(op: str, status: int, detail: str, code: int = wire.BAD_REQUEST) -> KVError:
    return KVError.for_op(op, status, detail, code=code)


def type_error(message: str, code: int = wire.BAD_REQUEST) -> KVTypeError:
    return KVTypeError(message, code=code)


def encode_text(text: str) -> bytes:
    """A str as UTF-8, lone surrogates as U+FFFD: what the Fetch API's `TextEncoder` does (a
    str value of the binding, a str body of a worker's `Response`)."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


def to_number(value: object) -> int:
    """JS-style coercion of a numeric option: ints as they are, floats and decimal strings
    truncated toward zero, anything else (NaN, inf, booleans, lists, junk) 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else 0
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return 0
        return int(number) if math.isfinite(number) else 0
    return 0


def encode_key(key: object, op: str) -> bytes:
    """Check a key in the spec's order and return its UTF-8 bytes."""
    if not isinstance(key, str):
        raise type_error("Key name must be a string.", wire.ILLEGAL_KEY)
    if key == "":
        raise type_error("Key name cannot be empty.", wire.ILLEGAL_KEY)
    if key == "." or key == "..":
        raise type_error(f'"{key}" is not allowed as a key name.', wire.ILLEGAL_KEY)
    try:
        raw = key.encode()
    except UnicodeEncodeError:
        raise type_error("Key name must be valid Unicode (no lone surrogates).") from None
    if len(raw) > KEY_MAX_BYTES:
        raise fail(
            op,
            414,
            f"UTF-8 encoded length of {len(raw)} exceeds key length limit of {KEY_MAX_BYTES}.",
            wire.KEY_TOO_LONG,
        )
    return raw


def is_plain_key(key: object) -> bool:
    """A str key that passes every key check without being encoded: not "", "." or "..", and
    at most 128 characters (4 UTF-8 bytes each at most, so within the 512-byte limit)."""
    return key.__class__ is str and 0 < len(key) <= SHORT_KEY_CHARS and key != "." and key != ".."


def check_key(key: object, op: str) -> None:
    """The key checks of `op`, cheap for the common key (see `is_plain_key`)."""
    if not is_plain_key(key):
        encode_key(key, op)


def check_cache_ttl(cache_ttl: object, op: str) -> None:
    if cache_ttl is None:
        return
    n = to_number(cache_ttl)
    if n < MIN_TTL:
        raise fail(op, 400, f"Invalid cache_ttl of {n}. Cache TTL must be at least {MIN_TTL}.")


def cache_ttl_seconds(cache_ttl: object) -> int | None:
    """A checked `cache_ttl` as the seconds a cache uses: at most MAX_EXPIRATION (a longer
    TTL means the same, and a number past a float's range would overflow the cache's math)."""
    return None if cache_ttl is None else min(to_number(cache_ttl), MAX_EXPIRATION)


def resolve_expiration(
    expiration: object, expiration_ttl: object, now: int, op: str = "PUT"
) -> int | None:
    """The absolute expiration second of a put, or None. `expiration_ttl` wins when both."""
    if expiration_ttl is not None:
        ttl = to_number(expiration_ttl)
        if ttl <= 0:
            raise fail(
                op,
                400,
                f"Invalid expiration_ttl of {ttl}. Please specify integer greater than 0.",
                wire.BAD_TTL,
            )
        if ttl < MIN_TTL:
            raise fail(
                op,
                400,
                f"Invalid expiration_ttl of {ttl}. Expiration TTL must be at least {MIN_TTL}.",
                wire.BAD_TTL,
            )
        if now + ttl > MAX_EXPIRATION:
            raise fail(
                op,
                400,
                f"Invalid expiration_ttl of {ttl}. Expiration times must be at most "
                f"{MAX_EXPIRATION} seconds since the UNIX epoch.",
                wire.BAD_TTL,
            )
        return now + ttl
    if expiration is None:
        return None
    at = to_number(expiration)
    if at <= now:
        raise fail(
            op,
            400,
            f"Invalid expiration of {at}. Please specify integer greater than the current "
            "number of seconds since the UNIX epoch.",
            wire.BAD_EXPIRATION,
        )
    if at < now + MIN_TTL:
        raise fail(
            op,
            400,
            f"Invalid expiration of {at}. Expiration times must be at least {MIN_TTL} "
            "seconds in the future.",
            wire.BAD_EXPIRATION,
        )
    if at > MAX_EXPIRATION:
        raise fail(
            op,
            400,
            f"Invalid expiration of {at}. Expiration times must be at most {MAX_EXPIRATION} "
            "seconds since the UNIX epoch.",
            wire.BAD_EXPIRATION,
        )
    return at


def serialize_metadata(metadata: object, op: str = "PUT") -> str | None:
    """Metadata as JSON.stringify writes it (compact, non-ASCII unescaped), size-checked."""
    if metadata is None:
        return None
    try:
        raw = orjson.dumps(metadata)
    except TypeError:
        raise type_error("Metadata must be JSON-serializable.", wire.BAD_METADATA) from None
    if len(raw) > METADATA_MAX_BYTES:
        raise fail(
            op,
            413,
            f"Metadata length of {len(raw)} exceeds limit of {METADATA_MAX_BYTES}.",
            wire.TOO_LARGE,
        )
    return raw.decode()


def check_value_size(size: int, op: str = "PUT") -> None:
    if size > VALUE_MAX_BYTES:
        raise fail(
            op,
            413,
            f"Value length of {size} exceeds limit of {VALUE_MAX_BYTES}.",
            wire.TOO_LARGE,
        )


def check_list_limit(limit: object, op: str = "GET") -> int:
    if limit is None:
        return LIST_LIMIT_MAX
    n = to_number(limit)
    if n > LIST_LIMIT_MAX:
        raise fail(
            op,
            400,
            f"Invalid key_count_limit of {n}. Please specify an integer less than "
            f"{LIST_LIMIT_MAX}.",
            wire.BAD_LIMIT,
        )
    return n if n > 0 else LIST_LIMIT_MAX


def check_prefix(prefix: object, op: str = "GET") -> str:
    if prefix is None:
        return ""
    if not isinstance(prefix, str):
        raise type_error("Prefix must be a string.")
    size = len(prefix.encode())
    if size > KEY_MAX_BYTES:
        raise fail(
            op,
            414,
            f"UTF-8 encoded length of {size} exceeds key length limit of {KEY_MAX_BYTES}.",
            wire.KEY_TOO_LONG,
        )
    return prefix


def encode_cursor(last_key: str) -> str:
    """An opaque cursor: the last key returned, base64url without padding (keyset position)."""
    return wire.b64url_encode(last_key)


def decode_cursor(cursor: object, op: str = "GET") -> str | None:
    if cursor is None or cursor == "":
        return None
    if not isinstance(cursor, str):
        raise fail(op, 400, "Invalid cursor", wire.BAD_CURSOR)
    try:
        return wire.b64url_decode(cursor)
    except ValueError:
        raise fail(op, 400, "Invalid cursor", wire.BAD_CURSOR) from None


def check_bulk_get(keys: list[Any], type_: object, cache_ttl: object) -> None:
    """The checks of a bulk get, in the spec's order (before any I/O)."""
    op = "GET_BULK"
    if type_ not in ("text", "json"):
        raise fail(op, 400, f'"{type_}" is not a valid type. Use "json" or "text"')
    if len(keys) > BULK_GET_MAX_KEYS:
        raise fail(op, 400, f"You can request a maximum of {BULK_GET_MAX_KEYS} keys")
    if not keys:
        raise fail(op, 400, "You must request a minimum of 1 key")
    for key in keys:
        if not isinstance(key, str) or key == "":
            raise fail(op, 400, "Key names must not be empty", wire.ILLEGAL_KEY)
        if key in (".", ".."):
            raise fail(
                op, 400, f'Illegal key name "{key}". Please use a different name.', wire.ILLEGAL_KEY
            )
        encode_key(key, op)
    check_cache_ttl(cache_ttl, op)


def check_title(title: object, op: str) -> None:
    """A namespace title: a non-empty string of at most 512 characters."""
    if not isinstance(title, str) or not title.strip():
        raise fail(op, 400, "Namespace title must be a non-empty string", wire.MISSING_TITLE)
    if len(title) > TITLE_MAX_CHARS:
        raise fail(
            op,
            400,
            f"Namespace title must be at most {TITLE_MAX_CHARS} characters",
            wire.MISSING_TITLE,
        )
    if "\x00" in title:  # PostgreSQL text cannot hold it: refused on every engine alike
        raise fail(op, 400, "Namespace title must not contain NUL characters", wire.MISSING_TITLE)
