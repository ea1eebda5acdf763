"""The OpenAPI 3 description of the REST API, served at `/client/v4/openapi.json`.

Written by hand from the same facts as docs/rest-api.md (routes live in app.py); a test checks
that every route of the app is described here and every path described is routed.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from edgekv import __version__

__all__ = ["document", "document_bytes"]

NS = "/accounts/{account_id}/storage/kv/namespaces"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _param(name: str, where: str, schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": text,
    }


ACCOUNT = _param("account_id", "path", {"type": "string"}, "32 lowercase hex characters")
NAMESPACE = _param("namespace_id", "path", {"type": "string"}, "32 lowercase hex characters")
KEY = _param("key_name", "path", {"type": "string"}, "the key, percent-encoded as one segment")


def _envelope(result: dict[str, Any], text: str = "success") -> dict[str, Any]:
    schema = {"allOf": [_ref("Envelope"), {"properties": {"result": result}}]}
    return {"description": text, "content": {"application/json": {"schema": schema}}}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "4XX": {
        "description": "an error envelope (codes in the description of the API)",
        "content": {"application/json": {"schema": _ref("Envelope")}},
    }
}

_NULL: dict[str, Any] = {"nullable": True}
_BULK_RESULT = _ref("BulkResult")


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": {**responses, **_ERRORS}, **extra}


def _paths() -> dict[str, Any]:
    ns_list = [
        _param("page", "query", {"type": "integer", "minimum": 1}, "page number, from 1"),
        _param("per_page", "query", {"type": "integer", "minimum": 1, "maximum": 1000}, ""),
        _param("order", "query", {"type": "string", "enum": ["id", "title"]}, ""),
        _param("direction", "query", {"type": "string", "enum": ["asc", "desc"]}, ""),
    ]
    title_body = _json_body(
        {
            "type": "object",
            "required": ["title"],
            "properties": {"title": {"type": "string", "maxLength": 512}},
        }
    )
    create_body = _json_body(
        {
            "type": "object",
            "required": ["title"],
            "properties": {
                "title": {"type": "string", "maxLength": 512},
                "jurisdiction": {"type": "string", "enum": ["eu", "us", "fedramp"]},
                "id": {
                    "type": "string",
                    "pattern": "^[0-9a-f]{32}$",
                    "description": "edgekv extension: the id of the new namespace",
                },
            },
        }
    )
    keys_params = [
        _param(
            "limit",
            "query",
            {"type": "integer", "minimum": 1, "maximum": 1000},
            "keys per page (edgekv accepts below Cloudflare's minimum of 10)",
        ),
        _param("prefix", "query", {"type": "string"}, ""),
        _param("cursor", "query", {"type": "string"}, "from the previous page's result_info"),
    ]
    value_write = {
        "required": True,
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["value"],
                    "properties": {
                        "value": {"type": "string", "format": "binary"},
                        "metadata": {"type": "string", "description": "JSON"},
                    },
                }
            },
        },
    }
    expiry = [
        _param("expiration", "query", {"type": "integer"}, "absolute UNIX seconds"),
        _param("expiration_ttl", "query", {"type": "integer", "minimum": 60}, "seconds"),
    ]
    bulk_item = {
        "type": "object",
        "required": ["key", "value"],
        "properties": {
            "key": {"type": "string"},
            "value": {"type": "string"},
            "base64": {"type": "boolean"},
            "expiration": {"type": "integer"},
            "expiration_ttl": {"type": "integer"},
            "metadata": {},
        },
    }
    key_names = {"type": "array", "maxItems": 10000, "items": {"type": "string"}}
    bulk_get_body = {
        "type": "object",
        "required": ["keys"],
        "properties": {
            "keys": {"type": "array", "maxItems": 100, "items": {"type": "string"}},
            "type": {"type": "string", "enum": ["text", "json"]},
            "withMetadata": {"type": "boolean"},
            "encoding": {
                "type": "string",
                "enum": ["base64"],
                "description": "edgekv: values as base64 of their bytes",
            },
        },
    }
    ns_item = [ACCOUNT, NAMESPACE]
    keyed = [ACCOUNT, NAMESPACE, KEY]
    if_match = _param(
        "If-Match",
        "header",
        {"type": "string"},
        'write only if the key\'s version is this ETag ("<version>"); else 412, code 10412',
    )
    if_none_match = _param(
        "If-None-Match", "header", {"type": "string", "enum": ["*"]}, "write only if missing"
    )
    etag_header = {
        "ETag": {"description": 'the entry\'s version: "<version>"', "schema": {"type": "string"}}
    }
    changes_params = [
        _param(
            "since",
            "query",
            {"type": "string", "pattern": "^[0-9]+$"},
            "changes with seq > since (omitted: from the head, an empty page)",
        ),
        _param("prefix", "query", {"type": "string"}, "only keys starting with these bytes"),
        _param(
            "limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 1000"
        ),
        _param(
            "wait",
            "query",
            {"type": "number", "minimum": 0, "maximum": 60},
            "seconds to hold the request until a matching change commits (default 0)",
        ),
    ]
    return {
        "/memberships": {"get": _op("The token's account", {"200": _envelope({"type": "array"})})},
        "/accounts": {"get": _op("The token's account", {"200": _envelope({"type": "array"})})},
        "/accounts/{account_id}": {
            "get": _op("An account", {"200": _envelope({})}, parameters=[ACCOUNT])
        },
        "/user/tokens/verify": {"get": _op("Verify the token", {"200": _envelope({})})},
        "/user": {"get": _op("The token, described as a user", {"200": _envelope({})})},
        NS: {
            "get": _op(
                "List namespaces",
                {"200": _envelope({"type": "array", "items": _ref("Namespace")})},
                parameters=[ACCOUNT, *ns_list],
            ),
            "post": _op(
                "Create a namespace",
                {"200": _envelope(_ref("Namespace"))},
                parameters=[ACCOUNT],
                requestBody=create_body,
            ),
        },
        NS + "/{namespace_id}": {
            "get": _op(
                "Get a namespace", {"200": _envelope(_ref("Namespace"))}, parameters=ns_item
            ),
            "put": _op(
                "Rename a namespace",
                {"200": _envelope(_ref("Namespace"))},
                parameters=ns_item,
                requestBody=title_body,
            ),
            "delete": _op("Delete a namespace", {"200": _envelope(_NULL)}, parameters=ns_item),
        },
        NS + "/{namespace_id}/stats": {
            "get": _op(
                "edgekv: live keys of the namespace and their bytes (maintained totals)",
                {"200": _envelope(_ref("NamespaceStats"))},
                parameters=ns_item,
            ),
        },
        NS + "/{namespace_id}/metrics": {
            "get": _op(
                "edgekv: the namespace's requests over the last hour, per minute, with p50/p99",
                {"200": _envelope({"type": "object"})},
                parameters=ns_item,
            ),
        },
        NS + "/{namespace_id}/keys": {
            "get": _op(
                "List keys",
                {"200": _envelope({"type": "array", "items": _ref("Key")})},
                parameters=[*ns_item, *keys_params],
            ),
        },
        NS + "/{namespace_id}/export": {
            "get": _op(
                "Export the namespace as one consistent snapshot (edgekv): NDJSON, streamed. "
                "Line 1 the header {edgekv_export: 1, namespace, seq, exported_at}, then one "
                "bulk-write item per live key in UTF-8 byte order of keys, then the trailer "
                "{edgekv_export_end: true, count}; a stream without the trailer is incomplete",
                {
                    "200": {
                        "description": "the export",
                        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                    }
                },
                parameters=ns_item,
            ),
        },
        NS + "/{namespace_id}/values/{key_name}": {
            "get": _op(
                "Read a value (raw bytes, no envelope; headers `expiration` and, edgekv, "
                "`edgekv-metadata`: base64url of the metadata JSON)",
                {
                    "200": {
                        "description": "the value",
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    }
                },
                parameters=keyed,
            ),
            "put": _op(
                "Write a value (answers the new ETag)",
                {"200": {**_envelope(_NULL), "headers": etag_header}},
                parameters=[*keyed, *expiry, if_match, if_none_match],
                requestBody=value_write,
            ),
            "delete": _op(
                "Delete a value", {"200": _envelope(_NULL)}, parameters=[*keyed, if_match]
            ),
        },
        NS + "/{namespace_id}/metadata/{key_name}": {
            "get": _op(
                "Read metadata",
                {"200": {**_envelope({}), "headers": etag_header}},
                parameters=keyed,
            ),
        },
        NS + "/{namespace_id}/changes": {
            "get": _op(
                "The namespace's change feed (a long poll with `wait`); result_info.cursor is"
                " the `since` of the next call. 410 (code 10410) when `since` is older than"
                " the kept history",
                {"200": _envelope({"type": "array", "items": _ref("Change")})},
                parameters=[*ns_item, *changes_params],
            ),
        },
        NS + "/{namespace_id}/bulk": {
            "put": _op(
                "Write up to 10,000 pairs",
                {"200": _envelope(_BULK_RESULT)},
                parameters=ns_item,
                requestBody=_json_body({"type": "array", "maxItems": 10000, "items": bulk_item}),
            ),
            "delete": _op(
                "Delete up to 10,000 keys (older route)",
                {"200": _envelope(_BULK_RESULT)},
                parameters=ns_item,
                requestBody=_json_body(key_names),
            ),
        },
        NS + "/{namespace_id}/bulk/delete": {
            "post": _op(
                "Delete up to 10,000 keys",
                {"200": _envelope(_BULK_RESULT)},
                parameters=ns_item,
                requestBody=_json_body(key_names),
            ),
        },
        NS + "/{namespace_id}/bulk/get": {
            "post": _op(
                "Read up to 100 keys",
                {"200": _envelope({"type": "object"})},
                parameters=ns_item,
                requestBody=_json_body(bulk_get_body),
            ),
        },
    }


@functools.cache
def document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "edgekv REST API (Cloudflare API v4 dialect for Workers KV)",
            "version": __version__,
            "description": (
                "Errors answer the envelope with a Cloudflare code: 10000 authentication, "
                "10009 key not found, 10013 namespace not found, 10014 title taken, 10018 too "
                "many namespaces, 10019 missing title, 10024 too large, 10028 bad limit, "
                "10030 key too long, 10033/10034 bad expiration/ttl, 10037 not permitted, "
                "10041 bad cursor, 10042 illegal key, 10043/10044 bad order/direction, "
                "10047 bad metadata, 10410 change history no longer kept, "
                "10412 precondition failed, 7003 no route."
            ),
        },
        "servers": [{"url": "/client/v4"}],
        "security": [{"bearer": []}, {"authKey": [], "authEmail": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "authKey": {"type": "apiKey", "in": "header", "name": "X-Auth-Key"},
                "authEmail": {"type": "apiKey", "in": "header", "name": "X-Auth-Email"},
            },
            "schemas": {
                "Envelope": {
                    "type": "object",
                    "required": ["success", "errors", "messages", "result"],
                    "properties": {
                        "success": {"type": "boolean"},
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "code": {"type": "integer"},
                                    "message": {"type": "string"},
                                },
                            },
                        },
                        "messages": {"type": "array", "items": {}},
                        "result": {},
                        "result_info": {"type": "object"},
                    },
                },
                "Namespace": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "title": {"type": "string"},
                        "supports_url_encoding": {"type": "boolean"},
                        "jurisdiction": {"type": "string", "enum": ["eu", "us", "fedramp"]},
                    },
                },
                "Key": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "expiration": {"type": "integer"},
                        "metadata": {},
                    },
                },
                "Change": {
                    "type": "object",
                    "required": ["seq", "key", "op"],
                    "properties": {
                        "seq": {"type": "integer"},
                        "key": {"type": "string"},
                        "op": {"type": "string", "enum": ["put", "delete"]},
                        "version": {"type": "string"},
                        "expiration": {"type": "integer"},
                        "metadata": {},
                    },
                },
                "NamespaceStats": {
                    "type": "object",
                    "required": ["key_count", "bytes"],
                    "properties": {
                        "key_count": {"type": "integer"},
                        "bytes": {"type": "integer"},
                    },
                },
                "BulkResult": {
                    "type": "object",
                    "properties": {
                        "successful_key_count": {"type": "integer"},
                        "unsuccessful_keys": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    }


@functools.cache
def document_bytes() -> bytes:
    return orjson.dumps(document())
