"""Replication end to end: three real brokers and a real ZooKeeper (tests/cluster fixtures).

- kill -9 of the leader under an acks=all idempotent producer (RF 3, min.insync.replicas 2):
  every acknowledged record is on the new leader at the offset it was acknowledged with,
  nothing duplicated, order kept; the ex-leader rejoins and holds the same log.
- a returning ex-leader truncates the tail nobody copied, by leader epoch (KIP-101).
- followers' logs equal the leader's byte for byte (same batches, offsets, epochs).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from test_broker_network import RawClient
from test_broker_produce import fetch_all

from cluster.conftest import SESSION_TIMEOUT_MS, Cluster, wait_until

DETECT = SESSION_TIMEOUT_MS / 1000 + 15


def create(c: Cluster, topic: str, partitions: int = 1, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 3, config=config)])[topic].result(15)
    for p in range(partitions):
        wait_until(lambda p=p: len(c.state(topic, p)["isr"]) == 3, 20, f"{topic}-{p} ISR of 3")


def read_all(bootstrap: str, topic: str, partition: int, end: int, timeout: float = 30.0):
    """(offset, value) of every record below ``end``, as a consumer sees them."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition(topic, partition, 0)])
    out: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while (not out or out[-1][0] < end - 1) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            out.append((msg.offset(), msg.value()))
    finally:
        consumer.close()
    return out


def local_records(data_dir: Path, topic: str, partition: int) -> list[tuple[int, bytes]]:
    """The records of a stopped broker's partition, read with the storage engine."""
    from fastlog.log import Log

    with Log(data_dir / f"{topic}-{partition}") as log:
        return [(r.offset, r.value) for r in log.read(log.start_offset)]


def local_batches(data_dir: Path, topic: str, partition: int) -> bytes:
    from fastlog.log import Log

    with Log(data_dir / f"{topic}-{partition}") as log:
        return log.read_bytes(log.start_offset, 1 << 30)


