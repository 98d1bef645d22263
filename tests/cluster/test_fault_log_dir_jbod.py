"""Fault: one of a broker's two log directories runs out of space (KIP-112 with log.dirs).

Broker 1 has two log directories, the second a size-limited tmpfs (needs root, as CI has).
It is the preferred leader of every partition of the topic, so it leads partitions in both
directories. Under the checked workload (idempotent acks=all producer, RF 3,
min.insync.replicas 2, a consumer group), the tmpfs is filled until writes fail with ENOSPC.
Only the partitions living in the full directory may leave broker 1: their leadership moves
to another ISR member and broker 1 leaves their ISRs; the partitions in its other directory
keep broker 1 as leader (same leader epoch) with a full ISR, and keep taking writes there.
DescribeLogDirs on broker 1 reports the full directory as KAFKA_STORAGE_ERROR. The history
is checked (cluster/checker.py): nothing acknowledged lost, duplicated or reordered.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import ElectionType, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cluster.checker import check, unavailability
from cluster.conftest import Cluster, ZooKeeperServer, dump_logs, wait_until
from cluster.test_fault_disk_full import DETECT, _mount_tmpfs, _umount, fill
from cluster.workload import Workload

pytestmark = pytest.mark.timeout(120)

TOPIC = "jbod"
PARTITIONS = 6
VICTIM = 1


@pytest.fixture
def jbod_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Cluster, Path]]:
    (tmp_path / "zk").mkdir()
    zk: ZooKeeperServer | None = None
    c: Cluster | None = None
    small = tmp_path / "broker-1" / "small"
    small.mkdir(parents=True)
    mounted = False
    try:
        why = _mount_tmpfs(small, "8m")
        if why is not None:
            pytest.skip(why)
        mounted = True
        zk = ZooKeeperServer(tmp_path / "zk").start()
        c = Cluster(zk, tmp_path)
        vb = c.brokers[VICTIM]
        vb.extra_args += ["--data-dir", f"{vb.data_dir},{small}"]  # the last --data-dir wins
        try:
            c.start()
        except BaseException:
            dump_logs(c)
            raise
        yield c, small
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            dump_logs(c)
    finally:
        if c is not None:
            c.stop()
        if zk is not None:
            zk.stop()
        if mounted:
            _umount(small)


def test_one_full_log_dir_moves_only_its_partitions(jbod_cluster: tuple[Cluster, Path]) -> None:
    c, small = jbod_cluster
    vb = c.brokers[VICTIM]
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})])[
        TOPIC
    ].result(15)
    # Broker 1 first in every assignment (the same replicas reordered: nothing moves), then
    # a preferred election: it leads every partition, in both of its directories.
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
    full = {int(d.name.rsplit("-", 1)[1]) for d in small.glob(f"{TOPIC}-*")}
    kept = set(range(PARTITIONS)) - full
    assert full and kept, (full, kept)  # spread over both directories (fewest first)
    assert {p for p in kept if (vb.data_dir / f"{TOPIC}-{p}").is_dir()} == kept
    before = {p: c.state(TOPIC, p) for p in range(PARTITIONS)}

    w = Workload(c, TOPIC, partitions=PARTITIONS).start()
    time.sleep(2.0)
    t_fault = time.monotonic()
    fill(small)
    ballast = small / "ballast.fill"

    def moved() -> bool:
        for p in full:
            st = c.state(TOPIC, p)
            if st["leader"] in (VICTIM, -1) or VICTIM in st["isr"]:
                return False
        return True

    try:
        wait_until(moved, DETECT, f"the partitions of the full directory off broker {VICTIM}")
        t_moved = time.monotonic() - t_fault
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:  # and they stay off, the others stay put
            assert moved()
            for p in kept:
                st = c.state(TOPIC, p)
                assert st["leader"] == VICTIM, (p, st)
                assert st["leader_epoch"] == before[p]["leader_epoch"], (p, st)
                assert sorted(st["isr"]) == [1, 2, 3], (p, st)
            time.sleep(0.2)
        history = w.stop()
    except BaseException:
        w.stop(catch_up=0)
        raise

    report = check(history)
    window = unavailability(history, t_fault, w.produced_until)
    print(
        f"\n[one of two log dirs full: broker {VICTIM}, partitions {sorted(full)} moved in "
        f"{t_moved:.2f}s, {sorted(kept)} stayed] unavailability {window:.2f}s; {report.summary()}"
    )
    assert report.ok, report.details()
    assert not w.fatal, w.fatal
    # The partitions broker 1 still leads kept taking acknowledged writes after the fault.
    late = {s.partition for s in history.sends.values() if s.acked and s.answered_at > t_fault + 1}
    assert kept <= late, (kept, late)
    assert vb.proc.poll() is None, vb.output()[-3000:]
    assert VICTIM in c.live()
    out = vb.output()
    assert f"log directory {small} offline" in out, out[-3000:]
    assert "asking the controller" not in out  # no log dir event: the broker still serves

    from kafka.admin import KafkaAdminClient

    kp = KafkaAdminClient(bootstrap_servers=vb.bootstrap)
    try:
        (entry,) = kp.describe_log_dirs(brokers=[VICTIM])
    finally:
        kp.close()
    by_dir = {d["log_dir"]: d for d in entry["log_dirs"]}
    assert by_dir[str(small)]["error_code"] == 56 and by_dir[str(small)]["topics"] == []
    listed = {
        p["partition_index"]
        for t in by_dir[str(vb.data_dir)]["topics"]
        if t["name"] == TOPIC
        for p in t["partitions"]
    }
    assert listed == kept

    # Space freed and broker 1 restarted: the directory is back, its partitions are found
    # where they were and broker 1 rejoins their ISRs as a follower.
    ballast.unlink()
    assert vb.stop() == 0, vb.output()[-3000:]
    c.start_broker(VICTIM)
    for p in range(PARTITIONS):
        wait_until(lambda p=p: len(c.state(TOPIC, p)["isr"]) == 3, 30, f"{TOPIC}-{p} ISR of 3")
    assert {int(d.name.rsplit("-", 1)[1]) for d in small.glob(f"{TOPIC}-*")} == full
    kp = KafkaAdminClient(bootstrap_servers=vb.bootstrap)
    try:
        (entry,) = kp.describe_log_dirs(brokers=[VICTIM])
    finally:
        kp.close()
    assert all(d["error_code"] == 0 for d in entry["log_dirs"]), entry


@pytest.fixture
def two_dir_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Three brokers on ZooKeeper; broker 1 has two log directories."""
    (tmp_path / "zk").mkdir()
    zk = ZooKeeperServer(tmp_path / "zk").start()
    c = Cluster(zk, tmp_path)
    try:
        vb = c.brokers[VICTIM]
        vb.extra_args += ["--data-dir", f"{vb.data_dir},{tmp_path / 'broker-1' / 'second'}"]
        try:
            c.start()
        except BaseException:
            dump_logs(c)
            raise
        yield c
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            dump_logs(c)
    finally:
        c.stop()
        zk.stop()


