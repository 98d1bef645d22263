"""Consumer groups on a three-broker cluster (real ZooKeeper, tests/cluster fixtures): the
group coordinator is the leader of the group's __consumer_offsets partition, and when that
broker is killed with SIGKILL the new leader takes the group over from the replicated
records, with its committed offsets."""

from __future__ import annotations

import time

import pytest
from cluster.conftest import (  # noqa: F401  (cluster, zookeeper: fixtures)
    SESSION_TIMEOUT_MS,
    Cluster,
    cluster,
    dump_logs,
    wait_until,
    zookeeper,
)
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from test_groups_e2e import Worker

from broker.coordinator import records as rec

pytestmark = pytest.mark.cluster


def test_coordinator_failover_keeps_committed_offsets(cluster: Cluster) -> None:  # noqa: F811
    c = cluster
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("gcl", 6, 3)])["gcl"].result(15)
    for p in range(6):
        wait_until(lambda p=p: len(c.state("gcl", p)["isr"]) == 3, 20, f"gcl-{p} ISR of 3")
    group = "g-cluster"
    offsets_partition = rec.partition_for(group, 6)
    coordinator = c.leader("__consumer_offsets", offsets_partition)
    assert coordinator in c.brokers

    producer = Producer({"bootstrap.servers": c.bootstrap, "acks": "all"})

    def produce(tag: str) -> set[str]:
        values = set()
        for i in range(30):
            v = f"{tag}-{i}"
            producer.produce("gcl", value=v.encode(), partition=i % 6)
            values.add(v)
        assert producer.flush(30) == 0
        return values

    w = Worker("confluent", c.bootstrap, group, "gcl", commit=True)
    try:
        wait_until(lambda: w.assignment() == set(range(6)), 40, "the consumer to own 6 partitions")
        first = produce("before")
        wait_until(lambda: {r["value"] for r in w.records()} >= first, 30, "first batch consumed")
        time.sleep(1.0)  # the last commits reach the followers

        c.brokers[coordinator].kill()
        wait_until(
            lambda: c.leader("__consumer_offsets", offsets_partition) not in (coordinator, -1),
            SESSION_TIMEOUT_MS / 1000 + 15,
            "a new coordinator",
        )
        second = produce("after")
        try:
            wait_until(
                lambda: {r["value"] for r in w.records()} >= second, 60, "second batch consumed"
            )
        except TimeoutError:
            missing = second - {r["value"] for r in w.records()}
            print("missing:", sorted(missing))
            print("consumer events:", [e for e in w.snapshot() if e["event"] != "record"])
            dump_logs(c, 150)
            raise
        time.sleep(1.0)
    finally:
        w.stop()

    # The committed offsets survived the coordinator's death: 10 per partition.
    survivors = [n for n in c.brokers if n != coordinator]
    check = Consumer({"bootstrap.servers": c.bootstrap_of(survivors), "group.id": group})
    try:
        committed = check.committed([TopicPartition("gcl", p) for p in range(6)], timeout=20)
    finally:
        check.close()
    assert [tp.offset for tp in committed] == [10] * 6
