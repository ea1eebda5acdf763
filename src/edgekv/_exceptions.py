"""Every exception edgekv raises, in one place.

The public pair is `KVError` / `KVTypeError` (binding-rules.md). Stores raise `StoreError`
subclasses, which carry an HTTP-style status but no operation name: the binding (and the REST
layer) turn them into the message of the operation that failed.
"""

from __future__ import annotations

__all__ = [
    "ExportFormatError",
    "KVError",
    "KVTypeError",
    "NamespaceNotFound",
    "NamespaceTitleTaken",
    "StoreError",
    "StoreUnavailable",
    "TooManyNamespaces",
    "kv_error",
]


class KVError(Exception):
    """A failed KV operation. `status` is HTTP-style; the message reads `KV <OP> failed: ...`.

    `detail` is the message without that prefix and `code` the Cloudflare API error code the
    REST API answers with (both set by edgekv's own checks; None on user-made instances).
    """

    def __init__(
        self,
        message: str,
        status: int = 500,
        *,
        code: int | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = message if detail is None else detail

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    @classmethod
    def for_op(cls, op: str, status: int, detail: str, *, code: int | None = None) -> KVError:
        return cls(f"KV {op} failed: {status} {detail}", status, code=code, detail=detail)


class KVTypeError(KVError, TypeError):
    """The cases the JS runtime raises as `TypeError`: bare message, status 400."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message, 400, code=code)


class ExportFormatError(KVError):
    """An export (NDJSON) line that cannot be imported: `.line` is its number (1-based; for an
    import from an iterable, the item's position), `.reason` what is wrong with it, and
    `.written` how many entries were written before it (all of them are safe to write again)."""

    def __init__(self, line: int, reason: str, *, written: int = 0) -> None:
        super().__init__(f"line {line}: {reason}", 400, detail=reason)
        self.line = line
        self.reason = reason
        self.written = written


class StoreError(Exception):
    """Raised by a store; `status`, `code` (Cloudflare API error code) and `detail` become a
    `KVError` or a REST error envelope."""

    status = 500
    code = 10002

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NamespaceNotFound(StoreError):
    status = 404
    code = 10013

    def __init__(self, namespace_id: str) -> None:
        super().__init__(f"namespace {namespace_id} not found")
        self.namespace_id = namespace_id


class NamespaceTitleTaken(StoreError):
    status = 400
    code = 10014

    def __init__(self, title: str) -> None:
        super().__init__("A namespace with this account ID and title already exists")
        self.title = title


class TooManyNamespaces(StoreError):
    status = 400
    code = 10018

    def __init__(self, limit: int) -> None:
        super().__init__(f"This account already has the maximum of {limit} namespaces")
        self.limit = limit


class StoreUnavailable(StoreError):
    """The store (a database, a central server) cannot be reached right now."""

    status = 503
    code = 10050


def kv_error(op: str, exc: StoreError) -> KVError:
    """A store failure as the `KVError` of operation `op` (`KV <OP> failed: <status> ...`)."""
    return KVError.for_op(op, exc.status, exc.detail, code=exc.code)
