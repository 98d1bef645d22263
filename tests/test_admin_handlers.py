"""Admin API handlers in-process, every version: real metadata store and broker config, each
response serialized and parsed back with its schema (kio's, or ours for the legacy versions).

The live-broker tests with real clients are in test_admin_clients.py.
"""

from __future__ import annotations

import datetime
import importlib
import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i8, i16, i32, i32Timedelta

from broker.config import BrokerConfig
from broker.handlers import (
    RequestContext,
    alter_configs,
    create_partitions,
    create_topics,
    delete_topics,
    describe_cluster,
    describe_configs,
    discover,
    incremental_alter_configs,
)
from broker.handlers._legacy_schemas import LEGACY
from broker.metadata import BrokerInfo, EmbeddedMetadataStore

TIMEOUT = i32Timedelta.parse(datetime.timedelta(seconds=5))


@pytest.fixture
def broker(tmp_path: Path) -> SimpleNamespace:
    store = EmbeddedMetadataStore(tmp_path, node_id=0)
    store.register_broker(BrokerInfo(0, "127.0.0.1", 19092))
    config = BrokerConfig({"log.retention.ms": "5000", "num.partitions": "2"})
    return SimpleNamespace(config=config, metadata=store, node_id=0, replica_manager=None)


def request_cls(api: str, key: int, version: int) -> Any:
    if (key, version) in LEGACY:
        return LEGACY[(key, version)][0]
    return importlib.import_module(f"kio.schema.{api}.v{version}.request")


async def call(broker: Any, module: Any, version: int, request: Any) -> Any:
    ctx = RequestContext(broker, module.API_KEY, version, 7, "test-client")
    response = await module.handle(ctx, request)
    buf = io.BytesIO()
    entity_writer(type(response))(buf, response)
    data = buf.getvalue()
    parsed, size = entity_reader(type(response))(data, 0)
    assert size == len(data)
    assert type(response).__version__ == version
    return parsed


def creatable(
    version: int, name: str, partitions: int = 3, rf: int = 1, configs=(), assignments=()
):
    m = importlib.import_module(f"kio.schema.create_topics.v{max(version, 2)}.request")
    return m.CreatableTopic(
        name=name,
        num_partitions=i32(partitions),
        replication_factor=i16(rf),
        assignments=tuple(
            m.CreatableReplicaAssignment(partition_index=i32(i), broker_ids=tuple(map(i32, ids)))
            for i, ids in assignments
        ),
        configs=tuple(m.CreatableTopicConfig(name=k, value=v) for k, v in configs),
    )


def create_request(version: int, topics: list, validate_only: bool = False) -> Any:
    if version == 0:
        return LEGACY[(19, 0)][0](topics=tuple(topics), timeout=TIMEOUT)
    if version == 1:
        return LEGACY[(19, 1)][0](
            topics=tuple(topics), timeout=TIMEOUT, validate_only=validate_only
        )
    m = importlib.import_module(f"kio.schema.create_topics.v{version}.request")
    return m.CreateTopicsRequest(topics=tuple(topics), timeout=TIMEOUT, validate_only=validate_only)


def test_handlers_are_discovered_with_their_ranges() -> None:
    found = {k: (m.MIN_VERSION, m.MAX_VERSION) for k, m in discover().items()}
    for key, versions in {
        19: (0, 5),
        20: (0, 4),
        37: (0, 3),
        21: (0, 2),
        32: (0, 4),
        33: (0, 2),
        44: (0, 1),
        60: (0, 1),
    }.items():
        assert found[key] == versions


