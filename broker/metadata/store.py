"""The MetadataStore interface and the records it holds (topics, partitions, brokers).

A store is the single source of truth for which topics exist, their ids, partition
assignments and topic-level configs, the registered brokers and the controller. Changes
are announced to listeners (the ReplicaManager creates and deletes logs from them), so
handlers may call the store directly.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class MetadataError(Exception):
    """Base of metadata errors; ``error_code`` is the Kafka error code to answer with."""

    error_code = -1


class UnknownTopicError(MetadataError):
    error_code = 3  # UNKNOWN_TOPIC_OR_PARTITION


class InvalidTopicError(MetadataError):
    error_code = 17  # INVALID_TOPIC_EXCEPTION


class TopicAlreadyExistsError(MetadataError):
    error_code = 36  # TOPIC_ALREADY_EXISTS


class InvalidPartitionsError(MetadataError):
    error_code = 37  # INVALID_PARTITIONS


class InvalidReplicationFactorError(MetadataError):
    error_code = 38  # INVALID_REPLICATION_FACTOR


class InvalidReplicaAssignmentError(MetadataError):
    error_code = 39  # INVALID_REPLICA_ASSIGNMENT


class FencedLeaderEpochError(MetadataError):
    """alter_partition_isr by a leader whose epoch is no longer current: stop leading."""

    error_code = 74  # FENCED_LEADER_EPOCH


def validate_topic_name(name: str) -> None:
    """Kafka's rules (broker.topic_config): raises InvalidTopicError."""
    from broker import topic_config

    try:
        topic_config.validate_topic_name(name)
    except topic_config.InvalidTopicName as exc:
        raise InvalidTopicError(str(exc)) from None


def check_replica_assignment(
    assignment: Mapping[int, Sequence[int]],
    first: int,
    count: int,
    replication_factor: int,
    live: Collection[int],
) -> dict[int, list[int]]:
    """A manual assignment (CreateTopics/CreatePartitions ``assignments``) checked as Kafka
    does: partitions first..first+count-1 each exactly once, ``replication_factor`` distinct
    registered brokers each. The replica lists, in the given (preferred) order; raises
    InvalidReplicaAssignmentError."""
    indexes = sorted(int(i) for i in assignment)
    if indexes != list(range(first, first + count)):
        raise InvalidReplicaAssignmentError(
            f"the assignment must name partitions {first}..{first + count - 1} once each, "
            f"got {indexes}"
        )
    out: dict[int, list[int]] = {}
    for i in indexes:
        reps = [int(r) for r in assignment[i]]
        if len(reps) != replication_factor or not reps:
            raise InvalidReplicaAssignmentError(
                f"partition {i} has {len(reps)} replica(s), the topic's replication factor "
                f"is {replication_factor}"
            )
        if len(set(reps)) != len(reps):
            raise InvalidReplicaAssignmentError(f"duplicate brokers in partition {i}: {reps}")
        unknown = sorted(set(reps) - set(live))
        if unknown:
            raise InvalidReplicaAssignmentError(
                f"unknown broker(s) {unknown} in the assignment of partition {i}"
            )
        out[i] = reps
    return out


@dataclass(slots=True)
class PartitionInfo:
    index: int
    replicas: list[int]
    leader: int
    leader_epoch: int = 0
    isr: list[int] = field(default_factory=list)


@dataclass(slots=True)
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    partitions: dict[int, PartitionInfo]
    configs: dict[str, str] = field(default_factory=dict)
    is_internal: bool = False

    @property
    def partition_count(self) -> int:
        return len(self.partitions)


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int
    rack: str | None = None


class MetadataListener(Protocol):
    def on_topic_created(self, topic: TopicInfo) -> None: ...
    def on_topic_deleted(self, topic: TopicInfo) -> None: ...
    def on_partitions_added(self, topic: TopicInfo, old_count: int) -> None: ...
    def on_topic_configs_changed(self, topic: TopicInfo) -> None: ...
    # Optional (cluster mode): a listener without them is skipped.
    def on_partition_state_changed(self, topic: TopicInfo, index: int) -> None: ...
    def on_brokers_changed(self) -> None: ...


