"""The KV binding as a worker sees it: `KVNamespace` with the JavaScript spellings beside the
Python ones, so a Python Worker written for Cloudflare runs unchanged.

Cloudflare's Python Workers call the JavaScript binding through Pyodide: options travel as a JS
object, written either as a dict (`get(key, {"type": "json"})`) or as keyword arguments
(`put(key, value, expirationTtl=60)`, which Pyodide turns into that object), and results come
back converted to Python (`JsObject` below: a dict whose keys are also attributes). The Python
spellings (`get_with_metadata`, `cache_ttl=`, `expiration_ttl=`) keep working on the same object:
every call ends in `KVNamespace`, so the rules and messages of binding-rules.md exist once.

Kept here rather than on `edgekv.KVNamespace`: the library's binding stays one Python API, and
the JavaScript dialect is a property of the worker runtime, like Pyodide's conversions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgekv._models import KeyListEntry, ListResult, ValueWithMetadata
from edgekv._namespace import KVNamespace

__all__ = ["JsKey", "JsListResult", "JsObject", "WorkerKV", "to_js_shape"]

# JS option name -> the keyword of KVNamespace. Python names are accepted in a dict as well.
_GET_OPTIONS = {"type": "type", "cacheTtl": "cache_ttl", "cache_ttl": "cache_ttl"}
_PUT_OPTIONS = {
    "expiration": "expiration",
    "expirationTtl": "expiration_ttl",
    "expiration_ttl": "expiration_ttl",
    "metadata": "metadata",
}
_LIST_OPTIONS = {"prefix": "prefix", "limit": "limit", "cursor": "cursor"}
_CAMEL = {"cacheTtl": "cache_ttl", "expirationTtl": "expiration_ttl"}


class JsObject(dict[str, Any]):
    """A JavaScript object as a Python Worker receives it: a `dict` (`result["value"]`,
    `result.get("cursor")`) whose keys are also attributes (`result.value`)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no key {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_py(self) -> dict[str, Any]:
        """What Pyodide's `JsProxy.to_py()` gives: this object is already Python."""
        return self


class JsKey(JsObject):
    """One key of a list result: `{"name", "expiration"?, "metadata"?}`. As on edgekv's own
    `KeyListEntry`, `.expiration` and `.metadata` are None when the key has none."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name in ("expiration", "metadata"):
            return self.get(name)
        return super().__getattr__(name)

    def to_dict(self) -> dict[str, Any]:
        return dict(self)


class JsListResult(JsObject):
    """What `list()` returns: `{"keys", "list_complete", "cursor"?, "cacheStatus"}` as the JS
    binding does, with edgekv's `ListResult` attributes too (`.keys` is the list of keys here,
    not the dict method; `.cursor` is None on the last page; `.cache_status`; `to_dict()`)."""

    __slots__ = ()

    @property
    def keys(self) -> list[JsKey]:  # type: ignore[override]
        found: list[JsKey] = self["keys"]
        return found

    @property
    def cursor(self) -> str | None:
        return self.get("cursor")

    @property
    def cache_status(self) -> str | None:
        return self.get("cacheStatus")

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.items() if k != "cacheStatus"}
        if self.cache_status is not None:
            out["cacheStatus"] = self.cache_status
        return out


def to_js_shape(value: Any) -> Any:
    """JSON data with every object as a `JsObject`, as the runtime converts JS values."""
    if isinstance(value, dict):
        return JsObject({k: to_js_shape(v) for k, v in value.items()})
    if isinstance(value, list):
        return [to_js_shape(v) for v in value]
    return value


def _key(entry: KeyListEntry) -> JsKey:
    key = JsKey(name=entry.name)
    if entry.expiration is not None:
        key["expiration"] = entry.expiration
    if entry.metadata_json is not None:
        key["metadata"] = to_js_shape(entry.metadata)
    return key


def _list_result(result: ListResult) -> JsListResult:
    out = JsListResult(keys=[_key(k) for k in result.keys], list_complete=result.list_complete)
    if result.cursor is not None:
        out["cursor"] = result.cursor
    out["cacheStatus"] = result.cache_status
    return out


def _with_metadata(result: ValueWithMetadata, value: Any) -> JsObject:
    return JsObject(value=value, metadata=to_js_shape(result.metadata))


def _options(
    method: str, options: object, kwargs: dict[str, Any], names: Mapping[str, str]
) -> dict[str, Any]:
    """The keyword arguments for `KVNamespace.<method>` from a JS options object (a dict, None,
    or for get a type string) and keyword arguments in either spelling. An option set to None
    counts as not given, as JS `undefined`/`null` does."""
    merged: dict[str, Any] = {}
    if isinstance(options, str) and "type" in names:
        merged["type"] = options
    elif isinstance(options, Mapping):
        for name, value in options.items():
            keyword = names.get(name) if isinstance(name, str) else None
            if keyword is None:
                known = ", ".join(n for n in names if n not in _CAMEL.values())
                raise TypeError(f"KV {method}(): unknown option {name!r} (options: {known})")
            if value is not None:
                merged[keyword] = value
    elif options is not None:
        what = "a type string or an options dict" if "type" in names else "an options dict"
        raise TypeError(f"KV {method}() takes {what}, not {type(options).__name__}")
    for name, value in kwargs.items():
        keyword = _CAMEL.get(name, name)  # other names go on as they are: Python checks them
        if keyword in merged and value is not None:
            raise TypeError(f"KV {method}(): option {name!r} given twice")
        if value is not None or keyword not in merged:
            merged[keyword] = value
    return merged


class WorkerKV(KVNamespace):
    """`env.<BINDING>` of a worker: the `KVNamespace` of that id, whose calls also take the
    JavaScript forms of Cloudflare's Python Workers:

        await env.KV.get(key, {"type": "json", "cacheTtl": 300})   # or type="json", cacheTtl=300
        await env.KV.getWithMetadata(key)            # {"value", "metadata", "cacheStatus"}
        await env.KV.put(key, value, expirationTtl=600, metadata={"v": 1})
        await env.KV.list({"prefix": "user:", "limit": 10})   # {"keys", "list_complete", ...}

    `get` with type "json" gives objects as `JsObject`; `list` always gives a `JsListResult`
    (which also has `ListResult`'s attributes). `get_with_metadata` is the Python spelling and
    returns edgekv's own result object."""

    __slots__ = ()

    async def get(self, key: Any, options: Any = None, /, **kwargs: Any) -> Any:  # type: ignore[override]
        if options is None and not kwargs:  # the hot path: no options to translate
            return await KVNamespace.get(self, key)
        opts = _options("get", options, kwargs, _GET_OPTIONS)
        type_: Any = opts.pop("type", None) or "text"
        value = await KVNamespace.get(self, key, type_, **opts)
        return to_js_shape(value) if type_ == "json" else value

    async def getWithMetadata(self, key: Any, options: Any = None, /, **kwargs: Any) -> Any:
        """`{"value", "metadata", "cacheStatus"}` (value and metadata None for a missing key;
        cacheStatus None unless a location cache served the read). Given a list of keys, a
        dict of key -> `{"value", "metadata"}` or None."""
        opts = _options("getWithMetadata", options, kwargs, _GET_OPTIONS)
        type_: Any = opts.pop("type", None) or "text"
        result: Any = await self.get_with_metadata(key, type_, **opts)
        if isinstance(key, list):
            return {
                k: None
                if r is None
                else _with_metadata(r, to_js_shape(r.value) if type_ == "json" else r.value)
                for k, r in result.items()
            }
        out = _with_metadata(result, to_js_shape(result.value) if type_ == "json" else result.value)
        out["cacheStatus"] = result.cache_status
        return out

    async def put(self, key: Any, value: Any, options: Any = None, /, **kwargs: Any) -> None:  # type: ignore[override]
        if options is None and not kwargs:
            return await KVNamespace.put(self, key, value)
        return await KVNamespace.put(
            self, key, value, **_options("put", options, kwargs, _PUT_OPTIONS)
        )

    async def list(self, options: Any = None, /, **kwargs: Any) -> JsListResult:  # type: ignore[override]
        opts = _options("list", options, kwargs, _LIST_OPTIONS) if options or kwargs else {}
        return _list_result(await KVNamespace.list(self, **opts))
