"""Admin APIs against live brokers with real clients: confluent-kafka's AdminClient
(librdkafka), kafka-python's KafkaAdminClient, and raw frames for the legacy versions.

Topic configs are checked to take effect on the live log: smaller segment.bytes rolls
segments, lower retention deletes them, lower max.message.bytes refuses a batch.
"""

from __future__ import annotations

import datetime
import logging
import socket
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from broker.protocol import decode_response, encode_request

QUIET = logging.getLogger("test.librdkafka")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "logger": QUIET})


def produce(bootstrap: str, topic: str, n: int, partition: int = 0, size: int = 100) -> None:
    p = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 0, "logger": QUIET, "batch.num.messages": 1}
    )
    errors: list[Any] = []
    for i in range(n):
        p.produce(
            topic,
            (b"%06d" % i).ljust(size, b"x"),
            key=b"k%d" % i,
            partition=partition,
            on_delivery=lambda err, msg: errors.append(err) if err else None,
        )
        p.poll(0)
    assert p.flush(30) == 0
    assert not errors, errors


def offsets(a: AdminClient, topic: str, partition: int = 0) -> tuple[int, int]:
    tp = TopicPartition(topic, partition)
    start = a.list_offsets({tp: OffsetSpec.earliest()})[tp].result().offset
    end = a.list_offsets({tp: OffsetSpec.latest()})[tp].result().offset
    return start, end


def segments(data_dir: Path, topic: str, partition: int = 0) -> list[str]:
    return sorted(p.name for p in (data_dir / f"{topic}-{partition}").glob("*.log"))


def error_name(exc: KafkaException) -> str:
    return exc.args[0].name()


