"""Debian's kcat (librdkafka 2.0.2) really compresses with -z gzip/snappy/lz4 against fastlog.

librdkafka before 2.11.1 keeps gzip, snappy and lz4 only when the broker's Produce range
reaches down to v0 (its compression check asks for a Produce version within [0, 0]); otherwise
it sends the batches uncompressed without an error. fastlog serves Produce v0-v2 (magic 0/1
message sets up-converted to v2 batches), so the codec must reach the log: the stored batch
headers are the witness, not kcat's exit code. Every client then reads the records back.
"""

from __future__ import annotations

import pytest

from .drivers import BY_NAME, KafkaPythonDriver, Rec
from .helpers import now_ms, unique_topic
from .ondisk import assert_contiguous, read_batches
from .wire import api_versions

KCAT = BY_NAME["kcat"]
READERS = [BY_NAME["confluent-kafka"], BY_NAME["kafka-python"], KCAT]


def test_produce_range_reaches_v0(broker):
    assert api_versions(broker.bootstrap)[0] == (0, 9)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4"])
def test_kcat_compresses(broker, codec):
    topic = unique_topic(f"kcat-{codec}")
    sent = KCAT.sample_records(now_ms())
    KCAT.produce(broker.bootstrap, topic, sent, compression=codec)

    batches = read_batches(broker.data_dir, topic, 0)
    assert assert_contiguous(batches) == len(sent)
    assert {b.magic for b in batches} == {2}
    [big_at] = [i for i, r in enumerate(sent) if r.key == b"big"]
    [big_batch] = [b for b in batches if b.base_offset <= big_at <= b.last_offset]
    assert big_batch.codec == codec, batches
    # librdkafka leaves a batch uncompressed only when compressing does not make it smaller
    assert {b.codec for b in batches} <= {codec, "none"}, batches

    for reader in READERS:
        got = reader.consume(broker.bootstrap, topic, 0, 0, len(sent) + 5)
        assert [g.offset for g in got] == list(range(len(sent))), reader.name
        assert [g.content() for g in got] == [s.content() for s in sent], reader.name


# kafka-python pinned to Kafka 0.8.2/0.9/0.10 request versions: Produce v0/v1 with magic 0
# message sets and Produce v2 with magic 1 (timestamps), plain and compressed.
OLD = [
    ((0, 8, 2), ("none", "gzip", "snappy", "lz4")),
    ((0, 9), ("none", "gzip", "snappy", "lz4")),
    ((0, 10), ("none", "gzip", "snappy", "lz4")),
]


@pytest.mark.parametrize(
    "version,codec",
    [
        pytest.param(v, c, id=f"kafka-python@{'.'.join(map(str, v))}-{c}")
        for v, codecs in OLD
        for c in codecs
    ],
)
def test_old_kafka_python_produces(broker, version, codec):
    old = KafkaPythonDriver(version)
    topic = unique_topic(f"old-{codec}")
    ts0 = now_ms() - 60_000
    big = b"legacy message set " * 200
    sent = [Rec(b"key-0", b"value-0", (), ts0), Rec(None, b"no key", (), ts0 + 1)]
    sent += [Rec(b"tombstone", None, (), ts0 + 2), Rec(b"big", big, (), ts0 + 3)]
    sent += [Rec(f"k{i}".encode(), f"v{i}".encode() * i, (), ts0 + 4 + i) for i in range(20)]
    offsets = old.produce(broker.bootstrap, topic, sent, compression=codec)
    assert offsets == list(range(len(sent)))

    batches = read_batches(broker.data_dir, topic, 0)
    assert assert_contiguous(batches) == len(sent)
    assert {b.magic for b in batches} == {2}
    assert {b.codec for b in batches} == {codec}, batches
    assert {b.producer_id for b in batches} == {-1}

    for reader in READERS:
        got = reader.consume(broker.bootstrap, topic, 0, 0, len(sent) + 5)
        assert [g.offset for g in got] == list(range(len(sent))), reader.name
        assert [(g.key, g.value) for g in got] == [(s.key, s.value) for s in sent], reader.name
        assert all(g.headers == () for g in got), reader.name
        if reader is KCAT:
            continue  # kcat -J prints the timestamp only for some types
        if version >= (0, 10):
            # magic 1 carries CreateTime; magic 0 has none (-1, as Kafka up-converts it)
            assert [g.timestamp for g in got] == [s.timestamp for s in sent], reader.name
        else:
            assert {g.timestamp for g in got} == {-1}, reader.name
