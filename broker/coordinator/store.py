"""Where the GroupCoordinator's records live: the partitions of ``__consumer_offsets``.

``OffsetsStore`` is the narrow interface the coordinator writes and replays through.
``BrokerOffsetsStore`` is the real one: it creates the compacted internal topic through the
broker's MetadataStore when the first group request needs it (``create``, Kafka's lazy
creation with exactly offsets.topic.replication.factor replicas, capped at 1 in single-node
mode), appends v2 batches (built by ``fastlog._core.build_batch``) to the
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

    def exists(self) -> bool: ...

    def create(self) -> ErrorCode: ...

    def refresh(self) -> None: ...

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
        self.remote: set[int] = set()  # partitions led by another broker

    async def open(self) -> None:
        return None

    def exists(self) -> bool:
        return True

    def create(self) -> ErrorCode:
        return ErrorCode.none

    def refresh(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def is_local(self, partition: int) -> bool:
        return 0 <= partition < self.num_partitions and partition not in self.remote

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
        self.ack_timeout_s = 5.0  # Kafka's offsets.commit.timeout.ms

    async def open(self) -> None:
        # Kafka creates the topic on the first group request, not at start (create()).
        self.refresh()

    def refresh(self) -> None:
        info = self.broker.metadata.topic(OFFSETS_TOPIC)
        if info is not None:
            # The topic's partition count, not the config, decides where groups live.
            self.num_partitions = len(info.partitions)

    def exists(self) -> bool:
        return self.broker.metadata.topic(OFFSETS_TOPIC) is not None

    def effective_replication_factor(self) -> int:
        """offsets.topic.replication.factor; capped at 1 in single-node (embedded) mode,
        which can only ever have one broker, so `fastlog broker` works without config."""
        from broker.metadata.embedded import EmbeddedMetadataStore

        if isinstance(self.broker.metadata, EmbeddedMetadataStore):
            return min(self.replication_factor, 1)
        return self.replication_factor

    def create(self) -> ErrorCode:
        """Create __consumer_offsets with exactly the effective replication factor, as
        Kafka does on the first FindCoordinator or group request. While fewer brokers are
        alive: COORDINATOR_NOT_AVAILABLE (clients retry) and nothing is created, so the
        first broker up does not leave every group's offsets on one replica."""
        from broker.metadata.store import MetadataError, TopicAlreadyExistsError

        md = self.broker.metadata
        info = md.topic(OFFSETS_TOPIC)
        if info is not None:
            self.num_partitions = len(info.partitions)
            return ErrorCode.none
        rf = self.effective_replication_factor()
        live = len(md.brokers())
        if live < rf:
            log.info(
                "not creating %s yet: offsets.topic.replication.factor is %d, %d broker(s) alive",
                OFFSETS_TOPIC,
                rf,
                live,
            )
            return ErrorCode.coordinator_not_available
        configs = {
            "cleanup.policy": "compact",
            "compression.type": "producer",
            "segment.bytes": str(self.segment_bytes),
        }
        create = getattr(self.broker, "create_topic", None) or md.create_topic
        try:
            info = create(OFFSETS_TOPIC, self.num_partitions, rf, configs)
        except TopicAlreadyExistsError:  # another broker of the cluster was first
            info = md.topic(OFFSETS_TOPIC)
            if info is None:  # not in this broker's cache yet: its watch brings it soon
                return ErrorCode.coordinator_not_available
        except MetadataError as exc:  # too few brokers after all, ZooKeeper away...
            log.warning("creating %s failed: %s", OFFSETS_TOPIC, exc)
            return ErrorCode.coordinator_not_available
        else:
            log.info(
                "created %s with %d partitions, replication factor %d",
                OFFSETS_TOPIC,
                self.num_partitions,
                rf,
            )
        self.num_partitions = len(info.partitions)
        return ErrorCode.none

    async def close(self) -> None:
        return None

    def _partition(self, partition: int) -> Any:
        return self.broker.replica_manager.get_partition(OFFSETS_TOPIC, partition)

    def is_local(self, partition: int) -> bool:
        p = self._partition(partition)
        if p is None:
            return False
        r = getattr(p, "replication", None)  # cluster mode: replication knows who leads
        if r is not None:
            return bool(r.is_leader) and not getattr(r, "fenced", False)
        node_id = getattr(self.broker, "node_id", None)
        return getattr(p, "leader", node_id) == node_id

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
            # acks=all: an offset is committed once every in-sync replica has it.
            result = p.append(batch, -1)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:  # any storage failure: the client retries later
            raise StoreError(f"append to {OFFSETS_TOPIC}-{partition} failed: {exc}") from exc
        code = int(getattr(result, "error_code", 0) or 0)
        replication = getattr(self.broker, "replication", None)
        if not code and getattr(p, "replication", None) is not None and replication is not None:
            # acks=all: answer once the high watermark has passed the batch (every ISR
            # member has it), as Kafka's coordinator does.
            await replication.wait_for_acks([(p, result, p.log_end_offset)], self.ack_timeout_s)
            code = int(getattr(result, "error_code", 0) or 0)
        if code:
            # Kafka maps log append errors to what a group client knows how to retry.
            mapped = {
                ErrorCode.unknown_topic_or_partition.value: ErrorCode.not_coordinator,
                ErrorCode.not_leader_or_follower.value: ErrorCode.not_coordinator,
                ErrorCode.message_too_large.value: ErrorCode.unknown_server_error,
                ErrorCode.record_list_too_large.value: ErrorCode.unknown_server_error,
                ErrorCode.invalid_fetch_size.value: ErrorCode.unknown_server_error,
                ErrorCode.request_timed_out.value: ErrorCode.coordinator_not_available,
            }.get(code, ErrorCode.coordinator_not_available)
            raise StoreError(
                f"append to {OFFSETS_TOPIC}-{partition} failed with error {code}: "
                f"{getattr(result, 'error_message', None)}",
                mapped,
            )

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
