"""SyncGroup (key 14), versions 0-5.

Behavior:
- The leader's request carries the assignment of every member; it is written to
  __consumer_offsets (GroupMetadata) before anyone gets an answer, then every member waiting
  in SyncGroup receives its own assignment and the group is Stable.
- Followers wait for the leader; in a Stable group the current assignment comes back at once.
- REBALANCE_IN_PROGRESS while preparing a rebalance, ILLEGAL_GENERATION for another
  generation, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID; v5 checks protocol type and name
  (INCONSISTENT_GROUP_PROTOCOL) and echoes them.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from broker.coordinator import SyncResult
from broker.coordinator.wire import build, coordinator, response_class
from broker.handlers import RequestContext

API_KEY = 14
MIN_VERSION = 0
MAX_VERSION = 5


async def handle(ctx: RequestContext, request: Any) -> Any:
    coord = coordinator(ctx)
    if coord is None:
        result = SyncResult(ErrorCode.coordinator_not_available)
    else:
        result = await coord.sync_group(
            group_id=request.group_id,
            generation_id=request.generation_id,
            member_id=request.member_id,
            group_instance_id=getattr(request, "group_instance_id", None),
            protocol_type=getattr(request, "protocol_type", None),
            protocol_name=getattr(request, "protocol_name", None),
            assignments={a.member_id: bytes(a.assignment) for a in request.assignments},
        )
    return build(
        response_class(ctx),
        error_code=result.error,
        protocol_type=result.protocol_type,
        protocol_name=result.protocol_name,
        assignment=result.assignment,
    )
