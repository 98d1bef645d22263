"""Single-node mode: __consumer_offsets appears with the first group request, with one
replica although offsets.topic.replication.factor defaults to Kafka's 3 (a single broker can
never hold more), so `fastlog broker` without any config has working consumer groups.
The cluster case (exactly the configured factor, COORDINATOR_NOT_AVAILABLE while too few
brokers live) is tests/cluster/test_offsets_topic.py."""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode
from support import BrokerProcess, free_port
from test_groups_protocol import Wire

OFFSETS = "__consumer_offsets"


def test_offsets_topic_created_on_first_group_request_with_one_replica(tmp_path: Path) -> None:
    d = tmp_path / "data"
    d.mkdir()
    b = BrokerProcess(d, free_port(), {}).start()  # no overrides: the defaults
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("t", 1, 1)])["t"].result(10)
        assert OFFSETS not in admin.list_topics(timeout=10).topics  # not at start

        w = Wire(b.port)
        try:
            r = w.call("find_coordinator", 3, key="g", key_type=0)
        finally:
            w.close()
        assert (r.error_code, r.port) == (ErrorCode.none, b.port)
        meta = admin.list_topics(timeout=10).topics[OFFSETS]
        assert len(meta.partitions) == 50
        assert all(len(p.replicas) == 1 for p in meta.partitions.values())

        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g"})
        try:
            c.commit(offsets=[TopicPartition("t", 0, 5)], asynchronous=False)
            assert c.committed([TopicPartition("t", 0)], timeout=10)[0].offset == 5
        finally:
            c.close()
    finally:
        b.stop()
