"""DeleteRecords (API key 21), versions 0-2.

Behavior:
- Advances a partition's log start offset to the requested offset (fastlog's
  ``Log.delete_before``): records below it are no longer readable, and whole segments
  below it are deleted. The answer's low_watermark is the new log start offset.
- offset -1 means the high watermark. An offset above the high watermark, or another
  negative value, gives OFFSET_OUT_OF_RANGE; an offset below the current log start offset
  changes nothing and answers the current one.
- An unknown topic or partition gives UNKNOWN_TOPIC_OR_PARTITION; a partition this broker
  does not lead NOT_LEADER_OR_FOLLOWER; a topic whose cleanup.policy is compact only
  POLICY_VIOLATION, as in Kafka.
"""

from __future__ import annotations

import logging
from typing import Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i64

from broker import topic_config
from broker.handlers._admin_common import NO_THROTTLE, build, responses

API_KEY = 21
MIN_VERSION = 0
MAX_VERSION = 2

log = logging.getLogger(__name__)


def _is_leader(ctx: Any, partition: Any) -> bool:
    flag = getattr(partition, "is_leader", None)
    if flag is None:
        return True
    return bool(flag() if callable(flag) else flag)


def _delete(ctx: Any, topic: str, index: int, offset: int) -> tuple[ErrorCode, int]:
    info = ctx.broker.metadata.topic(topic)
    if info is None or index not in info.partitions:
        return ErrorCode.unknown_topic_or_partition, -1
    partition = ctx.broker.replica_manager.get_partition(topic, index)
    if partition is None or not _is_leader(ctx, partition):
        return ErrorCode.not_leader_or_follower, -1
    policy = topic_config.resolve("cleanup.policy", info.configs, ctx.broker.config).typed
    if "delete" not in policy:
        return ErrorCode.policy_violation, -1
    log_ = partition.log
    high_watermark = int(partition.high_watermark)
    if offset == -1:
        offset = high_watermark
    if offset < 0 or offset > high_watermark:
        return ErrorCode.offset_out_of_range, int(log_.start_offset)
    if offset > log_.start_offset:
        delete = getattr(partition, "delete_records", None)
        if delete is not None:
            delete(offset)
        else:
            log_.delete_before(offset)
        log.info("%s-%d: log start offset advanced to %d by DeleteRecords", topic, index, offset)
    return ErrorCode.none, int(log_.start_offset)


async def handle(ctx: Any, request: Any) -> Any:
    types = responses(API_KEY, "delete_records", ctx.api_version)
    topics = []
    for t in request.topics:
        partitions = []
        for p in t.partitions:
            error, low = _delete(ctx, t.name, int(p.partition_index), int(p.offset))
            partitions.append(
                build(
                    types.DeleteRecordsPartitionResult,
                    partition_index=p.partition_index,
                    low_watermark=i64(low),
                    error_code=error,
                )
            )
        topics.append(
            build(types.DeleteRecordsTopicResult, name=t.name, partitions=tuple(partitions))
        )
    return build(types.DeleteRecordsResponse, throttle_time=NO_THROTTLE, topics=tuple(topics))
