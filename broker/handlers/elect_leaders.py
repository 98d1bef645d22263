"""ElectLeaders (API key 43), versions 0-2 (KIP-183 preferred, KIP-460 unclean).

Behavior:
- ``election_type`` 0 (v0 has no field: always 0) elects each partition's preferred replica
  (the first in its replica list) if it is alive and in the ISR: ELECTION_NOT_NEEDED when it
  already leads, PREFERRED_LEADER_NOT_AVAILABLE when it cannot.
- ``election_type`` 1 (unclean) elects a leader for a partition without a live leader: the
  first live ISR member, else the first live replica (its unreplicated data is lost, as
  unclean.leader.election.enable would). ELECTION_NOT_NEEDED when the leader is alive,
  ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is alive.
- ``topic_partitions`` null means every partition; then partitions needing no election are
  left out of the answer. Unknown topics or partitions: UNKNOWN_TOPIC_OR_PARTITION.
- The new state is a conditional write of the partition's state znode (leader epoch + 1);
  the answer comes once this broker's metadata shows it, or after ``timeout``.
- On a single node the only replica always leads: ELECTION_NOT_NEEDED.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from broker import reassignment as ra
from broker.handlers._admin_common import NO_THROTTLE, build, code, responses

API_KEY = 43
MIN_VERSION = 0
MAX_VERSION = 2

MAX_WAIT_S = 30.0


def _targets(ctx: Any, request: Any) -> tuple[list[tuple[str, int]], bool]:
    store = ctx.broker.metadata
    if request.topic_partitions is None:
        return [(t.name, p) for t in store.topics() for p in sorted(t.partitions)], True
    seen: dict[tuple[str, int], None] = {}
    for t in request.topic_partitions:
        for p in t.partitions:
            seen[(t.topic, int(p))] = None
    return list(seen), False


def _one(ctx: Any, topic: str, p: int, kind: int) -> tuple[int, str | None, int]:
    """(error code, message, leader epoch to wait for)."""
    store = ctx.broker.metadata
    info = store.topic(topic)
    if info is None or p not in info.partitions:
        return ra.UNKNOWN_TOPIC_OR_PARTITION, f"Partition {topic}-{p} does not exist.", -1
    if getattr(store, "zk", None) is None:
        return ra.ELECTION_NOT_NEEDED, "Single node: the only replica leads.", -1
    try:
        _, epoch = ra.elect(store, topic, p, kind)
        return ra.NONE, None, epoch
    except ra.ReassignmentError as exc:
        return exc.code, str(exc), -1
    except Exception as exc:  # noqa: BLE001 - ZooKeeper unavailable
        return ra.UNKNOWN_SERVER_ERROR, str(exc), -1


async def handle(ctx: Any, request: Any) -> Any:
    types = responses(API_KEY, "elect_leaders", ctx.api_version)
    kind = int(getattr(request, "election_type", ra.PREFERRED))
    targets, everything = _targets(ctx, request)
    loop = asyncio.get_running_loop()
    results: dict[tuple[str, int], tuple[int, str | None, int]] = {}
    if kind not in (ra.PREFERRED, ra.UNCLEAN):
        results = {tp: (ra.INVALID_REQUEST, f"Unknown election type {kind}.", -1) for tp in targets}
    else:
        for topic, p in targets:
            results[(topic, p)] = await loop.run_in_executor(None, _one, ctx, topic, p, kind)
    # Answer once this broker's metadata shows the new leaders (clients refresh right after).
    timeout = min(request.timeout.total_seconds() if request.timeout else MAX_WAIT_S, MAX_WAIT_S)
    deadline = time.monotonic() + max(timeout, 0)
    store = ctx.broker.metadata
    while time.monotonic() < deadline:
        pending = [
            tp
            for tp, (err, _, epoch) in results.items()
            if err == ra.NONE
            and (info := store.topic(tp[0])) is not None
            and tp[1] in info.partitions
            and info.partitions[tp[1]].leader_epoch < epoch
        ]
        if not pending:
            break
        await asyncio.sleep(0.05)
    by_topic: dict[str, list[Any]] = {}
    for (topic, p), (err, msg, _) in results.items():
        if everything and err == ra.ELECTION_NOT_NEEDED:
            continue
        by_topic.setdefault(topic, []).append(
            build(types.PartitionResult, partition_id=p, error_code=code(err), error_message=msg)
        )
    return build(
        types.ElectLeadersResponse,
        throttle_time=NO_THROTTLE,
        error_code=code(ra.NONE),
        replica_election_results=tuple(
            build(types.ReplicaElectionResult, topic=t, partition_result=tuple(parts))
            for t, parts in sorted(by_topic.items())
        ),
    )
