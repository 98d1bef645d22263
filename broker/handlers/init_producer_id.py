"""InitProducerId (key 22), versions 0-4: producer ids for idempotent producers.

Behavior:
- Without a transactional id, every call gets a new producer id with epoch 0 (as Kafka
  does for idempotent producers, including the KIP-360 re-initialisation of v3+). Ids
  are reserved in blocks from the MetadataStore, so they stay unique across restarts.
- With a transactional id the request goes to ``broker.transaction_coordinator``
  (``handle_init_producer_id(ctx, request)``) when one is installed; otherwise
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as FindCoordinator answers: the one error every
  client treats as fatal at once (COORDINATOR_NOT_AVAILABLE is retried until a timeout).
"""

from __future__ import annotations

import datetime
from typing import Any

from broker.handlers import RequestContext
from broker.protocol import error_code, make, response_schema

API_KEY = 22
MIN_VERSION = 0
MAX_VERSION = 4

TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
BLOCK_SIZE = 1000
_ZERO = datetime.timedelta(0)


class ProducerIdManager:
    """Hands out producer ids from blocks reserved in the metadata store."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.next_id = 0
        self.end = 0

    def generate(self) -> int:
        if self.next_id >= self.end:
            self.next_id = self.store.allocate_producer_ids(BLOCK_SIZE)
            self.end = self.next_id + BLOCK_SIZE
        pid = self.next_id
        self.next_id += 1
        return pid


def producer_id_manager(broker: Any) -> ProducerIdManager:
    manager = getattr(broker, "producer_id_manager", None)
    if manager is None:
        manager = ProducerIdManager(broker.metadata)
        broker.producer_id_manager = manager
    return manager


async def handle(ctx: RequestContext, request: Any) -> Any:
    cls = response_schema(API_KEY, ctx.api_version)
    if request.transactional_id:
        coordinator = getattr(ctx.broker, "transaction_coordinator", None)
        if coordinator is not None:
            return await coordinator.handle_init_producer_id(ctx, request)
        return make(
            cls,
            throttle_time=_ZERO,
            error_code=error_code(TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
            producer_id=-1,
            producer_epoch=-1,
        )
    pid = producer_id_manager(ctx.broker).generate()
    return make(
        cls, throttle_time=_ZERO, error_code=error_code(0), producer_id=pid, producer_epoch=0
    )
