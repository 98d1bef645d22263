"""Manual replica assignments on a single node (EmbeddedMetadataStore), with real clients.

An assignment naming only this broker creates the partitions there; one naming any other
broker id is refused with INVALID_REPLICA_ASSIGNMENT (the broker is unknown here), as are
duplicates and differing replica counts, and nothing is created. The store refuses such
assignments itself too, and keeps the given ones across a restart.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kafka.admin import KafkaAdminClient
from kafka.admin import NewTopic as KNewTopic
from kafka.errors import InvalidReplicationAssignmentError, InvalidRequestError
from support import BrokerProcess

from broker.metadata import EmbeddedMetadataStore
from broker.metadata.store import InvalidReplicaAssignmentError

QUIET = logging.getLogger("test.librdkafka")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


def admin(b: BrokerProcess) -> AdminClient:
    return AdminClient({"bootstrap.servers": b.bootstrap, "logger": QUIET})


def node_id(ad: AdminClient) -> int:
    (only,) = ad.list_topics(timeout=10).brokers
    return int(only)


def stored(b: BrokerProcess, topic: str) -> dict[int, list[int]]:
    """The partitions' replicas as the metadata file on disk has them."""
    state = json.loads((b.data_dir / "cluster-metadata.json").read_text())
    return {p["index"]: p["replicas"] for p in state["topics"][topic]["partitions"]}


def round_trip(b: BrokerProcess, topic: str, partition: int) -> None:
    p = Producer({"bootstrap.servers": b.bootstrap, "logger": QUIET})
    for i in range(3):
        p.produce(topic, b"v%d" % i, partition=partition)
    assert p.flush(20) == 0
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g", "logger": QUIET})
    c.assign([TopicPartition(topic, partition, 0)])
    got: list[bytes] = []
    try:
        for _ in range(40):
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value())
            if len(got) == 3:
                break
    finally:
        c.close()
    assert got == [b"v0", b"v1", b"v2"]


def test_assignment_naming_this_broker(broker: BrokerProcess) -> None:
    ad = admin(broker)
    me = node_id(ad)
    ad.create_topics([NewTopic("m1", 2, replica_assignment=[[me], [me]])])["m1"].result(15)
    assert stored(broker, "m1") == {0: [me], 1: [me]}
    md = ad.list_topics("m1", timeout=10).topics["m1"]
    assert {p: (list(pm.replicas), pm.leader) for p, pm in md.partitions.items()} == {
        0: ([me], me),
        1: ([me], me),
    }
    round_trip(broker, "m1", 1)

    ad.create_partitions([NewPartitions("m1", 3, replica_assignment=[[me]])])["m1"].result(15)
    assert stored(broker, "m1") == {0: [me], 1: [me], 2: [me]}
    round_trip(broker, "m1", 2)


def test_kafka_python_assignment(broker: BrokerProcess) -> None:
    me = node_id(admin(broker))
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        a.create_topics([KNewTopic("m2", -1, -1, replica_assignments={0: [me]})], timeout_ms=15000)
        for partitions, rf in ((1, -1), (-1, 1)):
            with pytest.raises(InvalidRequestError):
                a.create_topics(
                    [KNewTopic("m2both", partitions, rf, replica_assignments={0: [me]})],
                    timeout_ms=15000,
                )
        for bad in ({0: [me], 2: [me]}, {0: []}):
            with pytest.raises(InvalidReplicationAssignmentError):
                a.create_topics(
                    [KNewTopic("m2bad", -1, -1, replica_assignments=bad)], timeout_ms=15000
                )
    finally:
        a.close()
    assert stored(broker, "m2") == {0: [me]}
    names = set(admin(broker).list_topics(timeout=10).topics)
    assert "m2both" not in names and "m2bad" not in names


def test_other_brokers_refused(broker: BrokerProcess) -> None:
    ad = admin(broker)
    me = node_id(ad)
    other = me + 1
    for assignment, what in (
        ([[other]], "Unknown broker"),
        ([[me, other]], "Unknown broker"),
        ([[me, me]], "Duplicate"),
    ):
        fut = ad.create_topics([NewTopic("m3", len(assignment), replica_assignment=assignment)])
        with pytest.raises(KafkaException) as info:
            fut["m3"].result(15)
        err = info.value.args[0]
        assert err.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT, (assignment, err)
        assert what in err.str(), (assignment, err)
    assert "m3" not in ad.list_topics(timeout=10).topics

    ad.create_topics([NewTopic("m4", 1, replica_assignment=[[me]])])["m4"].result(15)
    for assignment in ([[other]], [[me, other]], [[me], [me]]):
        fut = ad.create_partitions([NewPartitions("m4", 2, replica_assignment=assignment)])
        with pytest.raises(KafkaException) as info:
            fut["m4"].result(15)
        assert info.value.args[0].code() == KafkaError.INVALID_REPLICA_ASSIGNMENT, assignment
    assert stored(broker, "m4") == {0: [me]}


def test_store_checks_and_keeps_assignment(tmp_path: Path) -> None:
    """Callers other than the handlers (tools, internal topics) get the same checks."""
    store = EmbeddedMetadataStore(tmp_path, node_id=7)
    for given, partitions, rf in (
        ({0: [8]}, 1, 1),  # unknown broker
        ({0: [7, 7]}, 1, 2),  # duplicate
        ({1: [7]}, 1, 1),  # not numbered from 0
        ({0: [7]}, 2, 1),  # fewer partitions than asked
    ):
        with pytest.raises(InvalidReplicaAssignmentError):
            store.create_topic("t", partitions, rf, replica_assignment=given)
    assert store.topic("t") is None
    store.create_topic("t", 2, 1, replica_assignment={0: [7], 1: [7]})
    with pytest.raises(InvalidReplicaAssignmentError):
        store.add_partitions("t", 4, replica_assignment=[[7]])  # one list per new partition
    store.add_partitions("t", 3, replica_assignment=[[7]])
    store.close()
    again = EmbeddedMetadataStore(tmp_path, node_id=7)
    t = again.topic("t")
    assert t is not None
    assert {i: (p.replicas, p.leader) for i, p in t.partitions.items()} == {
        0: ([7], 7),
        1: ([7], 7),
        2: ([7], 7),
    }
