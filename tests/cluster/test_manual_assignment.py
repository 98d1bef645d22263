"""Manual replica assignments on a real cluster (ZooKeeper + 3 brokers on loopback).

CreateTopics' ``assignments`` and CreatePartitions' ``assignments`` place each partition
exactly on the replicas given, the first one being the preferred leader, as in Kafka;
bad assignments are refused with Kafka's error codes and create nothing.
"""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kafka.admin import KafkaAdminClient
from kafka.admin import NewTopic as KNewTopic
from kafka.errors import InvalidReplicationAssignmentError, InvalidRequestError

from cluster.conftest import Cluster, wait_until

pytestmark = pytest.mark.timeout(120)

QUIET = logging.getLogger("test.librdkafka")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


def admin(c: Cluster) -> AdminClient:
    return AdminClient({"bootstrap.servers": c.bootstrap, "logger": QUIET})


def wait_isr(c: Cluster, topic: str, expected: dict[int, list[int]]) -> None:
    for p, reps in expected.items():
        wait_until(
            lambda p=p, reps=reps: sorted(c.state(topic, p)["isr"]) == sorted(reps),
            20,
            f"{topic}-{p} ISR {reps}",
        )


def hosted(c: Cluster, topic: str, partition: int) -> set[int]:
    """Brokers holding a log directory for the partition."""
    return {n for n, b in c.brokers.items() if (b.data_dir / f"{topic}-{partition}").exists()}


def round_trip(c: Cluster, topic: str, partition: int) -> None:
    """Produce with acks=all to the partition and read the records back."""
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "logger": QUIET})
    errors: list[KafkaError] = []
    for i in range(5):
        p.produce(topic, b"v%d" % i, partition=partition, on_delivery=lambda e, m: errors.append(e))
    assert p.flush(30) == 0
    assert errors == [None] * 5
    cons = Consumer(
        {
            "bootstrap.servers": c.bootstrap,
            "group.id": f"g-{topic}",
            "auto.offset.reset": "earliest",
            "logger": QUIET,
        }
    )
    from confluent_kafka import TopicPartition

    cons.assign([TopicPartition(topic, partition, 0)])
    got: list[bytes] = []
    try:
        wait_until(
            lambda: (
                (m := cons.poll(0.5)) is not None
                and not m.error()
                and got.append(m.value())
                or len(got) >= 5
            ),
            30,
            f"5 records from {topic}-{partition}",
        )
    finally:
        cons.close()
    assert got == [b"v%d" % i for i in range(5)]


def test_create_topics_kafka_python_assignment_is_kept(cluster: Cluster) -> None:
    c = cluster
    a = KafkaAdminClient(bootstrap_servers=c.bootstrap.split(","))
    try:
        a.create_topics(
            [KNewTopic("kp", -1, -1, replica_assignments={0: [2, 3], 1: [3, 1]})], timeout_ms=15000
        )
    finally:
        a.close()
    expected = {0: [2, 3], 1: [3, 1]}
    assert c.assignment("kp") == expected
    assert c.leader("kp", 0) == 2
    assert c.leader("kp", 1) == 3
    wait_isr(c, "kp", expected)
    wait_until(lambda: hosted(c, "kp", 0) == {2, 3}, 20, "kp-0 logs on brokers 2 and 3 only")
    wait_until(lambda: hosted(c, "kp", 1) == {1, 3}, 20, "kp-1 logs on brokers 1 and 3 only")
    round_trip(c, "kp", 0)
    round_trip(c, "kp", 1)


def test_create_topics_confluent_assignment_and_metadata(cluster: Cluster) -> None:
    c = cluster
    ad = admin(c)
    ad.create_topics([NewTopic("ck", 3, replica_assignment=[[3, 1, 2], [1, 2, 3], [2, 3, 1]])])[
        "ck"
    ].result(15)
    expected = {0: [3, 1, 2], 1: [1, 2, 3], 2: [2, 3, 1]}
    assert c.assignment("ck") == expected
    assert [c.leader("ck", p) for p in range(3)] == [3, 1, 2]

    def described() -> bool:
        md = ad.list_topics("ck", timeout=5).topics["ck"]
        return {p: list(pm.replicas) for p, pm in md.partitions.items()} == expected and [
            md.partitions[p].leader for p in range(3)
        ] == [3, 1, 2]

    wait_until(described, 20, "Metadata answers the given replicas and preferred leaders")
    # A single replica per partition, one partition per broker.
    ad.create_topics([NewTopic("one", 3, replica_assignment=[[2], [3], [1]])])["one"].result(15)
    assert c.assignment("one") == {0: [2], 1: [3], 2: [1]}
    assert [c.leader("one", p) for p in range(3)] == [2, 3, 1]
    round_trip(c, "one", 1)


