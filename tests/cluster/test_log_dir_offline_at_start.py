"""Fault: a broker restarts with one of its two log directories unusable (KIP-112).

Broker 1 has two log directories and is a replica of every partition of an RF-3 topic. It
is stopped, its second directory replaced by a regular file (the disk is gone), and started
again: it starts with its first directory (Kafka's LogManager), the partitions that lived in
the second stay offline there (not created empty in the first: no copy from the leaders), so
broker 1 never rejoins their ISRs and is not elected their leader, while it rejoins the ISRs of
the partitions in its first directory. Its Metadata lists itself in offline_replicas of the
offline ones. Writes with acks=all keep succeeding on every partition. With the directory
back and another restart, broker 1 is in every ISR again.
"""

# ruff: noqa: F811 - the two_dir_cluster fixture is imported, then used as a parameter
from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import ElectionType, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from test_broker_metadata import metadata_request
from test_broker_network import RawClient

from cluster.conftest import Cluster, wait_until
from cluster.test_fault_log_dir_jbod import two_dir_cluster  # noqa: F401 - a fixture

TOPIC = "offstart"
PARTITIONS = 4
VICTIM = 1


def _produce_all(bootstrap: str, tag: str) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 20000})
    errors: list = []
    for i in range(PARTITIONS):
        p.produce(
            TOPIC, f"{tag}-{i}".encode(), partition=i, on_delivery=lambda e, m: errors.append(e)
        )
    assert p.flush(30) == 0
    assert errors == [None] * PARTITIONS, errors


def test_restart_with_an_unusable_log_dir(two_dir_cluster: Cluster, tmp_path: Path) -> None:
    c = two_dir_cluster
    vb = c.brokers[VICTIM]
    second = tmp_path / "broker-1" / "second"
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3)])[TOPIC].result(15)
    for p in range(PARTITIONS):
        wait_until(lambda p=p: len(c.state(TOPIC, p)["isr"]) == 3, 20, f"{TOPIC}-{p} ISR of 3")
    _produce_all(c.bootstrap, "before")
    gone = {int(d.name.rsplit("-", 1)[1]) for d in second.glob(f"{TOPIC}-*")}
    kept = set(range(PARTITIONS)) - gone
    assert gone and kept, (gone, kept)

    assert vb.stop() == 0, vb.output()[-3000:]
    second.rename(tmp_path / "second.away")
    second.write_text("the disk is gone")
    c.start_broker(VICTIM)
    out = vb.output()
    assert str(second) in out and "offline" in out, out[-3000:]
    for p in kept:
        wait_until(lambda p=p: len(c.state(TOPIC, p)["isr"]) == 3, 30, f"{TOPIC}-{p} ISR of 3")
    tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    try:
        admin.elect_leaders(ElectionType.PREFERRED, tps).result(15)
    except Exception:
        pass  # some partitions may have nothing to elect
    time.sleep(1.0)
    for p in gone:
        st = c.state(TOPIC, p)
        assert VICTIM not in st["isr"] and st["leader"] not in (VICTIM, -1), (p, st)
        assert not (vb.data_dir / f"{TOPIC}-{p}").exists()  # not created anew elsewhere
    _produce_all(c.bootstrap, "during")
    raw = RawClient(vb.bootstrap)
    try:
        (t,) = raw.call(metadata_request(9, [TOPIC], auto=False)).topics
    finally:
        raw.sock.close()
    for part in t.partitions:
        expected = [VICTIM] if part.partition_index in gone else []
        assert list(part.offline_replicas) == expected, part
        assert part.error_code.value == 0, part  # another broker leads it
    assert vb.proc.poll() is None

    # The disk is back: broker 1 rejoins every ISR.
    assert vb.stop() == 0, vb.output()[-3000:]
    second.unlink()
    (tmp_path / "second.away").rename(second)
    c.start_broker(VICTIM)
    for p in range(PARTITIONS):
        wait_until(lambda p=p: len(c.state(TOPIC, p)["isr"]) == 3, 30, f"{TOPIC}-{p} ISR of 3")
    _produce_all(c.bootstrap, "after")


def test_killed_leader_restarts_with_an_unusable_log_dir(
    two_dir_cluster: Cluster, tmp_path: Path
) -> None:
    """Broker 1, leader of every partition, is killed (no controlled shutdown) and restarted
    at once without its second directory: the partitions of that directory end with another
    leader and an ISR without broker 1 (the controller handles the bounce; the broker would
    also leave them itself, broker/log_dirs.py started()), the others get broker 1 back in
    their ISRs, and acks=all writes succeed on every partition."""
    import signal

    c = two_dir_cluster
    vb = c.brokers[VICTIM]
    second = tmp_path / "broker-1" / "second"
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3)])[TOPIC].result(15)
    from kafka import TopicPartition as KTopicPartition
    from kafka.admin import KafkaAdminClient

    kp = KafkaAdminClient(bootstrap_servers=c.bootstrap)
    try:
        kp.alter_partition_reassignments(
            {KTopicPartition(TOPIC, p): [VICTIM, 2, 3] for p in range(PARTITIONS)}
        )
    finally:
        kp.close()
    wait_until(lambda: all(r[0] == VICTIM for r in c.assignment(TOPIC).values()), 20, "reorder")
    for p in range(PARTITIONS):
        wait_until(lambda p=p: len(c.state(TOPIC, p)["isr"]) == 3, 20, f"{TOPIC}-{p} ISR of 3")
    tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    admin.elect_leaders(ElectionType.PREFERRED, tps).result(15)
    wait_until(
        lambda: all(c.state(TOPIC, p)["leader"] == VICTIM for p in range(PARTITIONS)),
        20,
        f"broker {VICTIM} leads every partition",
    )
    _produce_all(c.bootstrap, "before")
    gone = {int(d.name.rsplit("-", 1)[1]) for d in second.glob(f"{TOPIC}-*")}
    kept = set(range(PARTITIONS)) - gone
    assert gone and kept, (gone, kept)

    vb.stop(signal.SIGKILL)
    second.rename(tmp_path / "second.away")
    second.write_text("the disk is gone")
    c.start_broker(VICTIM)

    def left() -> bool:
        for p in gone:
            st = c.state(TOPIC, p)
            if st["leader"] in (VICTIM, -1) or VICTIM in st["isr"]:
                return False
        return True

    wait_until(left, 30, f"the partitions of the unusable directory off broker {VICTIM}")
    for p in kept:
        wait_until(lambda p=p: len(c.state(TOPIC, p)["isr"]) == 3, 30, f"{TOPIC}-{p} ISR of 3")
    _produce_all(c.bootstrap, "during")
    assert left()
    assert vb.proc.poll() is None
