"""EmbeddedMetadataStore: single-node cluster metadata kept in one JSON file.

The file (``<data dir>/cluster-metadata.json``) is rewritten atomically on every change
(write a temporary file, fsync, rename, fsync the directory), so a crash leaves either the
old or the new state, never a torn one.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import resource
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from broker.metadata.store import (
    BrokerInfo,
    FencedLeaderEpochError,
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidTopicError,
    MetadataError,
    MetadataStore,
    PartitionInfo,
    TopicAlreadyExistsError,
    TopicInfo,
    UnknownTopicError,
    check_replica_assignment,
    validate_topic_name,
)

log = logging.getLogger(__name__)

FILE_NAME = "cluster-metadata.json"
FORMAT_VERSION = 1
MAX_PARTITIONS = 100_000  # per topic; guards against a hostile CreateTopics/CreatePartitions
# Open files a partition holds (measured: its .log and .lock, and two descriptors each for
# the active .index and .timeindex), and the share of the open-file limit kept for the rest
# (connections, segments rolled, checkpoints).
FILES_PER_PARTITION = 6
RESERVED_FILES_SHARE = 4


def new_cluster_id() -> str:
    """Kafka's format: a random UUID in unpadded URL-safe base64 (22 characters)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class EmbeddedMetadataStore(MetadataStore):
    def __init__(self, data_dir: str | Path, node_id: int = 0, cluster_id: str | None = None):
        super().__init__()
        self._dir = Path(data_dir)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._path = self._dir / FILE_NAME
        self._node_id = node_id
        self._lock = threading.RLock()
        self._topics: dict[str, TopicInfo] = {}
        self._by_id: dict[uuid.UUID, TopicInfo] = {}
        self._brokers: dict[int, BrokerInfo] = {}
        self._next_producer_id = 0
        self._cluster_id = cluster_id or ""
        self._load()
        if not self._cluster_id:
            self._cluster_id = new_cluster_id()
            self._save()

    @property
    def path(self) -> Path:
        return self._path

    # -- persistence ---------------------------------------------------------------------
    def _load(self) -> None:
        if not self._path.exists():
            return
        try:
            state = json.loads(self._path.read_text())
        except (OSError, ValueError) as exc:
            raise MetadataError(f"cannot read {self._path}: {exc}") from None
        if state.get("version") != FORMAT_VERSION:
            raise MetadataError(f"{self._path}: unknown format version {state.get('version')}")
        stored_id = state.get("cluster_id") or ""
        if self._cluster_id and stored_id and stored_id != self._cluster_id:
            raise MetadataError(
                f"cluster.id {self._cluster_id} does not match {stored_id} stored in {self._path}"
            )
        self._cluster_id = stored_id or self._cluster_id
        self._next_producer_id = int(state.get("next_producer_id", 0))
        for name, t in state.get("topics", {}).items():
            info = TopicInfo(
                name=name,
                topic_id=uuid.UUID(t["id"]),
                partitions={
                    int(p["index"]): PartitionInfo(
                        index=int(p["index"]),
                        replicas=list(p["replicas"]),
                        leader=int(p["leader"]),
                        leader_epoch=int(p.get("leader_epoch", 0)),
                        isr=list(p.get("isr", p["replicas"])),
                    )
                    for p in t["partitions"]
                },
                configs=dict(t.get("configs", {})),
                is_internal=bool(t.get("internal", False)),
            )
            self._topics[name] = info
            self._by_id[info.topic_id] = info

    def _state(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "cluster_id": self._cluster_id,
            "next_producer_id": self._next_producer_id,
            "topics": {
                name: {
                    "id": str(t.topic_id),
                    "internal": t.is_internal,
                    "configs": t.configs,
                    "partitions": [
                        {
                            "index": p.index,
                            "replicas": p.replicas,
                            "leader": p.leader,
                            "leader_epoch": p.leader_epoch,
                            "isr": p.isr,
                        }
                        for p in sorted(t.partitions.values(), key=lambda p: p.index)
                    ],
                }
                for name, t in sorted(self._topics.items())
            },
        }

    def _save(self) -> None:
        atomic_write(self._path, json.dumps(self._state(), indent=1).encode())

    # -- cluster -------------------------------------------------------------------------
    @property
    def cluster_id(self) -> str:
        return self._cluster_id

    @property
    def controller_id(self) -> int:
        return self._node_id

    def register_broker(self, info: BrokerInfo) -> None:
        with self._lock:
            self._brokers[info.node_id] = info

    def brokers(self) -> list[BrokerInfo]:
        with self._lock:
            return sorted(self._brokers.values(), key=lambda b: b.node_id)

    # -- topics --------------------------------------------------------------------------
    def topics(self) -> list[TopicInfo]:
        with self._lock:
            return [self._topics[n] for n in sorted(self._topics)]

    def topic(self, name: str) -> TopicInfo | None:
        return self._topics.get(name)

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        return self._by_id.get(topic_id)

    def _assign(
        self,
        first: int,
        count: int,
        replication_factor: int,
        given: Mapping[int, Sequence[int]] | None = None,
    ) -> dict[int, PartitionInfo]:
        nodes = [b.node_id for b in self.brokers()] or [self._node_id]
        if given is not None:
            # A manual assignment may only name this broker: any other id is unknown here.
            placed = check_replica_assignment(given, first, count, replication_factor, nodes)
            return {i: PartitionInfo(i, r, r[0], 0, list(r)) for i, r in placed.items()}
        if replication_factor < 1 or replication_factor > len(nodes):
            raise InvalidReplicationFactorError(
                f"replication factor {replication_factor} larger than the {len(nodes)} "
                f"available broker(s)"
                if replication_factor > 0
                else f"replication factor must be positive, got {replication_factor}"
            )
        out = {}
        for i in range(first, first + count):
            replicas = [nodes[(i + r) % len(nodes)] for r in range(replication_factor)]
            out[i] = PartitionInfo(i, replicas, replicas[0], 0, list(replicas))
        return out

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
        validate_topic_name(name)
        with self._lock:
            if name in self._topics:
                raise TopicAlreadyExistsError(f"topic {name!r} already exists")
            collides = name.replace(".", "_")
            for other in self._topics:
                if other.replace(".", "_") == collides:
                    raise InvalidTopicError(
                        f"topic {name!r} collides with existing topic {other!r} "
                        "('.' and '_' collide in metric names)"
                    )
            if partitions < 1 or partitions > MAX_PARTITIONS:
                raise InvalidPartitionsError(
                    f"number of partitions must be between 1 and {MAX_PARTITIONS}, got {partitions}"
                )
            self._check_open_files(partitions)
            info = TopicInfo(
                name=name,
                topic_id=uuid.uuid4(),
                partitions=self._assign(0, partitions, replication_factor, replica_assignment),
                configs={k: str(v) for k, v in (configs or {}).items() if v is not None},
                is_internal=is_internal or name.startswith("__"),
            )
            if validate_only:
                return info
            self._topics[name] = info
            self._by_id[info.topic_id] = info
            self._save()
        log.info("created topic %s (%d partitions, id %s)", name, partitions, info.topic_id)
        self._notify("on_topic_created", info)
        return info

    def _check_open_files(self, adding: int) -> None:
        """Refuse partitions this process could not keep open: past its open-file limit the
        broker can neither accept connections nor append, and with the partitions in its
        metadata it cannot start again (one unauthenticated CreateTopics would do it)."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return
        budget = (soft - max(64, soft // RESERVED_FILES_SHARE)) // FILES_PER_PARTITION
        hosted = sum(len(t.partitions) for t in self._topics.values())
        if hosted + adding > budget:
            raise InvalidPartitionsError(
                f"{hosted + adding} partitions would need about "
                f"{(hosted + adding) * FILES_PER_PARTITION} open files; this broker's limit "
                f"(ulimit -n) is {soft}, enough for {budget} partitions ({hosted} exist)"
            )

    def delete_topic(self, name: str) -> TopicInfo:
        with self._lock:
            info = self._topics.pop(name, None)
            if info is None:
                raise UnknownTopicError(f"topic {name!r} does not exist")
            self._by_id.pop(info.topic_id, None)
            self._save()
        log.info("deleted topic %s", name)
        self._notify("on_topic_deleted", info)
        return info

    def add_partitions(
        self,
        name: str,
        total: int,
        *,
        validate_only: bool = False,
        replica_assignment: Sequence[Sequence[int]] | None = None,
    ) -> TopicInfo:
        with self._lock:
            info = self._topics.get(name)
            if info is None:
                raise UnknownTopicError(f"topic {name!r} does not exist")
            old = len(info.partitions)
            if total <= old:
                raise InvalidPartitionsError(
                    f"topic {name!r} has {old} partitions; the new total must be larger, got {total}"
                )
            if total > MAX_PARTITIONS:
                raise InvalidPartitionsError(f"at most {MAX_PARTITIONS} partitions")
            self._check_open_files(total - old)
            rf = len(next(iter(info.partitions.values())).replicas)
            given = (
                None
                if replica_assignment is None
                else {old + k: list(r) for k, r in enumerate(replica_assignment)}
            )
            added = self._assign(old, total - old, rf, given)
            if validate_only:
                return info
            info.partitions.update(added)
            self._save()
        self._notify("on_partitions_added", info, old)
        return info

    def topic_configs(self, name: str) -> dict[str, str]:
        info = self._topics.get(name)
        if info is None:
            raise UnknownTopicError(f"topic {name!r} does not exist")
        return dict(info.configs)

    def set_topic_configs(self, name: str, configs: Mapping[str, str | None]) -> TopicInfo:
        with self._lock:
            info = self._topics.get(name)
            if info is None:
                raise UnknownTopicError(f"topic {name!r} does not exist")
            info.configs = {k: str(v) for k, v in configs.items() if v is not None}
            self._save()
        self._notify("on_topic_configs_changed", info)
        return info

    def alter_partition_isr(
        self, topic: str, index: int, leader_epoch: int, new_isr: list[int]
    ) -> PartitionInfo:
        with self._lock:
            info = self._topics.get(topic)
            if info is None or index not in info.partitions:
                raise UnknownTopicError(f"partition {topic}-{index} does not exist")
            p = info.partitions[index]
            if p.leader_epoch != leader_epoch:
                raise FencedLeaderEpochError(
                    f"{topic}-{index}: leader epoch {leader_epoch} is stale (now {p.leader_epoch})"
                )
            changed = p.isr != list(new_isr)
            p.isr = list(new_isr)
            if changed:
                self._save()
        if changed:
            self._notify("on_partition_state_changed", info, index)
        return p

    def allocate_producer_ids(self, count: int) -> int:
        with self._lock:
            first = self._next_producer_id
            self._next_producer_id += count
            self._save()
            return first
