"""ListOffsets through each client: by timestamp, earliest and latest, max timestamp."""

from __future__ import annotations

import time

from .drivers import BY_NAME, DRIVERS, Rec
from .helpers import by_client, now_ms, unique_topic

REFERENCE = BY_NAME["confluent-kafka"]


@by_client([d for d in DRIVERS if d.sets_timestamps])
def test_offsets_by_time(broker, client):
    bs = broker.bootstrap
    topic = unique_topic(f"ts-{client.name}")
    base = now_ms() - 3_600_000
    # One batch whose record timestamps are not all distinct: the answer is the first
    # record inside the batch with timestamp >= target, not the batch's first offset.
    first = [
        Rec(b"a", b"0", (), base),
        Rec(b"b", b"1", (), base + 1000),
        Rec(b"c", b"2", (), base + 1000),
        Rec(b"d", b"3", (), base + 2000),
    ]
    second = [Rec(b"e", b"4", (), base + 5000), Rec(b"f", b"5", (), base + 6000)]
    offsets = client.produce(bs, topic, first)
    offsets += client.produce(bs, topic, second)
    assert offsets == list(range(6))
    expected = {
        base - 10_000: 0,
        base: 0,
        base + 1: 1,
        base + 1000: 1,
        base + 1001: 3,
        base + 2000: 3,
        base + 2001: 4,
        base + 5000: 4,
        base + 5999: 5,
        base + 6000: 5,
        base + 6001: None,
    }
    got = {ts: client.offset_for_time(bs, topic, 0, ts) for ts in expected}
    assert got == expected
    assert client.watermarks(bs, topic, 0) == (0, 6)


def test_kcat_offsets_by_time(broker):
    """kcat cannot set timestamps: three invocations apart in time, then -Q by the timestamps
    the broker returned when consuming."""
    kcat = BY_NAME["kcat"]
    bs = broker.bootstrap
    topic = unique_topic("ts-kcat")
    for i in range(3):
        kcat.produce(bs, topic, [Rec(f"k{i}".encode(), f"v{i}".encode())])
        time.sleep(0.02)
    got = kcat.consume(bs, topic, 0, 0, 3)
    ts = [r.timestamp for r in got]
    assert ts == sorted(ts) and len(set(ts)) == 3, ts
    assert kcat.offset_for_time(bs, topic, 0, ts[0] - 1) == 0
    assert kcat.offset_for_time(bs, topic, 0, ts[1]) == 1
    assert kcat.offset_for_time(bs, topic, 0, ts[1] - 1) == (1 if ts[1] - 1 > ts[0] else 0)
    assert kcat.offset_for_time(bs, topic, 0, ts[2]) == 2
    assert kcat.offset_for_time(bs, topic, 0, ts[2] + 1) is None
    assert kcat.watermarks(bs, topic, 0) == (0, 3)
    # The consumer's own time and tail offsets: -o s@<ts> (by time) and -o -1 (last record).
    assert [r.offset for r in kcat.consume(bs, topic, 0, f"s@{ts[1]}", 10)] == [1, 2]
    assert [(r.offset, r.value) for r in kcat.consume(bs, topic, 0, -1, 10)] == [(2, b"v2")]


def test_empty_partition_offsets(broker):
    """An empty partition: earliest = latest = 0 and no offset for any timestamp, every client."""
    bs = broker.bootstrap
    topic = unique_topic("empty")
    REFERENCE.create_topic(bs, topic, 1)
    for client in DRIVERS:
        assert client.watermarks(bs, topic, 0) == (0, 0), client.name
        assert client.offset_for_time(bs, topic, 0, 0) is None, client.name


def test_max_timestamp_and_admin_list_offsets(broker):
    """librdkafka's admin ListOffsets: earliest, latest, by time and max timestamp (v7)."""
    from confluent_kafka import IsolationLevel, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    bs = broker.bootstrap
    topic = unique_topic("maxts")
    base = now_ms() - 60_000
    # Out of order on purpose: the record with the greatest timestamp is at offset 1.
    sent = [
        Rec(b"a", b"0", (), base + 10),
        Rec(b"b", b"1", (), base + 30),
        Rec(b"c", b"2", (), base + 20),
    ]
    assert REFERENCE.produce(bs, topic, sent) == [0, 1, 2]
    admin = AdminClient({"bootstrap.servers": bs})
    tp = TopicPartition(topic, 0)
    specs = {
        "earliest": OffsetSpec.earliest(),
        "latest": OffsetSpec.latest(),
        "max": OffsetSpec.max_timestamp(),
        "t25": OffsetSpec.for_timestamp(base + 25),
    }
    got = {}
    for name, spec in specs.items():
        fs = admin.list_offsets(
            {tp: spec}, isolation_level=IsolationLevel.READ_UNCOMMITTED, request_timeout=15
        )
        info = fs[tp].result(timeout=20)
        got[name] = (info.offset, info.timestamp)
    assert got["earliest"][0] == 0
    assert got["latest"][0] == 3
    assert got["max"] == (1, base + 30)
    assert got["t25"] == (1, base + 30)
