"""compression.type enforced as Kafka does (broker/log_validator.py), against a live broker
with real clients: the leader re-encodes batches sent in another codec than the topic's (or the
broker's) compression.type, keeps everything a consumer sees and every idempotent producer
field, stores batches already in the target codec as sent, and refuses invalid values and
compression levels with INVALID_CONFIG. What is stored is read back from the segment files
with fastlog._core.scan_batches, independently of the broker.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from clients.drivers import (
    AiokafkaDriver,
    ConfluentDriver,
    KafkaPythonDriver,
    Rec,
    standard_records,
)
from clients.ondisk import partition_dir
from test_broker_network import RawClient
from test_broker_produce import (
    fetch_all,
    init_producer_id,
    partition_response,
    produce_request,
)

from broker import log_validator
from fastlog import _core

NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4
CORRUPT_MESSAGE = 2
MESSAGE_TOO_LARGE = 10
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_RECORD = 87
INVALID_CONFIG = 40

confluent = ConfluentDriver()
CONSUMERS = [confluent, KafkaPythonDriver(), AiokafkaDriver()]


def topic_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def admin(bootstrap: str):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def create(bootstrap: str, topic: str, configs: dict[str, str] | None = None) -> None:
    from confluent_kafka.admin import NewTopic

    a = admin(bootstrap)  # kept alive until the result: its destruction fails the future
    fs = a.create_topics(
        [NewTopic(topic, num_partitions=1, replication_factor=1, config=configs or {})],
        request_timeout=15,
    )
    fs[topic].result(20)


def create_error(bootstrap: str, topic: str, configs: dict[str, str]) -> tuple[int, str]:
    """The Kafka error a CreateTopics with these configs gets (0 if it succeeds)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    a = admin(bootstrap)
    fs = a.create_topics(
        [NewTopic(topic, num_partitions=1, replication_factor=1, config=configs)],
        request_timeout=15,
    )
    try:
        fs[topic].result(20)
    except KafkaException as exc:
        return exc.args[0].code(), exc.args[0].str()
    return 0, ""


def alter(bootstrap: str, topic: str, name: str, value: str | None) -> None:
    """IncrementalAlterConfigs SET (DELETE when value is None); raises KafkaException."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    op = AlterConfigOpType.SET if value is not None else AlterConfigOpType.DELETE
    res = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[ConfigEntry(name, value, incremental_operation=op)],
    )
    a = admin(bootstrap)
    a.incremental_alter_configs([res])[res].result(20)


def describe(bootstrap: str, topic: str) -> dict:
    from confluent_kafka.admin import ConfigResource

    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    a = admin(bootstrap)
    return a.describe_configs([res], request_timeout=15)[res].result(20)


def stored(data_dir: Path, topic: str) -> list:
    """Headers of every batch in the partition's segment files (what the broker wrote)."""
    out = []
    for segment in sorted(partition_dir(data_dir, topic, 0).glob("*.log")):
        out += _core.scan_batches(segment.read_bytes())
    return out


def stored_records(data_dir: Path, topic: str) -> list:
    data = b"".join(s.read_bytes() for s in sorted(partition_dir(data_dir, topic, 0).glob("*.log")))
    return _core.iter_records(data)


def content(recs: list[Rec]) -> list[tuple]:
    return [(r.key, r.value, tuple(r.headers), r.timestamp) for r in recs]


def raw_batch(values: list[bytes], *, compression: int = NONE, **kwargs) -> bytes:
    now = int(time.time() * 1000)
    return _core.build_batch(
        [(b"k%d" % i, v, [("h", b"x"), ("n", None)], now + i) for i, v in enumerate(values)],
        compression=compression,
        **kwargs,
    )


@pytest.fixture
def client(broker):
    c = RawClient(broker.bootstrap)
    yield c
    c.close()


# ------------------------------------------------------------------------- re-encoding


def test_uncompressed_producer_to_zstd_topic_every_consumer_reads_it_back(broker) -> None:
    topic = topic_name("to-zstd")
    create(broker.bootstrap, topic, {"compression.type": "zstd"})
    records = standard_records(int(time.time() * 1000) - 1000, null_headers=True)
    offsets = confluent.produce(broker.bootstrap, topic, records, compression="none")
    assert offsets == list(range(len(records)))
    batches = stored(broker.data_dir, topic)
    assert batches and {b.compression for b in batches} == {ZSTD}
    assert sum(b.record_count for b in batches) == len(records)
    expected = content(records)
    for consumer in CONSUMERS:
        got = consumer.consume(broker.bootstrap, topic, 0, 0, len(records))
        assert content(got) == expected, consumer.name
        assert [r.offset for r in got] == offsets, consumer.name


