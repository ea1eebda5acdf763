"""JavaScript workers at two `edgekv edge` locations in front of one `edgekv serve`: writes go
to the centre, read-your-writes where written, cached reads elsewhere (with their
`cacheStatus`), and a centre that goes away: cached keys still served, cold calls a 503 in JS
within seconds. All real processes (one workerd per location)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import edgekv.sync
from tests import workerd
from tests.workers.processes import Server, central
from tests.workers.workerd.js import Caller, write_project

pytestmark = pytest.mark.skipif(not workerd.available(), reason="node/npm not installed")


def location(root: Path, env: dict[str, str], url: str, name: str) -> Server:
    return Server(
        [
            "edge",
            "--central",
            url,
            "--location",
            name,
            "--workerd",
            str(workerd.ensure_installed()),
        ],
        cwd=root,
        log_path=root / f"{name}.log",
        env=env,
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Server, Caller, Caller]]:
    centre, env = central(tmp_path)
    with centre:
        with edgekv.sync.open(
            env["EDGEKV_URL"], token=env["EDGEKV_API_TOKEN"], account_id=env["EDGEKV_ACCOUNT_ID"]
        ) as kv:
            ns = kv.create_namespace("js-edge").id
            other = kv.create_namespace("js-edge-2").id
        write_project(tmp_path, bindings={"KV": ns, "OTHER": other})
        ams, lhr = (location(tmp_path, env, centre.url, n) for n in ("ams", "lhr"))
        with (
            ams,
            lhr,
            httpx.Client(base_url=ams.url, timeout=30) as a,
            httpx.Client(base_url=lhr.url, timeout=30) as b,
        ):
            yield centre, Caller(a), Caller(b)


def test_the_consistency_model_across_two_locations(
    world: tuple[Server, Caller, Caller],
) -> None:
    _, ams, lhr = world
    ams.ok("put", "colour", "blue", {"metadata": {"by": "ams"}})
    # Read-your-writes where the write happened, whatever the cacheTtl.
    assert ams.ok("get", "colour", {"cacheTtl": 3600}) == "blue"
    # The other location fetches it from the centre once, then serves its cached copy.
    first = lhr.ok("getWithMetadata", "colour")
    assert first == {"value": "blue", "metadata": {"by": "ams"}, "cacheStatus": "MISS"}
    assert lhr.ok("getWithMetadata", "colour")["cacheStatus"] == "HIT"
    # A new write at ams: ams sees it at once; lhr may serve its copy until cacheTtl (60 s)
    # has passed (or sooner, when the centre pushes an invalidation), never anything else.
    ams.ok("put", "colour", "green")
    assert ams.ok("getWithMetadata", "colour")["value"] == "green"
    seen = lhr.ok("getWithMetadata", "colour")
    assert seen["value"] in ("blue", "green")
    if seen["value"] == "blue":
        # HIT, or UPDATING when the pushed change is being re-read in the background.
        assert seen["cacheStatus"] in ("HIT", "UPDATING") and seen["metadata"] == {"by": "ams"}
    # A miss: asked of the centre once (MISS), then answered from the location's negative copy
    # with the status production gives it (HIT); plain get is just null.
    assert lhr.ok("getWithMetadata", "later") == {
        "value": None,
        "metadata": None,
        "cacheStatus": "MISS",
    }
    assert lhr.ok("getWithMetadata", "later") == {
        "value": None,
        "metadata": None,
        "cacheStatus": "HIT",
    }
    assert lhr.ok("get", "later") is None
    # Lists go to the centre: both locations list the same keys.
    assert [k["name"] for k in ams.ok("list")["keys"]] == ["colour"]
    assert [k["name"] for k in lhr.ok("list")["keys"]] == ["colour"]
    # Exact errors from the location too.
    assert lhr.error("put", "k", "v", {"expirationTtl": 5}) == (
        "Error: KV PUT failed: 400 Invalid expiration_ttl of 5. Expiration TTL must be at least 60."
    )
    # The bulk read too: the copy seen, or the new value once the push has arrived (never back).
    bulk = lhr.ok("get", ["colour", "nope"])
    allowed = ("green",) if seen["value"] == "green" else ("blue", "green")
    assert bulk["map"]["nope"] is None and bulk["map"]["colour"] in allowed, bulk
    lhr.ok("delete", "colour")
    assert lhr.ok("get", "colour") is None


def test_centre_down_cached_keys_served_cold_calls_fail_fast(
    world: tuple[Server, Caller, Caller],
) -> None:
    centre, ams, lhr = world
    ams.ok("put", "cached", "still here")
    assert lhr.ok("get", "cached") == "still here"
    centre.kill()
    assert lhr.ok("get", "cached") == "still here"  # served from the location's cache
    started = time.monotonic()
    cold = lhr.error("get", "never-cached")
    assert cold.startswith("Error: KV GET failed: 503 "), cold
    write = lhr.error("put", "k", "v")
    assert write.startswith("Error: KV PUT failed: 503 "), write
    assert time.monotonic() - started < 15
