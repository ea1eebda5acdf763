"""openapi.py: the document describes exactly the routes the app serves."""

from __future__ import annotations

from edgekv.api.app import ROUTES
from edgekv.api.openapi import NS, document
from tests.api.conftest import Api

# route kind of app.py -> its path in the document
PATHS = {
    "memberships": "/memberships",
    "accounts": "/accounts",
    "account": "/accounts/{account_id}",
    "verify": "/user/tokens/verify",
    "user": "/user",
    "stats": NS + "/{namespace_id}/stats",
    "ns_metrics": NS + "/{namespace_id}/metrics",
    "namespaces": NS,
    "namespace": NS + "/{namespace_id}",
    "keys": NS + "/{namespace_id}/keys",
    "value": NS + "/{namespace_id}/values/{key_name}",
    "metadata": NS + "/{namespace_id}/metadata/{key_name}",
    "bulk": NS + "/{namespace_id}/bulk",
    "bulk_delete": NS + "/{namespace_id}/bulk/delete",
    "bulk_get": NS + "/{namespace_id}/bulk/get",
    "export": NS + "/{namespace_id}/export",
    "changes": NS + "/{namespace_id}/changes",
}


def test_every_route_is_described_and_nothing_else() -> None:
    paths = document()["paths"]
    served = {
        (PATHS[kind], method.lower())
        for kind, methods in ROUTES.items()
        if kind in PATHS
        for method in methods
    }
    described = {(path, method) for path, ops in paths.items() for method in ops}
    assert served == described
    # outside /client/v4: liveness, readiness, the document itself, Prometheus text
    assert set(ROUTES) - set(PATHS) == {"healthz", "readyz", "openapi", "metrics"}


async def test_served_as_json(api: Api) -> None:
    async with api.client() as anonymous:
        r = await anonymous.get(api.url + "/client/v4/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["openapi"].startswith("3.") and body["servers"] == [{"url": "/client/v4"}]
