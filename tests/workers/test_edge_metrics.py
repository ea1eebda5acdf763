"""`GET /metrics` of `edgekv edge`: the worker's requests and the location cache's reads in
Prometheus text, from real processes (a central server and a location) on loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workers.processes import Server, central
from tests.workers.projects import ON_FETCH_WORKER, write_project
from tests.workers.test_edge import edge_server, remote_namespace


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    server, env = central(tmp_path_factory.mktemp("centre"))
    with server:
        yield server, env


def counter(text: str, name: str) -> int:
    match = re.search(rf"^{re.escape(name)} (\d+)$", text, re.M)
    assert match, f"{name} not in:\n{text}"
    return int(match.group(1))


def test_location_metrics(centre: tuple[Server, dict[str, str]], tmp_path: Path) -> None:
    server, env = centre
    ns_id = remote_namespace(env, "metrics-test")
    write_project(tmp_path, ON_FETCH_WORKER, bindings={"KV": ns_id})
    with edge_server(tmp_path, env, server.url) as edge, edge.client() as http:
        assert http.put("/kv/secret-key", content="secret-value").status_code == 201
        for _ in range(3):
            assert http.get("/global/secret-key").text == "secret-value"
        assert http.get("/kv/absent").status_code == 404
        text = http.get("/metrics").text
    assert counter(text, 'edgekv_requests_total{op="fetch",status="200"}') == 3
    assert counter(text, 'edgekv_requests_total{op="fetch",status="201"}') == 1
    assert counter(text, 'edgekv_requests_total{op="fetch",status="404"}') == 1
    assert counter(text, 'edgekv_request_duration_seconds_count{op="fetch"}') == 5
    hits = counter(text, 'edgekv_cache_requests_total{result="hit"}')
    misses = counter(text, 'edgekv_cache_requests_total{result="miss"}')
    assert hits >= 2 and misses >= 1 and hits + misses >= 4
    assert counter(text, 'edgekv_cache_requests_total{result="stale"}') == 0
    assert counter(text, 'edgekv_cache_requests_total{result="updating"}') == 0
    assert "secret" not in text and ns_id not in text  # never keys, values or ids
