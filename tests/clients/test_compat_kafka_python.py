"""kafka-python beyond produce/consume: KafkaAdminClient (create_partitions, describe_configs,
alter_configs, list_consumer_group_offsets, delete_consumer_groups, describe_cluster), a consumer
with manual assign + seek + position + committed, the producer with every codec, and a
transactional producer refused cleanly. One broker for the module."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ConfigResource,
    ConfigResourceType,
    MemberToRemove,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)
from kafka.errors import (
    GroupIdNotFoundError,
    InvalidPartitionsError,
    KafkaError,
    NoError,
    NonEmptyGroupError,
    TransactionalIdAuthorizationFailedError,
)
from kafka.structs import OffsetAndMetadata

from .helpers import unique_topic

T = 15


@pytest.fixture(scope="module")
def admin(broker):
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=T * 1000)
    yield a
    a.close()


def _producer(bootstrap: str, **kw) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=T * 1000, **kw)


def _consumer(bootstrap: str, **kw) -> KafkaConsumer:
    kw.setdefault("enable_auto_commit", False)
    kw.setdefault("auto_offset_reset", "earliest")
    return KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=T * 1000 + 1000, **kw)


def _fill(bootstrap: str, topic: str, n: int, partition: int = 0, prefix: bytes = b"v") -> None:
    p = _producer(bootstrap)
    for i in range(n):
        p.send(topic, prefix + b"%d" % i, partition=partition)
    p.flush(T)
    p.close(T)


def _poll(c: KafkaConsumer, n: int) -> list:
    got: list = []
    deadline = time.monotonic() + T
    while len(got) < n and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=300, max_records=n - len(got)).values():
            got += recs
    return got


def test_create_partitions(admin, broker) -> None:
    topic = unique_topic("kp-parts")
    admin.create_topics([NewTopic(topic, 1, 1)], timeout_ms=T * 1000)
    admin.create_partitions({topic: NewPartitions(total_count=4)}, timeout_ms=T * 1000)
    [desc] = admin.describe_topics([topic])
    assert sorted(p["partition_index"] for p in desc["partitions"]) == [0, 1, 2, 3]
    assert all(p["leader_id"] == 0 and p["isr_nodes"] == [0] for p in desc["partitions"])
    _fill(broker.bootstrap, topic, 2, partition=3)
    c = _consumer(broker.bootstrap)
    assert c.end_offsets([TopicPartition(topic, 3)]) == {TopicPartition(topic, 3): 2}
    c.close()
    with pytest.raises(InvalidPartitionsError):  # shrinking is refused
        admin.create_partitions({topic: NewPartitions(total_count=2)}, timeout_ms=T * 1000)


def test_describe_and_alter_configs(admin) -> None:
    topic = unique_topic("kp-cfg")
    admin.create_topics(
        [NewTopic(topic, 1, 1, topic_configs={"retention.bytes": "123456"})], timeout_ms=T * 1000
    )

    def described(config_filter: str = "all") -> dict[str, dict]:
        res = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter=config_filter
        )
        return res["topic"][topic]

    assert set(described("modified")) == {"retention.bytes"}
    d = described()
    assert d["retention.bytes"]["value"] == "123456"
    assert d["retention.bytes"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert d["cleanup.policy"]["value"] == "delete"
    assert d["cleanup.policy"]["config_source"] == "DEFAULT_CONFIG"
    # AlterConfigs (not incremental): the client resends the other overrides, since the
    # request replaces the whole set
    out = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"cleanup.policy": "compact"})],
        incremental=False,
    )
    assert out == {"topic": {topic: "OK"}}
    assert {k: v["value"] for k, v in described("modified").items()} == {
        "cleanup.policy": "compact",
        "retention.bytes": "123456",
    }
    # IncrementalAlterConfigs touches only the keys it names
    out = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "5000"})],
        incremental=True,
    )
    assert out == {"topic": {topic: "OK"}}
    assert {k: v["value"] for k, v in described("modified").items()} == {
        "cleanup.policy": "compact",
        "retention.bytes": "123456",
        "retention.ms": "5000",
    }
    out = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "x"})],
        incremental=True,
        raise_on_unknown=False,
    )
    assert "InvalidConfigurationError" in out["topic"][topic], out
    assert "retention.ms" in out["topic"][topic]
    res = admin.describe_configs(
        [ConfigResource(ConfigResourceType.BROKER, "0")], config_filter="all"
    )
    assert {"log.retention.hours", "num.partitions"} <= set(res["broker"]["0"])


def test_offsets_delete_records_and_log_dirs(admin, broker) -> None:
    topic = unique_topic("kp-lpo")
    admin.create_topics(
        [NewTopic(topic, replica_assignments={0: [0], 1: [0]})], timeout_ms=T * 1000
    )
    base = int(time.time() * 1000) - 10_000
    p = _producer(broker.bootstrap)
    for i in range(6):
        p.send(topic, b"o%d" % i, partition=0, timestamp_ms=base + 10 * i + (500 if i == 3 else 0))
    p.flush(T)
    p.close(T)
    tp = TopicPartition(topic, 0)

    def lpo(spec) -> tuple[int, int]:
        got = admin.list_partition_offsets({tp: spec})[tp]
        return got.offset, got.timestamp

    assert lpo(OffsetSpec.EARLIEST)[0] == 0
    assert lpo(OffsetSpec.LATEST)[0] == 6
    assert lpo(OffsetSpec.MAX_TIMESTAMP) == (3, base + 530)
    assert lpo(base + 15) == (2, base + 20)
    assert admin.delete_records({tp: 4})[tp]["low_watermark"] == 4
    assert lpo(OffsetSpec.EARLIEST)[0] == 4
    [dirs] = admin.describe_log_dirs()
    sizes = {
        (t["name"], part["partition_index"]): part["partition_size"]
        for d in dirs["log_dirs"]
        for t in d["topics"]
        for part in t["partitions"]
    }
    assert sizes[(topic, 0)] > 0 and sizes[(topic, 1)] == 0


def test_describe_cluster(admin, broker) -> None:
    c = admin.describe_cluster()
    assert c["controller_id"] == 0
    assert [(b["broker_id"], b["port"]) for b in c["brokers"]] == [(0, broker.port)]
    assert c["cluster_id"]


def test_group_offsets_list_and_delete(admin, broker) -> None:
    topic = unique_topic("kp-go")
    admin.create_topics([NewTopic(topic, 2, 1)], timeout_ms=T * 1000)
    _fill(broker.bootstrap, topic, 5, partition=1)
    group = unique_topic("kp-group")
    c = _consumer(broker.bootstrap, group_id=group)
    c.subscribe([topic])
    got = _poll(c, 5)
    assert [r.value for r in got] == [b"v%d" % i for i in range(5)]
    c.commit({TopicPartition(topic, 1): OffsetAndMetadata(3, "meta-3", -1)})
    offs = admin.list_group_offsets({group: None})[group]
    assert offs[TopicPartition(topic, 1)].offset == 3
    assert offs[TopicPartition(topic, 1)].metadata == "meta-3"
    assert TopicPartition(topic, 0) not in offs
    [listed] = [g for g in admin.list_groups() if g["group_id"] == group]
    assert listed["protocol_type"] == "consumer"
    desc = admin.describe_groups([group])[group]
    assert desc["group_state"] == "Stable" and len(desc["members"]) == 1
    assert admin.delete_groups([group]) == {group: NonEmptyGroupError.__name__}
    c.close()
    assert admin.delete_groups([group]) == {group: "OK"}
    assert admin.list_group_offsets({group: None})[group] == {}
    assert admin.delete_groups([group]) == {group: GroupIdNotFoundError.__name__}
    # offsets of an empty group can be set (and deleted) by the admin; a consumer resumes there
    admin.alter_group_offsets(
        group,
        {
            TopicPartition(topic, 0): OffsetAndMetadata(0, "", -1),
            TopicPartition(topic, 1): OffsetAndMetadata(2, "", -1),
        },
    )
    deleted = admin.delete_group_offsets(group, [TopicPartition(topic, 0)])
    assert deleted == {TopicPartition(topic, 0): NoError}
    assert list(admin.list_group_offsets({group: None})[group]) == [TopicPartition(topic, 1)]
    c = _consumer(broker.bootstrap, group_id=group)
    c.subscribe([topic])
    assert [r.offset for r in _poll(c, 3)] == [2, 3, 4]
    c.close()


def test_validate_only_multi_group_offsets_and_static_member_removal(admin, broker) -> None:
    topic = unique_topic("kp-vo")
    admin.create_topics([NewTopic(topic, 2, 1)], validate_only=True, timeout_ms=T * 1000)
    assert topic not in admin.list_topics()
    admin.create_topics([NewTopic(topic, 2, 1)], timeout_ms=T * 1000)
    syn = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic)],
        include_synonyms=True,
        config_filter="all",
    )["topic"][topic]["segment.bytes"]["synonyms"]
    assert syn == [{"name": "log.segment.bytes", "value": "1073741824", "source": "DEFAULT_CONFIG"}]
    ga, gb = unique_topic("kp-ga"), unique_topic("kp-gb")
    admin.alter_group_offsets(ga, {TopicPartition(topic, 0): OffsetAndMetadata(1, "a", -1)})
    admin.alter_group_offsets(gb, {TopicPartition(topic, 0): OffsetAndMetadata(2, "b", -1)})
    # OffsetFetch v8: several groups in one request
    got = admin.list_group_offsets(
        {ga: None, gb: [TopicPartition(topic, 0), TopicPartition(topic, 1)]}
    )
    assert got[ga] == {TopicPartition(topic, 0): OffsetAndMetadata(1, "a", -1)}
    assert got[gb][TopicPartition(topic, 0)] == OffsetAndMetadata(2, "b", -1)
    assert got[gb][TopicPartition(topic, 1)].offset == -1  # never committed
    empty = {g["group_id"] for g in admin.list_groups(states_filter=["Empty"])}
    assert {ga, gb} <= empty
    # a static member (group.instance.id) removed by the admin (LeaveGroup v3+ batch)
    group = unique_topic("kp-static")
    c = _consumer(broker.bootstrap, group_id=group, group_instance_id="inst-1")
    c.subscribe([topic])
    deadline = time.monotonic() + T
    while not c.assignment() and time.monotonic() < deadline:
        c.poll(200)
    [member] = admin.describe_groups([group])[group]["members"]
    assert member["group_instance_id"] == "inst-1"
    removed = admin.remove_group_members(group, [MemberToRemove(group_instance_id="inst-1")])
    assert list(removed.values()) == [NoError]
    desc = admin.describe_groups([group])[group]
    assert (desc["group_state"], desc["members"]) == ("Empty", [])
    c.close()


def test_manual_assign_seek_position_committed(admin, broker) -> None:
    topic = unique_topic("kp-seek")
    admin.create_topics([NewTopic(topic, 1, 1)], timeout_ms=T * 1000)
    _fill(broker.bootstrap, topic, 10)
    tp = TopicPartition(topic, 0)
    group = unique_topic("kp-seek-g")
    c = _consumer(broker.bootstrap, group_id=group)
    c.assign([tp])
    assert c.committed(tp) is None
    assert c.position(tp) == 0  # auto_offset_reset=earliest, nothing committed
    c.seek(tp, 7)
    assert c.position(tp) == 7
    assert [r.offset for r in _poll(c, 3)] == [7, 8, 9]
    assert c.position(tp) == 10
    c.seek_to_beginning(tp)
    assert c.position(tp) == 0
    c.seek_to_end(tp)
    assert c.position(tp) == 10
    c.commit({tp: OffsetAndMetadata(4, None, -1)})
    assert c.committed(tp) == 4
    c.close()
    c2 = _consumer(broker.bootstrap, group_id=group)
    c2.assign([tp])
    assert c2.position(tp) == 4  # resumes at the committed offset
    assert [r.value for r in _poll(c2, 2)] == [b"v4", b"v5"]
    assert c2.beginning_offsets([tp]) == {tp: 0} and c2.end_offsets([tp]) == {tp: 10}
    c2.close()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_producer_codecs(broker, codec: str) -> None:
    topic = unique_topic(f"kp-{codec}")
    p = _producer(broker.bootstrap, compression_type=codec, linger_ms=50)
    values = [b"%s-%d-" % (codec.encode(), i) + b"x" * 200 for i in range(50)]
    futs = [p.send(topic, v, key=b"k%d" % i, partition=0) for i, v in enumerate(values)]
    p.flush(T)
    assert [f.get(T).offset for f in futs] == list(range(50))
    p.close(T)
    c = _consumer(broker.bootstrap)
    c.assign([TopicPartition(topic, 0)])
    got = _poll(c, 50)
    assert [(r.key, r.value) for r in got] == [(b"k%d" % i, v) for i, v in enumerate(values)]
    c.close()


def test_transactional_producer_is_refused_cleanly(broker) -> None:
    p = _producer(broker.bootstrap, transactional_id=unique_topic("kp-tx"), max_block_ms=20000)
    start = time.monotonic()
    with pytest.raises(KafkaError) as exc:
        p.init_transactions()
    assert time.monotonic() - start < 10
    assert isinstance(exc.value, TransactionalIdAuthorizationFailedError), exc.value
    p.close(0)
    assert broker.proc.poll() is None
