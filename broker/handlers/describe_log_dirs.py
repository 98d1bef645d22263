"""DescribeLogDirs (key 35), versions 0-4 (KIP-113; ``kafka-log-dirs.sh --describe``).

Behavior:
- One result per entry of log.dirs, in configuration order, named by its absolute path.
- An online directory lists its partitions (topics null: every partition hosted there;
  otherwise only the requested topic-partitions; a topic with an empty partition list asks
  for none, as Kafka reads it): size in bytes of the log's segments, offset lag (the high
  watermark minus the log end offset, never below 0: 0 for a leader and for a caught-up
  follower), is_future_key false; a replica being moved here by AlterReplicaLogDirs
  (broker/replica_mover.py) is also listed in its target directory with is_future_key
  true, the size copied so far and, as offset lag, how far its copy is behind the current
  log's end offset.
- A failed directory (broker/log_dirs.py) answers KAFKA_STORAGE_ERROR with no topics and
  unknown volume sizes (-1).
- v4: total_bytes and usable_bytes of the directory's filesystem (statvfs: f_blocks and
  f_bavail times f_frsize, Kafka's total and usable space).
- v3+: top-level error_code 0 (no authorizer).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i32, i64

from broker.handlers import RequestContext
from broker.handlers._admin_common import NO_THROTTLE, build, responses

API_KEY = 35
MIN_VERSION = 0
MAX_VERSION = 4


def _types(version: int) -> tuple[type, type, type, type]:
    """(Response, Result, Topic, Partition) classes; v0 is v1 on the wire."""
    if version == 0:
        from broker.handlers._log_dirs_legacy import DescribeLogDirsResponseV0

        v1 = responses(API_KEY, "describe_log_dirs", 1)
        return (
            DescribeLogDirsResponseV0,
            v1.DescribeLogDirsResult,
            v1.DescribeLogDirsTopic,
            v1.DescribeLogDirsPartition,
        )
    t = responses(API_KEY, "describe_log_dirs", version)
    return (
        t.DescribeLogDirsResponse,
        t.DescribeLogDirsResult,
        t.DescribeLogDirsTopic,
        t.DescribeLogDirsPartition,
    )


def _wanted(request: Any) -> dict[str, set[int]] | None:
    if request.topics is None:
        return None
    wanted: dict[str, set[int]] = {}
    for t in request.topics:
        wanted.setdefault(t.topic, set()).update(int(i) for i in t.partitions)
    return wanted


def describe(broker: Any, wanted: dict[str, set[int]] | None) -> list[dict[str, Any]]:
    """Each log dir as a dict (path, error, topics {name: [(index, size, lag, future)]},
    total and usable bytes), for the handler and for tests."""
    rm = broker.replica_manager
    moves = list(getattr(getattr(rm, "mover", None), "moves", {}).values())
    out = []
    for d in rm.log_dirs:
        entry: dict[str, Any] = {"path": str(d.path), "error": 0, "topics": {}}
        if d.offline:
            entry.update(error=int(ErrorCode.kafka_storage_error), total=-1, usable=-1)
            out.append(entry)
            continue
        for (topic, index), p in sorted(rm.partitions.items()):
            if getattr(p, "log_dir", None) is not d or p.deleted or p.offline:
                continue
            if wanted is not None and index not in wanted.get(topic, ()):
                continue
            try:
                size = p.log.size_bytes
                lag = max(p.high_watermark - p.log_end_offset, 0)
            except Exception:  # noqa: BLE001 - a log closed under us (deleted meanwhile)
                continue
            entry["topics"].setdefault(topic, []).append((index, size, lag, False))
        for fut in moves:
            p = fut.partition
            if fut.log_dir is not d or (
                wanted is not None and p.index not in wanted.get(p.topic, ())
            ):
                continue
            try:
                size, lag = fut.log.size_bytes, fut.offset_lag
            except Exception:  # noqa: BLE001 - the move finished or was dropped meanwhile
                continue
            entry["topics"].setdefault(p.topic, []).append((p.index, size, lag, True))
        entry["total"], entry["usable"] = d.volume_bytes()
        out.append(entry)
    return out


async def handle(ctx: RequestContext, request: Any) -> Any:
    response_cls, result_cls, topic_cls, partition_cls = _types(ctx.api_version)
    results = []
    for entry in describe(ctx.broker, _wanted(request)):
        topics = tuple(
            build(
                topic_cls,
                name=name,
                partitions=tuple(
                    build(
                        partition_cls,
                        partition_index=i32(index),
                        partition_size=i64(size),
                        offset_lag=i64(lag),
                        is_future_key=future,
                    )
                    for index, size, lag, future in parts
                ),
            )
            for name, parts in entry["topics"].items()
        )
        results.append(
            build(
                result_cls,
                error_code=ErrorCode(entry["error"]),
                log_dir=entry["path"],
                topics=topics,
                total_bytes=i64(entry["total"]),
                usable_bytes=i64(entry["usable"]),
            )
        )
    return build(
        response_cls,
        throttle_time=NO_THROTTLE,
        error_code=ErrorCode.none,
        results=tuple(results),
    )
