"""confluent-kafka (librdkafka) beyond produce/consume: the AdminClient calls users reach for
next (describe_topics, list_offsets with every OffsetSpec, group offsets, delete_records,
incremental_alter_configs), consumer offsets_for_times / watermarks / store_offsets /
incremental_assign, and a transactional producer refused cleanly. One broker for the module."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from .helpers import unique_topic

T = 15  # seconds for any admin future


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def _create(a: AdminClient, topic: str, partitions: int = 1, config: dict | None = None) -> None:
    a.create_topics([NewTopic(topic, partitions, 1, config=config or {})])[topic].result(T)


def _produce(bootstrap: str, topic: str, values: list[bytes], partition: int = 0, ts=None) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i, v in enumerate(values):
        kw = {} if ts is None else {"timestamp": ts[i]}
        p.produce(topic, v, partition=partition, **kw)
    assert p.flush(T) == 0


def _consumer(bootstrap: str, group: str, **extra) -> Consumer:
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    conf.update(extra)
    return Consumer(conf)


def _poll_n(c: Consumer, n: int, timeout: float = T) -> list:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        assert m.error() is None, m.error()
        got.append(m)
    return got


def test_list_topics_and_describe_topics(broker) -> None:
    a = _admin(broker.bootstrap)
    topic = unique_topic("cf-desc")
    _create(a, topic, partitions=2)
    md = a.list_topics(timeout=T)
    assert topic in md.topics and len(md.topics[topic].partitions) == 2
    assert md.brokers and md.topics[topic].error is None
    desc = a.describe_topics(TopicCollection([topic]))[topic].result(T)
    assert desc.name == topic and not desc.is_internal
    assert [p.id for p in desc.partitions] == [0, 1]
    for p in desc.partitions:
        assert p.leader is not None and p.leader.id == md.brokers[p.leader.id].id
        assert [r.id for r in p.replicas] == [p.leader.id] == [r.id for r in p.isr]
    missing = unique_topic("cf-nosuch")
    with pytest.raises(KafkaException) as exc:
        a.describe_topics(TopicCollection([missing]))[missing].result(T)
    assert exc.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_authorized_operations_without_authorizer(broker) -> None:
    """No authorizer: every operation is allowed, as Kafka reports without one. librdkafka
    asks through Metadata v8+ (include_*_authorized_operations), not DescribeCluster."""
    a = _admin(broker.bootstrap)
    topic = unique_topic("cf-ops")
    _create(a, topic)
    desc = a.describe_topics(TopicCollection([topic]), include_authorized_operations=True)
    ops = {op.name for op in desc[topic].result(T).authorized_operations}
    assert ops == {
        "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS",
        "ALTER_CONFIGS",
    }  # fmt: skip
    cluster = a.describe_cluster(include_authorized_operations=True).result(T)
    assert {op.name for op in cluster.authorized_operations} == {
        "CREATE", "ALTER", "DESCRIBE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS",
        "IDEMPOTENT_WRITE",
    }  # fmt: skip
    assert (
        a.describe_topics(TopicCollection([topic]))[topic].result(T).authorized_operations is None
    )


def test_describe_cluster(broker) -> None:
    a = _admin(broker.bootstrap)  # kept alive until the future resolves
    c = a.describe_cluster().result(T)
    assert len(c.nodes) == 1 and c.controller is not None
    assert c.controller.id == c.nodes[0].id
    assert c.nodes[0].port == broker.port
    assert c.cluster_id


def test_list_offsets_every_spec(broker) -> None:
    a = _admin(broker.bootstrap)
    topic = unique_topic("cf-lo")
    _create(a, topic)
    base = int(time.time() * 1000) - 60_000
    stamps = [base + 10 * i for i in range(5)]
    stamps[2] = base + 1000  # the max timestamp is not on the last record
    _produce(broker.bootstrap, topic, [b"v%d" % i for i in range(5)], ts=stamps)
    tp = TopicPartition(topic, 0)

    def one(spec: OffsetSpec):
        return a.list_offsets({tp: spec})[tp].result(T)

    assert one(OffsetSpec.earliest()).offset == 0
    assert one(OffsetSpec.latest()).offset == 5
    hit = one(OffsetSpec.for_timestamp(base + 15))
    assert (hit.offset, hit.timestamp) == (2, base + 1000)
    mx = one(OffsetSpec.max_timestamp())
    assert (mx.offset, mx.timestamp) == (2, base + 1000)
    assert one(OffsetSpec.for_timestamp(base + 2000)).offset == -1  # none that late


def test_group_offsets_alter_list_describe_delete(broker) -> None:
    a = _admin(broker.bootstrap)
    topic = unique_topic("cf-go")
    _create(a, topic, partitions=2)
    _produce(broker.bootstrap, topic, [b"x"] * 4, partition=0)
    group = unique_topic("cf-group")
    req = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 0)]
    )
    [fut] = a.alter_consumer_group_offsets([req]).values()
    altered = fut.result(T)
    assert sorted((t.partition, t.offset, t.error) for t in altered.topic_partitions) == [
        (0, 3, None),
        (1, 0, None),
    ]
    [fut] = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)]).values()
    listed = fut.result(T)
    assert listed.group_id == group
    assert sorted((t.topic, t.partition, t.offset) for t in listed.topic_partitions) == [
        (topic, 0, 3),
        (topic, 1, 0),
    ]
    # a consumer of the group resumes where the admin put it
    c = _consumer(broker.bootstrap, group)
    c.subscribe([topic])
    [m] = _poll_n(c, 1)
    assert (m.partition(), m.offset()) == (0, 3)
    desc = a.describe_consumer_groups([group])[group].result(T)
    assert desc.group_id == group and len(desc.members) == 1
    assert str(desc.state).endswith("STABLE")
    assert {tp.partition for tp in desc.members[0].assignment.topic_partitions} == {0, 1}
    listed_groups = a.list_consumer_groups().result(T)
    assert group in {g.group_id for g in listed_groups.valid}
    # a group with a live member is not deleted (NON_EMPTY_GROUP) ...
    with pytest.raises(KafkaException) as exc:
        a.delete_consumer_groups([group])[group].result(T)
    assert exc.value.args[0].code() == KafkaError.NON_EMPTY_GROUP
    c.close()
    # ... an empty one is, with its offsets
    a.delete_consumer_groups([group])[group].result(T)
    [fut] = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)]).values()
    assert fut.result(T).topic_partitions == []


def test_delete_records_then_consume(broker) -> None:
    a = _admin(broker.bootstrap)
    topic = unique_topic("cf-dr")
    _create(a, topic)
    _produce(broker.bootstrap, topic, [b"r%d" % i for i in range(10)])
    tp = TopicPartition(topic, 0, 6)
    res = a.delete_records([tp])[tp].result(T)
    assert res.low_watermark == 6
    c = _consumer(broker.bootstrap, unique_topic("cf-dr-g"))
    assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=T) == (6, 10)
    c.assign([TopicPartition(topic, 0, 0)])  # below the log start: reset to earliest
    got = _poll_n(c, 4)
    assert [m.value() for m in got] == [b"r6", b"r7", b"r8", b"r9"]
    c.close()
    # past the high watermark: OFFSET_OUT_OF_RANGE
    tp_out = TopicPartition(topic, 0, 11)
    with pytest.raises(KafkaException) as exc:
        a.delete_records([tp_out])[tp_out].result(T)
    assert exc.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE


def test_incremental_alter_configs(broker) -> None:
    a = _admin(broker.bootstrap)
    topic = unique_topic("cf-iac")
    _create(a, topic, config={"retention.ms": "100000"})

    def alter(*entries: ConfigEntry) -> None:
        res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=list(entries))
        a.incremental_alter_configs([res])[res].result(T)

    def described() -> dict:
        res = ConfigResource(ResourceType.TOPIC, topic)
        return a.describe_configs([res])[res].result(T)

    alter(
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", "20000", incremental_operation=AlterConfigOpType.SET),
    )
    d = described()
    assert d["cleanup.policy"].value == "compact"
    assert d["max.message.bytes"].value == "20000"
    assert d["retention.ms"].value == "100000"  # untouched: incremental
    alter(ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.APPEND))
    assert set(described()["cleanup.policy"].value.split(",")) == {"compact", "delete"}
    alter(
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SUBTRACT)
    )
    assert described()["cleanup.policy"].value == "delete"
    alter(ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE))
    d = described()
    assert d["retention.ms"].value == "604800000" and d["retention.ms"].is_default
    bad = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("no.such.config", "1", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    with pytest.raises(KafkaException) as exc:
        a.incremental_alter_configs([bad])[bad].result(T)
    assert exc.value.args[0].code() == KafkaError.INVALID_CONFIG


def test_consumer_offsets_for_times_and_watermarks(broker) -> None:
    a = _admin(broker.bootstrap)
    topic = unique_topic("cf-oft")
    _create(a, topic)
    base = int(time.time() * 1000) - 30_000
    _produce(
        broker.bootstrap,
        topic,
        [b"t%d" % i for i in range(6)],
        ts=[base + i * 100 for i in range(6)],
    )
    c = _consumer(broker.bootstrap, unique_topic("cf-oft-g"))
    assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=T) == (0, 6)
    [hit] = c.offsets_for_times([TopicPartition(topic, 0, base + 250)], timeout=T)
    assert hit.offset == 3 and hit.error is None
    [late] = c.offsets_for_times([TopicPartition(topic, 0, base + 10_000)], timeout=T)
    assert late.offset == -1  # no record that late: the end (OFFSET_END)
    c.assign([hit])
    assert [m.value() for m in _poll_n(c, 3)] == [b"t3", b"t4", b"t5"]
    # cached watermarks after fetching
    assert c.get_watermark_offsets(TopicPartition(topic, 0), cached=True)[1] == 6
    c.close()


def test_store_offsets_manual_and_incremental_assign(broker) -> None:
    a = _admin(broker.bootstrap)
    topic = unique_topic("cf-store")
    _create(a, topic, partitions=2)
    _produce(broker.bootstrap, topic, [b"a%d" % i for i in range(5)], partition=0)
    _produce(broker.bootstrap, topic, [b"b%d" % i for i in range(5)], partition=1)
    group = unique_topic("cf-store-g")
    c = _consumer(
        broker.bootstrap,
        group,
        **{"enable.auto.commit": True, "enable.auto.offset.store": False},
    )
    c.incremental_assign([TopicPartition(topic, 0, 0)])
    got = _poll_n(c, 5)
    assert [m.value() for m in got] == [b"a%d" % i for i in range(5)]
    c.store_offsets(message=got[1])  # processed only up to a1: commit 2
    c.incremental_assign([TopicPartition(topic, 1, 3)])
    got1 = _poll_n(c, 2)
    assert [(m.partition(), m.value()) for m in got1] == [(1, b"b3"), (1, b"b4")]
    c.store_offsets(offsets=[TopicPartition(topic, 1, 5)])
    assert {tp.partition for tp in c.assignment()} == {0, 1}
    c.incremental_unassign([TopicPartition(topic, 1)])
    assert [tp.partition for tp in c.assignment()] == [0]
    c.commit(asynchronous=False)  # commits the stored offsets
    committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=T)
    assert [(tp.partition, tp.offset) for tp in committed] == [(0, 2), (1, 5)]
    c.close()


def test_admin_error_answers(broker) -> None:
    """The answers Kafka gives to the usual mistakes, as librdkafka reports them."""
    a = _admin(broker.bootstrap)
    topic = unique_topic("cf-err")
    a.create_topics([NewTopic(topic, 2, 1)], validate_only=True)[topic].result(T)
    assert topic not in a.list_topics(timeout=T).topics  # validate_only creates nothing

    def create_error(new: NewTopic) -> int:
        with pytest.raises(KafkaException) as exc:
            a.create_topics([new])[new.topic].result(T)
        return exc.value.args[0].code()

    assert create_error(NewTopic(topic, 1, 3)) == KafkaError.INVALID_REPLICATION_FACTOR
    assert create_error(NewTopic(topic, 0, 1)) == KafkaError.INVALID_PARTITIONS
    missing = ConfigResource(ResourceType.TOPIC, unique_topic("cf-nosuch"))
    with pytest.raises(KafkaException) as exc:
        a.describe_configs([missing])[missing].result(T)
    assert exc.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    nogroup = unique_topic("cf-nogroup")
    desc = a.describe_consumer_groups([nogroup])[nogroup].result(T)
    assert (str(desc.state), desc.members) == ("ConsumerGroupState.DEAD", [])
    # the offsets of a group with a live member cannot be altered by the admin
    _create(a, topic)
    _produce(broker.bootstrap, topic, [b"x", b"y"])
    group = unique_topic("cf-err-g")
    c = _consumer(broker.bootstrap, group)
    c.subscribe([topic])
    assert len(_poll_n(c, 1)) == 1
    stable = a.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(T).valid
    assert group in {g.group_id for g in stable}
    empty = a.list_consumer_groups(states={ConsumerGroupState.EMPTY}).result(T).valid
    assert group not in {g.group_id for g in empty}
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 1)])
    [fut] = a.alter_consumer_group_offsets([req]).values()
    [tp] = fut.result(T).topic_partitions
    assert tp.error is not None and tp.error.code() == KafkaError.UNKNOWN_MEMBER_ID
    c.close()


def test_consumer_seek_pause_resume_read_committed(broker) -> None:
    a = _admin(broker.bootstrap)
    topic = unique_topic("cf-seek")
    _create(a, topic)
    _produce(broker.bootstrap, topic, [b"s%d" % i for i in range(5)])
    c = _consumer(
        broker.bootstrap, unique_topic("cf-seek-g"), **{"isolation.level": "read_committed"}
    )
    c.assign([TopicPartition(topic, 0, 100)])  # past the end: auto.offset.reset=earliest
    assert [m.offset() for m in _poll_n(c, 5)] == [0, 1, 2, 3, 4]
    c.pause([TopicPartition(topic, 0)])
    _produce(broker.bootstrap, topic, [b"s5"])
    assert c.poll(1.0) is None  # paused
    c.resume([TopicPartition(topic, 0)])
    assert [m.value() for m in _poll_n(c, 1)] == [b"s5"]
    c.seek(TopicPartition(topic, 0, 2))
    assert [m.offset() for m in _poll_n(c, 4)] == [2, 3, 4, 5]
    assert c.position([TopicPartition(topic, 0)])[0].offset == 6
    c.close()


def test_transactional_producer_is_refused_cleanly(broker) -> None:
    """Transactions are not implemented: init_transactions must fail at once with a fatal
    error saying so (librdkafka retries COORDINATOR_NOT_AVAILABLE until its own timeout,
    2 x transaction.timeout.ms by default, and then reports only a generic timeout), and the
    broker must keep serving."""
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": unique_topic("cf-tx")})
    start = time.monotonic()
    with pytest.raises(KafkaException) as exc:
        p.init_transactions(20)
    err = exc.value.args[0]
    assert time.monotonic() - start < 10, err
    assert err.fatal() and not err.retriable(), err
    assert err.code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, err
    assert "not support" in err.str() and "transactions" in err.str(), err
    del p
    # the broker still works for everyone else
    topic = unique_topic("cf-after-txn")
    _create(_admin(broker.bootstrap), topic)
    _produce(broker.bootstrap, topic, [b"ok"])
    assert broker.proc.poll() is None
