"""ZooKeeper session expiry of a leader that stays up: the leader alone loses ZooKeeper (a
blackhole route in its network namespace) while it still reaches the other brokers and the
clients reach it. Its session expires, the controller elects another leader from the ISR;
the old leader cannot shrink its ISR (no ZooKeeper) nor complete acks=all (its followers
now fetch from the new leader), so it acknowledges nothing more. When ZooKeeper comes back
it registers with a new session and follows. Run under the checked workload."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cluster import netns
from cluster.conftest import Cluster, ZooKeeperServer, dump_logs, wait_until
from cluster.test_cluster_faults import DETECT, TOPIC, _full_isr, _run

pytestmark = pytest.mark.timeout(150)


def test_leader_session_expires_while_it_stays_up(tmp_path: Path) -> None:
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

        def fault() -> None:
            victim = c.leader(TOPIC, 0)
            net.cut_zookeeper(victim)
            try:
                wait_until(lambda: victim not in c.live(), DETECT, "the session expires")
                wait_until(lambda: c.leader(TOPIC, 0) not in (victim, -1), 10, "failover")
                assert c.brokers[victim].proc.poll() is None
                time.sleep(2.0)
            finally:
                net.heal(victim)
            c.wait_registered({1, 2, 3}, DETECT)
            assert "expired" in c.output(victim)
            _full_isr(c)

        try:
            _run(c, fault, "leader's ZooKeeper session expires")
        except BaseException:
            dump_logs(c)
            raise
    finally:
        if c is not None:
            c.stop()
        if zk is not None:
            zk.stop()
        net.down()
