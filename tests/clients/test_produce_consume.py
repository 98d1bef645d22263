"""Produce and consume with every client and every codec it has: exact keys, values, headers,
timestamps and offsets, checked against what the client sent and against the segment files."""

from __future__ import annotations

import base64
import random
import string

import pytest

from .drivers import BY_NAME, DRIVERS, KafkaPythonDriver, Rec
from .helpers import by_client, now_ms, unique_topic
from .ondisk import assert_contiguous, read_batches

REFERENCE = BY_NAME["confluent-kafka"]
CLIENT_CODECS = [pytest.param(d, c, id=f"{d.name}-{c}") for d in DRIVERS for c in d.codecs]


def assert_same_records(got: list[Rec], sent: list[Rec], first_offset: int = 0) -> None:
    assert [r.offset for r in got] == list(range(first_offset, first_offset + len(sent)))
    for g, s in zip(got, sent, strict=True):
        assert g.content() == s.content(), f"offset {g.offset}: got {g}, sent {s}"
        assert g.partition == s.partition


@pytest.mark.parametrize("client,codec", CLIENT_CODECS)
def test_roundtrip(broker, client, codec):
    topic = unique_topic(f"rt-{client.name}-{codec}")
    sent = client.sample_records(now_ms() - 60_000)
    before = now_ms()
    offsets = client.produce(broker.bootstrap, topic, sent, compression=codec)
    after = now_ms()
    if client.reports_offsets:
        assert offsets == list(range(len(sent)))

    # Ask for more than was sent: the consumer must stop at the end with exactly what was sent.
    got = client.consume(broker.bootstrap, topic, 0, 0, len(sent) + 10)
    assert_same_records(got, sent)
    if client.sets_timestamps:
        assert [g.timestamp for g in got] == [s.timestamp for s in sent]
    else:
        assert all(before - 1000 <= g.timestamp <= after + 1000 for g in got), got

    # Starting in the middle of a batch returns the records from that offset on.
    mid = len(sent) // 2
    assert_same_records(
        client.consume(broker.bootstrap, topic, 0, mid, 3), sent[mid : mid + 3], mid
    )
    assert client.watermarks(broker.bootstrap, topic, 0) == (0, len(sent))

    # What the broker stored: v2 batches as the client compressed them, offsets without gaps,
    # and no producer id (idempotence off).
    batches = read_batches(broker.data_dir, topic, 0)
    assert assert_contiguous(batches) == len(sent)
    wire = client.wire_codec(broker.bootstrap, codec)
    [big_at] = [i for i, r in enumerate(sent) if r.key == b"big"]
    [big_batch] = [b for b in batches if b.base_offset <= big_at <= b.last_offset]
    assert big_batch.codec == wire, batches
    # librdkafka sends a batch uncompressed when compressing does not make it smaller.
    allowed = {wire, "none"} if client.name in ("confluent-kafka", "kcat") else {wire}
    assert {b.codec for b in batches} <= allowed, batches
    assert {b.producer_id for b in batches} == {-1}, batches


@by_client()
def test_cross_client_reads(broker, client):
    """Records one client wrote read back byte for byte by every other client."""
    topic = unique_topic(f"x-{client.name}")
    # Text only, so that kcat can read it too; null header values where the writer can send them.
    sent = [
        Rec(
            r.key,
            r.value,
            tuple(h for h in r.headers if h[1] is not None or client.null_header_values),
        )
        for r in BY_NAME["kcat"].sample_records(0)
    ]
    client.produce(broker.bootstrap, topic, sent, compression="gzip")
    for reader in DRIVERS:
        got = reader.consume(broker.bootstrap, topic, 0, 0, len(sent))
        assert [r.offset for r in got] == list(range(len(sent))), reader.name
        assert [g.content() for g in got] == [s.content() for s in sent], reader.name


@by_client()
def test_partitions_are_independent(broker, client):
    """Records to partitions 0, 1 and 2 of one auto-created topic (num.partitions=3) each get
    their own offsets from 0 and are read back per partition."""
    topic = unique_topic(f"parts-{client.name}")
    ts0 = now_ms() - 1000
    sent = [
        Rec(
            f"p{p}-{i}".encode(),
            f"v{p}-{i}".encode(),
            (("p", str(p).encode()),),
            None if not client.sets_timestamps else ts0 + i,
            p,
        )
        for p in (2, 0, 1)
        for i in range(4 + p)
    ]
    offsets = client.produce(broker.bootstrap, topic, sent)
    if client.reports_offsets:
        assert offsets == [i for p in (2, 0, 1) for i in range(4 + p)]
    for p in (0, 1, 2):
        mine = [r for r in sent if r.partition == p]
        assert_same_records(client.consume(broker.bootstrap, topic, p, 0, 100), mine)
        assert client.watermarks(broker.bootstrap, topic, p) == (0, len(mine))
    assert REFERENCE.topics(broker.bootstrap)[topic] == 3


