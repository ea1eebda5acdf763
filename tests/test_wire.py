"""wire.py: the protocol both sides speak — paths, the route grammar, envelope, codecs, the
error table."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgekv import wire
from edgekv._exceptions import (
    HistoryGone,
    NamespaceNotFound,
    NamespaceTitleTaken,
    PreconditionFailed,
    StoreError,
    StoreUnavailable,
    TooManyNamespaces,
)
from edgekv.wire import match_route, match_value, unquote_key


def test_match_route_keeps_encoded_slash_in_one_key() -> None:
    m = match_route(b"/client/v4/accounts/a1/storage/kv/namespaces/n1/values/a%2Fb%20c")
    assert m is not None and m.kind == "value" and m.raw_key == b"a%2Fb%20c"
    assert unquote_key(m.raw_key) == "a/b c"
    # a raw slash is part of the key too (everything after values/)
    m = match_route(b"/client/v4/accounts/a1/storage/kv/namespaces/n1/metadata/x/y")
    assert m is not None and m.kind == "metadata" and unquote_key(m.raw_key or b"") == "x/y"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/client/v4/accounts/a/storage/kv/namespaces", "namespaces"),
        ("/client/v4/accounts/a/storage/kv/namespaces/", "namespaces"),
        ("/client/v4/accounts/a/storage/kv/namespaces/n", "namespace"),
        ("/client/v4/accounts/a/storage/kv/namespaces/n/keys", "keys"),
        ("/client/v4/accounts/a/storage/kv/namespaces/n/bulk", "bulk"),
        ("/client/v4/accounts/a/storage/kv/namespaces/n/bulk/delete", "bulk_delete"),
        ("/client/v4/accounts/a/storage/kv/namespaces/n/bulk/get", "bulk_get"),
        ("/client/v4/memberships", "memberships"),
        ("/client/v4/accounts", "accounts"),
        ("/client/v4/accounts/a", "account"),
        ("/client/v4/user/tokens/verify", "verify"),
        ("/client/v4/openapi.json", "openapi"),
        ("/healthz", "healthz"),
    ],
)
def test_routes(path: str, kind: str) -> None:
    m = match_route(path.encode())
    assert m is not None and m.kind == kind


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/client/v4",
        "/client/v4/zones",
        "/client/v4/accounts/a/storage/kv",
        "/client/v4/accounts/a/storage/kv/namespaces/n/nothing",
        "/client/v4/accounts/a/storage/kv/namespaces/n/bulk/other",
        "/client/v4/accounts/a/workers/scripts",
    ],
)
def test_unmatched(path: str) -> None:
    assert match_route(path.encode()) is None


def test_client_paths_are_what_the_server_routes() -> None:
    key = "a/b c%2F?#ü"
    m = match_route(wire.value_path("acc", "ns1", key).encode())
    assert m is not None and (m.kind, m.account_id, m.namespace_id) == ("value", "acc", "ns1")
    assert unquote_key(m.raw_key or b"") == key
    for tail, kind in [
        (wire.KEYS, "keys"),
        (wire.BULK, "bulk"),
        (wire.BULK_GET, "bulk_get"),
        (wire.BULK_DELETE, "bulk_delete"),
        ("", "namespace"),
    ]:
        m = match_route(wire.namespace_path("acc", "ns1", tail).encode())
        assert m is not None and m.kind == kind and m.namespace_id == "ns1"
    m = match_route(wire.namespaces_path("acc").encode())
    assert m is not None and m.kind == "namespaces" and m.account_id == "acc"


def test_unquote_key_refuses_bytes_that_are_not_utf8() -> None:
    assert unquote_key(b"%2541") == "%41"  # exactly once
    with pytest.raises(UnicodeDecodeError):
        unquote_key(b"%ff")


@given(st.text())
def test_b64url_round_trip_without_padding(text: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError:
        return  # lone surrogates are no metadata JSON
    encoded = wire.b64url_encode(text)
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded
    assert wire.b64url_decode(encoded) == text
    assert encoded == base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("bad", ["a", base64.urlsafe_b64encode(b"\xff").decode()])
def test_b64url_decode_refuses_garbage(bad: str) -> None:
    with pytest.raises(ValueError):
        wire.b64url_decode(bad)


def test_envelope_round_trip_and_unwrapping() -> None:
    body = wire.error_body(wire.KEY_NOT_FOUND, wire.wrap_message("get", "key not found"))
    assert wire.first_error(body) == (10009, "key not found")
    assert wire.first_error(wire.error_body(7003, "No route for that URI: /x")) == (
        7003,
        "No route for that URI: /x",
    )
    for garbage in (b"", b"<html>502</html>", b"{}", b'{"errors": []}', b'{"errors": [1]}'):
        assert wire.first_error(garbage) is None
    assert b'"result":{"a":1}' in wire.ok_body({"a": 1})


def test_error_table_is_the_exception_classes() -> None:
    assert {
        10013: NamespaceNotFound,
        10014: NamespaceTitleTaken,
        10018: TooManyNamespaces,
        10410: HistoryGone,
        10412: PreconditionFailed,
    } == wire.STORE_ERRORS
    assert (
        NamespaceNotFound.code,
        StoreUnavailable.code,
        StoreError.code,
    ) == (wire.NAMESPACE_NOT_FOUND, wire.UNAVAILABLE, wire.INTERNAL)
    # Rebuilt on a client, each reads as the store's own error would.
    lost = NamespaceNotFound.from_answer("namespace not found", namespace_id="n1")
    assert isinstance(lost, NamespaceNotFound) and lost.detail == NamespaceNotFound("n1").detail
    taken = NamespaceTitleTaken.from_answer("whatever", title="t")
    assert isinstance(taken, NamespaceTitleTaken) and taken.title == "t"
    full = TooManyNamespaces.from_answer(TooManyNamespaces(1000).detail)
    assert isinstance(full, TooManyNamespaces) and full.limit == 1000
    assert full.detail == TooManyNamespaces(1000).detail


def test_public_detail_hides_what_clients_must_not_see() -> None:
    assert StoreUnavailable("host db.internal:5432 refused").public_detail == (
        "the store is unavailable, try again shortly"
    )
    assert NamespaceNotFound("n1").public_detail == "namespace not found"
    assert StoreError("x").public_detail == "x"


def test_value_form_is_multipart_with_both_fields() -> None:
    body, content_type = wire.value_form(b"\x00v", '{"a":1}')
    boundary = content_type.split("boundary=", 1)[1].encode()
    assert content_type.startswith("multipart/form-data; boundary=")
    assert body.startswith(b"--" + boundary) and body.endswith(b"--" + boundary + b"--\r\n")
    assert b'name="value"' in body and b'name="metadata"' in body
    assert b"\x00v\r\n" in body and b'{"a":1}\r\n' in body


def test_match_value_answers_as_match_route_does_for_value_routes_only() -> None:
    base = "/client/v4/accounts/a1/storage/kv/namespaces/n1"
    for path in (f"{base}/values/a%2Fb%20c", f"{base}/values/", f"{base}/values/x/y"):
        m = match_route(path.encode())
        assert m is not None and m.kind == "value"
        assert match_value(path.encode()) == (m.account_id, m.namespace_id, m.raw_key)
    for path in (f"{base}/metadata/k", f"{base}/keys", f"{base}/values", "/healthz"):
        assert match_value(path.encode()) is None
