"""The controller's automatic preferred-leader rebalance (the broker's only periodic one)
against a real ZooKeeper: it moves leadership back to the preferred replica, and leaves
partitions being reassigned (adding/removing replicas in the topic znode) alone, as Kafka's
checkAndTriggerAutoLeaderRebalance does."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from kazoo.client import KazooClient

from broker.controller import CONTROLLER_EPOCH, KafkaController
from broker.metadata.zookeeper import (
    create_topic_znodes,
    decode,
    encode,
    state_path,
    state_payload,
    topic_path,
)
from cluster.conftest import ZooKeeperServer


def test_rebalance_skips_partitions_being_reassigned(zookeeper: ZooKeeperServer) -> None:
    zk = KazooClient(hosts=zookeeper.connect, timeout=10)
    zk.start(timeout=20)
    try:
        for node in (1, 2):
            zk.create(f"/brokers/ids/{node}", b"{}", makepath=True)
        zk.create(CONTROLLER_EPOCH, b"1")
        zk.ensure_path("/brokers/topics")
        zk.ensure_path("/config/topics")
        create_topic_znodes(zk, "t", uuid.uuid4(), {0: [1, 2], 1: [1, 2]}, {}, 1)
        for p in (0, 1):  # both led by broker 2 after some failover, ISR complete
            zk.set(state_path("t", p), state_payload(2, 1, [1, 2], 1))
        obj = decode(zk.get(topic_path("t"))[0])
        obj["adding_replicas"] = {"1": [1]}  # partition 1 is in the middle of a reassignment
        zk.set(topic_path("t"), encode(obj))

        store = SimpleNamespace(zk=zk, node_id=1, broker_config=None)
        controller = KafkaController(store)  # type: ignore[arg-type]  # not started
        controller.active = True
        controller.epoch = 1
        controller.epoch_zk_version = zk.exists(CONTROLLER_EPOCH).version

        assert controller.preferred_leader_election() == 1
        state = decode(zk.get(state_path("t", 0))[0])
        assert (state["leader"], state["leader_epoch"]) == (1, 2)
        assert decode(zk.get(state_path("t", 1))[0])["leader"] == 2  # left alone

        del obj["adding_replicas"]
        zk.set(topic_path("t"), encode(obj))  # the reassignment completed
        assert controller.preferred_leader_election() == 1
        assert decode(zk.get(state_path("t", 1))[0])["leader"] == 1
    finally:
        zk.stop()
        zk.close()
