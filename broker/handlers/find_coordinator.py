"""FindCoordinator (key 10), versions 0-4.

Behavior:
- key_type 0 (group): the coordinator is the leader of the group's __consumer_offsets
  partition (Java String.hashCode of the group id, abs, mod offsets.topic.num.partitions);
  COORDINATOR_NOT_AVAILABLE while the GroupCoordinator is not running or the partition has
  no leader. The first lookup creates __consumer_offsets (as Kafka) with exactly
  offsets.topic.replication.factor replicas; while fewer brokers are alive it is not
  created and the answer is COORDINATOR_NOT_AVAILABLE (clients retry).
- key_type 1 (transaction): this broker when a transaction coordinator runs here, else
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED with the message TRANSACTIONS_UNSUPPORTED (a
  transactional producer fails at once instead of retrying until its timeout). Other key
  types: INVALID_REQUEST.
- v4 (KIP-699) looks up a batch of keys and answers one entry per key.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from broker.coordinator.store import OFFSETS_TOPIC
from broker.coordinator.wire import build, coordinator, response_class
from broker.handlers import RequestContext

API_KEY = 10
MIN_VERSION = 0
MAX_VERSION = 4
TRANSACTIONS_UNSUPPORTED = "fastlog does not support transactions (no transaction coordinator)"


def _self_node(ctx: RequestContext) -> tuple[int, str, int]:
    b = ctx.broker
    return b.node_id, b.advertised_host, b.advertised_port


def _lookup(ctx: RequestContext, key: str, key_type: int) -> dict[str, Any]:
    none = {"node_id": -1, "host": "", "port": -1}
    if key_type == 1:
        if getattr(ctx.broker, "transaction_coordinator", None) is None:
            # Not COORDINATOR_NOT_AVAILABLE: clients retry that until their own timeout
            # (librdkafka: 2 x transaction.timeout.ms) and then report only a timeout. This
            # is the one answer every client treats as fatal at once, with our message.
            return {
                **none,
                "error_code": ErrorCode.transactional_id_authorization_failed,
                "error_message": TRANSACTIONS_UNSUPPORTED,
            }
        node, host, port = _self_node(ctx)
        return {
            "node_id": node,
            "host": host,
            "port": port,
            "error_code": ErrorCode.none,
            "error_message": None,
        }
    if key_type != 0:
        return {
            **none,
            "error_code": ErrorCode.invalid_request,
            "error_message": f"unknown key type {key_type}",
        }
    coord = coordinator(ctx)
    if coord is None:
        return {**none, "error_code": ErrorCode.coordinator_not_available, "error_message": None}
    if not key:
        return {**none, "error_code": ErrorCode.invalid_request, "error_message": "empty group id"}
    info = ctx.broker.metadata.topic(OFFSETS_TOPIC)
    if info is None:
        # Kafka creates __consumer_offsets on the first lookup, with exactly
        # offsets.topic.replication.factor replicas, or answers COORDINATOR_NOT_AVAILABLE.
        err = coord.ensure_offsets_topic()
        if err != ErrorCode.none:
            return {**none, "error_code": err, "error_message": None}
        info = ctx.broker.metadata.topic(OFFSETS_TOPIC)
    partition = coord.partition_for(key)
    leader = -1
    if info is not None and partition in info.partitions:
        leader = info.partitions[partition].leader
    if leader == ctx.broker.node_id:
        node, host, port = _self_node(ctx)
        return {
            "node_id": node,
            "host": host,
            "port": port,
            "error_code": ErrorCode.none,
            "error_message": None,
        }
    for b in ctx.broker.metadata.brokers():
        if b.node_id == leader:
            return {
                "node_id": b.node_id,
                "host": b.host,
                "port": b.port,
                "error_code": ErrorCode.none,
                "error_message": None,
            }
    return {**none, "error_code": ErrorCode.coordinator_not_available, "error_message": None}


async def handle(ctx: RequestContext, request: Any) -> Any:
    cls = response_class(ctx)
    key_type = int(getattr(request, "key_type", 0))
    if ctx.api_version >= 4:
        coords = [{"key": k, **_lookup(ctx, k, key_type)} for k in request.coordinator_keys]
        return build(cls, coordinators=coords)
    return build(cls, **_lookup(ctx, request.key, key_type))
