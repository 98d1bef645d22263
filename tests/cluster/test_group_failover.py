"""A consumer group survives the death of its coordinator (three brokers, real ZooKeeper).

The group's coordinator is the leader of its __consumer_offsets partition
(offsets.topic.replication.factor 3). A confluent-kafka consumer reads with synchronous
commits; its coordinator is killed with kill -9 mid-stream. The consumer goes on (its
commits reach the new coordinator, the broker that took over the __consumer_offsets
partition), nothing is read twice below the last commit made before the kill, and a new
member of the group starts exactly at the last committed offsets.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from broker.coordinator import records as rec
from cluster.conftest import SESSION_TIMEOUT_MS, Cluster, wait_until

TOPIC = "gf"
PARTITIONS = 2
RECORDS = 3000
GROUP = "failover-group"


def produce_all(c: Cluster) -> None:
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})])[
        TOPIC
    ].result(15)
    for p in range(PARTITIONS):
        wait_until(lambda p=p: len(c.state(TOPIC, p)["isr"]) == 3, 20, f"{TOPIC}-{p} ISR of 3")
    producer = Producer(
        {"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True}
    )
    for i in range(RECORDS):
        producer.produce(TOPIC, f"{i:06d}".encode(), partition=i % PARTITIONS)
        if i % 500 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0


def consumer(c: Cluster, nodes: list[int]) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": c.bootstrap_of(nodes),
            "group.id": GROUP,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 30000,
            "max.poll.interval.ms": 60000,
        }
    )


def test_group_survives_kill9_of_its_coordinator(cluster: Cluster) -> None:
    c = cluster
    produce_all(c)
    offsets_partition = rec.partition_for(GROUP, int(c.overrides["offsets.topic.num.partitions"]))
    coordinator = c.leader("__consumer_offsets", offsets_partition)
    survivors = [n for n in c.brokers if n != coordinator]

    seen: list[tuple[int, int, float]] = []  # (partition, offset, when)
    committed: dict[int, int] = {}
    commit_failures = 0
    commit_times: list[float] = []
    killed_at: float | None = None
    committed_at_kill: dict[int, int] = {}
    a = consumer(c, list(c.brokers))
    a.subscribe([TOPIC])
    pending: dict[int, int] = {}
    deadline = time.monotonic() + 45
    try:
        while time.monotonic() < deadline:
            msg = a.poll(0.2)
            if msg is not None and not msg.error():
                seen.append((msg.partition(), msg.offset(), time.monotonic()))
                pending[msg.partition()] = msg.offset() + 1
                time.sleep(0.002)  # a consumer that does some work per record
            if pending and (len(seen) % 25 == 0 or msg is None):
                try:
                    a.commit(
                        offsets=[TopicPartition(TOPIC, p, o) for p, o in pending.items()],
                        asynchronous=False,
                    )
                    committed.update(pending)
                    commit_times.append(time.monotonic())
                    pending = {}
                except KafkaException:
                    commit_failures += 1  # coordinator moving: the next commit retries
            if killed_at is None and len(seen) >= 600:
                committed_at_kill = dict(committed)
                killed_at = time.monotonic()
                c.brokers[coordinator].kill()
            if sum(committed.values()) >= RECORDS and killed_at is not None:
                break
        assert killed_at is not None
        assert sum(committed.values()) == RECORDS, f"only {committed} committed; {len(seen)} read"
    finally:
        a.close()

    # The coordinator moved with the leadership of the __consumer_offsets partition.
    new_coordinator = c.leader("__consumer_offsets", offsets_partition)
    assert new_coordinator in survivors

    # Nothing read twice below the last commit before the kill.
    firsts: dict[tuple[int, int], int] = {}
    again = []
    for p, o, _ in seen:
        if (p, o) in firsts:
            again.append((p, o))
        firsts[(p, o)] = 1
    below = [(p, o) for p, o in again if o < committed_at_kill.get(p, 0)]
    assert not below, f"re-consumed below the last commit {committed_at_kill}: {below[:5]}"
    assert len(firsts) == RECORDS  # every record was read
    after = [t for t in commit_times if t > killed_at]
    assert after, "no commit after the kill"
    gap = max(b - a_ for a_, b in zip(commit_times, commit_times[1:], strict=False))
    print(
        f"[group failover] read {len(seen)} ({len(again)} again, all at or past the last "
        f"commit), {commit_failures} commit(s) failed, first commit after the kill "
        f"{after[0] - killed_at:.2f}s later, longest gap between commits {gap:.2f}s; "
        f"coordinator {coordinator} -> {new_coordinator}"
    )

    # A new member of the group starts at the committed offsets (read from the new
    # coordinator): here the end of every partition, so it reads nothing; after more
    # records it reads exactly those.
    producer = Producer({"bootstrap.servers": c.bootstrap_of(survivors), "acks": "all"})
    for i in range(10):
        producer.produce(TOPIC, f"late-{i}".encode(), partition=i % PARTITIONS)
    assert producer.flush(30) == 0
    b = consumer(c, survivors)
    try:
        tps = b.committed(
            [TopicPartition(TOPIC, p) for p in range(PARTITIONS)],
            timeout=SESSION_TIMEOUT_MS / 1000 + 10,
        )
        assert {tp.partition: tp.offset for tp in tps} == committed
        b.subscribe([TOPIC])
        got = []
        end = time.monotonic() + 30
        while len(got) < 10 and time.monotonic() < end:
            msg = b.poll(0.5)
            if msg is not None and not msg.error():
                got.append((msg.partition(), msg.offset(), msg.value()))
        assert sorted(v for _, _, v in got) == [f"late-{i}".encode() for i in range(10)]
        assert all(o >= committed[p] for p, o, _ in got)
    finally:
        b.close()


def test_group_follows_its_coordinator_moved_by_a_preferred_election(cluster: Cluster) -> None:
    """Reorder the replicas of the group's __consumer_offsets partition and run a preferred
    election: the old leader unloads the group, the new one loads it, the consumer's commits
    go on against it and nothing committed is read again."""
    from click.testing import CliRunner
    from kafka import TopicPartition as KTP
    from kafka.admin import KafkaAdminClient

    from broker.tools.partitions import partitions

    c = cluster
    produce_all(c)
    n = int(c.overrides["offsets.topic.num.partitions"])
    op = rec.partition_for(GROUP, n)
    old = c.leader("__consumer_offsets", op)
    replicas = c.assignment("__consumer_offsets")[op]
    new = next(r for r in replicas if r != old)
    a = consumer(c, list(c.brokers))
    a.subscribe([TOPIC])
    seen: list[tuple[int, int]] = []
    committed: dict[int, int] = {}
    moved_at_commit: dict[int, int] | None = None
    deadline = time.monotonic() + 40
    try:
        while time.monotonic() < deadline and sum(committed.values()) < RECORDS:
            msg = a.poll(0.2)
            if msg is None or msg.error():
                continue
            seen.append((msg.partition(), msg.offset()))
            a.commit(message=msg, asynchronous=False)
            committed[msg.partition()] = msg.offset() + 1
            if moved_at_commit is None and len(seen) >= 300:
                moved_at_commit = dict(committed)
                admin = KafkaAdminClient(bootstrap_servers=c.bootstrap.split(","))
                try:
                    order = [new, *[r for r in replicas if r != new]]
                    assert admin.alter_partition_reassignments(
                        {KTP("__consumer_offsets", op): order}
                    ) == {KTP("__consumer_offsets", op): None}
                finally:
                    admin.close()
                result = CliRunner().invoke(
                    partitions,
                    [
                        "elect-leaders",
                        "--topic",
                        "__consumer_offsets",
                        "--partition",
                        str(op),
                        "-b",
                        c.bootstrap,
                    ],
                )
                assert result.exit_code == 0, result.output
        assert sum(committed.values()) == RECORDS, committed
    finally:
        a.close()
    assert moved_at_commit is not None
    assert c.leader("__consumer_offsets", op) == new
    assert len(seen) == len(set(seen)) == RECORDS  # nothing read twice
    b = consumer(c, [new])
    try:
        tps = b.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=15)
        assert {tp.partition: tp.offset for tp in tps} == committed
    finally:
        b.close()
