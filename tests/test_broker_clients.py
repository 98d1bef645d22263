"""The data path with real clients: confluent-kafka (librdkafka) and kafka-python.

Produce and consume (keys, headers, null values, compression), acks 0/1/-1, the
idempotent producer, list offsets by time, and a consumer's long poll.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition


def consume_confluent(
    bootstrap: str, topic: str, n: int, partition: int = 0, timeout: float = 30.0
):
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"g-{topic}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    c.assign([TopicPartition(topic, partition, 0)])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(m.error())
            out.append(m)
    finally:
        c.close()
    return out


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_confluent_produce_consume(broker, codec: str, acks: str) -> None:
    topic = f"cf-{codec}-{acks}"
    p = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "compression.codec": codec,
            "acks": acks,
            "linger.ms": 5,
        }
    )
    delivered = []
    for i in range(300):
        value = None if i % 50 == 7 else b"value-%d" % i
        p.produce(
            topic,
            key=b"key-%d" % (i % 10),
            value=value,
            headers=[("n", str(i).encode())],
            partition=0,
            on_delivery=lambda err, m: delivered.append(err),
        )
    assert p.flush(30) == 0
    assert delivered and all(e is None for e in delivered)
    got = consume_confluent(broker.bootstrap, topic, 300)
    assert [m.offset() for m in got] == list(range(300))
    for i, m in enumerate(got):
        assert m.key() == b"key-%d" % (i % 10)
        assert m.value() == (None if i % 50 == 7 else b"value-%d" % i)
        assert m.headers() == [("n", str(i).encode())]


def test_confluent_idempotent_producer(broker) -> None:
    p = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "enable.idempotence": True,
            "linger.ms": 1,
            "max.in.flight.requests.per.connection": 5,
        }
    )
    for i in range(2000):
        p.produce("cf-idem", value=b"%d" % i, partition=i % 3)
        if i % 500 == 0:
            p.poll(0)
    assert p.flush(30) == 0
    total = []
    for part in range(3):
        got = consume_confluent(
            broker.bootstrap, "cf-idem", 2000 // 3 + (1 if part < 2000 % 3 else 0), part
        )
        values = [int(m.value()) for m in got]
        assert values == sorted(values) and len(set(values)) == len(values)
        total += values
    assert sorted(total) == list(range(2000))


def test_confluent_offsets_for_times_and_watermarks(broker) -> None:
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i, ts in enumerate([1000, 2000, 3000, 4000]):
        p.produce("cf-times", value=b"%d" % i, partition=0, timestamp=ts)
        p.flush(10)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "times"})
    try:
        assert c.get_watermark_offsets(TopicPartition("cf-times", 0), timeout=10) == (0, 4)
        (found,) = c.offsets_for_times([TopicPartition("cf-times", 0, 2500)], timeout=10)
        assert found.offset == 2
        (found,) = c.offsets_for_times([TopicPartition("cf-times", 0, 9999)], timeout=10)
        assert found.offset == -1
    finally:
        c.close()


def test_confluent_long_poll_consumer(broker) -> None:
    c = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "lp",
            "fetch.wait.max.ms": 5000,
            "auto.offset.reset": "earliest",
        }
    )
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce("cf-lp", value=b"first", partition=0)
    p.flush(10)
    c.assign([TopicPartition("cf-lp", 0, 0)])
    try:
        m = None
        deadline = time.monotonic() + 20
        while m is None and time.monotonic() < deadline:
            m = c.poll(0.5)
        assert m is not None and m.value() == b"first"
        p.produce("cf-lp", value=b"second", partition=0)
        p.flush(10)
        m = None
        deadline = time.monotonic() + 20
        while m is None and time.monotonic() < deadline:
            m = c.poll(0.5)
        assert m is not None and m.value() == b"second"
    finally:
        c.close()


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
def test_kafka_python_produce_consume(broker, codec: str | None) -> None:
    topic = f"kp-{codec}"
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=codec, acks="all")
    futures = [
        p.send(
            topic,
            key=b"k%d" % i,
            value=None if i == 3 else b"v%d" % i,
            headers=[("i", b"%d" % i)],
            partition=0,
        )
        for i in range(200)
    ]
    p.flush()
    assert [f.get(10).offset for f in futures] == list(range(200))
    p.close()
    c = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
        enable_auto_commit=False,
    )
    tp = KTopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got = []
    for m in c:
        got.append(m)
        if len(got) == 200:
            break
    c.close()
    assert [m.offset for m in got] == list(range(200))
    assert got[3].value is None and got[4].value == b"v4" and got[4].headers == [("i", b"4")]


def test_kafka_python_idempotent_and_offsets(broker) -> None:
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all")
    futures = [
        p.send("kp-idem", value=b"%d" % i, partition=0, timestamp_ms=1000 + i) for i in range(100)
    ]
    p.flush()
    assert [f.get(10).offset for f in futures] == list(range(100))
    p.close()
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    tp = KTopicPartition("kp-idem", 0)
    try:
        assert c.beginning_offsets([tp])[tp] == 0
        assert c.end_offsets([tp])[tp] == 100
        assert c.offsets_for_times({tp: 1050})[tp].offset == 50
        assert c.offsets_for_times({tp: 5000})[tp] is None
    finally:
        c.close()
