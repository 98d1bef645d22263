"""OffsetCommit (key 8), versions 0-8.

Behavior:
- Offsets go to __consumer_offsets (OffsetCommitValue v3 with the metadata string and the
  leader epoch, v6+) and are answered once written; the metadata string round-trips.
- Group members commit with their generation and member id: ILLEGAL_GENERATION,
  UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID (v7+), REBALANCE_IN_PROGRESS while the group
  completes a rebalance. Generation -1 commits for consumers that manage partitions
  themselves (an Empty or new group).
- Per partition: UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist,
  OFFSET_METADATA_TOO_LARGE beyond offset.metadata.max.bytes.
- v2-4 retention_time >= 0 sets an explicit expiry for those offsets.
- v0-1 (removed in Kafka 4.0, KIP-896; schemas in broker/coordinator/legacy.py) store in
  __consumer_offsets too: v0 commits without a generation, as Kafka's ZooKeeper-era v0 did.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from broker.coordinator.wire import build, coordinator, ms, response_class, topic_partitions
from broker.handlers import RequestContext

API_KEY = 8
MIN_VERSION = 0
MAX_VERSION = 8


async def handle(ctx: RequestContext, request: Any) -> Any:
    errors: dict[tuple[str, int], ErrorCode] = {}
    offsets: dict[tuple[str, int], tuple[int, int, str | None]] = {}
    order: list[tuple[str, int]] = []
    for t in request.topics:
        known = topic_partitions(ctx, t.name)
        for p in t.partitions:
            tp = (t.name, p.partition_index)
            order.append(tp)
            if known is None or p.partition_index not in known:
                errors[tp] = ErrorCode.unknown_topic_or_partition
            else:
                offsets[tp] = (
                    p.committed_offset,
                    getattr(p, "committed_leader_epoch", -1),
                    p.committed_metadata,
                )
    coord = coordinator(ctx)
    if offsets:
        if coord is None:
            errors.update(dict.fromkeys(offsets, ErrorCode.coordinator_not_available))
        else:
            retention = getattr(request, "retention_time", None)
            errors.update(
                await coord.commit_offsets(
                    group_id=request.group_id,
                    member_id=getattr(request, "member_id", ""),
                    generation_id=getattr(request, "generation_id_or_member_epoch", -1),
                    group_instance_id=getattr(request, "group_instance_id", None),
                    offsets=offsets,
                    retention_ms=ms(retention) if retention is not None else -1,
                )
            )
    topics: dict[str, list[dict[str, Any]]] = {}
    for tp in order:
        topics.setdefault(tp[0], []).append({"partition_index": tp[1], "error_code": errors[tp]})
    return build(
        response_class(ctx),
        topics=[{"name": name, "partitions": parts} for name, parts in topics.items()],
    )