class MetadataStore(ABC):
    """What the broker needs from cluster metadata. Methods are synchronous and cheap."""

    def __init__(self) -> None:
        self._listeners: list[MetadataListener] = []

    def add_listener(self, listener: MetadataListener) -> None:
        self._listeners.append(listener)

    # -- cluster -----------------------------------------------------------------------
    @property
    @abstractmethod
    def cluster_id(self) -> str: ...

    @property
    @abstractmethod
    def controller_id(self) -> int: ...

    @abstractmethod
    def register_broker(self, info: BrokerInfo) -> None: ...

    @abstractmethod
    def brokers(self) -> list[BrokerInfo]:
        """Live brokers only."""

    def broker(self, node_id: int) -> BrokerInfo | None:
        for b in self.brokers():
            if b.node_id == node_id:
                return b
        return None

    # -- topics ------------------------------------------------------------------------
    @abstractmethod
    def topics(self) -> list[TopicInfo]:
        """Every topic, sorted by name."""

    @abstractmethod
    def topic(self, name: str) -> TopicInfo | None: ...

    @abstractmethod
    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None: ...

    @abstractmethod
    def create_topic(
        self,
        name: str,
        partitions: int,
        replication_factor: int,
        configs: Mapping[str, str] | None = None,
        *,
        is_internal: bool = False,
        validate_only: bool = False,
        replica_assignment: Mapping[int, Sequence[int]] | None = None,
    ) -> TopicInfo:
        """Create a topic; raises TopicAlreadyExistsError, InvalidTopicError,
        InvalidPartitionsError, InvalidReplicationFactorError.

        ``replica_assignment`` (partition -> broker ids, the first being the preferred
        leader) places the partitions exactly there instead of the store's placement; it
        must agree with ``partitions`` and ``replication_factor`` and name registered
        brokers only (check_replica_assignment: InvalidReplicaAssignmentError)."""

    @abstractmethod
    def delete_topic(self, name: str) -> TopicInfo:
        """Delete a topic; raises UnknownTopicError. Listeners delete its logs."""

    @abstractmethod
    def add_partitions(
        self,
        name: str,
        total: int,
        *,
        validate_only: bool = False,
        replica_assignment: Sequence[Sequence[int]] | None = None,
    ) -> TopicInfo:
        """Grow a topic to ``total`` partitions (Kafka's CreatePartitions ``count``: the NEW
        TOTAL, not the number to add). Raises InvalidPartitionsError if total <= current.

        ``replica_assignment`` gives the replicas of each new partition in order (one list
        per partition added, the topic's replication factor each), as in Kafka;
        InvalidReplicaAssignmentError when it does not fit."""

    @abstractmethod
    def topic_configs(self, name: str) -> dict[str, str]:
        """Topic-level configs set explicitly on the topic (not the broker defaults)."""

    @abstractmethod
    def set_topic_configs(self, name: str, configs: Mapping[str, str | None]) -> TopicInfo:
        """Replace the topic's explicit configs with ``configs`` (None values are removed).
        Listeners apply them to the live logs."""

    # -- partition state -----------------------------------------------------------------
    @abstractmethod
    def alter_partition_isr(
        self, topic: str, index: int, leader_epoch: int, new_isr: list[int]
    ) -> PartitionInfo:
        """The partition leader's ISR change (conditional write). Raises
        FencedLeaderEpochError when ``leader_epoch`` is not the current one (a new leader
        was elected: the caller stops acting as leader), UnknownTopicError."""

    def controlled_shutdown(self) -> None:  # noqa: B027 - optional hook
        """Before a clean stop: move leadership of this broker's partitions elsewhere."""

    def log_dir_failed(self, reason: str) -> None:  # noqa: B027 - optional hook
        """The data directory failed (disk full, I/O error); cluster stores move leadership
        of this broker's partitions elsewhere."""

    # -- producer ids --------------------------------------------------------------------
    @abstractmethod
    def allocate_producer_ids(self, count: int) -> int:
        """Reserve ``count`` producer ids, unique for the cluster's life; returns the first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (files, sessions)."""

    # -- helpers for implementations ---------------------------------------------------
    def _notify(self, event: str, *args: object) -> None:
        for listener in list(self._listeners):
            fn = getattr(listener, event, None)
            if fn is not None:
                fn(*args)