def test_gzip_producer_to_uncompressed_topic(broker) -> None:
    topic = topic_name("to-none")
    create(broker.bootstrap, topic, {"compression.type": "uncompressed"})
    records = standard_records(int(time.time() * 1000) - 1000)
    confluent.produce(broker.bootstrap, topic, records, compression="gzip")
    batches = stored(broker.data_dir, topic)
    assert {b.compression for b in batches} == {NONE}
    for consumer in CONSUMERS:
        got = consumer.consume(broker.bootstrap, topic, 0, 0, len(records))
        assert content(got) == content(records), consumer.name


@pytest.mark.parametrize(("sent", "target"), [("lz4", "snappy"), ("snappy", "gzip")])
def test_every_codec_pair_round_trips(broker, sent: str, target: str) -> None:
    topic = topic_name(f"{sent}-to-{target}")
    create(broker.bootstrap, topic, {"compression.type": target})
    records = standard_records(int(time.time() * 1000) - 1000)
    confluent.produce(broker.bootstrap, topic, records, compression=sent)
    assert {b.compression for b in stored(broker.data_dir, topic)} == {log_validator.CODECS[target]}
    got = KafkaPythonDriver().consume(broker.bootstrap, topic, 0, 0, len(records))
    assert content(got) == content(records)


def test_lz4_producer_on_producer_topic_stays_lz4_byte_for_byte(broker, client) -> None:
    topic = topic_name("producer")
    create(broker.bootstrap, topic)  # compression.type=producer, the default
    # every value compressible: librdkafka sends a batch that lz4 does not shrink uncompressed
    records = [Rec(b"k%d" % i, b"compressible %d " % i * 40) for i in range(50)]
    confluent.produce(broker.bootstrap, topic, records, compression="lz4")
    assert {b.compression for b in stored(broker.data_dir, topic)} == {LZ4}
    # a raw zstd batch: stored exactly as sent but for the offsets and leader epoch
    sent = raw_batch([b"a" * 100, b"b" * 100], compression=ZSTD)
    r = partition_response(client.call(produce_request(9, topic, 0, sent)))
    assert r.error_code.value == 0
    last = stored(broker.data_dir, topic)[-1]
    seg = sorted(partition_dir(broker.data_dir, topic, 0).glob("*.log"))[-1].read_bytes()
    on_disk = seg[last.position : last.position + last.size]
    assert on_disk[61:] == sent[61:] and on_disk[21:23] == sent[21:23]  # records, attributes


def test_already_in_target_codec_is_stored_as_sent(broker, client) -> None:
    topic = topic_name("same-codec")
    create(broker.bootstrap, topic, {"compression.type": "zstd"})
    sent = raw_batch([b"x" * 300] * 3, compression=ZSTD)
    assert partition_response(client.call(produce_request(9, topic, 0, sent))).error_code.value == 0
    (b,) = stored(broker.data_dir, topic)
    seg = sorted(partition_dir(broker.data_dir, topic, 0).glob("*.log"))[0].read_bytes()
    assert seg[61 : b.size] == sent[61:]  # the producer's zstd frame, untouched


@pytest.mark.parametrize(
    ("codec", "name", "low", "high"),
    [("gzip", GZIP, "1", "9"), ("zstd", ZSTD, "1", "19"), ("lz4", LZ4, "1", "17")],
)
def test_compression_level_is_applied_when_re_encoding(broker, client, codec, name, low, high):
    # KIP-390: the topic's compression.<codec>.level reaches the codec on the leader
    values = [b"%06d " % i + b"abcdefgh" * (i % 17) for i in range(2000)]
    sent = raw_batch(values)
    sizes = {}
    for level in (low, high):
        topic = topic_name(f"{codec}-level-{level}")
        create(
            broker.bootstrap,
            topic,
            {"compression.type": codec, f"compression.{codec}.level": level},
        )
        r = partition_response(client.call(produce_request(9, topic, 0, sent)))
        assert r.error_code.value == 0
        (b,) = stored(broker.data_dir, topic)
        assert b.compression == name
        sizes[level] = b.size
        assert [rec[3] for rec in stored_records(broker.data_dir, topic)] == values
    assert sizes[high] < sizes[low], sizes


