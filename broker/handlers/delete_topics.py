"""DeleteTopics (API key 20), versions 0-4.

Behavior:
- Each named topic is removed from the metadata store; the ReplicaManager, a store
  listener, closes and deletes its partition directories.
- An unknown topic gives UNKNOWN_TOPIC_OR_PARTITION; delete.topic.enable=false gives
  TOPIC_DELETION_DISABLED; a topic named twice gives INVALID_REQUEST.
- Internal topics (__consumer_offsets, __transaction_state) are refused with INVALID_REQUEST:
  deleting them would drop every group's committed offsets under a running coordinator.
"""

from __future__ import annotations

import logging
from typing import Any

from kio.schema.errors import ErrorCode

from broker import topic_config
from broker.handlers._admin_common import NO_THROTTLE, build, code, duplicates, responses

API_KEY = 20
MIN_VERSION = 0
MAX_VERSION = 4

log = logging.getLogger(__name__)


def _delete(ctx: Any, name: str) -> ErrorCode:
    store = ctx.broker.metadata
    info = store.topic(name)
    if info is None:
        return ErrorCode.unknown_topic_or_partition
    if not ctx.broker.config.get("delete.topic.enable"):
        return ErrorCode.topic_deletion_disabled
    # Only Kafka's internal topics: a user topic may start with "__" and stays deletable.
    if name in topic_config.INTERNAL_TOPICS:
        log.warning("refused to delete internal topic %s (client %s)", name, ctx.client_id)
        return ErrorCode.invalid_request
    try:
        store.delete_topic(name)
    except Exception as exc:
        if hasattr(exc, "error_code"):
            return code(exc.error_code)
        raise
    log.info("deleted topic %s (client %s)", name, ctx.client_id)
    return ErrorCode.none


async def handle(ctx: Any, request: Any) -> Any:
    types = responses(API_KEY, "delete_topics", ctx.api_version)
    dup = duplicates(request.topic_names)
    results = []
    for name in request.topic_names:
        error = ErrorCode.invalid_request if name in dup else _delete(ctx, name)
        results.append(build(types.DeletableTopicResult, name=name, error_code=error))
    return build(types.DeleteTopicsResponse, throttle_time=NO_THROTTLE, responses=tuple(results))
