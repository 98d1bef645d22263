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


# --------------------------------------------------------------------------- live broker


def _series(got: dict, name: str, **labels: str) -> dict[tuple, float]:
    return {
        k: v
        for k, v in got.items()
        if k[0] == name and all(dict(k[1]).get(lk) == lv for lk, lv in labels.items())
    }


def test_live_broker_metrics(make_broker) -> None:
    import time

    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient
    from support import free_port

    mport = free_port()
    b = make_broker({"metrics.port": str(mport), "num.partitions": "2"})
    topic, group = "m-orders", "m-group"
    producer = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0})
    for i in range(100):
        producer.produce(topic, b"v" * 50, key=b"k%d" % i)
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": b.bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 60
    while seen < 100 and time.monotonic() < deadline:
        seen += sum(1 for m in consumer.consume(100, 0.5) if m.error() is None)
    assert seen == 100
    consumer.commit(asynchronous=False)
    for _ in range(30):
        producer.produce(topic, b"w" * 50)
    assert producer.flush(30) == 0

    got = scrape(mport)
    assert got[("fastlog_topic_messages_in_total", (("topic", topic),))] == 130
    # batches as appended: the 130 values plus keys and batch/record framing
    assert got[("fastlog_topic_bytes_in_total", (("topic", topic),))] > 130 * 50
    assert got[("fastlog_topic_bytes_out_total", (("topic", topic),))] > 100 * 50
    for api in ("Produce", "Fetch", "Metadata", "ApiVersions", "OffsetCommit", "JoinGroup"):
        count = got[("fastlog_requests_total", (("api", api),))]
        assert count >= 1, api
        assert got[("fastlog_request_duration_seconds_count", (("api", api),))] == count
    assert got[("fastlog_connections", ())] >= 2  # the producer and the consumer are connected
    assert got[("fastlog_under_replicated_partitions", ())] == 0
    assert got[("fastlog_partitions", ())] >= 2
    assert got[("fastlog_leader_partitions", ())] == got[("fastlog_partitions", ())]
    ends = _series(got, "fastlog_log_end_offset", topic=topic)
    assert sorted(dict(k[1])["partition"] for k in ends) == ["0", "1"]
    assert sum(ends.values()) == 130
    assert all(v > 0 for v in _series(got, "fastlog_log_size_bytes", topic=topic).values())
    assert sum(_series(got, "fastlog_high_watermark", topic=topic).values()) == 130
    lag = _series(got, "fastlog_consumer_group_lag", group=group, topic=topic)
    assert len(lag) == 2 and sum(lag.values()) == 30
    assert got[("fastlog_consumer_group_members", (("group", group),))] == 1
    consumer.close()

    # a deleted topic's series disappear
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.delete_topics([topic])[topic].result(30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = scrape(mport)
        if not _series(got, "fastlog_topic_bytes_in_total", topic=topic) and not _series(
            got, "fastlog_log_size_bytes", topic=topic
        ):
            break
        time.sleep(0.2)
    assert not _series(got, "fastlog_topic_bytes_in_total", topic=topic)
    assert not _series(got, "fastlog_log_end_offset", topic=topic)


def test_metrics_port_zero_and_port_in_use(make_broker) -> None:
    import re

    b = make_broker({"metrics.port": "0"})
    found = None
    for _ in range(50):
        found = re.search(r"serving Prometheus /metrics on [\d.]+:(\d+)", b.output())
        if found:
            break
        import time

        time.sleep(0.1)
    assert found, b.output()
    port = int(found.group(1))
    assert ("fastlog_partitions", ()) in scrape(port)
    # the same port again: that broker stops at start with a one-line reason
    from support import BrokerProcess, free_port

    d = b.data_dir.parent / "second"
    d.mkdir()
    second = BrokerProcess(d, free_port(), {"metrics.port": str(port)})
    try:
        second.start()
    except RuntimeError:
        pass  # it may exit before or after its Kafka listener opened
    assert second.proc is not None and second.proc.wait(timeout=30) == 1
    expected = f"error: [Errno 98] cannot serve metrics on 127.0.0.1:{port}: Address already in use"
    assert expected in second.output()
    assert "Traceback" not in second.output()


def test_collector_reads_a_real_broker_state(tmp_path) -> None:
    """The collector against a Broker object with real partitions and logs (not started:
    no sockets), including an ISR that shrank. Leadership comes from Partition.is_leader,
    which on a single node (no replication) is always true; the cluster tests cover the rest."""
    from broker.config import BrokerConfig
    from broker.server import Broker

    broker = Broker(
        BrokerConfig({"log.dirs": str(tmp_path), "listeners": "PLAINTEXT://127.0.0.1:0"})
    )
    broker.replica_manager.start(clean_shutdown=True)
    try:
        m = BrokerMetrics(broker)
        broker.create_topic("c-topic", 3, 1)
        p0 = broker.replica_manager.get_partition("c-topic", 0)
        p1 = broker.replica_manager.get_partition("c-topic", 1)
        p2 = broker.replica_manager.get_partition("c-topic", 2)
        for i in range(10):
            p0.log.append(b"x" * 100, key=b"k%d" % i)
        # the states a replica fetcher and a leader election would leave behind
        p1.replicas, p1.isr = [0, 1, 2], [0]

        def value(name: str, **labels: str) -> float | None:
            return m.registry.get_sample_value(name, labels)

        assert value("fastlog_partitions") == 3
        assert value("fastlog_leader_partitions") == 3
        assert p2.is_leader
        assert value("fastlog_under_replicated_partitions") == 1
        assert value("fastlog_log_end_offset", topic="c-topic", partition="0") == 10
        assert (
            value("fastlog_log_size_bytes", topic="c-topic", partition="0")
            == p0.log.size_bytes
            > 1000
        )
        assert value("fastlog_log_start_offset", topic="c-topic", partition="0") == 0
        assert value("fastlog_high_watermark", topic="c-topic", partition="0") == 10
        assert value("fastlog_connections") == 0  # not serving yet

        # a deleted topic's logs and counters leave the scrape
        m.record_produce("c-topic", 0, 10, 1000)
        broker.metadata.delete_topic("c-topic")
        assert value("fastlog_partitions") == 0
        assert value("fastlog_topic_messages_in_total", topic="c-topic") is None
    finally:
        broker.replica_manager.close()
        broker.metadata.close()
