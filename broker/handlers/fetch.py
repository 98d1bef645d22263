"""Fetch (key 1), versions 4-12, answered with the zero-copy response writer.

Behavior:
- Per partition: the batches from fetch_offset up to the high watermark (read_uncommitted)
  or the last stable offset (read_committed, isolation_level 1) as a segment file range
  (``Log.read_slice``) that the connection sends with sendfile(2); Python never holds the
  record bytes.
- max_bytes bounds the response and partition_max_bytes each partition, except that the
  first partition with data returns at least one whole batch (KIP-74).
- Long poll: without errors and with fewer than min_bytes ready, the request waits up to
  max_wait_ms and is woken by appends to any of its partitions.
- An empty partition carries zero-length records, never null (librdkafka rejects -1).
- OFFSET_OUT_OF_RANGE below the log start or above the log end; UNKNOWN_TOPIC_OR_PARTITION;
  FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH from current_leader_epoch (v9+).
- Fetch sessions (v7+, KIP-227) are not kept: every answer carries session_id 0, so
  clients send full fetches; an incremental fetch names an unknown session
  (FETCH_SESSION_ID_NOT_FOUND).
- A fetch with replica_id >= 0 (a follower) on a single node is served like a consumer's.
  In cluster mode broker.replication checks it comes from a live registered broker at its
  registered address that is a replica (CVE-2018-1288: else TOPIC_AUTHORIZATION_FAILED /
  NOT_LEADER_OR_FOLLOWER), records the follower's fetch offset (high watermark, ISR) and
  serves up to the log end offset; consumers read up to the high watermark, from the
  leader only.
"""

from __future__ import annotations

import asyncio
from typing import Any

from broker.handlers import RequestContext
from broker.protocol import FetchPartition, encode_fetch_response

API_KEY = 1
MIN_VERSION = 4
MAX_VERSION = 12

OFFSET_OUT_OF_RANGE = 1
UNKNOWN_TOPIC_OR_PARTITION = 3
FETCH_SESSION_ID_NOT_FOUND = 70
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75
READ_COMMITTED = 1


def _ms(value: Any) -> int:
    return int(value.total_seconds() * 1000) if hasattr(value, "total_seconds") else int(value)


def _read(ctx: RequestContext, request: Any, isolation: int) -> tuple[list, int, list, bool]:
    """One pass over the requested partitions: (topics, bytes, partitions, any error)."""
    from fastlog.errors import LogClosedError, OffsetOutOfRangeError

    rm = ctx.broker.replica_manager
    metrics = getattr(ctx.broker, "metrics", None)
    max_bytes = max(int(request.max_bytes), 0)
    replica_id = int(getattr(request, "replica_id", -1))
    replication = getattr(ctx.broker, "replication", None)
    total = 0
    error = False
    touched = []
    topics = []
    for t in request.topics:
        parts = []
        for rp in t.partitions:
            p = rm.get_partition(t.topic, rp.partition)
            if p is None:
                parts.append(FetchPartition(rp.partition, UNKNOWN_TOPIC_OR_PARTITION, records=b""))
                error = True
                continue
            touched.append(p)
            epoch = getattr(rp, "current_leader_epoch", -1)
            if epoch >= 0 and epoch != p.leader_epoch:
                code = FENCED_LEADER_EPOCH if epoch < p.leader_epoch else UNKNOWN_LEADER_EPOCH
                parts.append(FetchPartition(rp.partition, code, records=b""))
                error = True
                continue
            follower = False
            if p.replication is not None:
                if replica_id >= 0:
                    code = replication.replica_fetch(ctx, p, replica_id, rp.fetch_offset)
                    follower = True
                else:
                    code = replication.check_produce(p)  # consumers read from the leader
                if code:
                    parts.append(FetchPartition(rp.partition, code, records=b""))
                    error = True
                    continue
            hw = p.high_watermark
            lso = p.last_stable_offset
            start = p.log_start_offset
            out = FetchPartition(
                rp.partition,
                0,
                high_watermark=hw,
                last_stable_offset=lso,
                log_start_offset=start,
                aborted_transactions=[] if isolation == READ_COMMITTED else None,
                records=b"",
            )
            parts.append(out)
            offset = rp.fetch_offset
            if offset < start or offset > p.log_end_offset:
                out.error_code = OFFSET_OUT_OF_RANGE
                error = True
                continue
            budget = min(int(rp.partition_max_bytes), max_bytes - total)
            if budget <= 0 and total > 0:
                continue
            limit = lso if isolation == READ_COMMITTED else hw
            if follower:
                limit = None  # followers copy everything up to the log end offset
            try:
                fetched = p.log.read_slice(
                    offset, max(budget, 0), max_offset=limit, min_one_batch=total == 0
                )
            except OffsetOutOfRangeError:
                out.error_code = OFFSET_OUT_OF_RANGE
                error = True
                continue
            except LogClosedError:
                out.error_code = UNKNOWN_TOPIC_OR_PARTITION
                error = True
                continue
            if fetched is not None and fetched.length > 0:
                out.records = fetched
                total += fetched.length
                if metrics is not None:
                    metrics.record_fetch(t.topic, rp.partition, fetched.length)
        topics.append((t.topic, parts))
    return topics, total, touched, error


async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    isolation = int(getattr(request, "isolation_level", 0))
    session_id = int(getattr(request, "session_id", 0))
    session_epoch = int(getattr(request, "session_epoch", -1))
    if version >= 7 and session_id != 0 and session_epoch != -1:
        return encode_fetch_response(
            version, ctx.correlation_id, [], error=FETCH_SESSION_ID_NOT_FOUND
        )
    loop = asyncio.get_running_loop()
    max_wait = max(_ms(request.max_wait), 0) / 1000
    deadline = loop.time() + max_wait
    min_bytes = int(request.min_bytes)
    rm = ctx.broker.replica_manager
    while True:
        topics, total, touched, error = _read(ctx, request, isolation)
        remaining = deadline - loop.time()
        if error or total >= min_bytes or remaining <= 0 or not touched:
            break
        await rm.wait_for_append(touched, remaining)
    return encode_fetch_response(version, ctx.correlation_id, topics, session_id=0)
