"""aiokafka beyond produce/consume: AIOKafkaAdminClient (create/delete topics, describe/alter
configs, list/describe consumer groups, group offsets, delete_records), consumer
seek_to_beginning/end, offsets_for_times, beginning/end_offsets, manual assignment with explicit
commits, getmany(max_records), send_and_wait with headers, create_batch/send_batch, and a
transactional producer refused cleanly. One broker for the module."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TransactionalIdAuthorizationFailed
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from .helpers import unique_topic

T = 15
DYNAMIC_TOPIC_CONFIG = 1
DEFAULT_CONFIG = 5


async def _admin(bootstrap: str) -> AIOKafkaAdminClient:
    a = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=T * 1000)
    await a.start()
    return a


async def _create(bootstrap: str, topic: str, partitions: int = 1, configs=None) -> None:
    a = await _admin(bootstrap)
    try:
        r = await a.create_topics([NewTopic(topic, partitions, 1, topic_configs=configs or {})])
        assert [tuple(t[:2]) for t in r.topic_errors] == [(topic, 0)]
    finally:
        await a.close()


async def _produce(bootstrap: str, topic: str, values: list[bytes], partition: int = 0, ts=None):
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=T * 1000)
    await p.start()
    try:
        for i, v in enumerate(values):
            await p.send_and_wait(
                topic, v, partition=partition, timestamp_ms=None if ts is None else ts[i]
            )
    finally:
        await p.stop()


def _consumer(bootstrap: str, **kw) -> AIOKafkaConsumer:
    kw.setdefault("enable_auto_commit", False)
    kw.setdefault("auto_offset_reset", "earliest")
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=T * 1000, **kw)


async def _getmany(c: AIOKafkaConsumer, n: int, max_records: int | None = None) -> list:
    got: list = []
    deadline = time.monotonic() + T
    while len(got) < n and time.monotonic() < deadline:
        batch = await c.getmany(timeout_ms=300, max_records=max_records)
        for recs in batch.values():
            got += recs
    return got


async def test_admin_topics_configs_and_delete_records(broker) -> None:
    topic = unique_topic("aio-adm")
    a = await _admin(broker.bootstrap)
    try:
        r = await a.create_topics([NewTopic(topic, 2, 1, topic_configs={"retention.ms": "9000"})])
        assert [tuple(t[:2]) for t in r.topic_errors] == [(topic, 0)]
        assert topic in await a.list_topics()

        async def configs() -> dict[str, tuple[str, int]]:
            (resp,) = await a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            (res,) = resp.resources
            assert res[0] == 0, res  # error code
            # DescribeConfigs v1+: name -> (value, config_source)
            return {e[0]: (e[1], e[3]) for e in res[4]}

        got = await configs()
        assert got["retention.ms"] == ("9000", DYNAMIC_TOPIC_CONFIG)
        assert got["max.message.bytes"] == ("1048588", DEFAULT_CONFIG)
        (resp,) = await a.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": "50000"})]
        )
        assert resp.resources[0][0] == 0, resp
        got = await configs()
        assert got["max.message.bytes"] == ("50000", DYNAMIC_TOPIC_CONFIG)
        assert got["retention.ms"] == ("604800000", DEFAULT_CONFIG)  # AlterConfigs replaced the set
        (resp,) = await a.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": "-5"})]
        )
        assert resp.resources[0][0] == 40  # INVALID_CONFIG
        (resp,) = await a.describe_configs([ConfigResource(ConfigResourceType.BROKER, "0")])
        assert "log.segment.bytes" in {e[0] for e in resp.resources[0][4]}

        await a.create_partitions({topic: NewPartitions(3)})
        (meta,) = await a.describe_topics([topic])
        assert sorted(p["partition"] for p in meta["partitions"]) == [0, 1, 2]
        (cluster,) = [await a.describe_cluster()]
        assert cluster["controller_id"] == 0 and len(cluster["brokers"]) == 1

        await _produce(broker.bootstrap, topic, [b"d%d" % i for i in range(8)], partition=1)
        low = await a.delete_records({TopicPartition(topic, 1): RecordsToDelete(5)})
        assert low == {TopicPartition(topic, 1): 5}
        c = _consumer(broker.bootstrap)
        await c.start()
        try:
            tp = TopicPartition(topic, 1)
            assert await c.beginning_offsets([tp]) == {tp: 5}
            assert await c.end_offsets([tp]) == {tp: 8}
        finally:
            await c.stop()

        r = await a.delete_topics([topic])
        assert [tuple(t[:2]) for t in r.topic_error_codes] == [(topic, 0)]
        assert topic not in await a.list_topics()
    finally:
        await a.close()


async def test_admin_consumer_groups(broker) -> None:
    topic = unique_topic("aio-grp")
    await _create(broker.bootstrap, topic, partitions=2)
    await _produce(broker.bootstrap, topic, [b"g%d" % i for i in range(4)], partition=0)
    group = unique_topic("aio-group")
    c = _consumer(broker.bootstrap, group_id=group, heartbeat_interval_ms=300)
    c.subscribe([topic])
    await c.start()
    a = await _admin(broker.bootstrap)
    try:
        got = await _getmany(c, 4)
        assert [r.value for r in got] == [b"g%d" % i for i in range(4)]
        await c.commit({TopicPartition(topic, 0): OffsetAndMetadata(4, "done")})
        groups = await a.list_consumer_groups()
        assert (group, "consumer") in [tuple(g[:2]) for g in groups]
        (resp,) = await a.describe_consumer_groups([group])
        (g,) = resp.groups
        assert g[0] == 0 and g[1] == group and g[2] == "Stable" and g[3] == "consumer"
        assert len(g[5]) == 1  # one member
        offs = await a.list_consumer_group_offsets(group)
        assert offs == {TopicPartition(topic, 0): OffsetAndMetadata(4, "done")}
    finally:
        await c.stop()
        await a.close()


async def test_seek_offsets_for_times_and_manual_commit(broker) -> None:
    topic = unique_topic("aio-seek")
    await _create(broker.bootstrap, topic)
    base = int(time.time() * 1000) - 20_000
    await _produce(
        broker.bootstrap, topic, [b"s%d" % i for i in range(10)], ts=[base + i for i in range(10)]
    )
    tp = TopicPartition(topic, 0)
    group = unique_topic("aio-seek-g")
    c = _consumer(broker.bootstrap, group_id=group)
    await c.start()
    try:
        c.assign([tp])
        assert await c.beginning_offsets([tp]) == {tp: 0}
        assert await c.end_offsets([tp]) == {tp: 10}
        found = await c.offsets_for_times({tp: base + 6})
        assert found[tp].offset == 6 and found[tp].timestamp == base + 6
        assert (await c.offsets_for_times({tp: base + 100}))[tp] is None
        c.seek(tp, found[tp].offset)
        got = await _getmany(c, 4, max_records=2)
        assert [r.offset for r in got] == [6, 7, 8, 9]
        batch = await c.getmany(tp, timeout_ms=200, max_records=1)
        assert batch == {} or batch[tp] == []
        await c.seek_to_beginning(tp)
        assert await c.position(tp) == 0
        first = await c.getmany(tp, timeout_ms=T * 1000, max_records=3)
        assert [r.offset for r in first[tp]] == [0, 1, 2]
        await c.seek_to_end(tp)
        assert await c.position(tp) == 10
        await c.commit({tp: 3})
        assert await c.committed(tp) == 3
    finally:
        await c.stop()
    c2 = _consumer(broker.bootstrap, group_id=group, isolation_level="read_committed")
    await c2.start()
    try:
        c2.assign([tp])
        assert await c2.position(tp) == 3
        assert [r.value for r in await _getmany(c2, 2, max_records=2)] == [b"s3", b"s4"]
        assert c2.highwater(tp) == 10 and c2.last_stable_offset(tp) == 10
        c2.seek(tp, 8)
        assert await c2.seek_to_committed(tp) == {tp: 3}
        assert await c2.position(tp) == 3
    finally:
        await c2.stop()


async def test_send_and_wait_headers_and_send_batch(broker) -> None:
    topic = unique_topic("aio-batch")
    await _create(broker.bootstrap, topic, partitions=2)
    p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=T * 1000)
    await p.start()
    try:
        md = await p.send_and_wait(
            topic, b"hv", key=b"hk", partition=0, headers=[("a", b"1"), ("a", b"2"), ("e", b"")]
        )
        assert (md.partition, md.offset) == (0, 0)
        batch = p.create_batch()
        for i in range(5):
            assert batch.append(key=b"bk%d" % i, value=b"bv%d" % i, timestamp=None) is not None
        batch.close()
        fut = await p.send_batch(batch, topic, partition=1)
        md = await asyncio.wait_for(fut, T)
        assert (md.partition, md.offset) == (1, 0)
    finally:
        await p.stop()
    c = _consumer(broker.bootstrap)
    await c.start()
    try:
        c.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        got = await _getmany(c, 6)
        by_p = {pn: [r for r in got if r.partition == pn] for pn in (0, 1)}
        [h] = by_p[0]
        assert (h.key, h.value, list(h.headers)) == (
            b"hk",
            b"hv",
            [("a", b"1"), ("a", b"2"), ("e", b"")],
        )
        assert [(r.offset, r.key, r.value) for r in by_p[1]] == [
            (i, b"bk%d" % i, b"bv%d" % i) for i in range(5)
        ]
    finally:
        await c.stop()


async def test_transactional_producer_is_refused_cleanly(broker) -> None:
    p = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap,
        transactional_id=unique_topic("aio-tx"),
        request_timeout_ms=T * 1000,
    )
    start = time.monotonic()
    with pytest.raises(KafkaError) as exc:
        await asyncio.wait_for(p.start(), 20)
    assert time.monotonic() - start < 10
    assert isinstance(exc.value, TransactionalIdAuthorizationFailed), exc.value
    await p.stop()
    assert broker.proc.poll() is None
