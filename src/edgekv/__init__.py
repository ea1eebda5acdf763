"""edgekv: Workers KV semantics on your own machines.

    import edgekv
    async with edgekv.open("./data") as kv:
        todo = await kv.create_namespace("My tasks")
        await todo.put("to-do:123", "buy milk", expiration_ttl=600)
        await todo.get("to-do:123")  # 'buy milk'

`edgekv.sync.open(...)` is the same API for scripts, without `await`.
"""

from edgekv._client import Client, open
from edgekv._exceptions import ExportFormatError, KVConflict, KVError, KVTypeError
from edgekv._export import ExportEntry, ExportHeader
from edgekv._models import (
    Change,
    KeyListEntry,
    ListResult,
    Namespace,
    ValueStream,
    ValueWithMetadata,
)
from edgekv._namespace import KVNamespace, ValueType
from edgekv._transfer import Export, ImportResult

__version__ = "0.1.0"

__all__ = [
    "Change",
    "Client",
    "Export",
    "ExportEntry",
    "ExportFormatError",
    "ExportHeader",
    "ImportResult",
    "KVConflict",
    "KVError",
    "KVNamespace",
    "KVTypeError",
    "KeyListEntry",
    "ListResult",
    "Namespace",
    "ValueStream",
    "ValueType",
    "ValueWithMetadata",
    "__version__",
    "open",
]
