"""DescribeGroups (key 15), versions 0-5.

Behavior:
- Per group: state, protocol type, the selected assignor, and members (member id, instance
  id (v4+), client id, client host). Subscriptions and assignments are filled in Stable
  groups only, as Kafka does. An unknown group is reported as state Dead without error.
- v3+ include_authorized_operations: with no authorizer every group operation is allowed
  (READ, DELETE, DESCRIBE); otherwise the field is Kafka's "not requested" INT32_MIN.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from broker.coordinator.wire import build, coordinator, response_class
from broker.handlers import RequestContext

API_KEY = 15
MIN_VERSION = 0
MAX_VERSION = 5

_NOT_REQUESTED = -(2**31)
# AclOperation codes READ(3), DELETE(6), DESCRIBE(8) as a bit field
_GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)


async def handle(ctx: RequestContext, request: Any) -> Any:
    coord = coordinator(ctx)
    ops = (
        _GROUP_OPERATIONS
        if getattr(request, "include_authorized_operations", False)
        else _NOT_REQUESTED
    )
    groups = []
    for gid in request.groups:
        if coord is None:
            groups.append(
                {
                    "error_code": ErrorCode.coordinator_not_available,
                    "group_id": gid,
                    "group_state": "",
                    "protocol_type": "",
                    "protocol_data": "",
                    "members": [],
                    "authorized_operations": ops,
                }
            )
            continue
        d = coord.describe_group(gid)
        groups.append(
            {
                "error_code": d.error,
                "group_id": gid,
                "group_state": d.state,
                "protocol_type": d.protocol_type,
                "protocol_data": d.protocol,
                "members": d.members,
                "authorized_operations": ops,
            }
        )
    return build(response_class(ctx), groups=groups)
