"""OffsetForLeaderEpoch (key 23), versions 0-4 (v0-1 from broker/replication/legacy.py).

Behavior (KIP-101, KIP-279, KIP-320):
- Per partition: the largest leader epoch <= the requested one that this partition's
  leader-epoch-checkpoint knows, and the offset where the next epoch began (the log end
  offset for the latest epoch). Followers truncate by it after a leader change; consumers
  use it to detect log truncation.
- (-1, -1) when the requested epoch is newer than any known (or nothing is known).
- current_leader_epoch (v2+): older than ours FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH.
- UNKNOWN_TOPIC_OR_PARTITION for a partition not hosted here; in cluster mode only the
  leader answers (NOT_LEADER_OR_FOLLOWER otherwise).
"""

from __future__ import annotations

import datetime
from typing import Any

from broker.handlers import RequestContext
from broker.protocol import error_code, make, nested, response_schema

API_KEY = 23
MIN_VERSION = 0
MAX_VERSION = 4

UNKNOWN_TOPIC_OR_PARTITION = 3
NOT_LEADER_OR_FOLLOWER = 6
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75
_ZERO = datetime.timedelta(0)


def _answer(ctx: RequestContext, topic: str, rp: Any) -> tuple[int, int, int]:
    """(error code, leader epoch, end offset) of one requested partition."""
    p = ctx.broker.replica_manager.get_partition(topic, rp.partition)
    if p is None:
        return UNKNOWN_TOPIC_OR_PARTITION, -1, -1
    r = p.replication
    if r is not None and (not r.is_leader or r.fenced):
        return NOT_LEADER_OR_FOLLOWER, -1, -1
    current = getattr(rp, "current_leader_epoch", -1)
    if current >= 0 and current != p.leader_epoch:
        return (FENCED_LEADER_EPOCH if current < p.leader_epoch else UNKNOWN_LEADER_EPOCH), -1, -1
    cache = p.leader_epoch_cache
    if cache is None:
        return UNKNOWN_TOPIC_OR_PARTITION, -1, -1
    epoch, end = cache.end_offset_for(rp.leader_epoch, p.log_end_offset)
    return 0, epoch, end


async def handle(ctx: RequestContext, request: Any) -> Any:
    cls = response_schema(API_KEY, ctx.api_version)
    if ctx.api_version < 2:
        from broker.replication.legacy import EPOCH_LEGACY_NESTED

        tcls, pcls = EPOCH_LEGACY_NESTED[ctx.api_version]
    else:
        tcls = nested(cls, "OffsetForLeaderTopicResult")
        pcls = nested(cls, "EpochEndOffset")
    topics = []
    for t in request.topics:
        parts = []
        for rp in t.partitions:
            code, epoch, end = _answer(ctx, t.topic, rp)
            parts.append(
                make(
                    pcls,
                    error_code=error_code(code),
                    partition=rp.partition,
                    leader_epoch=epoch,
                    end_offset=end,
                )
            )
        topics.append(make(tcls, topic=t.topic, partitions=tuple(parts)))
    return make(cls, throttle_time=_ZERO, topics=tuple(topics))
