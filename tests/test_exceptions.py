"""_exceptions.py: store failures become the binding's errors in one way."""

from __future__ import annotations

import pytest

from edgekv import KVError
from edgekv._exceptions import NamespaceNotFound, StoreUnavailable, store_errors


def test_store_errors_turns_a_store_failure_into_the_operations_kverror() -> None:
    with pytest.raises(KVError) as info, store_errors("PUT"):
        raise NamespaceNotFound("n1")
    assert info.value.message == "KV PUT failed: 404 namespace n1 not found"
    assert (info.value.status, info.value.code) == (404, 10013)
    assert info.value.__suppress_context__  # the store's traceback is not the user's
    with pytest.raises(KVError) as info, store_errors("LIST_NAMESPACES"):
        raise StoreUnavailable("db down")
    assert info.value.message == "KV LIST_NAMESPACES failed: 503 db down"


def test_store_errors_lets_everything_else_through() -> None:
    with pytest.raises(ValueError, match="bug"), store_errors("GET"):
        raise ValueError("bug")
    with store_errors("GET"):
        pass
