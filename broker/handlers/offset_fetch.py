"""OffsetFetch (key 9), versions 0-8.

Behavior:
- Committed offset, leader epoch (v5+) and metadata per requested partition; -1 and ""
  where nothing is committed (not an error). topics null (v2+) returns every offset the
  group committed.
- v8 (KIP-709) fetches for several groups at once, with an error per group.
- Coordinator errors (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, ...): per partition in
  v0-1, top-level from v2, per group in v8.
- v0 (removed in Kafka 4.0, KIP-896; schema in broker/coordinator/legacy.py) reads the same
  offsets as v1: there is no ZooKeeper offset store to read instead.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from broker.coordinator.wire import build, coordinator, response_class
from broker.handlers import RequestContext

API_KEY = 9
MIN_VERSION = 0
MAX_VERSION = 8


def _fetch(
    ctx: RequestContext, group_id: str, topics: Any, partition_err: bool
) -> tuple[ErrorCode, list[dict[str, Any]]]:
    wanted = None
    if topics is not None:
        wanted = [(t.name, int(p)) for t in topics for p in t.partition_indexes]
    coord = coordinator(ctx)
    if coord is None:
        err, found = ErrorCode.coordinator_not_available, {}
    else:
        err, found = coord.fetch_offsets(group_id, wanted)
    if err != ErrorCode.none:
        if not partition_err or wanted is None:
            return err, []
        found = dict.fromkeys(wanted)
    out: dict[str, list[dict[str, Any]]] = {}
    for (topic, partition), o in (
        sorted(found.items(), key=lambda kv: kv[0]) if wanted is None else found.items()
    ):
        out.setdefault(topic, []).append(
            {
                "partition_index": partition,
                "committed_offset": o.offset if o is not None else -1,
                "committed_leader_epoch": o.leader_epoch if o is not None else -1,
                "metadata": o.metadata if o is not None else "",
                "error_code": err,
            }
        )
    return err, [{"name": t, "partitions": parts} for t, parts in out.items()]


async def handle(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(ctx)
    if ctx.api_version >= 8:
        groups = []
        for g in request.groups:
            err, topics = _fetch(ctx, g.group_id, g.topics, partition_err=False)
            groups.append({"group_id": g.group_id, "topics": topics, "error_code": err})
        return build(cls, groups=groups)
    err, topics = _fetch(ctx, request.group_id, request.topics, partition_err=ctx.api_version < 2)
    return build(cls, topics=topics, error_code=err)