def test_moving_replicas_between_log_dirs_under_load(two_dir_cluster: Cluster) -> None:
    """AlterReplicaLogDirs on broker 1 for every partition of a topic it leads some of and
    follows the rest of, under the checked workload: each replica ends in its other
    directory, nothing acknowledged is lost, leadership and ISRs stay as they were."""
    from kafka import TopicPartitionReplica
    from kafka.admin import KafkaAdminClient

    c = two_dir_cluster
    vb = c.brokers[VICTIM]
    first, second = vb.data_dir, vb.data_dir.parent / "second"
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})])[
        TOPIC
    ].result(15)
    for p in range(PARTITIONS):
        wait_until(lambda p=p: len(c.state(TOPIC, p)["isr"]) == 3, 20, f"{TOPIC}-{p} ISR of 3")
    # The initial ISR is every replica: wait until broker 1 opened each one somewhere.
    wait_until(
        lambda: all(
            (first / f"{TOPIC}-{p}").is_dir() or (second / f"{TOPIC}-{p}").is_dir()
            for p in range(PARTITIONS)
        ),
        20,
        f"every replica opened on broker {VICTIM}",
    )
    where = {p: first if (first / f"{TOPIC}-{p}").is_dir() else second for p in range(PARTITIONS)}
    assert set(where.values()) == {first, second}  # spread over both directories
    before = {p: c.state(TOPIC, p) for p in range(PARTITIONS)}
    led = {p for p, st in before.items() if st["leader"] == VICTIM}
    assert led and len(led) < PARTITIONS, before  # it leads some, follows the others

    w = Workload(c, TOPIC, partitions=PARTITIONS).start()
    time.sleep(2.0)
    target = {p: second if d == first else first for p, d in where.items()}
    kp = KafkaAdminClient(bootstrap_servers=vb.bootstrap)
    try:
        result = kp.alter_replica_log_dirs(
            {TopicPartitionReplica(TOPIC, p, VICTIM): str(d) for p, d in target.items()}
        )
        assert {e.__name__ for e in result.values()} == {"NoError"}, result

        def done() -> bool:
            return all(
                (d / f"{TOPIC}-{p}").is_dir() and not (where[p] / f"{TOPIC}-{p}").exists()
                for p, d in target.items()
            )

        wait_until(done, 30, "every replica in its other directory")
        time.sleep(2.0)  # writes go on after the moves
        history = w.stop()
    except BaseException:
        w.stop(catch_up=0)
        raise
    finally:
        kp.close()
    report = check(history)
    print(f"\n[moved {PARTITIONS} replicas of broker {VICTIM} under load] {report.summary()}")
    assert report.ok, report.details()
    assert not w.fatal, w.fatal
    for p in range(PARTITIONS):
        st = c.state(TOPIC, p)
        assert st["leader"] == before[p]["leader"] and sorted(st["isr"]) == [1, 2, 3], (p, st)
    assert vb.output().count("moved from") >= PARTITIONS

    # Each dir's replication-offset-checkpoint holds the high watermarks of exactly the
    # partitions living there (written at the clean shutdown).
    assert vb.stop() == 0
    for d in (first, second):
        lines = (d / "replication-offset-checkpoint").read_text().splitlines()
        assert int(lines[1]) == len(lines) - 2
        listed = {(t, int(i)) for t, i, _ in (line.split() for line in lines[2:])}
        on_disk = {
            (x.name.rsplit("-", 1)[0], int(x.name.rsplit("-", 1)[1]))
            for x in d.iterdir()
            if x.is_dir() and x.name.rsplit("-", 1)[-1].isdigit()
        }
        assert listed == on_disk, d
        assert {(TOPIC, p) for p, t in target.items() if t == d} <= listed