def wait_until(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.fixture(scope="module")
def admin_broker(tmp_path_factory: pytest.TempPathFactory):
    """A broker that runs retention every 300 ms, so config changes show quickly."""
    from support import BrokerProcess, free_port

    d = tmp_path_factory.mktemp("admin") / "data"
    d.mkdir()
    b = BrokerProcess(
        d, free_port(), {"num.partitions": "2", "log.retention.check.interval.ms": "300"}
    ).start()
    yield b
    b.stop()


# ------------------------------------------------------------------ confluent-kafka


def test_confluent_create_describe_delete(admin_broker) -> None:
    a = admin(admin_broker.bootstrap)
    fs = a.create_topics(
        [
            NewTopic(
                "cf-orders",
                3,
                1,
                config={"retention.ms": "3600000", "cleanup.policy": "compact,delete"},
            ),
            NewTopic("cf-defaults"),
        ]
    )
    for f in fs.values():
        f.result(10)
    md = a.list_topics(timeout=10)
    assert len(md.topics["cf-orders"].partitions) == 3
    assert len(md.topics["cf-defaults"].partitions) == 2  # num.partitions
    p0 = md.topics["cf-orders"].partitions[0]
    assert (p0.leader, p0.replicas, p0.isrs) == (0, [0], [0])

    res = ConfigResource(ResourceType.TOPIC, "cf-orders")
    configs = a.describe_configs([res])[res].result(10)
    assert configs["retention.ms"].value == "3600000"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["cleanup.policy"].value == "compact,delete"
    assert configs["segment.bytes"].value == "1073741824"
    assert configs["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value

    # the errors Kafka gives
    cases = {
        "cf-orders": (NewTopic("cf-orders", 1, 1), "TOPIC_ALREADY_EXISTS"),
        "cf-rf": (NewTopic("cf-rf", 1, 3), "INVALID_REPLICATION_FACTOR"),
        "bad name!": (NewTopic("bad name!", 1, 1), "TOPIC_EXCEPTION"),
        "cf-cfg": (NewTopic("cf-cfg", 1, 1, config={"retention.ms": "later"}), "INVALID_CONFIG"),
        "cf-unknown": (
            NewTopic("cf-unknown", 1, 1, config={"retention.hours": "1"}),
            "INVALID_CONFIG",
        ),
    }
    fs = a.create_topics([t for t, _ in cases.values()])
    for name, (_, expected) in cases.items():
        with pytest.raises(KafkaException) as exc:
            fs[name].result(10)
        assert error_name(exc.value) == expected, name

    # validate_only creates nothing
    a.create_topics([NewTopic("cf-dry", 1, 1)], validate_only=True)["cf-dry"].result(10)
    assert "cf-dry" not in a.list_topics(timeout=10).topics

    for f in a.delete_topics(["cf-orders", "cf-defaults"], operation_timeout=10).values():
        f.result(10)
    assert not {"cf-orders", "cf-defaults"} & set(a.list_topics(timeout=10).topics)
    assert not (admin_broker.data_dir / "cf-orders-0").exists()
    with pytest.raises(KafkaException) as exc:
        a.delete_topics(["cf-orders"])["cf-orders"].result(10)
    assert error_name(exc.value) == "UNKNOWN_TOPIC_OR_PART"


def test_confluent_alter_configs_and_partitions(admin_broker) -> None:
    a = admin(admin_broker.bootstrap)
    a.create_topics([NewTopic("cf-alter", 2, 1, config={"retention.ms": "1000000"})])[
        "cf-alter"
    ].result(10)
    res = ConfigResource(
        ResourceType.TOPIC,
        "cf-alter",
        incremental_configs=[
            ConfigEntry("segment.bytes", "1048576", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
            ConfigEntry(
                "cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND
            ),
        ],
    )
    a.incremental_alter_configs([res])[res].result(10)
    plain = ConfigResource(ResourceType.TOPIC, "cf-alter")
    configs = a.describe_configs([plain])[plain].result(10)
    assert configs["segment.bytes"].value == "1048576"
    assert configs["retention.ms"].value == "604800000"  # back to log.retention.hours=168
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["cleanup.policy"].value == "delete,compact"

    bad = ConfigResource(
        ResourceType.TOPIC,
        "cf-alter",
        incremental_configs=[
            ConfigEntry(
                "min.cleanable.dirty.ratio", "2", incremental_operation=AlterConfigOpType.SET
            )
        ],
    )
    with pytest.raises(KafkaException) as exc:
        a.incremental_alter_configs([bad])[bad].result(10)
    assert error_name(exc.value) == "INVALID_CONFIG"
    missing = ConfigResource(
        ResourceType.TOPIC,
        "cf-missing",
        incremental_configs=[
            ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    with pytest.raises(KafkaException) as exc:
        a.incremental_alter_configs([missing])[missing].result(10)
    assert error_name(exc.value) == "UNKNOWN_TOPIC_OR_PART"

    a.create_partitions([NewPartitions("cf-alter", 5)])["cf-alter"].result(10)
    assert len(a.list_topics(timeout=10).topics["cf-alter"].partitions) == 5
    assert (admin_broker.data_dir / "cf-alter-4").is_dir()
    with pytest.raises(KafkaException) as exc:
        a.create_partitions([NewPartitions("cf-alter", 3)])["cf-alter"].result(10)
    assert error_name(exc.value) == "INVALID_PARTITIONS"
    produce(admin_broker.bootstrap, "cf-alter", 3, partition=4)

    broker_res = ConfigResource(ResourceType.BROKER, "0")
    bconf = a.describe_configs([broker_res])[broker_res].result(10)
    assert bconf["num.partitions"].value == "2"
    assert bconf["num.partitions"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert bconf["num.partitions"].is_read_only


def test_confluent_describe_cluster(admin_broker) -> None:
    # librdkafka answers describe_cluster from Metadata v10; kafka-python below sends
    # DescribeCluster itself.
    a = admin(admin_broker.bootstrap)
    cluster = a.describe_cluster().result(10)
    assert [(n.id, n.host, n.port) for n in cluster.nodes] == [(0, "127.0.0.1", admin_broker.port)]
    assert cluster.controller.id == 0
    assert cluster.cluster_id


def test_confluent_delete_records(admin_broker) -> None:
    a = admin(admin_broker.bootstrap)
    a.create_topics([NewTopic("cf-records", 1, 1)])["cf-records"].result(10)
    produce(admin_broker.bootstrap, "cf-records", 50)
    tp = TopicPartition("cf-records", 0, 20)
    result = a.delete_records([tp])[tp].result(10)
    assert result.low_watermark == 20
    assert offsets(a, "cf-records") == (20, 50)
    c = Consumer(
        {
            "bootstrap.servers": admin_broker.bootstrap,
            "group.id": "cf-records",
            "auto.offset.reset": "earliest",
            "logger": QUIET,
        }
    )
    c.assign([TopicPartition("cf-records", 0)])
    msg = None
    deadline = time.monotonic() + 20
    while msg is None and time.monotonic() < deadline:
        msg = c.poll(0.5)
    c.close()
    assert msg is not None and msg.error() is None
    assert msg.offset() == 20 and msg.value().startswith(b"000020")

    beyond = TopicPartition("cf-records", 0, 51)
    with pytest.raises(KafkaException) as exc:
        a.delete_records([beyond])[beyond].result(10)
    assert error_name(exc.value) == "OFFSET_OUT_OF_RANGE"
    to_hw = TopicPartition("cf-records", 0, -1)  # OFFSET_END: up to the high watermark
    assert a.delete_records([to_hw])[to_hw].result(10).low_watermark == 50
    assert offsets(a, "cf-records") == (50, 50)


# ------------------------------------------------------------------ configs on the live log


def test_segment_and_retention_take_effect_on_live_log(admin_broker) -> None:
    a = admin(admin_broker.bootstrap)
    a.create_topics([NewTopic("live", 1, 1)])["live"].result(10)
    produce(admin_broker.bootstrap, "live", 20, size=200)
    assert len(segments(admin_broker.data_dir, "live")) == 1
    # smaller segments: later appends roll at 1 KiB
    res = ConfigResource(
        ResourceType.TOPIC,
        "live",
        incremental_configs=[
            ConfigEntry("segment.bytes", "1024", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    a.incremental_alter_configs([res])[res].result(10)
    produce(admin_broker.bootstrap, "live", 40, size=200)
    rolled = segments(admin_broker.data_dir, "live")
    assert len(rolled) >= 5, rolled
    assert offsets(a, "live") == (0, 60)
    # retention by size: old segments go at the next retention check (300 ms here)
    res = ConfigResource(
        ResourceType.TOPIC,
        "live",
        incremental_configs=[
            ConfigEntry("retention.bytes", "2048", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    a.incremental_alter_configs([res])[res].result(10)
    assert wait_until(lambda: len(segments(admin_broker.data_dir, "live")) < len(rolled))
    start, end = offsets(a, "live")
    assert 0 < start < end == 60
    # retention by time: everything but the active segment goes
    res = ConfigResource(
        ResourceType.TOPIC,
        "live",
        incremental_configs=[
            ConfigEntry("retention.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
            ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    a.incremental_alter_configs([res])[res].result(10)
    assert wait_until(lambda: len(segments(admin_broker.data_dir, "live")) == 1)
    assert wait_until(lambda: offsets(a, "live")[0] > start)


def test_max_message_bytes_takes_effect(admin_broker) -> None:
    a = admin(admin_broker.bootstrap)
    a.create_topics([NewTopic("small", 1, 1)])["small"].result(10)
    produce(admin_broker.bootstrap, "small", 1, size=5000)
    res = ConfigResource(
        ResourceType.TOPIC,
        "small",
        incremental_configs=[
            ConfigEntry("max.message.bytes", "1000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    a.incremental_alter_configs([res])[res].result(10)
    p = Producer(
        {
            "bootstrap.servers": admin_broker.bootstrap,
            "logger": QUIET,
            "compression.type": "none",
            "message.send.max.retries": 0,
        }
    )
    errors: list[Any] = []
    p.produce("small", b"y" * 5000, partition=0, on_delivery=lambda err, msg: errors.append(err))
    p.flush(20)
    assert errors and errors[0] is not None and errors[0].name() == "MSG_SIZE_TOO_LARGE"


# ------------------------------------------------------------------ kafka-python


def test_kafka_python_admin(admin_broker) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource as KPConfigResource
    from kafka.admin import ConfigResourceType
    from kafka.admin import NewPartitions as KPNewPartitions
    from kafka.admin import NewTopic as KPNewTopic
    from kafka.errors import InvalidReplicationFactorError, TopicAlreadyExistsError

    a = KafkaAdminClient(bootstrap_servers=admin_broker.bootstrap, client_id="kp-admin")
    try:
        a.create_topics([KPNewTopic("kp-topic", 2, 1, topic_configs={"retention.ms": "120000"})])
        assert "kp-topic" in a.list_topics()
        with pytest.raises(TopicAlreadyExistsError):
            a.create_topics([KPNewTopic("kp-topic", 2, 1)])
        with pytest.raises(InvalidReplicationFactorError):
            a.create_topics([KPNewTopic("kp-rf", 2, 5)])

        described = a.describe_configs([KPConfigResource(ConfigResourceType.TOPIC, "kp-topic")])
        text = repr(described)
        assert "retention.ms" in text and "120000" in text

        def overrides() -> dict[str, str]:
            res = KPConfigResource(ConfigResourceType.TOPIC, "kp-topic")
            described = a.describe_configs([res])["topic"]["kp-topic"]
            return {
                k: v["value"]
                for k, v in described.items()
                if v["config_source"] == "DYNAMIC_TOPIC_CONFIG"
            }

        # IncrementalAlterConfigs (the client's default), then the legacy AlterConfigs, for
        # which the client sends the other overrides along (AlterConfigs replaces the set)
        a.alter_configs(
            [
                KPConfigResource(
                    ConfigResourceType.TOPIC, "kp-topic", configs={"segment.bytes": "2048"}
                )
            ]
        )
        assert overrides() == {"retention.ms": "120000", "segment.bytes": "2048"}
        a.alter_configs(
            [
                KPConfigResource(
                    ConfigResourceType.TOPIC, "kp-topic", configs={"segment.bytes": "4096"}
                )
            ],
            incremental=False,
        )
        assert overrides() == {"retention.ms": "120000", "segment.bytes": "4096"}
        a.reset_configs(
            [KPConfigResource(ConfigResourceType.TOPIC, "kp-topic", configs=["retention.ms"])]
        )
        assert overrides() == {"segment.bytes": "4096"}
        a.reset_configs(
            [KPConfigResource(ConfigResourceType.TOPIC, "kp-topic", configs=["segment.bytes"])],
            incremental=False,
        )
        assert overrides() == {}

        a.create_partitions({"kp-topic": KPNewPartitions(4)})
        meta = a.describe_topics(["kp-topic"])
        assert len(meta[0]["partitions"]) == 4

        produce(admin_broker.bootstrap, "kp-topic", 10)
        from kafka.structs import TopicPartition as KPTopicPartition

        result = a.delete_records({KPTopicPartition("kp-topic", 0): 4})
        assert list(result.values())[0]["low_watermark"] == 4

        cluster = a.describe_cluster()
        assert cluster["cluster_id"] and len(cluster["brokers"]) == 1

        a.delete_topics(["kp-topic"])
        assert "kp-topic" not in a.list_topics()
    finally:
        a.close()


# ------------------------------------------------------------------ legacy versions on the wire


def raw_call(bootstrap: str, request: Any) -> Any:
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(encode_request(request, 42, "legacy-test"))
        (size,) = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))
        frame = b""
        while len(frame) < size:
            chunk = s.recv(size - len(frame))
            assert chunk
            frame += chunk
    cid, response = decode_response(frame, request.__api_key__, request.__version__)
    assert cid == 42
    return response


def test_legacy_versions_on_the_wire(admin_broker) -> None:
    from kio.schema.create_topics.v2.request import CreatableTopic, CreatableTopicConfig
    from kio.schema.describe_configs.v1.request import DescribeConfigsResource
    from kio.static.primitive import i8, i16, i32, i32Timedelta

    from broker.handlers._legacy_schemas import LEGACY

    timeout = i32Timedelta.parse(datetime.timedelta(seconds=5))
    topic = CreatableTopic(
        name="legacy",
        num_partitions=i32(2),
        replication_factor=i16(1),
        assignments=(),
        configs=(CreatableTopicConfig(name="retention.ms", value="5000"),),
    )
    v0 = raw_call(admin_broker.bootstrap, LEGACY[(19, 0)][0](topics=(topic,), timeout=timeout))
    assert [(t.name, t.error_code) for t in v0.topics] == [("legacy", 0)]
    v1 = raw_call(
        admin_broker.bootstrap,
        LEGACY[(19, 1)][0](topics=(topic,), timeout=timeout, validate_only=True),
    )
    assert v1.topics[0].error_code == 36 and "already exists" in v1.topics[0].error_message
    d0 = raw_call(
        admin_broker.bootstrap,
        LEGACY[(32, 0)][0](
            resources=(
                DescribeConfigsResource(
                    resource_type=i8(2),
                    resource_name="legacy",
                    configuration_keys=("retention.ms", "segment.ms"),
                ),
            )
        ),
    )
    assert [(c.name, c.value, c.is_default) for c in d0.results[0].configs] == [
        ("retention.ms", "5000", False),
        ("segment.ms", "604800000", True),
    ]
    x0 = raw_call(
        admin_broker.bootstrap, LEGACY[(20, 0)][0](topic_names=("legacy", "nope"), timeout=timeout)
    )
    assert [(t.name, t.error_code) for t in x0.responses] == [("legacy", 0), ("nope", 3)]


# ------------------------------------------------------------------ aiokafka


async def test_aiokafka_admin(admin_broker) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, RecordsToDelete
    from aiokafka.admin import NewTopic as AIONewTopic
    from aiokafka.admin.config_resource import ConfigResource as AIOConfigResource
    from aiokafka.admin.config_resource import ConfigResourceType as AIOType
    from aiokafka.structs import TopicPartition as AIOTopicPartition

    a = AIOKafkaAdminClient(bootstrap_servers=admin_broker.bootstrap)
    await a.start()
    try:
        r = await a.create_topics(
            [AIONewTopic("aio-topic", 2, 1, topic_configs={"retention.ms": "5000"})]
        )
        assert [tuple(t[:2]) for t in r.topic_errors] == [("aio-topic", 0)]
        r = await a.create_topics([AIONewTopic("aio-topic", 2, 1), AIONewTopic("aio rf", 1, 1)])
        assert [tuple(t[:2]) for t in r.topic_errors] == [("aio-topic", 36), ("aio rf", 17)]
        assert "aio-topic" in await a.list_topics()

        def configs(responses: Any) -> dict[str, str]:
            (resp,) = responses
            (resource,) = resp.resources
            return {entry[0]: entry[1] for entry in resource[4]}

        got = configs(await a.describe_configs([AIOConfigResource(AIOType.TOPIC, "aio-topic")]))
        assert got["retention.ms"] == "5000" and got["cleanup.policy"] == "delete"
        await a.alter_configs(
            [AIOConfigResource(AIOType.TOPIC, "aio-topic", {"segment.bytes": "2048"})]
        )
        got = configs(await a.describe_configs([AIOConfigResource(AIOType.TOPIC, "aio-topic")]))
        assert got["segment.bytes"] == "2048" and got["retention.ms"] == "604800000"  # replaced set

        await a.create_partitions({"aio-topic": NewPartitions(3)})
        (meta,) = await a.describe_topics(["aio-topic"])
        assert len(meta["partitions"]) == 3

        produce(admin_broker.bootstrap, "aio-topic", 8)
        low = await a.delete_records({AIOTopicPartition("aio-topic", 0): RecordsToDelete(5)})
        assert low == {AIOTopicPartition("aio-topic", 0): 5}

        r = await a.delete_topics(["aio-topic", "aio-missing"])
        assert [tuple(t[:2]) for t in r.topic_error_codes] == [("aio-topic", 0), ("aio-missing", 3)]
    finally:
        await a.close()


# ------------------------------------------------------------------ kafkajs

KAFKAJS_ADMIN = r"""
'use strict'
const { Kafka, logLevel, ConfigResourceTypes } = require('kafkajs')
const kafka = new Kafka({ clientId: 'fastlog-admin-test', brokers: [process.argv[2]],
  logLevel: logLevel.NOTHING, retry: { retries: 2, initialRetryTime: 100 } })
const out = {}
async function attempt(label, fn) {
  try { out[label] = await fn() } catch (e) {
    out[label] = { error: (e.errors && e.errors[0] && e.errors[0].type) || e.type || e.name }
  }
}
;(async () => {
  const admin = kafka.admin()
  await admin.connect()
  await attempt('create', () => admin.createTopics({ waitForLeaders: true, topics: [
    { topic: 'js-topic', numPartitions: 2, replicationFactor: 1,
      configEntries: [{ name: 'retention.ms', value: '7000' }] }] }))
  await attempt('createAgain', () => admin.createTopics({ topics: [{ topic: 'js-topic' }] }))
  await attempt('createBad', () => admin.createTopics({ topics: [
    { topic: 'js-bad', configEntries: [{ name: 'segment.bytes', value: 'big' }] }] }))
  const describe = async () => {
    const r = await admin.describeConfigs({ includeSynonyms: false, resources: [
      { type: ConfigResourceTypes.TOPIC, name: 'js-topic', configNames: ['retention.ms', 'segment.bytes'] }] })
    return Object.fromEntries(r.resources[0].configEntries.map((c) => [c.configName, [c.configValue, c.isDefault]]))
  }
  await attempt('describe', describe)
  await attempt('alter', () => admin.alterConfigs({ validateOnly: false, resources: [
    { type: ConfigResourceTypes.TOPIC, name: 'js-topic', configEntries: [{ name: 'segment.bytes', value: '4096' }] }] })
    .then(() => true))
  await attempt('describeAfter', describe)
  await attempt('grow', () => admin.createPartitions({ topicPartitions: [{ topic: 'js-topic', count: 3 }] })
    .then(() => true))
  await attempt('meta', () => admin.fetchTopicMetadata({ topics: ['js-topic'] })
    .then((m) => m.topics[0].partitions.length))
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic: 'js-topic', messages: Array.from({ length: 6 }, (_, i) => ({ key: 'k' + i, value: 'v' + i, partition: 0 })) })
  await producer.disconnect()
  await attempt('deleteRecords', () => admin.deleteTopicRecords({ topic: 'js-topic', partitions: [{ partition: 0, offset: '4' }] })
    .then(() => admin.fetchTopicOffsets('js-topic'))
    .then((offs) => offs.find((o) => o.partition === 0)))
  await attempt('cluster', () => admin.describeCluster().then((c) => ({ brokers: c.brokers.length, controller: c.controller })))
  await attempt('delete', () => admin.deleteTopics({ topics: ['js-topic'] }).then(() => admin.listTopics()))
  await admin.disconnect()
  process.stdout.write(JSON.stringify(out))
})().catch((e) => { process.stderr.write(String(e.stack || e)); process.exit(1) })
"""


def test_kafkajs_admin(admin_broker, tmp_path: Path) -> None:
    import json
    import os
    import shutil
    import subprocess

    modules = Path(__file__).parent / "js" / "node_modules"
    if shutil.which("node") is None or not (modules / "kafkajs").is_dir():
        pytest.skip("node or tests/js/node_modules/kafkajs missing (scripts/test.sh installs them)")
    script = tmp_path / "admin.js"
    script.write_text(KAFKAJS_ADMIN)
    proc = subprocess.run(
        ["node", str(script), admin_broker.bootstrap],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, NODE_PATH=str(modules)),
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["create"] is True
    assert out["createAgain"] is False or out["createAgain"] == {"error": "TOPIC_ALREADY_EXISTS"}
    assert out["createBad"] == {"error": "INVALID_CONFIG"}
    assert out["describe"] == {
        "retention.ms": ["7000", False],
        "segment.bytes": ["1073741824", True],
    }
    assert out["alter"] is True
    # AlterConfigs replaces the override set: retention.ms falls back to the default
    assert out["describeAfter"] == {
        "retention.ms": ["604800000", True],
        "segment.bytes": ["4096", False],
    }
    assert out["grow"] is True and out["meta"] == 3
    assert out["deleteRecords"] == {"partition": 0, "offset": "6", "high": "6", "low": "4"}
    assert out["cluster"] == {"brokers": 1, "controller": 0}
    assert "js-topic" not in out["delete"]


# ------------------------------------------------------------------ across restarts


def test_configs_and_deleted_records_survive_restart(make_broker) -> None:
    b = make_broker({"log.retention.check.interval.ms": "300"})
    a = admin(b.bootstrap)
    a.create_topics([NewTopic("keep", 1, 1, config={"segment.bytes": "1024"})])["keep"].result(10)
    produce(b.bootstrap, "keep", 30, size=200)
    tp = TopicPartition("keep", 0, 12)
    assert a.delete_records([tp])[tp].result(10).low_watermark == 12
    res = ConfigResource(
        ResourceType.TOPIC,
        "keep",
        incremental_configs=[
            ConfigEntry("retention.ms", "86400000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    a.incremental_alter_configs([res])[res].result(10)
    before = segments(b.data_dir, "keep")

    b.restart()
    a = admin(b.bootstrap)
    plain = ConfigResource(ResourceType.TOPIC, "keep")
    configs = a.describe_configs([plain])[plain].result(10)
    assert configs["segment.bytes"].value == "1024"
    assert configs["retention.ms"].value == "86400000"
    assert offsets(a, "keep") == (12, 30)
    produce(b.bootstrap, "keep", 10, size=200)  # the reopened log still rolls at 1 KiB
    assert len(segments(b.data_dir, "keep")) > len(before)


def test_recreated_topic_starts_empty(admin_broker) -> None:
    a = admin(admin_broker.bootstrap)
    a.create_topics([NewTopic("again", 1, 1)])["again"].result(10)
    produce(admin_broker.bootstrap, "again", 5)
    assert offsets(a, "again") == (0, 5)
    a.delete_topics(["again"])["again"].result(10)
    a.create_topics([NewTopic("again", 2, 1)])["again"].result(10)
    assert offsets(a, "again") == (0, 0)
    assert len(a.list_topics(timeout=10).topics["again"].partitions) == 2