def test_log_append_time_topic_recompressed(broker, client) -> None:
    topic = topic_name("lat")
    create(
        broker.bootstrap,
        topic,
        {"compression.type": "gzip", "message.timestamp.type": "LogAppendTime"},
    )
    before = int(time.time() * 1000)
    sent = raw_batch([b"one", b"two"], compression=NONE)
    r = partition_response(client.call(produce_request(9, topic, 0, sent)))
    assert r.error_code.value == 0
    stamp = round(r.log_append_time.timestamp() * 1000)
    assert stamp >= before
    (b,) = stored(broker.data_dir, topic)
    assert (b.compression, b.timestamp_type, b.max_timestamp) == (GZIP, 1, stamp)
    _, records = fetch_all(client, topic)
    assert [(x[1], x[2], x[3], list(x[4])) for x in records] == [
        (stamp, b"k0", b"one", [("h", b"x"), ("n", None)]),
        (stamp, b"k1", b"two", [("h", b"x"), ("n", None)]),
    ]


# ------------------------------------------------------------------- idempotent producer


def test_idempotent_batches_keep_producer_fields_and_retries_are_duplicates(broker, client) -> None:
    topic = topic_name("idem-zstd")
    create(broker.bootstrap, topic, {"compression.type": "zstd"})
    pid, epoch = init_producer_id(client)
    b0 = raw_batch([b"a", b"b"], producer_id=pid, producer_epoch=epoch, base_sequence=0)
    b1 = raw_batch([b"c"], compression=GZIP, producer_id=pid, producer_epoch=epoch, base_sequence=2)
    assert partition_response(client.call(produce_request(9, topic, 0, b0))).base_offset == 0
    assert partition_response(client.call(produce_request(9, topic, 0, b1))).base_offset == 2
    # retries of both (as sent, uncompressed and gzip) are duplicates with their first offsets
    for data, offset in ((b0, 0), (b1, 2)):
        r = partition_response(client.call(produce_request(9, topic, 0, data)))
        assert (r.error_code.value, r.base_offset) == (0, offset)
    gap = raw_batch([b"gap"], producer_id=pid, producer_epoch=epoch, base_sequence=7)
    r = partition_response(client.call(produce_request(9, topic, 0, gap)))
    assert r.error_code.value == OUT_OF_ORDER_SEQUENCE_NUMBER
    batches = stored(broker.data_dir, topic)
    assert [
        (b.compression, b.producer_id, b.producer_epoch, b.base_sequence, b.record_count)
        for b in batches
    ] == [(ZSTD, pid, epoch, 0, 2), (ZSTD, pid, epoch, 2, 1)]
    assert [x[3] for x in stored_records(broker.data_dir, topic)] == [b"a", b"b", b"c"]


def test_idempotent_librdkafka_producer_into_recompressing_topic(broker) -> None:
    topic = topic_name("idem-client")
    create(broker.bootstrap, topic, {"compression.type": "lz4"})
    records = [Rec(b"k%d" % i, b"v%d" % i) for i in range(500)]
    offsets = confluent.produce(
        broker.bootstrap, topic, records, compression="snappy", idempotent=True
    )
    assert offsets == list(range(500))
    batches = stored(broker.data_dir, topic)
    assert {b.compression for b in batches} == {LZ4}
    seq = 0
    for b in batches:  # sequences run on without gaps, as the producer numbered them
        assert b.producer_id >= 0 and b.base_sequence == seq
        seq += b.record_count
    got = confluent.consume(broker.bootstrap, topic, 0, 0, 500)
    assert [(r.key, r.value) for r in got] == [(r.key, r.value) for r in records]


# ------------------------------------------------------------------------- refusals


def test_several_batches_to_re_encode_are_invalid_record(broker, client) -> None:
    topic = topic_name("two-batches")
    create(broker.bootstrap, topic, {"compression.type": "zstd"})
    two = raw_batch([b"a"]) + raw_batch([b"b"])
    r = partition_response(client.call(produce_request(9, topic, 0, two)))
    assert r.error_code.value == INVALID_RECORD
    assert stored(broker.data_dir, topic) == []


