"""AlterPartitionReassignments (API key 45), version 0 (KIP-455).

Behavior:
- Each partition's ``replicas`` starts a reassignment to that replica list; null cancels the
  reassignment in flight (NO_REASSIGNMENT_IN_PROGRESS if there is none). The request is
  recorded in the topic's ZooKeeper znode (adding_replicas / removing_replicas) and the
  active controller completes it (broker/reassignment.py); the answer does not wait.
- An unknown topic or partition gives UNKNOWN_TOPIC_OR_PARTITION; an empty list, duplicate
  brokers or brokers that are not alive INVALID_REPLICA_ASSIGNMENT; a partition named twice
  INVALID_REQUEST.
- On a single node (embedded metadata) a partition can only keep its replicas: the same list
  is accepted as a no-op, anything else is INVALID_REPLICA_ASSIGNMENT.
"""

from __future__ import annotations

import asyncio
from typing import Any

from broker import reassignment as ra
from broker.handlers._admin_common import NO_THROTTLE, build, code, duplicates, responses

API_KEY = 45
MIN_VERSION = 0
MAX_VERSION = 0


def _embedded(store: Any, topic: str, reqs: dict[int, Any]) -> dict[int, tuple[int, str | None]]:
    info = store.topic(topic)
    out: dict[int, tuple[int, str | None]] = {}
    for p, target in reqs.items():
        if info is None or p not in info.partitions:
            out[p] = (ra.UNKNOWN_TOPIC_OR_PARTITION, f"Partition {topic}-{p} does not exist.")
        elif target is None:
            out[p] = (
                ra.NO_REASSIGNMENT_IN_PROGRESS,
                f"No reassignment in progress for {topic}-{p}.",
            )
        elif list(target) == list(info.partitions[p].replicas):
            out[p] = (ra.NONE, None)
        else:
            out[p] = (
                ra.INVALID_REPLICA_ASSIGNMENT,
                f"Replica assignment has brokers that are not alive: {sorted(set(target) - set(info.partitions[p].replicas))}.",
            )
    return out


async def handle(ctx: Any, request: Any) -> Any:
    types = responses(API_KEY, "alter_partition_reassignments", ctx.api_version)
    store = ctx.broker.metadata
    loop = asyncio.get_running_loop()
    topic_dups = duplicates(t.name for t in request.topics)
    out = []
    for topic in request.topics:
        part_dups = duplicates(int(p.partition_index) for p in topic.partitions)
        reqs: dict[int, Any] = {}
        results: dict[int, tuple[int, str | None]] = {}
        for p in topic.partitions:
            idx = int(p.partition_index)
            if topic.name in topic_dups or idx in part_dups:
                results[idx] = (ra.INVALID_REQUEST, f"Partition {topic.name}-{idx} named twice.")
            else:
                reqs[idx] = None if p.replicas is None else [int(r) for r in p.replicas]
        if reqs:
            if getattr(store, "zk", None) is None:
                results.update(_embedded(store, topic.name, reqs))
            else:
                try:
                    results.update(
                        await loop.run_in_executor(None, ra.submit, store, topic.name, reqs)
                    )
                except Exception as exc:  # noqa: BLE001 - ZooKeeper unavailable: retriable
                    results.update({i: (ra.UNKNOWN_SERVER_ERROR, str(exc)) for i in reqs})
        out.append(
            build(
                types.ReassignableTopicResponse,
                name=topic.name,
                partitions=tuple(
                    build(
                        types.ReassignablePartitionResponse,
                        partition_index=int(p.partition_index),
                        error_code=code(results[int(p.partition_index)][0]),
                        error_message=results[int(p.partition_index)][1],
                    )
                    for p in topic.partitions
                ),
            )
        )
    if getattr(store, "reassignment", None) is not None:
        store.reassignment.wake()
    return build(
        types.AlterPartitionReassignmentsResponse,
        throttle_time=NO_THROTTLE,
        error_code=code(ra.NONE),
        error_message=None,
        responses=tuple(out),
    )
