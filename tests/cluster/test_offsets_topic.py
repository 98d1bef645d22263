"""__consumer_offsets is created on demand with offsets.topic.replication.factor replicas.

As Kafka: no broker creates the topic at start. The first FindCoordinator (or group
request) creates it, with exactly offsets.topic.replication.factor (3 here) replicas; while
fewer brokers are alive the answer is COORDINATOR_NOT_AVAILABLE (retriable) and nothing is
created, so the first broker up cannot leave the group offsets on a single replica. Then a
group's committed offsets survive kill -9 of its coordinator.
"""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from kio.schema.errors import ErrorCode
from test_groups_protocol import Wire

from broker.coordinator import records as rec
from cluster.conftest import SESSION_TIMEOUT_MS, Cluster, ZooKeeperServer, dump_logs, wait_until

OFFSETS = "__consumer_offsets"
TOPIC = "ot"
GROUP = "offsets-topic-group"
COMMITTED = {0: 11, 1: 22, 2: 33}


def find_coordinator(c: Cluster, node: int, group: str) -> tuple[int, int]:
    w = Wire(c.brokers[node].port)
    try:
        r = w.call("find_coordinator", 3, key=group, key_type=0)
        return int(r.error_code), int(r.node_id)
    finally:
        w.close()


def commit(c: Cluster) -> None:
    """Commit COMMITTED for GROUP; the client retries COORDINATOR_NOT_AVAILABLE itself,
    the loop covers a commit that fails while the coordinator is still loading."""
    consumer = Consumer({"bootstrap.servers": c.bootstrap, "group.id": GROUP})
    try:
        offsets = [TopicPartition(TOPIC, p, o) for p, o in COMMITTED.items()]

        def done() -> bool:
            try:
                result = consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException:
                return False
            return all(tp.error is None for tp in result or [])

        wait_until(done, 60, "a successful commit")
    finally:
        consumer.close()


def committed(c: Cluster, nodes: list[int]) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": c.bootstrap_of(nodes), "group.id": GROUP})
    try:
        result = consumer.committed([TopicPartition(TOPIC, p) for p in COMMITTED], timeout=30)
        return {tp.partition: tp.offset for tp in result}
    finally:
        consumer.close()


def test_offsets_topic_created_on_demand_with_full_replication(
    zookeeper: ZooKeeperServer, tmp_path: Path
) -> None:
    c = Cluster(zookeeper, tmp_path)
    try:
        c.connect_zookeeper()  # no pre-created __consumer_offsets
        c.start_broker(1)
        wait_until(lambda: c.controller() == 1, 20, "broker 1 as controller")

        # One broker of three: the group coordinator is not available, retriably, and the
        # topic is not created with fewer replicas than configured.
        error, _ = find_coordinator(c, 1, GROUP)
        assert error == ErrorCode.coordinator_not_available
        assert c.zk.exists(f"/brokers/topics/{OFFSETS}") is None

        c.start_broker(2)
        c.start_broker(3)
        c.wait_registered({1, 2, 3})
        for node in c.brokers:
            c.wait_view(node)
        assert c.zk.exists(f"/brokers/topics/{OFFSETS}") is None  # nobody asked yet

        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 3, 3)])[TOPIC].result(15)
        commit(c)

        # Created by the first group request, with offsets.topic.replication.factor replicas.
        num = int(c.overrides["offsets.topic.num.partitions"])
        assignment = c.assignment(OFFSETS)
        assert sorted(assignment) == list(range(num))
        assert all(sorted(r) == [1, 2, 3] for r in assignment.values()), assignment
        (future,) = admin.describe_configs([ConfigResource("topic", OFFSETS)]).values()
        cfg = future.result(15)
        assert cfg["cleanup.policy"].value == "compact"

        partition = rec.partition_for(GROUP, num)
        wait_until(lambda: len(c.state(OFFSETS, partition)["isr"]) == 3, 20, "an ISR of 3")
        coordinator = c.leader(OFFSETS, partition)
        error, node = find_coordinator(c, coordinator, GROUP)
        assert (error, node) == (ErrorCode.none, coordinator)

        # The coordinator dies; a follower of its partition takes the group over with the
        # replicated offsets.
        c.brokers[coordinator].kill()
        wait_until(
            lambda: c.leader(OFFSETS, partition) not in (coordinator, -1),
            SESSION_TIMEOUT_MS / 1000 + 15,
            "a new coordinator",
        )
        survivors = [n for n in c.brokers if n != coordinator]
        assert committed(c, survivors) == COMMITTED
    except BaseException:
        dump_logs(c)
        raise
    finally:
        c.stop()
