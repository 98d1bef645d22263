"""Fault: a network partition cuts the leader off from the other brokers and ZooKeeper while
clients still reach it, then heals; the old leader's unreplicated tail must be truncated by
leader epoch (KIP-101) and nothing acknowledged lost.

Each broker runs in its own network namespace on a bridge (cluster/netns.py, needs root and
``ip netns``: skipped otherwise); ZooKeeper and the clients stay in the root namespace on the
bridge. The checked workload (idempotent acks=all producer, RF 3, min.insync.replicas 2, a
consumer group) runs throughout. While the leader of partition 0 is cut off, a stale client
that only knows that leader writes to it directly (acks=all, no retries): the cut-off leader
still believes it leads with a full ISR, appends those records and can never acknowledge them
(its followers cannot fetch). That is the unreplicated tail. After the heal:

- none of the stale client's records was acknowledged, and none is in any replica's log;
- the old leader truncated its tail: its log and leader-epoch-checkpoint equal the new
  leader's (epoch-based truncation: the old epoch ends where the new leader's epoch starts);
- the checker finds nothing lost, duplicated, reordered or inconsistent in the history.

The window without any acknowledgement is printed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Producer

from cluster import netns
from cluster.checker import check, unavailability
from cluster.conftest import SESSION_TIMEOUT_MS, Cluster, ZooKeeperServer, dump_logs, wait_until
from cluster.workload import Workload, create_topic
from fastlog.leader_epoch import LeaderEpochFileCache
from fastlog.log import Log

pytestmark = pytest.mark.timeout(90)

TOPIC = "netsplit"
DETECT = SESSION_TIMEOUT_MS / 1000 + 15
TAIL = 20


def _records(part_dir: Path) -> list[tuple[int, bytes | None]]:
    """The replica's whole log, through a read-only view (the broker keeps writing)."""
    view = Log(part_dir, read_only=True)
    try:
        return [(r.offset, r.value) for r in view.read()]
    finally:
        view.close()


def _epochs(part_dir: Path) -> list[tuple[int, int]]:
    return LeaderEpochFileCache(part_dir, sync=False).entries()


def _write_stale(bootstrap: str) -> dict[bytes, KafkaError | None]:
    """acks=all records sent only to the cut-off leader, never retried elsewhere."""
    outcome: dict[bytes, KafkaError | None] = {}
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": False,
            "retries": 0,
            "linger.ms": 0,
            "request.timeout.ms": 3000,
            "message.timeout.ms": 6000,
            "topic.metadata.refresh.interval.ms": 600000,
        }
    )

    def done(err: KafkaError | None, msg) -> None:
        outcome[msg.value()] = err

    for i in range(TAIL):
        p.produce(TOPIC, f"tail-{i}".encode(), partition=0, on_delivery=done)
        p.poll(0)
    p.flush(15)
    return outcome


def test_network_partition_truncates_the_old_leaders_tail(tmp_path: Path) -> None:
    why = netns.available()
    if why is not None:
        pytest.skip(why)
    net = netns.Network([1, 2, 3])
    zk: ZooKeeperServer | None = None
    c: Cluster | None = None
    try:
        net.up()  # inside the try: a half-built network is torn down too
        (tmp_path / "zk").mkdir()
        zk = ZooKeeperServer(tmp_path / "zk", host=net.zk_ip).start()
        c = Cluster(zk, tmp_path, net=net)
        c.start()
        try:
            _scenario(c, net)
        except BaseException:
            dump_logs(c)
            raise
    finally:
        if c is not None:
            c.stop()
        if zk is not None:
            zk.stop()
        net.down()


def _scenario(c: Cluster, net: netns.Network) -> None:
    create_topic(c, TOPIC, 3, **{"min.insync.replicas": "2"})
    w = Workload(c, TOPIC).start()
    time.sleep(2.0)

    victim = c.leader(TOPIC, 0)
    old_epoch = c.state(TOPIC, 0)["leader_epoch"]
    dirs = {n: b.data_dir / f"{TOPIC}-0" for n, b in c.brokers.items()}
    t_fault = time.monotonic()
    net.isolate(victim)
    try:
        stale = _write_stale(c.brokers[victim].bootstrap)
        wait_until(lambda: c.leader(TOPIC, 0) not in (victim, -1), DETECT, "failover")
        new_leader = c.leader(TOPIC, 0)
        t_failover = time.monotonic() - t_fault
        # Before the heal: the cut-off leader holds records the new leader never had.
        wait_until(
            lambda: _epochs(dirs[new_leader])[-1][0] > old_epoch, 10, "the new leader's epoch"
        )
        new_epoch, new_epoch_start = _epochs(dirs[new_leader])[-1]
        before = _records(dirs[victim])
        tail = [(o, v) for o, v in before if v is not None and v.startswith(b"tail-")]
    finally:
        net.heal(victim)
    c.wait_registered({1, 2, 3}, DETECT)
    for p in range(3):
        wait_until(
            lambda p=p: sorted(c.state(TOPIC, p)["isr"]) == [1, 2, 3], DETECT, f"{TOPIC}-{p} ISR"
        )
    time.sleep(2.0)  # keep writing after the heal
    history = w.stop()

    report = check(history)
    window = unavailability(history, t_fault, w.produced_until)
    print(
        f"\n[network partition of leader {victim}] failover after {t_failover:.2f}s, "
        f"unavailability {window:.2f}s; unreplicated tail of {len(tail)} record(s) at "
        f"{tail[0][0] if tail else '-'}.. (epoch {old_epoch}); new leader {new_leader} "
        f"epoch {new_epoch} from offset {new_epoch_start}; {report.summary()}"
    )
    assert report.ok, report.details()
    assert report.acked > 0 and not w.fatal, (report.summary(), w.fatal)
    assert any(s.acked and s.answered_at > t_fault + window for s in history.sends.values())

    # Never acknowledged: a cut-off leader cannot reach min.insync.replicas.
    assert stale and all(err is not None for err in stale.values()), stale
    # It did append them (the scenario really had an unreplicated tail), past the point
    # where the new leader's epoch starts.
    assert tail, f"the cut-off leader appended none of the stale records: {before[-5:]}"
    assert tail[-1][0] >= new_epoch_start, (tail, new_epoch_start)

    # After the heal every replica converges on the new leader's log and epochs.
    def converged() -> bool:
        logs = [_records(d) for d in dirs.values()]
        return all(x == logs[0] for x in logs) and len({len(x) for x in logs}) == 1

    wait_until(converged, 20, "replicas of partition 0 identical")
    final = _records(dirs[victim])
    assert not [v for _, v in final if v is not None and v.startswith(b"tail-")]
    assert _epochs(dirs[victim]) == _epochs(dirs[new_leader])
    assert "truncating" in c.output(victim), c.output(victim)[-3000:]
