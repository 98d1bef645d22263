"""CreatePartitions (API key 37), versions 0-3.

Behavior:
- ``count`` is the new total number of partitions, as in Kafka; the new partitions get
  the topic's replication factor, on the brokers the request's assignments give (first
  replica = preferred leader) or, without assignments, the store's placement.
- An unknown topic gives UNKNOWN_TOPIC_OR_PARTITION; a count not above the current one
  INVALID_PARTITIONS; an assignment whose length is not the number of new partitions, or
  that names unknown or duplicate brokers or another replica count, INVALID_REPLICA_ASSIGNMENT;
  a topic named twice INVALID_REQUEST.
- validate_only runs every check and adds nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from kio.schema.errors import ErrorCode

from broker.handlers._admin_common import (
    NO_THROTTLE,
    AdminError,
    build,
    duplicates,
    metadata_error,
    responses,
)

API_KEY = 37
MIN_VERSION = 0
MAX_VERSION = 3

log = logging.getLogger(__name__)


def _check_assignments(ctx: Any, info: Any, count: int, assignments: Any) -> None:
    old = len(info.partitions)
    added = count - old
    if len(assignments) != added:
        raise AdminError(
            ErrorCode.invalid_replica_assignment,
            f"Increasing the number of partitions by {added} but {len(assignments)} "
            "assignments provided.",
        )
    rf = len(next(iter(info.partitions.values())).replicas) if info.partitions else 1
    live = {b.node_id for b in ctx.broker.metadata.brokers()} or {ctx.broker.node_id}
    for i, a in enumerate(assignments):
        ids = [int(b) for b in a.broker_ids]
        if len(ids) != rf:
            raise AdminError(
                ErrorCode.invalid_replica_assignment,
                f"Inconsistent replication factor between partitions, partition 0 has {rf} "
                f"while partition {old + i} has replication factor {len(ids)}.",
            )
        if len(set(ids)) != len(ids):
            raise AdminError(
                ErrorCode.invalid_replica_assignment,
                f"Duplicate brokers not allowed in replica assignment: {ids} "
                f"for partition id {old + i}.",
            )
        unknown = sorted(set(ids) - live)
        if unknown:
            raise AdminError(
                ErrorCode.invalid_replica_assignment,
                f"Unknown broker(s) in replica assignment: {unknown}.",
            )


def _grow(ctx: Any, topic: Any, validate_only: bool) -> None:
    store = ctx.broker.metadata
    info = store.topic(topic.name)
    if info is None:
        raise AdminError(
            ErrorCode.unknown_topic_or_partition, f"The topic '{topic.name}' does not exist."
        )
    count, old = int(topic.count), len(info.partitions)
    if count == old:
        raise AdminError(ErrorCode.invalid_partitions, f"Topic already has {old} partitions.")
    if count < old:
        raise AdminError(
            ErrorCode.invalid_partitions,
            f"Topic currently has {old} partitions, which is higher than the requested {count}.",
        )
    if topic.assignments:
        _check_assignments(ctx, info, count, topic.assignments)
    manual = (
        [[int(b) for b in a.broker_ids] for a in topic.assignments] if topic.assignments else None
    )
    try:
        store.add_partitions(
            topic.name, count, validate_only=validate_only, replica_assignment=manual
        )
    except Exception as exc:
        if hasattr(exc, "error_code"):
            raise metadata_error(exc) from None
        raise
    if not validate_only:
        log.info("topic %s: %d -> %d partitions (client %s)", topic.name, old, count, ctx.client_id)


async def handle(ctx: Any, request: Any) -> Any:
    types = responses(API_KEY, "create_partitions", ctx.api_version)
    dup = duplicates(t.name for t in request.topics)
    results = []
    for topic in request.topics:
        error, message = ErrorCode.none, None
        if topic.name in dup:
            error = ErrorCode.invalid_request
            message = f"Duplicate topic in request: {topic.name}"
        else:
            try:
                _grow(ctx, topic, bool(request.validate_only))
            except AdminError as exc:
                error, message = exc.error, exc.message
        results.append(
            build(
                types.CreatePartitionsTopicResult,
                name=topic.name,
                error_code=error,
                error_message=message,
            )
        )
    return build(types.CreatePartitionsResponse, throttle_time=NO_THROTTLE, results=tuple(results))