def test_corrupt_batch_is_corrupt_message_when_re_encoded(broker, client) -> None:
    topic = topic_name("corrupt")
    create(broker.bootstrap, topic, {"compression.type": "zstd"})
    bad = bytearray(raw_batch([b"payload"]))
    bad[-3] ^= 0xFF  # inside the records: only the CRC-32C can tell
    r = partition_response(client.call(produce_request(9, topic, 0, bytes(bad))))
    assert r.error_code.value == CORRUPT_MESSAGE
    assert stored(broker.data_dir, topic) == []


def test_decompressed_larger_than_max_message_bytes_is_message_too_large(broker, client) -> None:
    topic = topic_name("too-large")
    create(
        broker.bootstrap,
        topic,
        {"compression.type": "uncompressed", "max.message.bytes": "100000"},
    )
    sent = raw_batch([b"\x00" * 60_000, b"\x00" * 60_000], compression=ZSTD)
    assert len(sent) < 1000
    r = partition_response(client.call(produce_request(9, topic, 0, sent)))
    assert r.error_code.value == MESSAGE_TOO_LARGE
    ok = raw_batch([b"\x00" * 60_000], compression=ZSTD)
    r = partition_response(client.call(produce_request(9, topic, 0, ok)))
    assert r.error_code.value == 0
    assert [(b.compression, b.record_count) for b in stored(broker.data_dir, topic)] == [(NONE, 1)]


# ------------------------------------------------------------------------- configuration


def test_alter_configs_takes_effect_on_the_next_append(broker) -> None:
    topic = topic_name("alter")
    create(broker.bootstrap, topic)
    one = [Rec(b"k", b"v" * 200)]
    confluent.produce(broker.bootstrap, topic, one, compression="none")
    alter(broker.bootstrap, topic, "compression.type", "snappy")
    confluent.produce(broker.bootstrap, topic, one, compression="none")
    alter(broker.bootstrap, topic, "compression.type", None)  # back to the default: producer
    confluent.produce(broker.bootstrap, topic, one, compression="none")
    assert [b.compression for b in stored(broker.data_dir, topic)] == [NONE, SNAPPY, NONE]
    got = confluent.consume(broker.bootstrap, topic, 0, 0, 3)
    assert [r.value for r in got] == [b"v" * 200] * 3


def test_invalid_compression_type_is_invalid_config(broker) -> None:
    code, message = create_error(
        broker.bootstrap, topic_name("bad"), {"compression.type": "brotli"}
    )
    assert code == INVALID_CONFIG and "compression.type" in message
    topic = topic_name("bad-alter")
    create(broker.bootstrap, topic)
    from confluent_kafka import KafkaException

    with pytest.raises(KafkaException) as exc:
        alter(broker.bootstrap, topic, "compression.type", "ZSTD")  # Kafka's names are lower case
    assert exc.value.args[0].code() == INVALID_CONFIG
    assert describe(broker.bootstrap, topic)["compression.type"].value == "producer"


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("compression.gzip.level", ["-1", "1", "9"], ["0", "10", "-2"]),
        ("compression.lz4.level", ["1", "9", "17"], ["0", "18"]),
        ("compression.zstd.level", ["-131072", "-5", "3", "22"], ["23", "-131073", "x"]),
    ],
)
def test_compression_levels_by_kafka_ranges(broker, name, good, bad) -> None:
    for value in bad:
        code, message = create_error(broker.bootstrap, topic_name("lvl"), {name: value})
        assert code == INVALID_CONFIG and name in message, (value, message)
    topic = topic_name("lvl")
    create(broker.bootstrap, topic, {name: good[0]})
    for value in good[1:]:
        alter(broker.bootstrap, topic, name, value)
    entry = describe(broker.bootstrap, topic)[name]
    assert entry.value == good[-1] and not entry.is_default


