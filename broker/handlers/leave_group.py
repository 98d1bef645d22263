"""LeaveGroup (key 13), versions 0-4.

Behavior:
- v0-2: one member leaves; its error is the response's error.
- v3+ (KIP-345): a batch of (member_id, group_instance_id); a static member may be named by
  its instance id alone. Per-member errors: UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID.
- A leave from a Stable or CompletingRebalance group starts a rebalance at once (no waiting
  for the session timeout).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from broker.coordinator.wire import build, coordinator, response_class
from broker.handlers import RequestContext

API_KEY = 13
MIN_VERSION = 0
MAX_VERSION = 4


async def handle(ctx: RequestContext, request: Any) -> Any:
    v = ctx.api_version
    if v >= 3:
        members = [(m.member_id, m.group_instance_id) for m in request.members]
    else:
        members = [(request.member_id, None)]
    coord = coordinator(ctx)
    if coord is None:
        err = ErrorCode.coordinator_not_available
        results = [(mid, iid, err) for mid, iid in members]
    else:
        err, results = coord.leave_group(group_id=request.group_id, members=members)
    if v < 3:
        if err == ErrorCode.none and results:
            err = results[0][2]
        return build(response_class(ctx), error_code=err)
    return build(
        response_class(ctx),
        error_code=err,
        members=[
            {"member_id": mid, "group_instance_id": iid, "error_code": e} for mid, iid, e in results
        ],
    )
