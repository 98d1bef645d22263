"""ListOffsets (key 2), versions 1-7.

Behavior:
- timestamp -2 (earliest): the log start offset; -1 (latest): the high watermark, or the
  last stable offset for read_committed (isolation_level 1, v2+); -3 (max timestamp, v7):
  the offset and timestamp of the record with the largest timestamp.
- timestamp >= 0: the first offset whose record timestamp is >= it, with that record's
  timestamp; offset -1 and timestamp -1 when every record is older.
- UNKNOWN_TOPIC_OR_PARTITION, FENCED/UNKNOWN_LEADER_EPOCH (current_leader_epoch, v4+),
  INVALID_REQUEST for another negative timestamp or a partition asked twice.
"""

from __future__ import annotations

import datetime
from typing import Any

from broker.handlers import RequestContext
from broker.log_dirs import unavailable_error
from broker.protocol import error_code, make, nested, response_schema

API_KEY = 2
MIN_VERSION = 1
MAX_VERSION = 7

UNKNOWN_TOPIC_OR_PARTITION = 3
NOT_LEADER_OR_FOLLOWER = 6
INVALID_REQUEST = 42
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75
EARLIEST = -2
LATEST = -1
MAX_TIMESTAMP = -3
_ZERO = datetime.timedelta(0)


def _timestamp_of(partition: Any, offset: int) -> int:
    """The timestamp of the record at ``offset`` (reads and decodes its batch)."""
    from fastlog import _core

    data = partition.log.read_bytes(offset, 1)
    if not data:
        return -1
    for rec_offset, ts, _k, _v, _h in _core.iter_records(data, offset, 1):
        if rec_offset >= offset:
            return ts
    return -1


def _offset_of_max_timestamp(partition: Any, timestamp: int, offset: int) -> int:
    """The offset of the first record stamped ``timestamp`` in the batch holding ``offset``.

    The log tracks the max timestamp per batch (its last offset); Kafka (KAFKA-16310) answers
    MAX_TIMESTAMP with the record's own offset, found by reading that one batch.
    """
    from fastlog import _core

    data = partition.log.read_bytes(offset, 1)
    for rec_offset, ts, _k, _v, _h in _core.iter_records(data, 0) if data else ():
        if ts == timestamp and rec_offset <= offset:
            return rec_offset
    return offset


def _lookup(partition: Any, timestamp: int, isolation: int, version: int) -> tuple[int, int, int]:
    """(error, timestamp, offset)."""
    if timestamp == EARLIEST:
        return 0, -1, partition.log_start_offset
    if timestamp == LATEST:
        return 0, -1, (partition.last_stable_offset if isolation == 1 else partition.high_watermark)
    if timestamp == MAX_TIMESTAMP and version >= 7:
        found = partition.log.max_timestamp_and_offset()
        if found is None:
            return 0, -1, -1
        return 0, found[0], _offset_of_max_timestamp(partition, found[0], found[1])
    if timestamp < 0:
        return INVALID_REQUEST, -1, -1
    offset = partition.log.offset_for_timestamp(timestamp)
    if offset is None or offset >= partition.high_watermark:
        return 0, -1, -1
    return 0, _timestamp_of(partition, offset), offset


async def handle(ctx: RequestContext, request: Any) -> Any:
    rm = ctx.broker.replica_manager
    cls = response_schema(API_KEY, ctx.api_version)
    pcls = nested(cls, "ListOffsetsPartitionResponse")
    tcls = nested(cls, "ListOffsetsTopicResponse")
    isolation = int(getattr(request, "isolation_level", 0))
    seen: set[tuple[str, int]] = set()
    topics = []
    for t in request.topics:
        parts = []
        for rp in t.partitions:
            key = (t.name, rp.partition_index)
            err, ts, offset, epoch = 0, -1, -1, -1
            p = rm.get_partition(t.name, rp.partition_index)
            if key in seen:
                err = INVALID_REQUEST
            elif p is None or p.offline:
                err = unavailable_error(rm, t.name, rp.partition_index, p)
            elif not p.is_leader:  # cluster mode: offsets come from the leader
                err = NOT_LEADER_OR_FOLLOWER
            else:
                current = getattr(rp, "current_leader_epoch", -1)
                if current >= 0 and current != p.leader_epoch:
                    err = FENCED_LEADER_EPOCH if current < p.leader_epoch else UNKNOWN_LEADER_EPOCH
                else:
                    err, ts, offset = _lookup(p, rp.timestamp, isolation, ctx.api_version)
                    epoch = p.leader_epoch
            seen.add(key)
            parts.append(
                make(
                    pcls,
                    partition_index=rp.partition_index,
                    error_code=error_code(err),
                    timestamp=ts,
                    offset=offset,
                    leader_epoch=epoch,
                )
            )
        topics.append(make(tcls, name=t.name, partitions=tuple(parts)))
    return make(cls, throttle_time=_ZERO, topics=tuple(topics))
