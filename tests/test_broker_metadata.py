"""Metadata API (every version) and the embedded MetadataStore."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from test_broker_network import RawClient

from broker.metadata import (
    EmbeddedMetadataStore,
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidTopicError,
    TopicAlreadyExistsError,
    UnknownTopicError,
)
from broker.metadata.store import BrokerInfo


def metadata_request(version: int, names: list[str] | None, auto: bool = True):
    from kio.index import load_request_schema

    from broker.protocol import make, nested

    cls = load_request_schema(3, version)
    topics = None
    if names is not None:
        tcls = nested(cls, "MetadataRequestTopic")
        topics = tuple(make(tcls, name=n, topic_id=uuid.UUID(int=0)) for n in names)
    elif version == 0:
        topics = ()
    return make(
        cls,
        topics=topics,
        allow_auto_topic_creation=auto,
        include_cluster_authorized_operations=False,
        include_topic_authorized_operations=False,
    )


# -- the store ------------------------------------------------------------------------


def test_store_persists_atomically(tmp_path: Path) -> None:
    s = EmbeddedMetadataStore(tmp_path, node_id=0)
    s.register_broker(BrokerInfo(0, "h", 1))
    t = s.create_topic("orders", 3, 1, {"retention.ms": "1000"})
    assert isinstance(t.topic_id, uuid.UUID)
    assert [p.leader for p in t.partitions.values()] == [0, 0, 0]
    s.add_partitions("orders", 5)
    assert not list(tmp_path.glob("*.tmp"))
    state = json.loads((tmp_path / "cluster-metadata.json").read_text())
    assert len(state["topics"]["orders"]["partitions"]) == 5
    s2 = EmbeddedMetadataStore(tmp_path, node_id=0)
    t2 = s2.topic("orders")
    assert t2 is not None and t2.topic_id == t.topic_id and t2.partition_count == 5
    assert s2.topic_by_id(t.topic_id) is t2
    assert s2.cluster_id == s.cluster_id and len(s.cluster_id) == 22
    assert s2.topic_configs("orders") == {"retention.ms": "1000"}


def test_store_errors(tmp_path: Path) -> None:
    s = EmbeddedMetadataStore(tmp_path)
    s.register_broker(BrokerInfo(0, "h", 1))
    s.create_topic("a", 1, 1)
    with pytest.raises(TopicAlreadyExistsError):
        s.create_topic("a", 1, 1)
    with pytest.raises(InvalidTopicError):
        s.create_topic("bad name!", 1, 1)
    with pytest.raises(InvalidTopicError):
        s.create_topic("x" * 250, 1, 1)
    s.create_topic("a.b", 1, 1)
    with pytest.raises(InvalidTopicError, match="collides"):
        s.create_topic("a_b", 1, 1)
    with pytest.raises(InvalidPartitionsError):
        s.create_topic("b", 0, 1)
    with pytest.raises(InvalidReplicationFactorError):
        s.create_topic("b", 1, 3)
    with pytest.raises(InvalidPartitionsError):
        s.add_partitions("a", 1)
    with pytest.raises(UnknownTopicError):
        s.delete_topic("zzz")
    assert s.create_topic("b", 2, 1, validate_only=True).partition_count == 2
    assert s.topic("b") is None
    s.delete_topic("a")
    s.delete_topic("a.b")
    assert s.topics() == []


def test_producer_ids_unique_across_restarts(tmp_path: Path) -> None:
    s = EmbeddedMetadataStore(tmp_path)
    first = s.allocate_producer_ids(10)
    s2 = EmbeddedMetadataStore(tmp_path)
    assert s2.allocate_producer_ids(10) == first + 10


# -- the API --------------------------------------------------------------------------


@pytest.fixture
def client(broker):
    c = RawClient(broker.bootstrap)
    yield c
    c.close()


@pytest.mark.parametrize("version", range(0, 13))
def test_metadata_every_version(client: RawClient, version: int) -> None:
    name = f"md-v{version}"
    r = client.call(metadata_request(version, [name]))
    assert len(r.brokers) == 1
    assert r.brokers[0].port == int(client.sock.getpeername()[1])
    (t,) = r.topics
    assert t.error_code.value == 0
    assert t.name == name
    assert len(t.partitions) == 3  # the fixture's num.partitions
    assert sorted(p.partition_index for p in t.partitions) == [0, 1, 2]
    assert all(p.leader_id == 0 and tuple(p.isr_nodes) == (0,) for p in t.partitions)
    if version >= 2:
        assert r.cluster_id
    if version >= 10:
        assert t.topic_id != uuid.UUID(int=0)
        # stable id: asked again, same UUID
        (t2,) = client.call(metadata_request(version, [name])).topics
        assert t2.topic_id == t.topic_id


def test_metadata_all_topics_and_no_auto_create(client: RawClient) -> None:
    client.call(metadata_request(12, ["listed-a"]))
    r = client.call(metadata_request(12, None))
    assert "listed-a" in {t.name for t in r.topics}
    r = client.call(metadata_request(12, ["not-created"], auto=False))
    assert r.topics[0].error_code.value == 3
    r = client.call(metadata_request(12, []))
    assert r.topics == ()


def test_metadata_invalid_topic_name(client: RawClient) -> None:
    r = client.call(metadata_request(9, ["bad/name"]))
    assert r.topics[0].error_code.value == 17


def test_metadata_by_topic_id(client: RawClient) -> None:
    from kio.index import load_request_schema

    from broker.protocol import make, nested

    (t,) = client.call(metadata_request(12, ["by-id"])).topics
    cls = load_request_schema(3, 12)
    tcls = nested(cls, "MetadataRequestTopic")
    req = make(
        cls,
        topics=(make(tcls, name=None, topic_id=t.topic_id),),
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )
    (found,) = client.call(req).topics
    assert found.name == "by-id" and found.topic_id == t.topic_id
    req = make(
        cls,
        topics=(make(tcls, name=None, topic_id=uuid.uuid4()),),
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )
    assert client.call(req).topics[0].error_code.value == 100


def test_auto_create_disabled(make_broker) -> None:
    b = make_broker({"auto.create.topics.enable": "false"})
    c = RawClient(b.bootstrap)
    r = c.call(metadata_request(12, ["nope"]))
    assert r.topics[0].error_code.value == 3
    c.close()


def test_topics_survive_restart(make_broker) -> None:
    b = make_broker()
    c = RawClient(b.bootstrap)
    (t,) = c.call(metadata_request(12, ["durable-topic"])).topics
    c.close()
    b.restart()
    c = RawClient(b.bootstrap)
    (t2,) = c.call(metadata_request(12, ["durable-topic"], auto=False)).topics
    assert t2.error_code.value == 0 and t2.topic_id == t.topic_id
    c.close()


def test_real_clients_see_metadata(broker) -> None:
    from confluent_kafka.admin import AdminClient
    from kafka import KafkaConsumer

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    md = admin.list_topics(timeout=10)
    assert list(md.brokers) == [0]
    assert md.brokers[0].port == broker.port
    c = RawClient(broker.bootstrap)
    c.call(metadata_request(12, ["seen-by-clients"]))
    c.close()
    assert "seen-by-clients" in admin.list_topics(timeout=10).topics
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        assert "seen-by-clients" in consumer.topics()
        assert consumer.partitions_for_topic("seen-by-clients") == {0, 1, 2}
    finally:
        consumer.close()
