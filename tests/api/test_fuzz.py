"""A bounded property-based fuzz of the REST API from its own OpenAPI document (schemathesis):
valid and invalid requests, generated from `GET /client/v4/openapi.json`, against a real
`edgekv serve` over SQLite and over PostgreSQL. No answer may be a 5xx.

Bounded and deterministic: a fixed number of examples per engine (derandomized, no example
database, no shrinking), each request with a timeout, and a time budget that stops generating
early on a slow machine."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.api.conftest import start_central

EXAMPLES = 800  # per engine
BUDGET = 25.0  # seconds of requests per engine, at most


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_no_generated_request_is_a_server_error(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database = None
    if engine == "postgres":
        from tests import pgcluster

        dsn = request.getfixturevalue("postgres_dsn")
        database = asyncio.run(pgcluster.fresh_database(dsn))
    server = start_central(tmp_path / "data", database=database)
    try:
        auth = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(headers=auth) as http:
            document = http.get(server.api + "/openapi.json").json()
            ns = http.post(server.namespaces, json={"title": "fuzz"}).json()["result"]["id"]
            pairs = [{"key": f"k{i}", "value": "v", "metadata": {"i": i}} for i in range(20)]
            assert http.put(f"{server.namespaces}/{ns}/bulk", json=pairs).status_code == 200
        schema = schemathesis.openapi.from_dict(document)
        real = {"account_id": server.account, "namespace_id": ns}
        cases = st.one_of(
            # Mostly against the real account and namespace (past auth and the 404s)...
            schema.as_strategy(GenerationMode.POSITIVE, path_parameters=real),
            schema.as_strategy(GenerationMode.NEGATIVE, path_parameters=real),
            # ...and anything the document allows, ids included.
            schema.as_strategy(GenerationMode.POSITIVE),
            schema.as_strategy(GenerationMode.NEGATIVE),
        )
        session = requests.Session()
        stop_at = time.monotonic() + BUDGET
        sent: list[int] = []

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases)
        def one_request(case: schemathesis.Case) -> None:
            if time.monotonic() > stop_at:
                return
            response = case.call(base_url=server.api, session=session, headers=auth, timeout=30)
            sent.append(response.status_code)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:300]}\n{case.as_curl_command()}"
            )

        one_request()
        assert len(sent) >= 50, f"only {len(sent)} requests in {BUDGET} s"
        assert any(200 <= s < 300 for s in sent) and any(400 <= s < 500 for s in sent)
    finally:
        assert server.stop() == 0
