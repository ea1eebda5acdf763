"""edgekv.metrics: counters, the Prometheus text, the per-namespace window on a moved clock."""

from __future__ import annotations

import pytest

from edgekv import metrics
from edgekv.metrics import FEED_LAG, Metrics, quantile
from tests.conftest import FakeClock


def test_quantile_interpolates_inside_buckets() -> None:
    counts = [0] * (len(metrics.BUCKETS) + 1)
    assert quantile(0.5, counts) is None
    counts[1] = 10  # ten requests in (0.5 ms, 1 ms]
    assert quantile(0.5, counts) == pytest.approx(0.00075)
    assert quantile(0.99, counts) == pytest.approx(0.000995)
    counts[-1] = 1000  # beyond the last bound: the bound, as Prometheus says
    assert quantile(0.99, counts) == metrics.BUCKETS[-1]


def test_prometheus_text() -> None:
    m = Metrics()
    m.observe("get", 200, 0.0004)
    m.observe("get", 404, 0.002)
    m.observe("bulk put", 200, 0.3)
    m.set_gauge(FEED_LAG, 1.5, "How far the change feed is behind.")
    m.add_collector(lambda: ["# TYPE extra counter", "extra 7"])
    text = m.prometheus()
    assert 'edgekv_requests_total{op="get",status="200"} 1' in text
    assert 'edgekv_requests_total{op="bulk_put",status="200"} 1' in text
    assert 'edgekv_request_duration_seconds_bucket{op="get",le="0.0005"} 1' in text
    assert 'edgekv_request_duration_seconds_bucket{op="get",le="0.0025"} 2' in text
    assert 'edgekv_request_duration_seconds_bucket{op="get",le="+Inf"} 2' in text
    assert 'edgekv_request_duration_seconds_count{op="bulk_put"} 1' in text
    assert "# TYPE edgekv_feed_lag_seconds gauge\nedgekv_feed_lag_seconds 1.5" in text
    assert text.endswith("extra 7\n")


def test_disabled_counts_nothing() -> None:
    m = Metrics(enabled=False)
    m.observe("get", 200, 0.001, "n" * 32)
    assert "edgekv_requests_total{" not in m.prometheus()
    assert m.namespace_window("n" * 32)["operations"] == {}


def test_namespace_window_keeps_the_last_hour() -> None:
    clock = FakeClock(60 * 1_000_000)  # the start of a minute
    m = Metrics(clock=clock)
    ns = "a" * 32
    m.observe("get", 200, 0.001, ns)
    m.observe("get", 500, 0.001, ns)
    clock.advance(120)
    m.observe("put", 200, 0.01, ns)
    m.observe("put", 200, 0.01, "b" * 32)  # another namespace: not in this window
    window = m.namespace_window(ns)
    assert len(window["minutes"]) == 60
    assert window["minutes"][-1] == {"start": clock.now, "ops": {"put": 1}}
    assert window["minutes"][-3]["ops"] == {"get": 2}
    assert window["operations"]["get"]["count"] == 2
    assert window["operations"]["get"]["errors"] == 1
    clock.advance(59 * 60)  # the get minute has left the hour; its slot is reused
    m.observe("get", 200, 0.001, ns)
    window = m.namespace_window(ns)
    assert window["operations"]["get"] == {
        "count": 1,
        "errors": 0,
        "p50_seconds": pytest.approx(0.00075),
        "p99_seconds": pytest.approx(0.000995),
    }
    assert window["operations"]["put"]["count"] == 1  # two minutes younger: still in


def test_namespaces_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "MAX_NAMESPACES", 3)
    m = Metrics()
    for i in range(5):
        m.observe("get", 200, 0.001, f"{i:032x}")
    assert m.namespace_window(f"{0:032x}")["operations"] == {}
    assert m.namespace_window(f"{4:032x}")["operations"]["get"]["count"] == 1
