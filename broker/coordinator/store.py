"""Where the GroupCoordinator's records live: the partitions of ``__consumer_offsets``.

``OffsetsStore`` is the narrow interface the coordinator writes and replays through.
``BrokerOffsetsStore`` is the real one: it creates the compacted internal topic through the
broker's MetadataStore, appends v2 batches (built by ``fastlog._core.build_batch``) to the
partitions the ReplicaManager holds, and reads them back at load time. ``MemoryOffsetsStore``
keeps the same records in lists, for state machine unit tests that need no broker.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator
from typing import Any, Protocol

from kio.schema.errors import ErrorCode

OFFSETS_TOPIC = "__consumer_offsets"
log = logging.getLogger("fastlog.coordinator")


class StoreError(Exception):
    """A write to __consumer_offsets failed; error_code is what the client is told."""

    def __init__(self, message: str, error_code: ErrorCode = ErrorCode.coordinator_not_available):
        super().__init__(message)
        self.error_code = error_code


class OffsetsStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def is_local(self, partition: int) -> bool: ...

    async def append(
        self, partition: int, records: list[tuple[bytes, bytes | None]], timestamp_ms: int
    ) -> None: ...

    def read_all(self, partition: int) -> Iterator[tuple[bytes, bytes | None]]: ...


class MemoryOffsetsStore:
    """Records kept in memory, in append order per partition (unit tests)."""

    def __init__(self, num_partitions: int = 50) -> None:
        self.num_partitions = num_partitions
        self.partitions: dict[int, list[tuple[bytes, bytes | None]]] = {}
        self.fail_with: ErrorCode | None = None  # make the next appends fail

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def is_local(self, partition: int) -> bool:
        return 0 <= partition < self.num_partitions

    async def append(
        self, partition: int, records: list[tuple[bytes, bytes | None]], timestamp_ms: int
    ) -> None:
        if self.fail_with is not None:
            raise StoreError("append refused", self.fail_with)
        self.partitions.setdefault(partition, []).extend(records)

    def read_all(self, partition: int) -> Iterator[tuple[bytes, bytes | None]]:
        yield from list(self.partitions.get(partition, []))


class BrokerOffsetsStore:
    """__consumer_offsets as a real compacted topic of this broker."""

    READ_CHUNK = 1 << 20

    def __init__(
        self,
        broker: Any,
        *,
        num_partitions: int,
        replication_factor: int,
        segment_bytes: int,
    ) -> None:
        self.broker = broker
        self.num_partitions = num_partitions
        self.replication_factor = replication_factor
        self.segment_bytes = segment_bytes

    async def open(self) -> None:
        md = self.broker.metadata
        topic = md.topic(OFFSETS_TOPIC)
        if topic is None:
            brokers = md.brokers()
            rf = max(1, min(self.replication_factor, len(brokers) if brokers else 1))
            configs = {
                "cleanup.policy": "compact",
                "compression.type": "producer",
                "segment.bytes": str(self.segment_bytes),
            }
            result = md.create_topic(OFFSETS_TOPIC, self.num_partitions, rf, configs)
            if inspect.isawaitable(result):
                await result
            log.info("created %s with %d partitions", OFFSETS_TOPIC, self.num_partitions)
        ensure = getattr(self.broker.replica_manager, "ensure_partitions", None)
        if ensure is not None:  # open the Logs now rather than at first use
            result = ensure(OFFSETS_TOPIC)
            if inspect.isawaitable(result):
                await result

    async def close(self) -> None:
        return None

    def _partition(self, partition: int) -> Any:
        return self.broker.replica_manager.get_partition(OFFSETS_TOPIC, partition)

    def is_local(self, partition: int) -> bool:
        p = self._partition(partition)
        if p is None:
            return False
        is_leader = getattr(p, "is_leader", True)
        return bool(is_leader() if callable(is_leader) else is_leader)

    async def append(
        self, partition: int, records: list[tuple[bytes, bytes | None]], timestamp_ms: int
    ) -> None:
        from fastlog import _core

        p = self._partition(partition)
        if p is None:
            raise StoreError(
                f"{OFFSETS_TOPIC}-{partition} is not hosted here", ErrorCode.not_coordinator
            )
        batch = bytearray(_core.build_batch([(k, v, None, timestamp_ms) for k, v in records]))
        try:
            result = p.append(batch, acks=-1)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # any storage failure: the client retries elsewhere/later
            raise StoreError(f"append to {OFFSETS_TOPIC}-{partition} failed: {exc}") from exc

    def read_all(self, partition: int) -> Iterator[tuple[bytes, bytes | None]]:
        from fastlog import _core

        p = self._partition(partition)
        if p is None:
            return
        log_ = p.log
        offset = log_.start_offset
        end = log_.end_offset
        while offset < end:
            data = log_.read_bytes(offset, self.READ_CHUNK)
            if not data:
                break
            batches = _core.scan_batches(data, validate_crc=True, stop_at_corruption=True)
            if not batches:
                break
            for _off, _ts, key, value, _headers in _core.iter_records(data, start_offset=offset):
                if key is not None:
                    yield key, value
            offset = batches[-1].last_offset + 1
