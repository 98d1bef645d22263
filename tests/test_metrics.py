"""broker/metrics.py: the Prometheus endpoint, its hooks, and (end to end) a live broker's
/metrics after real clients produced, fetched and committed."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from broker.metrics import BrokerMetrics, api_name, metrics_port_from_config


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and return {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_hooks_are_served_over_http() -> None:
    m = BrokerMetrics()
    port = m.start_http(0, "127.0.0.1")
    try:
        m.record_request(0, 0.002)
        m.record_request(0, 0.004)
        m.record_request(1, 0.3)
        m.record_request(999, 0.0001)
        m.record_produce("orders", 0, 10, 1000)
        m.record_produce("orders", 1, 5, 500)
        m.record_produce("audit", 0, 1, 42)
        m.record_fetch("orders", 0, 700)
        got = scrape(port)
    finally:
        m.stop_http()
    assert got[("fastlog_requests_total", (("api", "Produce"),))] == 2
    assert got[("fastlog_requests_total", (("api", "Fetch"),))] == 1
    assert got[("fastlog_requests_total", (("api", "Api999"),))] == 1
    # histogram: 2 Produce requests in the 5 ms bucket, none in the 1 ms bucket
    assert (
        got[("fastlog_request_duration_seconds_bucket", (("api", "Produce"), ("le", "0.001")))] == 0
    )
    assert (
        got[("fastlog_request_duration_seconds_bucket", (("api", "Produce"), ("le", "0.005")))] == 2
    )
    assert got[("fastlog_request_duration_seconds_count", (("api", "Produce"),))] == 2
    assert got[("fastlog_request_duration_seconds_sum", (("api", "Produce"),))] == pytest.approx(
        0.006
    )
    assert got[("fastlog_topic_bytes_in_total", (("topic", "orders"),))] == 1500
    assert got[("fastlog_topic_messages_in_total", (("topic", "orders"),))] == 15
    assert got[("fastlog_topic_messages_in_total", (("topic", "audit"),))] == 1
    assert got[("fastlog_topic_bytes_out_total", (("topic", "orders"),))] == 700


def test_forget_topic_drops_its_series() -> None:
    m = BrokerMetrics()
    m.record_produce("gone", 0, 1, 10)
    m.record_fetch("gone", 0, 10)
    m.forget_topic("gone")
    m.record_produce("kept", 0, 1, 10)
    names = {
        (s.name, s.labels.get("topic"))
        for fam in m.registry.collect()
        for s in fam.samples
        if "topic" in s.labels
    }
    assert ("fastlog_topic_bytes_in_total", "kept") in names
    assert not any(topic == "gone" for _, topic in names)
    # and a re-created topic counts from zero again
    m.record_produce("gone", 0, 2, 20)
    assert m.registry.get_sample_value("fastlog_topic_messages_in_total", {"topic": "gone"}) == 2


def test_two_instances_do_not_share_state() -> None:
    a, b = BrokerMetrics(), BrokerMetrics()
    a.record_request(3, 0.001)
    assert a.registry.get_sample_value("fastlog_requests_total", {"api": "Metadata"}) == 1
    assert b.registry.get_sample_value("fastlog_requests_total", {"api": "Metadata"}) is None


def test_api_names() -> None:
    assert api_name(18) == "ApiVersions"
    assert api_name(22) == "InitProducerId"
    assert api_name(12345) == "Api12345"


@pytest.mark.parametrize(
    ("value", "port"), [(None, -1), ("-1", -1), ("0", 0), ("9404", 9404), (9404, 9404)]
)
def test_metrics_port_setting(value: object, port: int) -> None:
    assert metrics_port_from_config({"metrics.port": value}) == port


@pytest.mark.parametrize("value", ["-2", "70000", "http"])
def test_bad_metrics_port(value: str) -> None:
    with pytest.raises(ValueError):
        metrics_port_from_config({"metrics.port": value})
