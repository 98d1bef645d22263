"""Create and delete topics through each client's admin API; Metadata as each client sees it."""

from __future__ import annotations

import pytest

from .drivers import (
    BY_NAME,
    DRIVERS,
    TOPIC_ALREADY_EXISTS,
    UNKNOWN_TOPIC_OR_PARTITION,
    BrokerError,
    Rec,
)
from .helpers import by_client, now_ms, unique_topic
from .ondisk import partition_dir

REFERENCE = BY_NAME["confluent-kafka"]
KCAT = BY_NAME["kcat"]


@by_client([d for d in DRIVERS if d.has_admin])
def test_create_and_delete_topic(broker, client):
    bs = broker.bootstrap
    topic = unique_topic(f"admin-{client.name}")
    client.create_topic(bs, topic, 2, {"retention.ms": "123456789", "cleanup.policy": "delete"})
    assert client.topics(bs)[topic] == 2
    assert REFERENCE.topics(bs)[topic] == 2
    configs = REFERENCE.describe_configs(bs, topic)
    assert configs["retention.ms"] == "123456789"
    assert configs["cleanup.policy"] == "delete"
    for p in (0, 1):
        assert partition_dir(broker.data_dir, topic, p).is_dir()

    # The new topic takes records at once, in the partition asked for.
    assert_offsets = client.produce(bs, topic, [Rec(b"k", b"v", (), None, 1)])
    if client.reports_offsets:
        assert assert_offsets == [0]
    assert client.watermarks(bs, topic, 1) == (0, 1)
    assert client.watermarks(bs, topic, 0) == (0, 0)

    with pytest.raises(BrokerError) as exc:
        client.create_topic(bs, topic, 3)
    assert exc.value.code == TOPIC_ALREADY_EXISTS
    assert REFERENCE.topics(bs)[topic] == 2

    client.delete_topic(bs, topic)
    assert topic not in client.topics(bs)
    assert topic not in REFERENCE.topics(bs)
    with pytest.raises(AssertionError):
        partition_dir(broker.data_dir, topic, 0)

    with pytest.raises(BrokerError) as exc:
        client.delete_topic(bs, topic)
    assert exc.value.code == UNKNOWN_TOPIC_OR_PARTITION

    # A topic created again under the same name starts empty.
    client.create_topic(bs, topic, 1)
    assert client.topics(bs)[topic] == 1
    assert client.watermarks(bs, topic, 0) == (0, 0)
    client.delete_topic(bs, topic)


def test_kcat_auto_create_and_metadata(broker):
    """kcat has no admin API: producing to an unknown topic creates it (auto.create.topics.enable,
    num.partitions=3), and -L shows it with this broker as leader of every partition."""
    bs = broker.bootstrap
    topic = unique_topic("kcat-auto")
    KCAT.produce(bs, topic, [Rec(b"k", b"v")])
    md = KCAT.metadata(bs, topic)
    [node] = md["brokers"]
    assert node["name"] == bs
    [t] = md["topics"]
    assert t["topic"] == topic and "error" not in t
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2]
    for p in t["partitions"]:
        assert "error" not in p, p
        assert p["leader"] == node["id"]
        assert p["replicas"] == [{"id": node["id"]}]
        assert p["isrs"] == [{"id": node["id"]}]
    assert KCAT.watermarks(bs, topic, 0) == (0, 1)
    assert topic in KCAT.topics(bs)


@by_client()
def test_metadata_lists_new_topic(broker, client):
    """A topic made by another client is visible with its partition count to every client."""
    bs = broker.bootstrap
    topic = unique_topic(f"md-{client.name}")
    REFERENCE.create_topic(bs, topic, 5)
    assert client.topics(bs)[topic] == 5
    ts = now_ms()
    client.produce(bs, topic, [Rec(b"k", b"v", (), ts if client.sets_timestamps else None, 4)])
    assert client.watermarks(bs, topic, 4) == (0, 1)
