"""The exceptions that cross module boundaries: the binding's, the stores', the servers'.

The public pair is `KVError` / `KVTypeError` (the binding's, with Workers KV's messages).
Stores raise `StoreError` subclasses, which carry an HTTP-style status and the Cloudflare API
error code but no operation name: the binding (and the REST layer) turn them into the message
of the operation that failed, and the wire protocol (`edgekv.wire`) takes its error table
from these classes. `ClientDisconnected` is the ASGI layer's (`edgekv.asgi`). Exceptions
that never leave their module stay there (e.g. `edgekv.api.envelope.ApiError`,
`edgekv.workers.config.ConfigError`).
"""

from __future__ import annotations

__all__ = [
    "ClientDisconnected",
    "ExportFormatError",
    "HistoryGone",
    "InvalidText",
    "KVConflict",
    "KVError",
    "KVTypeError",
    "NamespaceIdTaken",
    "NamespaceNotFound",
    "NamespaceTitleTaken",
    "PreconditionFailed",
    "SinceAhead",
    "StoreError",
    "StoreUnavailable",
    "TooManyNamespaces",
    "kv_error",
    "store_errors",
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


class KVConflict(KVError):
    """A conditional write or delete whose condition failed: nothing was written. `version` is
    the key's current version (None when it is missing)."""

    def __init__(self, op: str, version: str | None) -> None:
        detail = "Precondition failed."
        super().__init__(f"KV {op} failed: 412 {detail}", 412, code=10412, detail=detail)
        self.version = version


class StoreError(Exception):
    """Raised by a store; `status`, `code` (Cloudflare API error code) and `detail` become a
    `KVError` or a REST error envelope (whose text is `public_detail`)."""

    status = 500
    code = 10002

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def public_detail(self) -> str:
        """What a server tells its clients (`detail` unless that could leak internals)."""
        return self.detail

    @classmethod
    def from_answer(cls, detail: str, *, namespace_id: str = "", title: str = "") -> StoreError:
        """This error again, on a client, from a server's answer: `detail` is the answer's
        text, `namespace_id` and `title` what the failed call named."""
        error = cls.__new__(cls)
        StoreError.__init__(error, detail)
        return error


class NamespaceNotFound(StoreError):
    status = 404
    code = 10013

    def __init__(self, namespace_id: str) -> None:
        super().__init__(f"namespace {namespace_id} not found")
        self.namespace_id = namespace_id

    @property
    def public_detail(self) -> str:
        return "namespace not found"  # the same answer whether it does not exist or is not yours

    @classmethod
    def from_answer(cls, detail: str, *, namespace_id: str = "", title: str = "") -> StoreError:
        return cls(namespace_id)


class NamespaceTitleTaken(StoreError):
    status = 400
    code = 10014

    def __init__(self, title: str) -> None:
        super().__init__("A namespace with this account ID and title already exists")
        self.title = title

    @classmethod
    def from_answer(cls, detail: str, *, namespace_id: str = "", title: str = "") -> StoreError:
        if detail == NamespaceIdTaken.MESSAGE:  # the same code (10014) for a chosen id taken
            return NamespaceIdTaken(namespace_id)
        return cls(title)


class NamespaceIdTaken(NamespaceTitleTaken):
    """`create_namespace` with a chosen id that exists already (a `NamespaceTitleTaken`, so
    that callers retrying under another title see the same status)."""

    MESSAGE = "A namespace with this ID already exists"

    def __init__(self, namespace_id: str) -> None:
        StoreError.__init__(self, self.MESSAGE)
        self.title = ""
        self.namespace_id = namespace_id


class TooManyNamespaces(StoreError):
    status = 400
    code = 10018

    def __init__(self, limit: int) -> None:
        super().__init__(f"This account already has the maximum of {limit} namespaces")
        self.limit = limit

    @classmethod
    def from_answer(cls, detail: str, *, namespace_id: str = "", title: str = "") -> StoreError:
        digits = "".join(c for c in detail if c.isdigit())
        return cls(int(digits) if digits else 1000)  # the text names the limit


class PreconditionFailed(StoreError):
    """A conditional write's condition did not hold; `version` is the key's current version
    (None when it is missing or expired)."""

    status = 412
    code = 10412

    def __init__(self, version: str | None) -> None:
        super().__init__("precondition failed")
        self.version = version

    @classmethod
    def from_answer(cls, detail: str, *, namespace_id: str = "", title: str = "") -> StoreError:
        return cls(None)  # the client reads the current version from the answer's ETag


class HistoryGone(StoreError):
    """A change feed read from a `since` older than the history the store keeps: changes
    before `oldest` are gone (the reader must resynchronise, never skip silently)."""

    status = 410
    code = 10410

    def __init__(self, oldest: int) -> None:
        super().__init__(f"history before {oldest} is no longer kept")
        self.oldest = oldest

    @classmethod
    def from_answer(cls, detail: str, *, namespace_id: str = "", title: str = "") -> StoreError:
        digits = "".join(c for c in detail if c.isdigit())
        return cls(int(digits) if digits else 0)  # the text names the oldest kept seq


class SinceAhead(StoreError):
    """A change feed read from a `since` beyond the namespace's newest change: a cursor of
    another store (or of a namespace deleted meanwhile) that this feed never handed out."""

    status = 400
    code = 10001

    def __init__(self, since: int, head: int) -> None:
        super().__init__(f"since {since} is ahead of the newest change ({head})")
        self.since = since
        self.head = head


class InvalidText(StoreError):
    """Text a store cannot hold (PostgreSQL: a NUL character): the client's error."""

    status = 400
    code = 10001


class StoreUnavailable(StoreError):
    """The store (a database, a central server) cannot be reached right now."""

    status = 503
    code = 10050

    @property
    def public_detail(self) -> str:
        # The driver's text may name the database host: it goes to the log, not to clients.
        return "the store is unavailable, try again shortly"


class ClientDisconnected(Exception):
    """The client went away mid-request (while its body was being read): nothing to answer."""


def kv_error(op: str, exc: StoreError) -> KVError:
    """A store failure as the `KVError` of operation `op` (`KV <OP> failed: <status> ...`)."""
    if isinstance(exc, PreconditionFailed):
        return KVConflict(op, exc.version)
    return KVError.for_op(op, exc.status, exc.detail, code=exc.code)


class store_errors:  # used as a function: `with store_errors("PUT"):`
    """`with store_errors(op): ...` — a `StoreError` raised inside becomes the `KVError` of
    `op` (`kv_error`). A class, not `contextlib.contextmanager`: ~3x cheaper per use. The
    binding's cached get inlines the try instead (this costs ~20% of that read, measured)."""

    __slots__ = ("op",)

    def __init__(self, op: str) -> None:
        self.op = op

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, StoreError):
            raise kv_error(self.op, exc) from None
