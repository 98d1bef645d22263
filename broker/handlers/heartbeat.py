"""Heartbeat (key 12), versions 0-4.

Behavior: keeps a member's session alive. NONE in a Stable or CompletingRebalance group,
REBALANCE_IN_PROGRESS while the group prepares a rebalance (the member must rejoin),
ILLEGAL_GENERATION for another generation, UNKNOWN_MEMBER_ID for a member the group does not
have (evicted after its session timeout), FENCED_INSTANCE_ID for a replaced static member.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from broker.coordinator.wire import build, coordinator, response_class
from broker.handlers import RequestContext

API_KEY = 12
MIN_VERSION = 0
MAX_VERSION = 4


async def handle(ctx: RequestContext, request: Any) -> Any:
    coord = coordinator(ctx)
    if coord is None:
        err = ErrorCode.coordinator_not_available
    else:
        err = coord.heartbeat(
            group_id=request.group_id,
            generation_id=request.generation_id,
            member_id=request.member_id,
            group_instance_id=getattr(request, "group_instance_id", None),
        )
    return build(response_class(ctx), error_code=err)