@pytest.mark.parametrize("version", range(0, 6))
async def test_create_topics_every_version(broker: Any, version: int) -> None:
    topics = [
        creatable(version, "ok", 3, 1, configs=[("retention.ms", "1000")]),
        creatable(version, "defaults", -1, -1),
        creatable(version, "bad/name"),
        creatable(version, "rf", 1, 3),
        creatable(version, "parts", 0, 1),
        creatable(version, "cfg", 1, 1, configs=[("retention.ms", "soon")]),
        creatable(version, "unknowncfg", 1, 1, configs=[("no.such.config", "1")]),
        creatable(version, "dup"),
        creatable(version, "dup"),
        creatable(version, "manual", -1, -1, assignments=[(0, [0]), (1, [0])]),
        creatable(version, "badmanual", -1, -1, assignments=[(0, [0]), (1, [5])]),
    ]
    r = await call(broker, create_topics, version, create_request(version, topics))
    errors = {t.name: t.error_code for t in r.topics}
    assert errors == {
        "ok": ErrorCode.none,
        "defaults": ErrorCode.none,
        "bad/name": ErrorCode.invalid_topic_exception,
        "rf": ErrorCode.invalid_replication_factor,
        "parts": ErrorCode.invalid_partitions,
        "cfg": ErrorCode.invalid_config,
        "unknowncfg": ErrorCode.invalid_config,
        "dup": ErrorCode.invalid_request,
        "manual": ErrorCode.none,
        "badmanual": ErrorCode.invalid_replica_assignment,
    }
    store = broker.metadata
    assert store.topic("ok").partition_count == 3
    assert store.topic("ok").configs == {"retention.ms": "1000"}
    assert store.topic("defaults").partition_count == 2  # num.partitions
    assert store.topic("manual").partition_count == 2
    assert store.topic("rf") is None and store.topic("cfg") is None
    if version >= 1:
        msgs = {t.name: t.error_message for t in r.topics}
        assert "Not a number of type LONG" in msgs["cfg"]
        assert "only 1 broker(s)" in msgs["rf"]
    if version >= 5:
        ok = next(t for t in r.topics if t.name == "ok")
        assert (ok.num_partitions, ok.replication_factor) == (3, 1)
        configs = {c.name: (c.value, c.config_source) for c in ok.configs}
        assert configs["retention.ms"] == ("1000", 1)  # TOPIC_CONFIG
        assert configs["segment.bytes"] == ("1073741824", 5)  # DEFAULT_CONFIG
    # a second attempt finds them
    again = await call(broker, create_topics, version, create_request(version, topics[:1]))
    assert again.topics[0].error_code == ErrorCode.topic_already_exists


async def test_create_topics_validate_only_and_collision(broker: Any) -> None:
    r = await call(broker, create_topics, 4, create_request(4, [creatable(4, "a.b")], True))
    assert r.topics[0].error_code == ErrorCode.none
    assert broker.metadata.topic("a.b") is None
    await call(broker, create_topics, 4, create_request(4, [creatable(4, "a.b")]))
    r = await call(broker, create_topics, 4, create_request(4, [creatable(4, "a_b")]))
    assert r.topics[0].error_code == ErrorCode.invalid_topic_exception
    assert "collides" in r.topics[0].error_message


@pytest.mark.parametrize("version", range(0, 5))
async def test_delete_topics_every_version(broker: Any, version: int) -> None:
    broker.metadata.create_topic("gone", 1, 1)
    broker.metadata.create_topic("__consumer_offsets", 1, 1, is_internal=True)
    broker.metadata.create_topic("__mine", 1, 1)
    if version == 0:
        req = LEGACY[(20, 0)][0](
            topic_names=("gone", "missing", "__consumer_offsets", "__mine"), timeout=TIMEOUT
        )
    else:
        m = request_cls("delete_topics", 20, version)
        req = m.DeleteTopicsRequest(
            topic_names=("gone", "missing", "__consumer_offsets", "__mine"), timeout=TIMEOUT
        )
    r = await call(broker, delete_topics, version, req)
    assert {t.name: t.error_code for t in r.responses} == {
        "gone": ErrorCode.none,
        "missing": ErrorCode.unknown_topic_or_partition,
        "__consumer_offsets": ErrorCode.invalid_request,
        "__mine": ErrorCode.none,
    }
    assert broker.metadata.topic("gone") is None


