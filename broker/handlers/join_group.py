"""JoinGroup (key 11), versions 0-7.

Behavior (the GroupCoordinator decides, see broker/coordinator/coordinator.py):
- v4+ (KIP-394): a member without an id gets MEMBER_ID_REQUIRED and its id, and joins again
  with it; static members (group.instance.id, v5+) are let in directly.
- The request waits until the rebalance completes (all members rejoined, or the rebalance
  timeout passed); the leader receives every member's subscription.
- Errors as Kafka: INVALID_SESSION_TIMEOUT, INCONSISTENT_GROUP_PROTOCOL, UNKNOWN_MEMBER_ID,
  FENCED_INSTANCE_ID, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, INVALID_GROUP_ID.
- v0 has no rebalance timeout: the session timeout serves as both.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from broker.coordinator import JoinResult
from broker.coordinator.wire import build, client_host, coordinator, ms, response_class
from broker.handlers import RequestContext

API_KEY = 11
MIN_VERSION = 0
MAX_VERSION = 7


async def handle(ctx: RequestContext, request: Any) -> Any:
    v = ctx.api_version
    coord = coordinator(ctx)
    if coord is None:
        result = JoinResult(ErrorCode.coordinator_not_available, request.member_id)
    else:
        result = await coord.join_group(
            group_id=request.group_id,
            member_id=request.member_id,
            group_instance_id=getattr(request, "group_instance_id", None),
            client_id=ctx.client_id or "",
            client_host=client_host(ctx),
            session_timeout_ms=ms(request.session_timeout),
            rebalance_timeout_ms=ms(request.rebalance_timeout) if v >= 1 else -1,
            protocol_type=request.protocol_type,
            protocols=[(p.name, bytes(p.metadata)) for p in request.protocols],
            require_known_member_id=v >= 4,
        )
    # protocol_name is a non-nullable string before v7.
    protocol_name = result.protocol_name if v >= 7 else (result.protocol_name or "")
    return build(
        response_class(ctx),
        error_code=result.error,
        generation_id=result.generation_id,
        protocol_type=result.protocol_type,
        protocol_name=protocol_name,
        leader=result.leader,
        member_id=result.member_id,
        members=[
            {"member_id": mid, "group_instance_id": iid, "metadata": meta}
            for mid, iid, meta in result.members
        ],
    )
