"""CreateTopics (API key 19), versions 0-5.

Behavior:
- num_partitions / replication_factor of -1 take the broker's num.partitions /
  default.replication.factor; a manual assignment fixes both (and may not be combined
  with them: INVALID_REQUEST) and places each partition exactly on the brokers given, the
  first being the preferred leader (INVALID_REPLICA_ASSIGNMENT for partitions not numbered
  0..n-1, differing replica counts, duplicate or unregistered brokers).
- A name Kafka's Topic.validate refuses, or one that collides with an existing topic
  ('.' versus '_'), gives INVALID_TOPIC_EXCEPTION; an existing topic TOPIC_ALREADY_EXISTS;
  a replication factor above the live brokers INVALID_REPLICATION_FACTOR; a non-positive
  partition count INVALID_PARTITIONS; a bad or unknown topic config INVALID_CONFIG.
- A topic named twice in one request gets INVALID_REQUEST (both entries).
- validate_only (v1+) runs every check and creates nothing.
- v5 answers the partition count, replication factor and every topic config with its source.
"""

from __future__ import annotations

import logging
from typing import Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i8, i16, i32

from broker import topic_config
from broker.handlers._admin_common import (
    NO_THROTTLE,
    AdminError,
    Responses,
    build,
    duplicates,
    metadata_error,
    responses,
)

API_KEY = 19
MIN_VERSION = 0
MAX_VERSION = 5

log = logging.getLogger(__name__)


def _resolve_layout(ctx: Any, topic: Any) -> tuple[int, int, dict[int, list[int]] | None]:
    """(partitions, replication factor, manual assignment or None) the request asks for,
    checked against the cluster."""
    config = ctx.broker.config
    live = {b.node_id for b in ctx.broker.metadata.brokers()} or {ctx.broker.node_id}
    partitions, rf = int(topic.num_partitions), int(topic.replication_factor)
    if topic.assignments:
        if partitions != -1 or rf != -1:
            raise AdminError(
                ErrorCode.invalid_request,
                "Both numPartitions or replicationFactor and replicasAssignments were set. "
                "Both cannot be used at the same time.",
            )
        indexes = sorted(int(a.partition_index) for a in topic.assignments)
        if indexes != list(range(len(indexes))):
            raise AdminError(
                ErrorCode.invalid_replica_assignment,
                "Partitions must be numbered consecutively from 0: " + ",".join(map(str, indexes)),
            )
        sizes = {len(a.broker_ids) for a in topic.assignments}
        if len(sizes) != 1 or 0 in sizes:
            raise AdminError(
                ErrorCode.invalid_replica_assignment,
                "All partitions must have the same, non-zero number of replicas",
            )
        for a in topic.assignments:
            ids = [int(b) for b in a.broker_ids]
            if len(set(ids)) != len(ids):
                raise AdminError(
                    ErrorCode.invalid_replica_assignment,
                    f"Duplicate brokers not allowed in replica assignment: {ids}",
                )
            unknown = sorted(set(ids) - live)
            if unknown:
                raise AdminError(
                    ErrorCode.invalid_replica_assignment,
                    f"Unknown broker(s) {unknown} in replica assignment of partition "
                    f"{a.partition_index}",
                )
        manual = {int(a.partition_index): [int(b) for b in a.broker_ids] for a in topic.assignments}
        return len(indexes), sizes.pop(), manual
    if partitions == -1:
        partitions = int(config.get("num.partitions"))
    if rf == -1:
        rf = int(config.get("default.replication.factor"))
    if partitions <= 0:
        raise AdminError(
            ErrorCode.invalid_partitions,
            f"Number of partitions was set to an invalid non-positive value: {partitions}.",
        )
    if rf <= 0:
        raise AdminError(
            ErrorCode.invalid_replication_factor,
            f"Replication factor must be larger than 0, got {rf}.",
        )
    if rf > len(live):
        raise AdminError(
            ErrorCode.invalid_replication_factor,
            f"Unable to replicate the partition {rf} time(s): The target replication factor "
            f"of {rf} cannot be reached because only {len(live)} broker(s) are registered.",
        )
    return partitions, rf, None


def _check_name(ctx: Any, name: str) -> None:
    try:
        topic_config.validate_topic_name(name)
    except topic_config.InvalidTopicName as exc:
        raise AdminError(ErrorCode.invalid_topic_exception, str(exc)) from None
    store = ctx.broker.metadata
    if store.topic(name) is not None:
        raise AdminError(ErrorCode.topic_already_exists, f"Topic '{name}' already exists.")
    key = topic_config.collision_key(name)
    for other in store.topics():
        if topic_config.collision_key(other.name) == key:
            raise AdminError(
                ErrorCode.invalid_topic_exception,
                f"Topic '{name}' collides with existing topic: {other.name}",
            )


def _config_entries(types: Responses, ctx: Any, overrides: dict[str, str]) -> tuple:
    return tuple(
        build(
            types.CreatableTopicConfigs,
            name=r.name,
            value=r.value,
            read_only=False,
            config_source=i8(int(r.source)),
            is_sensitive=False,
        )
        for r in topic_config.describe(overrides, ctx.broker.config)
    )


def _create(ctx: Any, topic: Any, validate_only: bool) -> tuple[int, int, dict[str, str]]:
    name = topic.name
    _check_name(ctx, name)
    partitions, rf, manual = _resolve_layout(ctx, topic)
    names = [c.name for c in topic.configs]
    dup = duplicates(names)
    if dup:
        raise AdminError(
            ErrorCode.invalid_request, f"Duplicate topic config name(s): {', '.join(sorted(dup))}"
        )
    try:
        overrides = topic_config.normalize({c.name: c.value for c in topic.configs})
    except topic_config.InvalidConfig as exc:
        raise AdminError(ErrorCode.invalid_config, str(exc)) from None
    try:
        ctx.broker.metadata.create_topic(
            name,
            partitions,
            rf,
            overrides,
            validate_only=validate_only,
            replica_assignment=manual,
        )
    except Exception as exc:
        if hasattr(exc, "error_code"):
            raise metadata_error(exc) from None
        raise
    if not validate_only:
        log.info(
            "created topic %s: %d partition(s), replication factor %d, %s, configs %s (client %s)",
            name,
            partitions,
            rf,
            f"replicas {manual}" if manual else "placed by the broker",
            overrides,
            ctx.client_id,
        )
    return partitions, rf, overrides


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    types = responses(API_KEY, "create_topics", version)
    validate_only = bool(getattr(request, "validate_only", False))
    dup = duplicates(t.name for t in request.topics)
    results = []
    for topic in request.topics:
        error, message = ErrorCode.none, None
        partitions, rf, configs = -1, -1, None
        if topic.name in dup:
            error = ErrorCode.invalid_request
            message = f"Create topics request contains multiple entries for topic {topic.name}"
        else:
            try:
                partitions, rf, overrides = _create(ctx, topic, validate_only)
                if version >= 5:
                    configs = _config_entries(types, ctx, overrides)
            except AdminError as exc:
                error, message = exc.error, exc.message
        results.append(
            build(
                types.CreatableTopicResult,
                name=topic.name,
                error_code=error,
                error_message=message,
                num_partitions=i32(partitions),
                replication_factor=i16(rf),
                configs=configs if configs is not None else (),
            )
        )
    return build(types.CreateTopicsResponse, throttle_time=NO_THROTTLE, topics=tuple(results))
