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
- KAFKA_STORAGE_ERROR for a partition whose log dir is offline (failed, or unusable since
  the start: broker/log_dirs.py); nothing is read from that directory.
- Fetch sessions (v7+, KIP-227) for consumers: epoch 0 opens a session (full response, a
  new session id), later epochs send only changed partitions and get only partitions with
  records, errors or changed offsets; epoch -1 closes it (sessionless full fetch). An
  unknown session is FETCH_SESSION_ID_NOT_FOUND, a wrong epoch INVALID_FETCH_SESSION_EPOCH.
  At most 1000 sessions per broker, least recently used evicted first.
- A fetch with replica_id >= 0 (a follower) on a single node is refused with
  TOPIC_AUTHORIZATION_FAILED: there is no follower to serve (CVE-2018-1288).
  In cluster mode broker.replication checks it comes from a live registered broker at its
  registered address that is a replica (CVE-2018-1288: else TOPIC_AUTHORIZATION_FAILED /
  NOT_LEADER_OR_FOLLOWER), records the follower's fetch offset (high watermark, ISR) and
  serves up to the log end offset; consumers read up to the high watermark, from the
  leader only.
"""

from __future__ import annotations

import asyncio
import collections
import random
from dataclasses import dataclass
from typing import Any

from broker.handlers import RequestContext
from broker.log_dirs import unavailable_error
from broker.protocol import FetchPartition, encode_fetch_response

API_KEY = 1
MIN_VERSION = 4
MAX_VERSION = 12

OFFSET_OUT_OF_RANGE = 1
UNKNOWN_TOPIC_OR_PARTITION = 3
TOPIC_AUTHORIZATION_FAILED = 29
FETCH_SESSION_ID_NOT_FOUND = 70
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75
UNSUPPORTED_COMPRESSION_TYPE = 76
ZSTD_MIN_FETCH_VERSION = 10  # KIP-110: older consumers cannot decode zstd
READ_COMMITTED = 1


def _ms(value: Any) -> int:
    return int(value.total_seconds() * 1000) if hasattr(value, "total_seconds") else int(value)


def _read(
    ctx: RequestContext, request: Any, isolation: int, wanted: Any = None
) -> tuple[list, int, list, bool]:
    """One pass over the requested partitions (or ``wanted``: (topic, partitions) pairs of a
    fetch session): (topics, bytes, partitions, any error)."""
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
    for topic_name, requested in wanted if wanted is not None else _requested(request):
        parts = []
        for rp in requested:
            p = rm.get_partition(topic_name, rp.partition)
            if p is None or p.offline:
                code = unavailable_error(rm, topic_name, rp.partition, p)
                parts.append(FetchPartition(rp.partition, code, records=b""))
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
            if p.replication is None and replica_id >= 0:
                # No follower exists on a single node: a client posing as one is refused
                # (CVE-2018-1288), as replica_fetch refuses an unknown broker.
                parts.append(FetchPartition(rp.partition, TOPIC_AUTHORIZATION_FAILED, records=b""))
                error = True
                continue
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
            if (
                ctx.api_version < ZSTD_MIN_FETCH_VERSION
                and not follower
                and p.config_value("compression.type") == "zstd"
            ):
                # as Kafka: judged by the topic's config, not by the batches it holds
                parts.append(
                    FetchPartition(rp.partition, UNSUPPORTED_COMPRESSION_TYPE, records=b"")
                )
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
                    metrics.record_fetch(topic_name, rp.partition, fetched.length)
        topics.append((topic_name, parts))
    return topics, total, touched, error


def _requested(request: Any) -> list[tuple[str, Any]]:
    return [(t.topic, t.partitions) for t in request.topics]


async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    isolation = int(getattr(request, "isolation_level", 0))
    session_id = int(getattr(request, "session_id", 0))
    session_epoch = int(getattr(request, "session_epoch", FINAL_EPOCH))
    session: FetchSession | None = None
    if version >= 7 and int(getattr(request, "replica_id", -1)) < 0:
        cache = session_cache(ctx.broker)
        if session_epoch == FINAL_EPOCH:
            if session_id:
                cache.remove(session_id)
        elif session_epoch == INITIAL_EPOCH:
            if session_id:
                cache.remove(session_id)
            session = cache.create(_requested(request))
        else:
            session = cache.get(session_id)
            code = 0
            if session is None:
                code = FETCH_SESSION_ID_NOT_FOUND
            elif session.epoch != session_epoch:
                code = INVALID_FETCH_SESSION_EPOCH
            if code:
                return encode_fetch_response(version, ctx.correlation_id, [], error=code)
            session.update(_requested(request), getattr(request, "forgotten_topics_data", ()))
    elif session_id or session_epoch not in (FINAL_EPOCH, INITIAL_EPOCH):
        return encode_fetch_response(
            version, ctx.correlation_id, [], error=FETCH_SESSION_ID_NOT_FOUND
        )
    wanted = session.wanted() if session is not None else None
    loop = asyncio.get_running_loop()
    max_wait = max(_ms(request.max_wait), 0) / 1000
    deadline = loop.time() + max_wait
    min_bytes = int(request.min_bytes)
    rm = ctx.broker.replica_manager
    while True:
        topics, total, touched, error = _read(ctx, request, isolation, wanted)
        remaining = deadline - loop.time()
        if error or total >= min_bytes or remaining <= 0 or not touched:
            break
        await rm.wait_for_append(touched, remaining)
    if session is None:
        return encode_fetch_response(version, ctx.correlation_id, topics, session_id=0)
    # A full fetch (epoch 0) answers every partition; an incremental one only those with
    # records, an error, or a changed high watermark / last stable / log start offset.
    topics = session.respond(topics, full=session_epoch == INITIAL_EPOCH)
    session.epoch = _next_epoch(session_epoch)  # what the next request must carry
    return encode_fetch_response(version, ctx.correlation_id, topics, session_id=session.id)


# -- fetch sessions (KIP-227) ---------------------------------------------------------------

INITIAL_EPOCH = 0
FINAL_EPOCH = -1
INVALID_FETCH_SESSION_EPOCH = 71
MAX_SESSIONS = 1000  # Kafka's max.incremental.fetch.session.cache.slots


def _next_epoch(epoch: int) -> int:
    return 1 if epoch >= 2**31 - 1 else epoch + 1


@dataclass(slots=True)
class CachedPartition:
    """What a session remembers of one partition: the client's last request, and the
    offsets last sent (to tell whether an incremental response must include it)."""

    partition: int
    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int = -1
    high_watermark: int = -2
    last_stable_offset: int = -2
    log_start_offset: int = -2


class FetchSession:
    def __init__(self, session_id: int) -> None:
        self.id = session_id
        self.epoch = 1  # the epoch the client's next (incremental) request must carry
        self.partitions: dict[tuple[str, int], CachedPartition] = {}

    def update(self, requested: Any, forgotten: Any = ()) -> None:
        for topic, parts in requested:
            for rp in parts:
                key = (topic, rp.partition)
                cached = self.partitions.get(key)
                if cached is None:
                    self.partitions[key] = CachedPartition(
                        rp.partition,
                        rp.fetch_offset,
                        rp.partition_max_bytes,
                        getattr(rp, "current_leader_epoch", -1),
                    )
                else:
                    cached.fetch_offset = rp.fetch_offset
                    cached.partition_max_bytes = rp.partition_max_bytes
                    cached.current_leader_epoch = getattr(rp, "current_leader_epoch", -1)
        for f in forgotten or ():
            for index in f.partitions:
                self.partitions.pop((f.topic, index), None)

    def wanted(self) -> list[tuple[str, list[CachedPartition]]]:
        by_topic: dict[str, list[CachedPartition]] = {}
        for (topic, _), cached in self.partitions.items():
            by_topic.setdefault(topic, []).append(cached)
        return list(by_topic.items())

    def respond(self, topics: list, full: bool) -> list:
        out = []
        for topic, parts in topics:
            kept = []
            for fp in parts:
                cached = self.partitions.get((topic, fp.index))
                changed = cached is None or (
                    fp.high_watermark,
                    fp.last_stable_offset,
                    fp.log_start_offset,
                ) != (cached.high_watermark, cached.last_stable_offset, cached.log_start_offset)
                if cached is not None:
                    cached.high_watermark = fp.high_watermark
                    cached.last_stable_offset = fp.last_stable_offset
                    cached.log_start_offset = fp.log_start_offset
                records = fp.records
                has_records = records is not None and (
                    len(records) > 0
                    if isinstance(records, bytes | bytearray)
                    else records.length > 0
                )
                if full or changed or fp.error_code or has_records:
                    kept.append(fp)
            if kept:
                out.append((topic, kept))
        return out


class FetchSessionCache:
    """Sessions by id, least recently used first; the oldest is evicted when full."""

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self.max_sessions = max_sessions
        self.sessions: collections.OrderedDict[int, FetchSession] = collections.OrderedDict()

    def create(self, requested: Any) -> FetchSession:
        while len(self.sessions) >= self.max_sessions:
            self.sessions.popitem(last=False)
        session_id = 0
        while session_id == 0 or session_id in self.sessions:
            session_id = random.randint(1, 2**31 - 1)
        session = FetchSession(session_id)
        session.update(requested)
        self.sessions[session_id] = session
        return session

    def get(self, session_id: int) -> FetchSession | None:
        session = self.sessions.get(session_id)
        if session is not None:
            self.sessions.move_to_end(session_id)
        return session

    def remove(self, session_id: int) -> None:
        self.sessions.pop(session_id, None)


def session_cache(broker: Any) -> FetchSessionCache:
    cache = getattr(broker, "fetch_sessions", None)
    if cache is None:
        cache = FetchSessionCache()
        broker.fetch_sessions = cache
    return cache