def test_preferred_log_dir_of_a_replica_reassigned_here(two_dir_cluster: Cluster) -> None:
    """AlterReplicaLogDirs for a replica broker 1 does not host yet answers
    REPLICA_NOT_AVAILABLE and remembers the directory: the replica a reassignment then creates
    there goes to it, not to the directory the default placement would pick."""
    from kafka import TopicPartition as KTopicPartition
    from kafka import TopicPartitionReplica
    from kafka.admin import KafkaAdminClient

    c = two_dir_cluster
    vb = c.brokers[VICTIM]
    first, second = vb.data_dir, vb.data_dir.parent / "second"
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("onto", 3, 2)])["onto"].result(15)
    wait_until(lambda: len(c.assignment("onto")) == 3, 10, "onto assigned")
    elsewhere = [p for p, r in c.assignment("onto").items() if VICTIM not in r]
    assert elsewhere, c.assignment("onto")
    p = elsewhere[0]

    def count(d: Path) -> int:
        return sum(1 for x in d.iterdir() if x.is_dir() and x.name.rsplit("-", 1)[-1].isdigit())

    # The default would pick the dir with fewer partitions (the first on a tie): ask for the other.
    want = second if count(first) <= count(second) else first
    kp = KafkaAdminClient(bootstrap_servers=c.bootstrap)
    try:
        tpr = TopicPartitionReplica("onto", p, VICTIM)
        result = kp.alter_replica_log_dirs({tpr: str(want)})
        assert result[tpr].__name__ == "ReplicaNotAvailableError", result
        replicas = c.assignment("onto")[p]
        kp.alter_partition_reassignments({KTopicPartition("onto", p): [*replicas, VICTIM]})
    finally:
        kp.close()
    wait_until(lambda: len(c.state("onto", p)["isr"]) == 3, 30, f"onto-{p} ISR of 3")
    assert (want / f"onto-{p}").is_dir()
    other = first if want == second else second
    assert not (other / f"onto-{p}").exists()
