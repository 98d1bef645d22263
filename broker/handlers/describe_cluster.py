"""DescribeCluster (API key 60), versions 0-1.

Behavior:
- Answers the cluster id, the controller id and every registered broker (id, advertised
  host and port, rack).
- v1 endpoint_type 1 (brokers) is served; 2 (controllers) gives UNSUPPORTED_ENDPOINT_TYPE, as
  a Kafka broker answers.
- With include_cluster_authorized_operations, no authorizer is configured, so every
  operation the cluster resource supports is reported allowed (as Kafka does without one).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i8, i32

from broker.handlers._admin_common import NO_THROTTLE, build, responses

API_KEY = 60
MIN_VERSION = 0
MAX_VERSION = 1

ENDPOINT_BROKERS = 1
# AclOperation codes the CLUSTER resource supports: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
# DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
_CLUSTER_OPERATIONS = (5, 7, 8, 9, 10, 11, 12)
_OMITTED = -(2**31)


async def handle(ctx: Any, request: Any) -> Any:
    types = responses(API_KEY, "describe_cluster", ctx.api_version)
    broker = ctx.broker
    store = broker.metadata
    endpoint = int(getattr(request, "endpoint_type", ENDPOINT_BROKERS))
    ops = _OMITTED
    if request.include_cluster_authorized_operations:
        ops = sum(1 << op for op in _CLUSTER_OPERATIONS)
    if endpoint != ENDPOINT_BROKERS:
        return build(
            types.DescribeClusterResponse,
            throttle_time=NO_THROTTLE,
            error_code=ErrorCode.unsupported_endpoint_type,
            error_message="The request was sent to an endpoint of type BROKER, but we wanted "
            "an endpoint of type CONTROLLER",
            endpoint_type=i8(endpoint),
            cluster_id=store.cluster_id,
            controller_id=i32(-1),
            brokers=(),
            cluster_authorized_operations=i32(_OMITTED),
        )
    brokers = tuple(
        build(
            types.DescribeClusterBroker,
            broker_id=i32(b.node_id),
            host=b.host,
            port=i32(b.port),
            rack=b.rack,
        )
        for b in store.brokers()
    )
    return build(
        types.DescribeClusterResponse,
        throttle_time=NO_THROTTLE,
        error_code=ErrorCode.none,
        error_message=None,
        endpoint_type=i8(endpoint),
        cluster_id=store.cluster_id,
        controller_id=i32(store.controller_id),
        brokers=brokers,
        cluster_authorized_operations=i32(ops),
    )
