"""Metadata (key 3), versions 0-12.

Behavior:
- topics null (v1+) or empty (v0) lists every topic; otherwise the named ones (or, v10+,
  the ones named by topic id; an unknown id is UNKNOWN_TOPIC_ID).
- An unknown topic is created with num.partitions / default.replication.factor when
  auto.create.topics.enable is set and the request allows it (allow_auto_topic_creation,
  v4+); it is returned at once with its partitions (creation is synchronous here).
  Otherwise UNKNOWN_TOPIC_OR_PARTITION; an illegal name is INVALID_TOPIC_EXCEPTION.
- Every topic carries its UUID topic id (v10+), is_internal (v1+), leader epoch (v7+).
- v8+ include_topic_authorized_operations / include_cluster_authorized_operations (v8-10):
  no authorizer is configured, so every operation the resource supports is reported allowed
  (as Kafka does without one; librdkafka's describe_topics/describe_cluster ask this way).
- Brokers are the registered (live) ones; controller_id (v1+) and cluster_id (v2+) from the
  store. Replicas on unregistered brokers are offline_replicas (v5+); a partition without a
  leader (-1) carries LEADER_NOT_AVAILABLE.
- A replica of this broker whose log dir is offline (failed, or unusable since the start:
  broker/log_dirs.py) is in offline_replicas too, and when this broker is its leader (no
  other live replica leads it, as on a single node) the partition carries
  KAFKA_STORAGE_ERROR, as Kafka answers once the controller knows the replica offline.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from kio.static.primitive import i32

from broker.handlers import RequestContext
from broker.handlers.describe_cluster import _CLUSTER_OPERATIONS
from broker.log_dirs import any_offline, cannot_serve
from broker.metadata import InvalidTopicError, MetadataError, TopicInfo
from broker.protocol import error_code, make, nested, response_schema

API_KEY = 3
MIN_VERSION = 0
MAX_VERSION = 12

UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5
KAFKA_STORAGE_ERROR = 56
INVALID_TOPIC_EXCEPTION = 17
UNKNOWN_TOPIC_ID = 100
_ZERO = datetime.timedelta(0)
_NIL = uuid.UUID(int=0)
# AclOperation codes the TOPIC resource supports: READ, WRITE, CREATE, DELETE, ALTER,
# DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
_TOPIC_OPERATIONS = (3, 4, 5, 6, 7, 8, 10, 11)
_OMITTED = i32(-(2**31))


def _ops(codes: tuple[int, ...]) -> i32:
    return i32(sum(1 << op for op in codes))


def _topic_entry(
    cls: type,
    topic: TopicInfo,
    live: set[int] | None = None,
    ops: i32 = _OMITTED,
    local: tuple[Any, int] | None = None,
) -> Any:
    """``local``: (ReplicaManager, node id) when one of this broker's log dirs is offline."""
    part_cls = nested(cls, "MetadataResponsePartition")
    topic_cls = nested(cls, "MetadataResponseTopic")
    partitions = []
    for p in sorted(topic.partitions.values(), key=lambda p: p.index):
        # Cluster mode: replicas on brokers that are not registered are offline; a partition
        # without a leader is LEADER_NOT_AVAILABLE (clients retry).
        offline = [r for r in p.replicas if live is not None and r not in live]
        code = LEADER_NOT_AVAILABLE if p.leader < 0 else 0
        if local is not None:
            rm, node = local
            if node in p.replicas and cannot_serve(rm, topic.name, p.index):
                if node not in offline:
                    offline.append(node)
                if p.leader == node:
                    code = KAFKA_STORAGE_ERROR  # retriable: clients refresh and retry
        partitions.append(
            make(
                part_cls,
                error_code=error_code(code),
                partition_index=p.index,
                leader_id=p.leader,
                leader_epoch=p.leader_epoch,
                replica_nodes=tuple(p.replicas),
                isr_nodes=tuple(p.isr),
                offline_replicas=tuple(offline),
            )
        )
    return make(
        topic_cls,
        error_code=error_code(0),
        name=topic.name,
        topic_id=topic.topic_id,
        is_internal=topic.is_internal,
        partitions=tuple(partitions),
        topic_authorized_operations=ops,
    )


def _error_entry(cls: type, name: str | None, code: int, topic_id: uuid.UUID | None = None) -> Any:
    return make(
        nested(cls, "MetadataResponseTopic"),
        error_code=error_code(code),
        name=name,
        topic_id=topic_id or _NIL,
        is_internal=False,
        partitions=(),
    )


async def handle(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    store = broker.metadata
    cls = response_schema(API_KEY, ctx.api_version)
    allow_auto = bool(getattr(request, "allow_auto_topic_creation", True))
    requested = request.topics
    live_brokers = store.brokers()
    live = {b.node_id for b in live_brokers}
    rm = getattr(broker, "replica_manager", None)
    local = (rm, broker.node_id) if rm is not None and any_offline(rm) else None
    topic_ops = (
        _ops(_TOPIC_OPERATIONS)
        if getattr(request, "include_topic_authorized_operations", False)
        else _OMITTED
    )
    if requested is None or (ctx.api_version == 0 and not requested):
        topics = [_topic_entry(cls, t, live, topic_ops, local) for t in store.topics()]
    else:
        topics = []
        for req_topic in requested:
            name = getattr(req_topic, "name", None)
            topic_id = getattr(req_topic, "topic_id", None)
            if name is None:
                info = store.topic_by_id(topic_id) if topic_id not in (None, _NIL) else None
                topics.append(
                    _topic_entry(cls, info, live, topic_ops, local)
                    if info is not None
                    else _error_entry(cls, None, UNKNOWN_TOPIC_ID, topic_id)
                )
                continue
            info = store.topic(name)
            if info is None and allow_auto:
                try:
                    info = broker.auto_create_topic(name)
                except InvalidTopicError:
                    topics.append(_error_entry(cls, name, INVALID_TOPIC_EXCEPTION))
                    continue
                except MetadataError as exc:
                    topics.append(_error_entry(cls, name, exc.error_code))
                    continue
            if info is None:
                topics.append(_error_entry(cls, name, UNKNOWN_TOPIC_OR_PARTITION))
            else:
                topics.append(_topic_entry(cls, info, live, topic_ops, local))
    broker_cls = nested(cls, "MetadataResponseBroker")
    brokers = tuple(
        make(broker_cls, node_id=b.node_id, host=b.host, port=b.port, rack=b.rack)
        for b in live_brokers
    )
    return make(
        cls,
        throttle_time=_ZERO,
        brokers=brokers,
        cluster_id=store.cluster_id,
        controller_id=store.controller_id,
        topics=tuple(topics),
        cluster_authorized_operations=(
            _ops(_CLUSTER_OPERATIONS)
            if getattr(request, "include_cluster_authorized_operations", False)
            else _OMITTED
        ),
    )
