"""DeleteGroups (key 42), versions 0-2.

Behavior: deletes Empty groups: tombstones for every committed offset and the group
metadata go to __consumer_offsets. NON_EMPTY_GROUP while the group has members,
GROUP_ID_NOT_FOUND for an unknown group, NOT_COORDINATOR elsewhere.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from broker.coordinator.wire import build, coordinator, response_class
from broker.handlers import RequestContext

API_KEY = 42
MIN_VERSION = 0
MAX_VERSION = 2


async def handle(ctx: RequestContext, request: Any) -> Any:
    names = list(request.groups_names)
    coord = coordinator(ctx)
    if coord is None:
        results = dict.fromkeys(names, ErrorCode.coordinator_not_available)
    else:
        results = await coord.delete_groups(names)
    return build(
        response_class(ctx),
        results=[{"group_id": g, "error_code": results[g]} for g in dict.fromkeys(names)],
    )
