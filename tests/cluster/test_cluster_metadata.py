"""Cluster metadata on ZooKeeper: registration, controller, topic assignment, Metadata."""

from __future__ import annotations

import json

from confluent_kafka.admin import AdminClient, NewTopic

from cluster.conftest import Cluster, wait_until


def _admin(c: Cluster) -> AdminClient:
    return AdminClient({"bootstrap.servers": c.bootstrap, "socket.timeout.ms": 5000})


def test_brokers_register_and_one_controller(cluster: Cluster) -> None:
    assert cluster.live() == {1, 2, 3}
    data, stat = cluster.zk.get("/brokers/ids/2")
    reg = json.loads(data)
    assert reg["endpoints"] == [f"PLAINTEXT://127.0.0.1:{cluster.brokers[2].port}"]
    assert stat.ephemeralOwner != 0  # dies with the broker's session
    assert cluster.controller() in {1, 2, 3}
    assert cluster.controller_epoch() >= 1
    cid = json.loads(cluster.zk.get("/cluster/id")[0])["id"]
    md = _admin(cluster).list_topics(timeout=10)
    assert md.cluster_id == cid
    assert sorted(md.brokers) == [1, 2, 3]
    assert md.controller_id == cluster.controller()
    for b in md.brokers.values():
        assert (b.host, b.port) == ("127.0.0.1", cluster.brokers[b.id].port)


def test_create_topic_rf3_lands_in_zookeeper(cluster: Cluster) -> None:
    admin = _admin(cluster)
    fut = admin.create_topics([NewTopic("orders", 6, 3, config={"retention.ms": "3600000"})])
    fut["orders"].result(15)
    assignment = cluster.assignment("orders")
    assert sorted(assignment) == list(range(6))
    for reps in assignment.values():
        assert sorted(reps) == [1, 2, 3]
    # Leaders (first replicas) spread evenly over the three brokers.
    leaders = [reps[0] for reps in assignment.values()]
    assert sorted(leaders.count(n) for n in (1, 2, 3)) == [2, 2, 2]
    for p, reps in assignment.items():
        st = cluster.state("orders", p)
        assert st["leader"] == reps[0] and st["leader_epoch"] == 0 and st["isr"] == reps
    cfg = json.loads(cluster.zk.get("/config/topics/orders")[0])
    assert cfg["config"]["retention.ms"] == "3600000"

    # Every broker answers Metadata with the same assignment, ISR and no offline replica.
    for node, b in cluster.brokers.items():
        md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics("orders", timeout=10)

        def seen(md=md):
            return md.topics["orders"].partitions

        parts = wait_until(seen, 10, f"orders on broker {node}")
        assert len(parts) == 6
        for p, meta in parts.items():
            assert meta.replicas == assignment[p]
            assert meta.leader == assignment[p][0]
            assert sorted(meta.isrs) == [1, 2, 3]
            assert meta.error is None


def test_auto_created_topic_spreads_over_brokers(cluster: Cluster) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "1"})
    p.produce("auto-topic", b"x")
    p.flush(15)
    assignment = cluster.assignment("auto-topic")
    assert len(assignment) == 3
    assert all(sorted(r) == [1, 2, 3] for r in assignment.values())
    assert {r[0] for r in assignment.values()} == {1, 2, 3}


def test_rack_aware_assignment(zookeeper, tmp_path) -> None:
    c = Cluster(zookeeper, tmp_path, size=4, racks={1: "a", 2: "a", 3: "b", 4: "b"})
    try:
        c.start()
        admin = _admin(c)
        admin.create_topics([NewTopic("racked", 8, 2)])["racked"].result(15)
        racks = {1: "a", 2: "a", 3: "b", 4: "b"}
        for reps in c.assignment("racked").values():
            assert {racks[r] for r in reps} == {"a", "b"}, reps
    finally:
        c.stop()


def test_cli_options_and_config_file(tmp_path) -> None:
    from broker.server_cli import build_config

    cfg = build_config(None, (), str(tmp_path), None, None, 7, "zk1:2181,zk2:2181/kafka")
    assert cfg.node_id == 7 and cfg.get("zookeeper.connect") == "zk1:2181,zk2:2181/kafka"
    props = tmp_path / "server.properties"
    props.write_text("node.id=4\nzookeeper.connect=127.0.0.1:2181/x\nbroker.rack=r1\n")
    cfg = build_config(str(props), (), str(tmp_path), None, None)
    assert (cfg.node_id, cfg.get("zookeeper.connect"), cfg.get("broker.rack")) == (
        4,
        "127.0.0.1:2181/x",
        "r1",
    )


def test_unreachable_zookeeper_is_a_clear_error(tmp_path) -> None:
    import subprocess
    import sys

    from support import free_port

    r = subprocess.run(
        [
            sys.executable, "-m", "broker", "--node-id", "1",
            "--zookeeper", f"127.0.0.1:{free_port()}",
            "--override", "zookeeper.connection.timeout.ms=1500",
            "--data-dir", str(tmp_path / "d"), "--port", str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert r.returncode == 1
    assert "cannot connect to ZooKeeper at 127.0.0.1:" in r.stderr
    assert "Traceback" not in r.stderr


def test_admin_changes_reach_every_broker(cluster: Cluster) -> None:
    """CreatePartitions, AlterConfigs and DeleteTopics on one broker: ZooKeeper and every
    other broker's view follow."""
    from confluent_kafka.admin import ConfigResource, NewPartitions

    admin = AdminClient({"bootstrap.servers": cluster.brokers[1].bootstrap})
    admin.create_topics([NewTopic("grow", 2, 3)])["grow"].result(15)
    admin.create_partitions([NewPartitions("grow", 5)])["grow"].result(15)
    assignment = cluster.assignment("grow")
    assert sorted(assignment) == list(range(5))
    for p in range(5):
        assert cluster.state("grow", p)["isr"] == assignment[p]
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry

    entry = ConfigEntry("retention.ms", "123456", incremental_operation=AlterConfigOpType.SET)
    res = ConfigResource("topic", "grow", incremental_configs=[entry])
    admin.incremental_alter_configs([res])[res].result(15)
    assert json.loads(cluster.zk.get("/config/topics/grow")[0])["config"] == {
        "retention.ms": "123456"
    }
    for node in (2, 3):
        other = AdminClient({"bootstrap.servers": cluster.brokers[node].bootstrap})

        def synced(other=other):
            parts = other.list_topics("grow", timeout=10).topics["grow"].partitions
            res = ConfigResource("topic", "grow")
            cfg = other.describe_configs([res])[res].result(10)
            return len(parts) == 5 and cfg["retention.ms"].value == "123456"

        wait_until(synced, 10, f"broker {node} sees the new partitions and config")
    data_dirs = [b.data_dir for b in cluster.brokers.values()]
    assert all((d / "grow-4").is_dir() for d in data_dirs)
    admin.delete_topics(["grow"])["grow"].result(15)
    assert cluster.zk.exists("/brokers/topics/grow") is None
    assert cluster.zk.exists("/config/topics/grow") is None
    wait_until(
        lambda: not any((d / f"grow-{p}").exists() for d in data_dirs for p in range(5)),
        10,
        "every broker deleted its replicas",
    )
