"""AlterReplicaLogDirs (key 34), versions 0-2 (KIP-113: move a replica between the log
directories of this broker; ``kafka-reassign-partitions.sh`` with log_dirs sends it).

Behavior, per requested partition:
- the directory must be one of log.dirs, named by its absolute path: LOG_DIR_NOT_FOUND
  otherwise; a failed directory (or a partition whose own directory failed) is
  KAFKA_STORAGE_ERROR;
- an unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION; a partition of the cluster
  this broker does not host (yet) is REPLICA_NOT_AVAILABLE, and the directory is remembered:
  when the replica is created here (a reassignment), it goes there (Kafka's preferred log
  dir; ``kafka-reassign-partitions.sh`` with log_dirs retries until the replica exists);
- otherwise NONE at once: the move runs in the background (broker/replica_mover.py),
  DescribeLogDirs shows the copy in its target directory with is_future_key true until the
  partition switches over. Asking for the directory the partition is in cancels a move in
  progress; asking for another one while moving restarts toward it.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i32

from broker.handlers import RequestContext
from broker.handlers._admin_common import NO_THROTTLE, build, responses

API_KEY = 34
MIN_VERSION = 0
MAX_VERSION = 2


def _types(version: int) -> tuple[type, type, type]:
    """(Response, TopicResult, PartitionResult) classes; v0 is v1 on the wire."""
    if version == 0:
        from broker.handlers._log_dirs_legacy import AlterReplicaLogDirsResponseV0

        v1 = responses(API_KEY, "alter_replica_log_dirs", 1)
        return (
            AlterReplicaLogDirsResponseV0,
            v1.AlterReplicaLogDirTopicResult,
            v1.AlterReplicaLogDirPartitionResult,
        )
    t = responses(API_KEY, "alter_replica_log_dirs", version)
    return (
        t.AlterReplicaLogDirsResponse,
        t.AlterReplicaLogDirTopicResult,
        t.AlterReplicaLogDirPartitionResult,
    )


def _target(rm: Any, path: str) -> Any:
    try:
        wanted = Path(path)
        if not path or not wanted.is_absolute():
            return None
        resolved = wanted.resolve()
    except (ValueError, OSError):  # a NUL byte, a symlink loop: not one of ours
        return None
    for d in rm.log_dirs:
        if d.path in (wanted, resolved):
            return d
    return None


def alter(broker: Any, path: str, topic: str, index: int) -> ErrorCode:
    """Move ``topic``-``index`` to the log dir ``path``; the error code of that partition."""
    rm = broker.replica_manager
    target = _target(rm, path)
    if target is None:
        return ErrorCode.log_dir_not_found
    info = broker.metadata.topic(topic)
    if info is None or index not in info.partitions:
        return ErrorCode.unknown_topic_or_partition
    if target.offline:
        return ErrorCode.kafka_storage_error
    p = rm.partitions.get((topic, index))
    if p is None:
        rm.preferred_log_dirs[(topic, index)] = target
        return ErrorCode.replica_not_available
    if p.offline or p.deleted:
        return ErrorCode.kafka_storage_error if p.offline else ErrorCode.unknown_topic_or_partition
    try:
        rm.mover.move(p, target)
    except OSError:
        return ErrorCode.kafka_storage_error  # the target cannot take the future log
    return ErrorCode.none


async def handle(ctx: RequestContext, request: Any) -> Any:
    response_cls, topic_cls, partition_cls = _types(ctx.api_version)
    results: dict[str, dict[int, ErrorCode]] = defaultdict(dict)
    for d in request.dirs:
        for t in d.topics:
            for index in t.partitions:
                results[t.name][int(index)] = alter(ctx.broker, d.path, t.name, int(index))
    return build(
        response_cls,
        throttle_time=NO_THROTTLE,
        results=tuple(
            build(
                topic_cls,
                topic_name=name,
                partitions=tuple(
                    build(partition_cls, partition_index=i32(i), error_code=code)
                    for i, code in sorted(parts.items())
                ),
            )
            for name, parts in results.items()
        ),
    )
