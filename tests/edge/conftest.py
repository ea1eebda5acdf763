"""Fixtures of the location tests.

`world`: one real centre (a `MemoryStore` behind a `CountingStore`), one namespace in it, an
`admin` binding that writes to the centre directly, and `world.location(name)` to open any number
of locations over it, each a `LocationCache` with its own `FakeClock`, seen through a binding.

The `store` fixture is overridden here so that tests/edge/test_binding_suite.py runs the whole
binding-rules suite through the remote binding (`remote`) and through a location (`location`),
both against a real central server on loopback (see tests/edge/servers.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from edgekv import Client, KVNamespace
from edgekv._types import Store
from edgekv.edge.cache import LocationCache
from edgekv.store.memory import MemoryStore
from tests.conftest import FakeClock, open_client
from tests.edge.central import CountingStore
from tests.edge.servers import InProcessCentral, SessionCentral

START = 1_700_000_000.0


@dataclass
class Location:
    name: str
    clock: FakeClock
    cache: LocationCache
    client: Client
    ns: KVNamespace


@dataclass
class World:
    central: CountingStore
    clock: FakeClock  # the centre's clock (admin writes)
    admin: KVNamespace
    admin_client: Client
    ns_id: str
    memory: MemoryStore
    locations: list[Location] = field(default_factory=list)

    async def location(self, name: str, *, push: bool = False, **options: Any) -> Location:
        """A location over the centre; `push=True`: it follows the centre's feed in manual
        mode (`await loc.cache.follower.pump()` delivers what changed)."""
        clock = FakeClock(self.clock.now)
        if push:
            options = {"feed": self.memory, "manual_feed": True, **options}
        cache = LocationCache(self.central, location=name, clock=clock, push=push, **options)
        client = await open_client(cache, clock)
        loc = Location(name, clock, cache, client, client.namespace(self.ns_id))
        self.locations.append(loc)
        return loc

    def advance(self, seconds: float) -> None:
        """Move every clock (the centre's and each location's) together."""
        self.clock.advance(seconds)
        for loc in self.locations:
            loc.clock.advance(seconds)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    memory = MemoryStore()
    clock = FakeClock(START)
    admin_client = await open_client(memory, clock)
    ns = await admin_client.create_namespace("edge")
    central = CountingStore(memory)
    w = World(central, clock, ns, admin_client, ns.id, memory)
    yield w
    for loc in w.locations:
        await loc.client.aclose()
    await admin_client.aclose()


# -- the binding-rules suite through a central server ----------------------------------------


@pytest.fixture(scope="session")
def session_central() -> Iterator[SessionCentral]:
    """One in-process central server (MemoryStore) for the whole session; each test gets its
    own account and token, and the server reads the test's FakeClock."""
    central = SessionCentral()
    with central:
        yield central


@pytest.fixture(params=["remote", "location"])
async def store(
    request: pytest.FixtureRequest, session_central: SessionCentral, clock: FakeClock
) -> AsyncIterator[Store]:
    session_central.clock.target = clock
    account, token = session_central.new_account()
    from edgekv.edge.remote import RemoteStore

    s: Store = RemoteStore(session_central.url, token=token, account_id=account)
    if request.param == "location":
        s = LocationCache(s, location="test", clock=clock)
    async with contextlib.aclosing(s):
        yield s


@pytest.fixture
async def kv(store: Store, clock: FakeClock) -> Client:
    """As tests/conftest.py's, with the remote account (the store fixture closes it)."""
    account = getattr(store, "account_id", None) or getattr(
        getattr(store, "inner", None), "account_id", None
    )
    return await open_client(store, clock, account)


__all__ = ["InProcessCentral", "Location", "World"]
