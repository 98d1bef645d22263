"""Leader election by the controller: broker death (kill -9), controller failover, ZooKeeper
session expiry (SIGSTOP past the session timeout), controlled shutdown, unclean election."""

from __future__ import annotations

import os
import signal
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from cluster.conftest import SESSION_TIMEOUT_MS, Cluster, wait_until

DETECT = SESSION_TIMEOUT_MS / 1000 + 10  # session expiry + election, generous on a busy host


def _create(c: Cluster, topic: str, partitions: int = 3, rf: int = 3, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic(topic, partitions, rf, config=config)])[topic].result(15)


def _metadata(c: Cluster, node: int, topic: str):
    admin = AdminClient({"bootstrap.servers": c.brokers[node].bootstrap})
    return admin.list_topics(topic, timeout=10).topics[topic].partitions


def _produce(c: Cluster, nodes: set[int], topic: str, n: int = 20) -> None:
    p = Producer(
        {"bootstrap.servers": c.bootstrap_of(nodes), "acks": "1", "message.timeout.ms": 20000}
    )
    errors: list = []
    for i in range(n):
        p.produce(
            topic,
            f"v{i}".encode(),
            partition=i % 3,
            on_delivery=lambda e, m: errors.append(e) if e else None,
        )
    assert p.flush(25) == 0
    assert errors == []


def test_kill9_leader_moves_leadership_within_isr(cluster: Cluster) -> None:
    _create(cluster, "t")
    before = {p: cluster.state("t", p) for p in range(3)}
    victim = before[0]["leader"]
    cluster.brokers[victim].kill()
    t0 = time.monotonic()
    wait_until(lambda: cluster.leader("t", 0) != victim, DETECT, "new leader of t-0")
    elapsed = time.monotonic() - t0
    wait_until(
        lambda: all(victim not in cluster.state("t", p)["isr"] for p in range(3)),
        10,
        "the dead broker out of every ISR",
    )
    survivors = {1, 2, 3} - {victim}
    for p in range(3):
        st = cluster.state("t", p)
        assert victim not in st["isr"], st
        if before[p]["leader"] == victim:
            assert st["leader"] in before[p]["isr"] and st["leader"] in survivors
            assert st["leader_epoch"] == before[p]["leader_epoch"] + 1
            # Kafka's choice: the first live ISR member in assignment order.
            reps = cluster.assignment("t")[p]
            assert st["leader"] == next(r for r in reps if r in survivors)
        else:
            assert st["leader"] == before[p]["leader"]
            assert st["leader_epoch"] == before[p]["leader_epoch"]
    assert victim not in cluster.live()
    # The survivors' Metadata: new leaders, the dead broker offline, not among the brokers.
    for node in survivors:

        def caught_up(node=node):
            parts = _metadata(cluster, node, "t")
            return all(parts[p].leader == cluster.leader("t", p) for p in range(3)) and parts

        parts = wait_until(caught_up, 10, f"broker {node} sees the new leaders")
        for meta in parts.values():
            assert victim not in meta.isrs
        md = AdminClient({"bootstrap.servers": cluster.brokers[node].bootstrap}).list_topics(
            timeout=10
        )
        assert victim not in md.brokers
    # Clients find the new leaders.
    _produce(cluster, survivors, "t")
    print(f"kill -9 of the leader: new leader in ZooKeeper after {elapsed:.2f}s")


def test_controller_failover(cluster: Cluster) -> None:
    _create(cluster, "cf")
    old = cluster.controller()
    epoch = cluster.controller_epoch()
    cluster.brokers[old].kill()
    wait_until(lambda: cluster.controller() not in (-1, old), DETECT, "a new controller")
    new = cluster.controller()
    assert cluster.controller_epoch() == epoch + 1
    # The new controller did the dead one's work: nobody leads on the dead broker.
    wait_until(lambda: all(cluster.leader("cf", p) != old for p in range(3)), 10, "leaders moved")
    # ... and handles the next failure too.
    other = ({1, 2, 3} - {old, new}).pop()
    cluster.brokers[other].kill()
    wait_until(
        lambda: all(cluster.state("cf", p)["leader"] == new for p in range(3)),
        DETECT,
        "the last broker leads everything",
    )
    for p in range(3):
        assert cluster.state("cf", p)["isr"] == [new]
    md = AdminClient({"bootstrap.servers": cluster.brokers[new].bootstrap}).list_topics(timeout=10)
    assert md.controller_id == new and sorted(md.brokers) == [new]
    _produce(cluster, {new}, "cf")


def test_session_expiry_of_a_paused_broker(cluster: Cluster) -> None:
    _create(cluster, "se")
    victim = cluster.leader("se", 1)
    epoch = cluster.state("se", 1)["leader_epoch"]
    pid = cluster.brokers[victim].proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: victim not in cluster.live(), DETECT, "the session expires")
        wait_until(lambda: cluster.leader("se", 1) != victim, 10, "leadership moves")
        assert cluster.state("se", 1)["leader_epoch"] == epoch + 1
    finally:
        os.kill(pid, signal.SIGCONT)
    # The broker notices the expired session, registers again with a new session, and
    # learns that it no longer leads.
    cluster.wait_registered({1, 2, 3}, DETECT)
    new_leader = cluster.leader("se", 1)
    wait_until(
        lambda: _metadata(cluster, victim, "se")[1].leader == new_leader,
        10,
        "the resumed broker sees the new leader",
    )
    assert "session of broker" in cluster.output(victim) or "expired" in cluster.output(victim)