def test_kafkajs_group_consumer(broker):
    """kafkajs's own (group) consumer: joins a group, gets all three partitions, reads every
    record once in partition order, and commits the end offsets."""
    kafkajs = BY_NAME["kafkajs"]
    topic = unique_topic("js-group")
    sent = [
        Rec(f"k{p}-{i}".encode(), f"v{p}-{i}".encode(), (("p", str(p).encode()),), None, p)
        for p in (0, 1, 2)
        for i in range(5 + p)
    ]
    kafkajs.produce(broker.bootstrap, topic, sent, compression="gzip")
    reply = kafkajs.call(
        "consume-group",
        {
            "brokers": [broker.bootstrap],
            "topic": topic,
            "groupId": f"g-{topic}",
            "count": len(sent),
            "timeoutMs": 25000,
        },
        timeout=45,
    )
    got = reply["records"]
    assert len(got) == len(sent)
    for p in (0, 1, 2):
        mine = [r for r in sent if r.partition == p]
        theirs = [m for m in got if m["partition"] == p]
        assert [m["offset"] for m in theirs] == list(range(len(mine)))
        assert [(m["key"], m["value"]) for m in theirs] == [
            (base64.b64encode(r.key).decode(), base64.b64encode(r.value).decode()) for r in mine
        ]
    assert sorted((c["partition"], c["offset"]) for c in reply["committed"]) == [
        (0, 5),
        (1, 6),
        (2, 7),
    ]


OLD_CLIENTS = [
    # (Kafka release the client is pinned to, codecs): Produce v3/Fetch v5 at 0.11 up to
    # Produce v7/Fetch v10 at 2.1, the first with zstd.
    ((0, 11), ("none", "gzip", "snappy", "lz4")),
    ((1, 0), ("none", "snappy")),
    ((2, 0), ("none", "lz4")),
    ((2, 1), ("none", "zstd")),
]


@pytest.mark.parametrize(
    "client,codec",
    [
        pytest.param(KafkaPythonDriver(v), c, id=f"kafka-python@{'.'.join(map(str, v))}-{c}")
        for v, codecs in OLD_CLIENTS
        for c in codecs
    ],
)
def test_roundtrip_older_protocol_versions(broker, client, codec):
    """A client pinned to an older Kafka release's request versions (no negotiation up)."""
    topic = unique_topic(f"old-{codec}")
    sent = client.sample_records(now_ms() - 60_000)
    assert client.produce(broker.bootstrap, topic, sent, compression=codec) == list(
        range(len(sent))
    )
    got = client.consume(broker.bootstrap, topic, 0, 0, len(sent) + 10)
    assert_same_records(got, sent)
    assert [g.timestamp for g in got] == [s.timestamp for s in sent]
    assert client.watermarks(broker.bootstrap, topic, 0) == (0, len(sent))
    assert client.offset_for_time(broker.bootstrap, topic, 0, sent[3].timestamp) == 3
    assert {b.codec for b in read_batches(broker.data_dir, topic, 0)} == {codec}


@by_client()
def test_batch_larger_than_fetch_limits(broker, client):
    """KIP-74: a batch larger than the consumer's fetch.max.bytes and per-partition limit still
    comes back whole when it is the first of the fetch, so no consumer gets stuck behind it."""
    topic = unique_topic(f"fetchmax-{client.name}")
    rng = random.Random(74)
    big = "".join(rng.choices(string.ascii_letters, k=300_000)).encode()
    sent = [Rec(b"a", b"small-1"), Rec(b"b", big), Rec(b"c", b"small-2")]
    for r in sent:  # three produce calls: three batches
        client.produce(broker.bootstrap, topic, [r])
    got = client.consume(broker.bootstrap, topic, 0, 0, 10, max_bytes=1024)
    assert_same_records(got, sent)
    assert len(read_batches(broker.data_dir, topic, 0)) == 3