async def test_delete_topics_disabled(broker: Any) -> None:
    broker.config = BrokerConfig({"delete.topic.enable": "false"})
    broker.metadata.create_topic("kept", 1, 1)
    m = request_cls("delete_topics", 20, 4)
    r = await call(
        broker, delete_topics, 4, m.DeleteTopicsRequest(topic_names=("kept",), timeout=TIMEOUT)
    )
    assert r.responses[0].error_code == ErrorCode.topic_deletion_disabled
    assert broker.metadata.topic("kept") is not None


@pytest.mark.parametrize("version", range(0, 4))
async def test_create_partitions_every_version(broker: Any, version: int) -> None:
    broker.metadata.create_topic("grow", 2, 1)
    m = request_cls("create_partitions", 37, version)

    def topic(name: str, count: int, assignments=None):
        a = (
            None
            if assignments is None
            else tuple(
                m.CreatePartitionsAssignment(broker_ids=tuple(map(i32, ids))) for ids in assignments
            )
        )
        return m.CreatePartitionsTopic(name=name, count=i32(count), assignments=a)

    req = m.CreatePartitionsRequest(
        topics=(topic("grow", 4), topic("missing", 3)), timeout=TIMEOUT, validate_only=True
    )
    r = await call(broker, create_partitions, version, req)
    assert [x.error_code for x in r.results] == [
        ErrorCode.none,
        ErrorCode.unknown_topic_or_partition,
    ]
    assert broker.metadata.topic("grow").partition_count == 2  # validate only
    req = m.CreatePartitionsRequest(
        topics=(topic("grow", 4),), timeout=TIMEOUT, validate_only=False
    )
    r = await call(broker, create_partitions, version, req)
    assert r.results[0].error_code == ErrorCode.none
    assert broker.metadata.topic("grow").partition_count == 4
    for count, assignments, error in [
        (4, None, ErrorCode.invalid_partitions),
        (3, None, ErrorCode.invalid_partitions),
        (6, [[0]], ErrorCode.invalid_replica_assignment),
        (5, [[1]], ErrorCode.invalid_replica_assignment),
        (5, [[0, 0]], ErrorCode.invalid_replica_assignment),
    ]:
        req = m.CreatePartitionsRequest(
            topics=(topic("grow", count, assignments),), timeout=TIMEOUT, validate_only=False
        )
        r = await call(broker, create_partitions, version, req)
        assert r.results[0].error_code == error, (count, assignments)
        assert r.results[0].error_message
    req = m.CreatePartitionsRequest(
        topics=(topic("grow", 5, [[0]]),), timeout=TIMEOUT, validate_only=False
    )
    assert (await call(broker, create_partitions, version, req)).results[
        0
    ].error_code == ErrorCode.none
    assert broker.metadata.topic("grow").partition_count == 5


def describe_request(version: int, resources: list[tuple[int, str, tuple | None]], synonyms=True):
    if version == 0:
        from kio.schema.describe_configs.v1.request import DescribeConfigsResource

        return LEGACY[(32, 0)][0](
            resources=tuple(
                DescribeConfigsResource(resource_type=i8(t), resource_name=n, configuration_keys=k)
                for t, n, k in resources
            )
        )
    m = request_cls("describe_configs", 32, version)
    kw = {"include_documentation": True} if version >= 3 else {}
    return m.DescribeConfigsRequest(
        resources=tuple(
            m.DescribeConfigsResource(resource_type=i8(t), resource_name=n, configuration_keys=k)
            for t, n, k in resources
        ),
        include_synonyms=synonyms,
        **kw,
    )