class AckedProducer:
    """An idempotent acks=all producer in a thread; remembers what was acknowledged."""

    def __init__(self, c: Cluster, topic: str) -> None:
        self.producer = Producer(
            {
                "bootstrap.servers": c.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "message.timeout.ms": 60000,
                "linger.ms": 5,
            }
        )
        self.topic = topic
        self.acked: list[tuple[int, int, bytes]] = []  # (partition, offset, value)
        self.ack_times: list[float] = []
        self.errors: list[str] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self.errors.append(str(err))
        else:
            self.acked.append((msg.partition(), msg.offset(), msg.value()))
            self.ack_times.append(time.monotonic())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.producer.produce(
                    self.topic,
                    f"{self.sent:08d}".encode(),
                    partition=0,
                    on_delivery=self._delivered,
                )
                self.sent += 1
            except BufferError:
                pass
            self.producer.poll(0.002)

    def start(self) -> AckedProducer:
        self._thread.start()
        return self

    def longest_gap(self) -> float:
        """The longest time without an acknowledgement: the window of unavailability."""
        t = self.ack_times
        return max((b - a for a, b in zip(t, t[1:], strict=False)), default=0.0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert self.producer.flush(60) == 0


def check_history(acked: list[tuple[int, int, bytes]], records: list[tuple[int, bytes]]) -> None:
    """Jepsen-style: no acknowledged record lost or moved, none duplicated, order kept."""
    at = dict(records)
    assert len(at) == len(records), "an offset holds two values"
    values = [v for _, v in records]
    assert len(set(values)) == len(values), "a record is duplicated"
    lost = [(o, v) for _, o, v in acked if at.get(o) != v]
    assert not lost, f"{len(lost)} acknowledged record(s) lost or moved, e.g. {lost[:3]}"
    assert values == sorted(values), "per-partition order broken"


def test_followers_copy_the_leader_byte_for_byte(cluster: Cluster) -> None:
    create(cluster, "copy", partitions=2, **{"min.insync.replicas": "2"})
    p = Producer(
        {"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True}
    )
    acked = []
    for i in range(300):
        p.produce(
            "copy",
            f"{i:05d}".encode(),
            key=str(i % 7).encode(),
            partition=i % 2,
            on_delivery=lambda e, m: acked.append(m.offset()) if e is None else None,
        )
    assert p.flush(30) == 0
    assert len(acked) == 300
    for part in range(2):
        records = read_all(cluster.bootstrap, "copy", part, 150)
        assert [v for _, v in records] == [f"{i:05d}".encode() for i in range(part, 300, 2)]
    for part in range(2):
        epochs = {
            n: (b.data_dir / f"copy-{part}" / "leader-epoch-checkpoint").read_text()
            for n, b in cluster.brokers.items()
        }
        assert epochs[1] == epochs[2] == epochs[3] == "0\n1\n0 0\n"
    # (stopping moves leadership away first: epochs may grow, the records may not)
    cluster.stop()
    for part in range(2):
        logs = {n: local_batches(b.data_dir, "copy", part) for n, b in cluster.brokers.items()}
        assert len(logs[1]) > 0
        assert logs[1] == logs[2] == logs[3]


def test_kill9_leader_under_acks_all_loses_nothing(cluster: Cluster) -> None:
    create(cluster, "acked", **{"min.insync.replicas": "2"})
    victim = cluster.leader("acked", 0)
    prod = AckedProducer(cluster, "acked").start()
    wait_until(lambda: len(prod.acked) >= 500, 60, "500 acknowledged records")
    cluster.brokers[victim].kill()
    wait_until(lambda: cluster.leader("acked", 0) not in (victim, -1), DETECT, "a new leader")
    n_at_failover = len(prod.acked)
    wait_until(lambda: len(prod.acked) >= n_at_failover + 500, 60, "500 more after failover")
    prod.stop()
    assert prod.errors == []
    leader = cluster.leader("acked", 0)
    survivors = [n for n in cluster.brokers if n != victim]
    end = max(o for _, o, _ in prod.acked) + 1
    records = read_all(cluster.bootstrap_of(survivors), "acked", 0, end)
    check_history(prod.acked, records)
    # The ex-leader comes back as a follower and converges on the same log.
    cluster.brokers[victim].start(60)
    wait_until(lambda: victim in cluster.state("acked", 0)["isr"], 60, "ex-leader back in ISR")
    cluster.stop()
    logs = {n: local_records(b.data_dir, "acked", 0) for n, b in cluster.brokers.items()}
    assert logs[victim] == logs[leader]
    check_history(prod.acked, logs[victim])
    print(
        f"kill -9 of the leader {victim}: {len(prod.acked)} acked, new leader {leader}, "
        f"no acknowledgement for {prod.longest_gap():.1f}s (window of unavailability)"
    )


def test_returning_ex_leader_truncates_unreplicated_tail_by_epoch(cluster: Cluster) -> None:
    create(
        cluster, "tail", **{"min.insync.replicas": "1", "unclean.leader.election.enable": "false"}
    )
    old = cluster.leader("tail", 0)
    followers = [n for n in cluster.brokers if n != old]
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(10):
        p.produce("tail", f"a{i}".encode(), partition=0)
    assert p.flush(30) == 0
    # Freeze the followers (shorter than the ZooKeeper session): the leader's next appends
    # reach nobody; acks=1 acknowledges them anyway.
    for n in followers:
        os.kill(cluster.brokers[n].proc.pid, signal.SIGSTOP)
    # Their long-poll fetches already sent expire (replica.fetch.wait.max.ms = 500 ms) and are
    # answered empty: otherwise the answer would carry the next records to them anyway.
    time.sleep(1.5)
    try:
        p1 = Producer({"bootstrap.servers": cluster.brokers[old].bootstrap, "acks": "1"})
        for i in range(5):
            p1.produce("tail", f"lost{i}".encode(), partition=0)
        assert p1.flush(10) == 0
        # consumers see only what the ISR holds: the high watermark stays at 10
        client = RawClient(cluster.brokers[old].bootstrap)
        try:
            part, records = fetch_all(client, "tail", 0, 10)
            assert part.high_watermark == 10 and list(records) == []
            part, records = fetch_all(client, "tail", 0, 0)
            assert len(list(records)) == 10
        finally:
            client.close()
        cluster.brokers[old].kill()
    finally:
        for n in followers:
            os.kill(cluster.brokers[n].proc.pid, signal.SIGCONT)
    wait_until(lambda: cluster.leader("tail", 0) in followers, DETECT, "a new leader")
    new = cluster.leader("tail", 0)
    assert cluster.state("tail", 0)["leader_epoch"] >= 1
    p2 = Producer({"bootstrap.servers": cluster.bootstrap_of(followers), "acks": "all"})
    for i in range(7):
        p2.produce("tail", f"b{i}".encode(), partition=0)
    assert p2.flush(30) == 0
    cluster.brokers[old].start(60)
    wait_until(lambda: old in cluster.state("tail", 0)["isr"], 60, "the ex-leader back in ISR")
    out = cluster.output(old)
    assert "truncating 5 record(s) from 15 to 10" in out, out[-3000:]
    # the ex-leader's epochs now say: epoch 0 up to 10, then the new leader's epoch
    epochs = (cluster.brokers[old].data_dir / "tail-0" / "leader-epoch-checkpoint").read_text()
    new_epoch = cluster.state("tail", 0)["leader_epoch"]
    assert epochs == f"0\n2\n0 0\n{new_epoch} 10\n"
    assert new != old
    cluster.stop()  # (moves leadership first: epochs may grow, records may not)
    expected = [f"a{i}".encode() for i in range(10)] + [f"b{i}".encode() for i in range(7)]
    for n, b in cluster.brokers.items():
        records = local_records(b.data_dir, "tail", 0)
        assert [v for _, v in records] == expected, n
        assert [o for o, _ in records] == list(range(17))