def test_describe_configs_sources(broker) -> None:
    from confluent_kafka.admin import ConfigSource

    topic = topic_name("describe")
    create(broker.bootstrap, topic, {"compression.type": "lz4", "compression.lz4.level": "12"})
    entries = describe(broker.bootstrap, topic)
    assert entries["compression.type"].value == "lz4"
    assert entries["compression.type"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert entries["compression.lz4.level"].value == "12"
    assert (entries["compression.zstd.level"].value, entries["compression.gzip.level"].value) == (
        "3",
        "-1",
    )
    assert entries["compression.zstd.level"].source == ConfigSource.DEFAULT_CONFIG.value


def test_broker_default_by_override(make_broker) -> None:
    from confluent_kafka.admin import ConfigSource

    b = make_broker({"compression.type": "gzip", "compression.gzip.level": "4"})
    inherits, keeps = topic_name("inherits"), topic_name("keeps")
    create(b.bootstrap, inherits)
    create(b.bootstrap, keeps, {"compression.type": "producer"})  # the topic's own wins
    records = [Rec(b"k%d" % i, b"value %d" % i) for i in range(20)]
    for topic in (inherits, keeps):
        confluent.produce(b.bootstrap, topic, records, compression="none")
    assert {x.compression for x in stored(b.data_dir, inherits)} == {GZIP}
    assert {x.compression for x in stored(b.data_dir, keeps)} == {NONE}
    entries = describe(b.bootstrap, inherits)
    assert entries["compression.type"].value == "gzip"
    assert entries["compression.type"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert entries["compression.gzip.level"].value == "4"
    assert entries["compression.gzip.level"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    entries = describe(b.bootstrap, keeps)
    assert entries["compression.type"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    # the broker's own settings
    from confluent_kafka.admin import ConfigResource

    res = ConfigResource(ConfigResource.Type.BROKER, "0")
    a = admin(b.bootstrap)
    entries = a.describe_configs([res], request_timeout=15)[res].result(20)
    assert (entries["compression.type"].value, entries["compression.type"].source) == (
        "gzip",
        ConfigSource.STATIC_BROKER_CONFIG.value,
    )
    assert (entries["compression.zstd.level"].value, entries["compression.zstd.level"].source) == (
        "3",
        ConfigSource.DEFAULT_CONFIG.value,
    )
    # the group coordinator's __consumer_offsets keeps what it writes (producer)
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g", "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(inherits, 0, 5)], asynchronous=False)
    finally:
        c.close()
    offsets_batches = [
        x
        for p in (b.data_dir).rglob("__consumer_offsets-*")
        for s in p.glob("*.log")
        for x in _core.scan_batches(s.read_bytes())
    ]
    assert offsets_batches and {x.compression for x in offsets_batches} == {NONE}


def test_broker_refuses_to_start_with_an_invalid_default(tmp_path) -> None:
    import subprocess
    import sys

    from support import free_port

    for key, value in (("compression.type", "brotli"), ("compression.zstd.level", "30")):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "broker",
                "--port",
                str(free_port()),
                "--data-dir",
                str(tmp_path / key),
                "--override",
                f"{key}={value}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode != 0
        assert key in proc.stderr + proc.stdout


# ------------------------------------------------------------------- log_validator itself


def test_recompress_keeps_every_field() -> None:
    recs = [
        (b"k", b"v", [("h", b"1"), ("h", None)], 1_700_000_000_000),
        (None, None, [], 1_700_000_000_005),
        (b"", b"\x00" * 1000, [("\xe9", b"")], 1_699_999_999_999),
    ]
    original = _core.build_batch(
        recs,
        compression=SNAPPY,
        producer_id=42,
        producer_epoch=3,
        base_sequence=1000,
        is_transactional=True,
    )
    batches = _core.scan_batches(original)
    for target in (NONE, GZIP, LZ4, ZSTD):
        out = log_validator.recompress(
            bytearray(original), batches, target, max_message_bytes=1 << 20
        )
        (a,), (b,) = batches, _core.scan_batches(out)
        assert b.compression == target
        for field in (
            "producer_id",
            "producer_epoch",
            "base_sequence",
            "is_transactional",
            "timestamp_type",
            "record_count",
            "base_timestamp",
            "max_timestamp",
        ):
            assert getattr(b, field) == getattr(a, field), field
        assert _core.decode_records(out) == _core.decode_records(original)


def test_target_codec_decision() -> None:
    assert log_validator.target_codec("t", "producer") == log_validator.PRODUCER
    assert log_validator.target_codec("t", "uncompressed") == NONE
    assert log_validator.target_codec("t", "zstd") == ZSTD
    assert log_validator.target_codec("__consumer_offsets", "gzip") == log_validator.PRODUCER
    batches = _core.scan_batches(raw_batch([b"x"], compression=LZ4))
    assert not log_validator.needs_recompression(batches, LZ4)
    assert not log_validator.needs_recompression(batches, log_validator.PRODUCER)
    assert log_validator.needs_recompression(batches, NONE)