@pytest.mark.parametrize("version", range(0, 5))
async def test_describe_configs_every_version(broker: Any, version: int) -> None:
    broker.metadata.create_topic("t", 1, 1, {"segment.bytes": "4096"})
    req = describe_request(
        version,
        [
            (2, "t", None),
            (2, "t", ("retention.ms", "nope")),
            (2, "missing", None),
            (4, "0", ("num.partitions", "log.retention.ms")),
            (4, "9", None),
            (8, "0", None),
            (3, "x", None),
        ],
    )
    r = await call(broker, describe_configs, version, req)
    res = r.results
    assert [x.error_code for x in res] == [
        ErrorCode.none,
        ErrorCode.none,
        ErrorCode.unknown_topic_or_partition,
        ErrorCode.none,
        ErrorCode.invalid_request,
        ErrorCode.none,
        ErrorCode.invalid_request,
    ]
    full = {c.name: c for c in res[0].configs}
    assert full["segment.bytes"].value == "4096"
    assert full["retention.ms"].value == "5000"  # from the broker's log.retention.ms
    assert full["cleanup.policy"].value == "delete"
    assert [c.name for c in res[1].configs] == ["retention.ms"]
    broker_cfg = {c.name: c for c in res[3].configs}
    assert broker_cfg["num.partitions"].value == "2"
    assert all(c.read_only for c in res[3].configs)
    assert any(c.name == "root" for c in res[5].configs)
    if version == 0:
        assert full["segment.bytes"].is_default is False
        assert full["flush.ms"].is_default is True
    else:
        assert full["segment.bytes"].config_source == 1  # TOPIC_CONFIG
        assert full["retention.ms"].config_source == 4  # STATIC_BROKER_CONFIG
        assert full["flush.ms"].config_source == 5  # DEFAULT_CONFIG
        assert [(s.name, s.value) for s in full["retention.ms"].synonyms] == [
            ("log.retention.ms", "5000"),
            ("log.retention.hours", "168"),
        ]
        assert broker_cfg["num.partitions"].config_source == 4
        assert broker_cfg["log.retention.ms"].config_source == 4
    if version >= 3:
        assert full["segment.bytes"].config_type == 3  # INT
        assert full["retention.ms"].config_type == 5  # LONG
        assert full["cleanup.policy"].config_type == 7  # LIST
        assert full["retention.ms"].documentation


@pytest.mark.parametrize("version", range(0, 3))
async def test_alter_configs_replaces_the_set(broker: Any, version: int) -> None:
    broker.metadata.create_topic("t", 1, 1, {"segment.bytes": "4096", "retention.ms": "10"})
    m = request_cls("alter_configs", 33, version)

    def req(resources, validate_only=False):
        return m.AlterConfigsRequest(
            resources=tuple(
                m.AlterConfigsResource(
                    resource_type=i8(t),
                    resource_name=n,
                    configs=tuple(m.AlterableConfig(name=k, value=v) for k, v in cfg),
                )
                for t, n, cfg in resources
            ),
            validate_only=validate_only,
        )

    r = await call(broker, alter_configs, version, req([(2, "t", [("retention.ms", "99")])], True))
    assert r.responses[0].error_code == ErrorCode.none
    assert broker.metadata.topic_configs("t") == {"segment.bytes": "4096", "retention.ms": "10"}
    r = await call(
        broker,
        alter_configs,
        version,
        req(
            [
                (2, "t", [("retention.ms", "99"), ("cleanup.policy", "compact")]),
                (2, "missing", []),
                (4, "0", [("num.partitions", "5")]),
            ]
        ),
    )
    assert [x.error_code for x in r.responses] == [
        ErrorCode.none,
        ErrorCode.unknown_topic_or_partition,
        ErrorCode.invalid_request,
    ]
    assert broker.metadata.topic_configs("t") == {"retention.ms": "99", "cleanup.policy": "compact"}
    r = await call(broker, alter_configs, version, req([(2, "t", [("segment.bytes", "1")])]))
    assert r.responses[0].error_code == ErrorCode.invalid_config
    assert "at least 14" in r.responses[0].error_message
    assert broker.metadata.topic_configs("t") == {"retention.ms": "99", "cleanup.policy": "compact"}


