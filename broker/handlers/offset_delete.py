"""OffsetDelete (key 47), version 0 (KIP-496).

Behavior: deletes committed offsets of a group (tombstones in __consumer_offsets).
GROUP_ID_NOT_FOUND for an unknown group; in a group with members, partitions of topics the
members subscribe to are refused with GROUP_SUBSCRIBED_TO_TOPIC; UNKNOWN_TOPIC_OR_PARTITION
for a partition that does not exist.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from broker.coordinator.wire import build, coordinator, response_class, topic_partitions
from broker.handlers import RequestContext

API_KEY = 47
MIN_VERSION = 0
MAX_VERSION = 0


async def handle(ctx: RequestContext, request: Any) -> Any:
    errors: dict[tuple[str, int], ErrorCode] = {}
    wanted: list[tuple[str, int]] = []
    order: list[tuple[str, int]] = []
    for t in request.topics:
        known = topic_partitions(ctx, t.name)
        for p in t.partitions:
            tp = (t.name, p.partition_index)
            order.append(tp)
            if known is None or p.partition_index not in known:
                errors[tp] = ErrorCode.unknown_topic_or_partition
            else:
                wanted.append(tp)
    coord = coordinator(ctx)
    if coord is None:
        return build(response_class(ctx), error_code=ErrorCode.coordinator_not_available, topics=[])
    err, per = await coord.delete_offsets(request.group_id, wanted)
    if err != ErrorCode.none:
        return build(response_class(ctx), error_code=err, topics=[])
    errors.update(per)
    topics: dict[str, list[dict[str, Any]]] = {}
    for tp in order:
        topics.setdefault(tp[0], []).append({"partition_index": tp[1], "error_code": errors[tp]})
    return build(
        response_class(ctx),
        error_code=ErrorCode.none,
        topics=[{"name": n, "partitions": parts} for n, parts in topics.items()],
    )
