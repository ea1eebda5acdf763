"""API tokens: creation, lookup and the permission checks of a request.

A token is a random secret shown once; the store keeps only its SHA-256 hex (`TokenRecord`), so
a leaked database does not leak credentials. Lookups go by that hash and are confirmed with
`hmac.compare_digest`. A token belongs to one account, is read-only or read-write, and may be
limited to a list of namespaces. `Authorization: Bearer <token>` and Cloudflare's older
`X-Auth-Email` + `X-Auth-Key` (the key is the token) are both accepted.

Found tokens are cached for a few seconds: the hot read path then costs a dict lookup instead
of a store query. Unknown tokens are never cached, so a token made by `edgekv token create` in
another process works at once. Revocation: each cached token carries the store's
`token_revision()` seen before it was looked up, and a hit counts only while the store still
answers that revision; a revocation by any process sharing the store changes it (SQLite: re-read
every 5 ms; PostgreSQL: LISTEN/NOTIFY), so a revoked token is refused (401) from then on.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable

from edgekv import wire
from edgekv._types import Store, TokenRecord
from edgekv.api.envelope import ApiError
from edgekv.api.http import Request
from edgekv.store.memory import new_id

__all__ = [
    "Authenticator",
    "create_token",
    "hash_token",
    "new_secret",
]

TOKEN_CACHE_SECONDS = 10.0
TOKEN_CACHE_MAX = 10_000
MAX_TOKEN_CHARS = 1024  # longer is not one of ours; refuse before hashing megabytes


def new_secret() -> str:
    """40 URL-safe characters (240 bits), the shape of Cloudflare's API tokens."""
    return secrets.token_urlsafe(30)


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_token(
    store: Store,
    account_id: str,
    *,
    read_only: bool = False,
    namespaces: Iterable[str] | None = None,
    name: str = "",
    secret: str | None = None,
) -> tuple[str, TokenRecord]:
    """Store a new token for `account_id`; returns the secret (shown once) and its record."""
    secret = secret or new_secret()
    record = TokenRecord(
        id=new_id(),
        account_id=account_id,
        token_hash=hash_token(secret),
        read_only=read_only,
        namespaces=None if namespaces is None else tuple(namespaces),
        name=name,
    )
    await store.create_token(record)
    return secret, record


def _unauthenticated(status: int = 403) -> ApiError:
    return ApiError(status, wire.AUTH, "Authentication error", bare=True)


def _credential(headers: dict[bytes, bytes]) -> bytes | None:
    """The raw header that carries the token; X-Auth-Key's is marked with a NUL (which no header
    value holds) so that the two headers never share a cache entry."""
    auth = headers.get(b"authorization")
    if auth is not None:
        return auth
    key = headers.get(b"x-auth-key")
    return None if key is None else b"\0" + key


def _secret_of(credential: bytes) -> str:
    if credential.startswith(b"\0"):
        return credential[1:].decode("latin-1").strip()
    scheme, _, value = credential.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise _unauthenticated(401 if not value else 403)
    return value.strip()


class Authenticator:
    """Finds the token of a request (or refuses it) and checks what it may do."""

    def __init__(
        self,
        store: Callable[[], Awaitable[Store]],
        clock: Callable[[], float],
        revision: Callable[[], int | None] = lambda: None,
    ) -> None:
        self._store = store
        self._clock = clock  # monotonic: only ages cache entries
        self._revision = revision  # the store's token_revision (None: cache nothing)
        # raw credential header -> (record, valid until, revision): a hit skips parsing,
        # hashing and the store
        self._cache: dict[bytes, tuple[TokenRecord, float, int]] = {}

    def cached(self, request: Request) -> TokenRecord | None:
        """The token of a request seen in the last few seconds and not revoked since (no I/O,
        no hashing)."""
        return self.cached_token(request.headers)

    def cached_token(self, headers: dict[bytes, bytes]) -> TokenRecord | None:
        """`cached`, given the request's headers (name -> last value)."""
        credential = _credential(headers)
        if credential is None:
            return None
        cached = self._cache.get(credential)
        if cached is None or cached[1] <= self._clock() or cached[2] != self._revision():
            return None
        return cached[0]

    async def authenticate(self, request: Request) -> TokenRecord:
        credential = _credential(request.headers)
        if credential is None:
            raise _unauthenticated(401)
        cached = self.cached(request)
        if cached is not None:
            return cached
        now = self._clock()
        revision = self._revision()  # before the lookup: a revocation racing it is not missed
        if len(credential) > MAX_TOKEN_CHARS:
            raise _unauthenticated()
        secret = _secret_of(credential)
        if not secret:
            raise _unauthenticated(401)
        digest = hash_token(secret)
        record = await (await self._store()).find_token(digest)
        if record is None or not hmac.compare_digest(record.token_hash, digest):
            raise _unauthenticated()
        if record.revoked:
            raise _unauthenticated(401)
        if len(self._cache) >= TOKEN_CACHE_MAX:
            self._cache.clear()  # crude but bounded; a refill costs one query per token
        if revision is not None:
            self._cache[credential] = (record, now + TOKEN_CACHE_SECONDS, revision)
        return record


def check_account(token: TokenRecord, account_id: str) -> None:
    """A token only ever reaches its own account: anything else is 403, without saying
    whether that account exists."""
    if token.account_id != account_id:  # ids are not secrets: a plain comparison will do
        raise _unauthenticated()


def check_write(token: TokenRecord) -> None:
    if token.read_only:
        raise ApiError(
            403, wire.FORBIDDEN, "this API token is read-only and may not change data", bare=False
        )


def may_use_namespace(token: TokenRecord, namespace_id: str) -> bool:
    return token.namespaces is None or namespace_id in token.namespaces


def check_namespace(token: TokenRecord, namespace_id: str) -> None:
    if not may_use_namespace(token, namespace_id):
        raise _unauthenticated()
