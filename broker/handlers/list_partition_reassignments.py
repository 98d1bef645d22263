"""ListPartitionReassignments (API key 46), version 0 (KIP-455).

Behavior: the reassignments in flight, read from ZooKeeper (the topic znodes'
adding_replicas / removing_replicas): for every topic when ``topics`` is null, else for the
named partitions (partitions without a reassignment, and unknown ones, are left out, as in
Kafka). Each entry has the replica set while moving (target first), the replicas being added
and those being removed. On a single node nothing is ever in flight.
"""

from __future__ import annotations

import asyncio
from typing import Any

from broker import reassignment as ra
from broker.handlers._admin_common import NO_THROTTLE, build, code, responses

API_KEY = 46
MIN_VERSION = 0
MAX_VERSION = 0


async def handle(ctx: Any, request: Any) -> Any:
    types = responses(API_KEY, "list_partition_reassignments", ctx.api_version)
    wanted = (
        None
        if request.topics is None
        else {t.name: [int(i) for i in t.partition_indexes] for t in request.topics}
    )
    error, message = ra.NONE, None
    try:
        ongoing = await asyncio.get_running_loop().run_in_executor(
            None, ra.list_ongoing, ctx.broker.metadata, wanted
        )
    except Exception as exc:  # noqa: BLE001 - ZooKeeper unavailable
        ongoing, error, message = [], ra.UNKNOWN_SERVER_ERROR, str(exc)
    by_topic: dict[str, list[ra.Ongoing]] = {}
    for o in ongoing:
        by_topic.setdefault(o.topic, []).append(o)
    return build(
        types.ListPartitionReassignmentsResponse,
        throttle_time=NO_THROTTLE,
        error_code=code(error),
        error_message=message,
        topics=tuple(
            build(
                types.OngoingTopicReassignment,
                name=name,
                partitions=tuple(
                    build(
                        types.OngoingPartitionReassignment,
                        partition_index=o.partition,
                        replicas=tuple(o.replicas),
                        adding_replicas=tuple(o.adding),
                        removing_replicas=tuple(o.removing),
                    )
                    for o in parts
                ),
            )
            for name, parts in sorted(by_topic.items())
        ),
    )