@pytest.mark.parametrize("version", range(0, 2))
async def test_incremental_alter_configs(broker: Any, version: int) -> None:
    broker.metadata.create_topic("t", 1, 1, {"retention.ms": "10"})
    m = request_cls("incremental_alter_configs", 44, version)

    def req(t, n, ops, validate_only=False):
        return m.IncrementalAlterConfigsRequest(
            resources=(
                m.AlterConfigsResource(
                    resource_type=i8(t),
                    resource_name=n,
                    configs=tuple(
                        m.AlterableConfig(name=k, config_operation=i8(op), value=v)
                        for k, op, v in ops
                    ),
                ),
            ),
            validate_only=validate_only,
        )

    async def run(*args, **kw):
        return (await call(broker, incremental_alter_configs, version, req(*args, **kw))).responses[
            0
        ]

    assert (
        await run(2, "t", [("segment.bytes", 0, "2048"), ("retention.ms", 1, None)])
    ).error_code == 0
    assert broker.metadata.topic_configs("t") == {"segment.bytes": "2048"}
    assert (await run(2, "t", [("cleanup.policy", 2, "compact")])).error_code == 0
    assert broker.metadata.topic_configs("t")["cleanup.policy"] == "delete,compact"
    assert (await run(2, "t", [("cleanup.policy", 3, "delete")])).error_code == 0
    assert broker.metadata.topic_configs("t")["cleanup.policy"] == "compact"
    bad = await run(2, "t", [("retention.ms", 0, "-5"), ("segment.bytes", 0, "4096")])
    assert bad.error_code == ErrorCode.invalid_config
    assert broker.metadata.topic_configs("t")["segment.bytes"] == "2048"  # all or nothing
    assert (await run(2, "t", [("retention.ms", 7, "1")])).error_code == ErrorCode.invalid_request
    assert (await run(2, "t", [("retention.ms", 2, "1")])).error_code == ErrorCode.invalid_config
    assert (await run(2, "nope", [("retention.ms", 0, "1")])).error_code == 3
    assert (await run(4, "0", [("num.partitions", 0, "1")])).error_code == ErrorCode.invalid_request
    # loggers: set a level, then give it back to its parent
    import logging

    assert (await run(8, "0", [("broker.handlers.test", 0, "DEBUG")])).error_code == 0
    assert logging.getLogger("broker.handlers.test").level == logging.DEBUG
    assert (await run(8, "0", [("broker.handlers.test", 1, None)])).error_code == 0
    assert logging.getLogger("broker.handlers.test").level == logging.NOTSET
    assert (await run(8, "0", [("x", 0, "LOUD")])).error_code == ErrorCode.invalid_config


@pytest.mark.parametrize("version", range(0, 2))
async def test_describe_cluster(broker: Any, version: int) -> None:
    m = request_cls("describe_cluster", 60, version)
    r = await call(
        broker,
        describe_cluster,
        version,
        m.DescribeClusterRequest(include_cluster_authorized_operations=True),
    )
    assert r.error_code == ErrorCode.none
    assert r.cluster_id == broker.metadata.cluster_id
    assert [(b.broker_id, b.host, b.port) for b in r.brokers] == [(0, "127.0.0.1", 19092)]
    assert r.controller_id == 0
    assert r.cluster_authorized_operations > 0
    if version == 1:
        r = await call(
            broker,
            describe_cluster,
            1,
            m.DescribeClusterRequest(
                include_cluster_authorized_operations=False, endpoint_type=i8(2)
            ),
        )
        assert r.error_code == ErrorCode.unsupported_endpoint_type


