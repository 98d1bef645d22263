"""Network partition: the leader is cut off from the other brokers and ZooKeeper (each broker
in its own network namespace, blackhole routes), then the partition heals. Run under the
idempotent acks=all producer and consumer group of test_cluster_faults, checked whole: the
old leader's unreplicated tail is truncated when it rejoins, nothing acknowledged is lost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cluster import netns
from cluster.conftest import Cluster, ZooKeeperServer, dump_logs, wait_until
from cluster.test_cluster_faults import DETECT, TOPIC, _full_isr, _run

pytestmark = pytest.mark.timeout(150)


def test_network_partition_of_the_leader(tmp_path: Path) -> None:
    why = netns.available()
    if why is not None:
        pytest.skip(why)
    net = netns.Network([1, 2, 3]).up()
    zk = c = None
    try:
        (tmp_path / "zk").mkdir()
        zk = ZooKeeperServer(tmp_path / "zk", host=net.zk_ip).start()
        c = Cluster(zk, tmp_path, net=net)
        c.start()
        cut: list[int] = []

        def fault() -> None:
            victim = c.leader(TOPIC, 0)
            cut.append(victim)
            net.isolate(victim)
            try:
                wait_until(lambda: c.leader(TOPIC, 0) not in (victim, -1), DETECT, "failover")
                time.sleep(2.0)  # clients still reach the old leader meanwhile
            finally:
                net.heal(victim)
            c.wait_registered({1, 2, 3}, DETECT)
            _full_isr(c)

        try:
            _run(c, fault, "network partition of the leader")
        except BaseException:
            dump_logs(c)
            raise
        print(
            f"old leader {cut[0]} output mentions truncation:",
            "truncat" in c.output(cut[0]).lower(),
        )
    finally:
        if c is not None:
            c.stop()
        if zk is not None:
            zk.stop()
        net.down()
