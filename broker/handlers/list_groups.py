"""ListGroups (key 16), versions 0-4.

Behavior: every group this broker coordinates with its protocol type ("consumer", or ""
for groups that only store offsets); v4 (KIP-518) filters by state names
(case-insensitive) and reports each group's state.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from broker.coordinator.wire import build, coordinator, response_class
from broker.handlers import RequestContext

API_KEY = 16
MIN_VERSION = 0
MAX_VERSION = 4


async def handle(ctx: RequestContext, request: Any) -> Any:
    coord = coordinator(ctx)
    if coord is None:
        return build(response_class(ctx), error_code=ErrorCode.coordinator_not_available, groups=[])
    groups = coord.list_groups(getattr(request, "states_filter", ()) or ())
    return build(
        response_class(ctx),
        error_code=ErrorCode.none,
        groups=[
            {"group_id": gid, "protocol_type": ptype, "group_state": state}
            for gid, ptype, state in groups
        ],
    )