# ------------------------------------------------------------------ hostile input

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_text = st.one_of(
    st.sampled_from(["t", "retention.ms", "cleanup.policy", "", "0"]), st.text(max_size=12)
)
_int32 = st.integers(-(2**31), 2**31 - 1)
_small = st.one_of(st.integers(-3, 5), _int32)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
async def test_random_admin_requests_get_answers(broker: Any, data: st.DataObject) -> None:
    """Whatever the values, each handler answers with a response that serializes."""
    broker.metadata.create_topic("t", 1, 1) if broker.metadata.topic("t") is None else None
    ct = importlib.import_module("kio.schema.create_topics.v5.request")
    topics = data.draw(
        st.lists(
            st.builds(
                lambda n, p, r, cfg, asg: ct.CreatableTopic(
                    name=n,
                    num_partitions=i32(p),
                    replication_factor=i16(max(-(2**15), min(2**15 - 1, r))),
                    assignments=tuple(
                        ct.CreatableReplicaAssignment(
                            partition_index=i32(i), broker_ids=tuple(map(i32, b))
                        )
                        for i, b in asg
                    ),
                    configs=tuple(ct.CreatableTopicConfig(name=k, value=v) for k, v in cfg),
                ),
                _text,
                st.integers(-3, 4),
                _small,
                st.lists(st.tuples(_text, st.one_of(st.none(), _text)), max_size=3),
                st.lists(st.tuples(st.integers(-2, 3), st.lists(_small, max_size=3)), max_size=3),
            ),
            max_size=3,
        )
    )
    await call(
        broker,
        create_topics,
        5,
        ct.CreateTopicsRequest(
            topics=tuple(topics), timeout=TIMEOUT, validate_only=data.draw(st.booleans())
        ),
    )

    cp = importlib.import_module("kio.schema.create_partitions.v3.request")
    parts = data.draw(
        st.lists(
            st.builds(
                lambda n, c, a: cp.CreatePartitionsTopic(
                    name=n,
                    count=i32(c),
                    assignments=None
                    if a is None
                    else tuple(
                        cp.CreatePartitionsAssignment(broker_ids=tuple(map(i32, b))) for b in a
                    ),
                ),
                _text,
                st.integers(-2, 4),
                st.one_of(st.none(), st.lists(st.lists(_small, max_size=2), max_size=3)),
            ),
            max_size=3,
        )
    )
    await call(
        broker,
        create_partitions,
        3,
        cp.CreatePartitionsRequest(
            topics=tuple(parts), timeout=TIMEOUT, validate_only=data.draw(st.booleans())
        ),
    )

    rtype = st.sampled_from([0, 2, 4, 8, 3, -1, 127])
    dc = importlib.import_module("kio.schema.describe_configs.v4.request")
    await call(
        broker,
        describe_configs,
        4,
        dc.DescribeConfigsRequest(
            resources=tuple(
                dc.DescribeConfigsResource(
                    resource_type=i8(t), resource_name=n, configuration_keys=k
                )
                for t, n, k in data.draw(
                    st.lists(
                        st.tuples(
                            rtype,
                            _text,
                            st.one_of(st.none(), st.lists(_text, max_size=3).map(tuple)),
                        ),
                        max_size=3,
                    )
                )
            ),
            include_synonyms=True,
            include_documentation=True,
        ),
    )

    ia = importlib.import_module("kio.schema.incremental_alter_configs.v1.request")
    await call(
        broker,
        incremental_alter_configs,
        1,
        ia.IncrementalAlterConfigsRequest(
            resources=tuple(
                ia.AlterConfigsResource(
                    resource_type=i8(t),
                    resource_name=n,
                    configs=tuple(
                        ia.AlterableConfig(name=k, config_operation=i8(op), value=v)
                        for k, op, v in ops
                    ),
                )
                for t, n, ops in data.draw(
                    st.lists(
                        st.tuples(
                            rtype,
                            _text,
                            st.lists(
                                st.tuples(_text, st.integers(-1, 4), st.one_of(st.none(), _text)),
                                max_size=3,
                            ),
                        ),
                        max_size=2,
                    )
                )
            ),
            validate_only=True,
        ),
    )

    ac = importlib.import_module("kio.schema.alter_configs.v2.request")
    await call(
        broker,
        alter_configs,
        2,
        ac.AlterConfigsRequest(
            resources=tuple(
                ac.AlterConfigsResource(
                    resource_type=i8(t),
                    resource_name=n,
                    configs=tuple(ac.AlterableConfig(name=k, value=v) for k, v in cfg),
                )
                for t, n, cfg in data.draw(
                    st.lists(
                        st.tuples(
                            rtype,
                            _text,
                            st.lists(st.tuples(_text, st.one_of(st.none(), _text)), max_size=3),
                        ),
                        max_size=2,
                    )
                )
            ),
            validate_only=True,
        ),
    )

    dt = importlib.import_module("kio.schema.delete_topics.v4.request")
    await call(
        broker,
        delete_topics,
        4,
        dt.DeleteTopicsRequest(
            topic_names=tuple(data.draw(st.lists(_text, max_size=3))), timeout=TIMEOUT
        ),
    )