def test_create_topics_validate_only_creates_nothing(cluster: Cluster) -> None:
    c = cluster
    ad = admin(c)
    ad.create_topics([NewTopic("vo", 1, replica_assignment=[[2, 3]])], validate_only=True)[
        "vo"
    ].result(15)
    assert c.zk.exists("/brokers/topics/vo") is None


def test_create_topics_bad_assignment(cluster: Cluster) -> None:
    c = cluster
    ad = admin(c)
    for assignment, what in (
        ([[1, 1]], "Duplicate"),
        ([[1, 9]], "Unknown broker"),
        ([[1, 2], [3]], "same"),
    ):
        fut = ad.create_topics([NewTopic("bad", len(assignment), replica_assignment=assignment)])
        with pytest.raises(KafkaException) as info:
            fut["bad"].result(15)
        err = info.value.args[0]
        assert err.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT, (assignment, err)
        assert what in err.str(), (assignment, err)
    assert c.zk.exists("/brokers/topics/bad") is None


def test_create_topics_assignment_with_counts_is_invalid_request(cluster: Cluster) -> None:
    c = cluster
    a = KafkaAdminClient(bootstrap_servers=c.bootstrap.split(","))
    try:
        for partitions, rf in ((1, -1), (-1, 2)):
            with pytest.raises(InvalidRequestError):
                a.create_topics(
                    [KNewTopic("both", partitions, rf, replica_assignments={0: [1, 2]})],
                    timeout_ms=15000,
                )
        for bad in ({0: [1, 2], 2: [2, 3]}, {0: []}):  # a gap; no replica at all
            with pytest.raises(InvalidReplicationAssignmentError):
                a.create_topics(
                    [KNewTopic("gap", -1, -1, replica_assignments=bad)], timeout_ms=15000
                )
    finally:
        a.close()
    assert c.zk.exists("/brokers/topics/both") is None
    assert c.zk.exists("/brokers/topics/gap") is None


def test_create_partitions_assignment_is_kept(cluster: Cluster) -> None:
    c = cluster
    ad = admin(c)
    ad.create_topics([NewTopic("grow", 1, replica_assignment=[[1, 2]])])["grow"].result(15)
    ad.create_partitions([NewPartitions("grow", 3, replica_assignment=[[3, 1], [2, 3]])])[
        "grow"
    ].result(15)
    expected = {0: [1, 2], 1: [3, 1], 2: [2, 3]}
    assert c.assignment("grow") == expected
    assert [c.leader("grow", p) for p in range(3)] == [1, 3, 2]
    wait_isr(c, "grow", expected)
    wait_until(lambda: hosted(c, "grow", 2) == {2, 3}, 20, "grow-2 logs on brokers 2 and 3 only")
    round_trip(c, "grow", 2)

    # validate_only and bad assignments leave the topic as it is.
    ad.create_partitions(
        [NewPartitions("grow", 4, replica_assignment=[[1, 3]])], validate_only=True
    )["grow"].result(15)
    for assignment, code in (
        ([[1, 9]], KafkaError.INVALID_REPLICA_ASSIGNMENT),
        ([[1, 1]], KafkaError.INVALID_REPLICA_ASSIGNMENT),
        ([[1]], KafkaError.INVALID_REPLICA_ASSIGNMENT),
    ):
        fut = ad.create_partitions([NewPartitions("grow", 4, replica_assignment=assignment)])
        with pytest.raises(KafkaException) as info:
            fut["grow"].result(15)
        assert info.value.args[0].code() == code, info.value.args[0]
    assert c.assignment("grow") == expected


def test_leader_is_first_live_replica_after_failover(cluster: Cluster) -> None:
    """The given order stays the preferred order: with the first replica down, the next
    live one leads, and the first leads again once back (preferred election)."""
    c = cluster
    ad = admin(c)
    ad.create_topics([NewTopic("order", 1, replica_assignment=[[3, 2, 1]])])["order"].result(15)
    wait_isr(c, "order", {0: [3, 2, 1]})
    assert c.leader("order", 0) == 3
    c.brokers[3].stop()
    wait_until(lambda: c.leader("order", 0) == 2, 30, "broker 2 leads order-0")
    assert c.assignment("order") == {0: [3, 2, 1]}