def test_controlled_shutdown_moves_leadership_first(cluster: Cluster) -> None:
    _create(cluster, "cs")
    victim = cluster.leader("cs", 2)
    led = [p for p in range(3) if cluster.leader("cs", p) == victim]
    epochs = {p: cluster.state("cs", p)["leader_epoch"] for p in led}
    cluster.brokers[victim].stop(signal.SIGTERM)
    # Moved by the broker itself before its session closed: no wait for a session timeout.
    for p in led:
        st = cluster.state("cs", p)
        assert st["leader"] != victim and st["leader_epoch"] == epochs[p] + 1
    for p in range(3):
        assert victim not in cluster.state("cs", p)["isr"]
    assert "controlled shutdown moved leadership" in cluster.output(victim)


def _offline_replicas(c: Cluster, node: int, topic: str) -> list[list[int]]:
    """offline_replicas of each partition as kafka-python's admin client decodes them."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=c.brokers[node].bootstrap)
    try:
        (desc,) = admin.describe_topics([topic])
    finally:
        admin.close()
    return [
        sorted(p["offline_replicas"])
        for p in sorted(desc["partitions"], key=lambda p: p["partition_index"])
    ]


def test_offline_partition_and_unclean_election(cluster: Cluster) -> None:
    # A topic without the controller among its replicas, so the controller outlives them.
    controller = cluster.controller()
    for k in range(30):
        _create(cluster, f"un{k}", partitions=1, rf=2)
        if controller not in cluster.assignment(f"un{k}")[0]:
            topic = f"un{k}"
            break
    else:
        raise AssertionError("no assignment without the controller in 30 topics")
    leader, follower = cluster.assignment(topic)[0]
    assert cluster.state(topic, 0)["isr"] == [leader, follower]
    # The follower dies: out of the ISR. Then the leader: offline, its ISR kept for a clean
    # election later.
    cluster.brokers[follower].kill()
    wait_until(lambda: cluster.state(topic, 0)["isr"] == [leader], DETECT, "isr shrinks")
    cluster.brokers[leader].kill()
    wait_until(lambda: cluster.leader(topic, 0) == -1, DETECT, "offline partition")
    assert cluster.state(topic, 0)["isr"] == [leader]
    parts = _metadata(cluster, controller, topic)
    assert parts[0].leader == -1 and parts[0].error is not None  # LEADER_NOT_AVAILABLE
    assert _offline_replicas(cluster, controller, topic) == [sorted([leader, follower])]
    # The follower (outside the ISR) comes back: no clean candidate, still offline.
    cluster.start_broker(follower)
    time.sleep(1.0)
    assert cluster.leader(topic, 0) == -1
    assert _offline_replicas(cluster, controller, topic) == [[leader]]
    # unclean.leader.election.enable on the topic: the controller elects the follower.
    admin = AdminClient({"bootstrap.servers": cluster.brokers[controller].bootstrap})
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry

    entry = ConfigEntry(
        "unclean.leader.election.enable", "true", incremental_operation=AlterConfigOpType.SET
    )
    res = ConfigResource("topic", topic, incremental_configs=[entry])
    admin.incremental_alter_configs([res])[res].result(15)
    wait_until(lambda: cluster.leader(topic, 0) == follower, 10, "unclean election")
    st = cluster.state(topic, 0)
    assert st["isr"] == [follower]


def test_preferred_leader_election_restores_balance(zookeeper, tmp_path) -> None:
    c = Cluster(zookeeper, tmp_path, overrides={"leader.imbalance.check.interval.seconds": "2"})
    try:
        c.start()
        _create(c, "pl", partitions=6)
        assignment = c.assignment("pl")
        victim = assignment[0][0]
        c.brokers[victim].kill()
        wait_until(lambda: all(c.leader("pl", p) != victim for p in range(6)), DETECT, "failover")
        epochs = {p: c.state("pl", p)["leader_epoch"] for p in range(6)}
        c.start_broker(victim)
        # Back in the ISR (replication), then leader again of its preferred partitions.
        wait_until(
            lambda: all(c.leader("pl", p) == assignment[p][0] for p in range(6)),
            DETECT + 10,
            "preferred leaders back",
        )
        for p in range(6):
            if assignment[p][0] == victim:
                assert c.state("pl", p)["leader_epoch"] == epochs[p] + 1
        wait_until(
            lambda: all(
                meta.leader == assignment[p][0] for p, meta in _metadata(c, victim, "pl").items()
            ),
            10,
            "the restarted broker's Metadata shows it",
        )
    finally:
        c.stop()
