"""ReplicaManager and Partition: the broker's partitions, their logs, and the append path.

The ReplicaManager opens a ``fastlog.log.Log`` per partition this broker hosts (from the
MetadataStore, and again whenever topics are created, grown, reconfigured or deleted), runs
retention/compaction when the broker asks, and wakes long-polling Fetch requests when
records are appended. A Partition validates produced batches (``_core.scan_batches``:
magic, length, CRC-32C), enforces message.max.bytes, checks idempotent producer sequences
(broker.producer_state), re-encodes batches under the topic's compression.type
(broker.log_validator), appends, and keeps the high watermark. On this single-node
embedded store the ISR is the leader alone, so the high watermark is the log end offset as
soon as an append returns.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broker import log_validator
from broker.metadata import TopicInfo
from broker.producer_state import ProducerStateManager

if TYPE_CHECKING:
    from broker.server import Broker

log = logging.getLogger(__name__)

# Kafka error codes of the append path
NONE = 0
UNKNOWN_SERVER_ERROR = -1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
INVALID_TIMESTAMP = 32
NOT_LEADER_OR_FOLLOWER = 6
NOT_ENOUGH_REPLICAS = 19
INVALID_REQUIRED_ACKS = 21
KAFKA_STORAGE_ERROR = 56
INVALID_RECORD = 87

LONG_MAX = 2**63 - 1
MAX_UNCOMPRESSED_INSPECT = 64 * 1024 * 1024  # bound on decompression when looking inside


@dataclass(slots=True)
class AppendResult:
    error_code: int = NONE
    base_offset: int = -1
    log_append_time: int = -1
    log_start_offset: int = -1
    error_message: str | None = None
    record_errors: list[tuple[int, str | None]] = field(default_factory=list)
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class AppendLimits:
    max_message_bytes: int
    log_append_time: bool
    compacted: bool
    min_insync_replicas: int
    timestamp_before_max_ms: int
    timestamp_after_max_ms: int
    target_compression: int  # log_validator codec, or log_validator.PRODUCER (as sent)
    target_level: int | None = None  # compression.<codec>.level of target_compression


def partition_dir_name(topic: str, index: int) -> str:
    return f"{topic}-{index}"


NO_TIMESTAMP = -1


def _check_timestamps(batch: Any, now_ms: int, limits: AppendLimits) -> str | None:
    """message.timestamp.before/after.max.ms on a CreateTime batch (its first and largest
    timestamps bound every record's). As in Kafka, a record without a timestamp (-1: magic 0
    messages up-converted) has nothing to check."""
    if (
        limits.timestamp_before_max_ms < LONG_MAX
        and batch.base_timestamp != NO_TIMESTAMP
        and now_ms - batch.base_timestamp > limits.timestamp_before_max_ms
    ):
        return (
            f"timestamp {batch.base_timestamp} is more than "
            f"message.timestamp.before.max.ms={limits.timestamp_before_max_ms} in the past"
        )
    if limits.timestamp_after_max_ms < LONG_MAX and (
        batch.max_timestamp - now_ms > limits.timestamp_after_max_ms
    ):
        return (
            f"timestamp {batch.max_timestamp} is more than "
            f"message.timestamp.after.max.ms={limits.timestamp_after_max_ms} in the future"
        )
    return None


class Partition:
    def __init__(
        self, manager: ReplicaManager, topic: TopicInfo, index: int, log_: Any, path: Path
    ) -> None:
        self.manager = manager
        self.topic = topic.name
        self.topic_id = topic.topic_id
        self.index = index
        self.log = log_
        self.path = path
        info = topic.partitions[index]
        self.leader_epoch: int = info.leader_epoch
        self.leader: int = info.leader
        self.replicas: list[int] = list(info.replicas)
        self.isr: list[int] = list(info.isr)
        self.configs: dict[str, str] = dict(topic.configs)
        self.producer_state = ProducerStateManager(
            path, int(manager.broker.config.get("producer.id.expiration.ms"))
        )
        self._waiters: set[asyncio.Future[None]] = set()
        self.deleted = False
        # Set by broker.replication: the leader-epoch-checkpoint cache, and in cluster mode
        # the replication state (high watermark, followers, ISR changes).
        self.leader_epoch_cache: Any = None
        self.replication: Any = None

    offline = False  # set when its log dir fails (broker/log_dirs.py)

    def __repr__(self) -> str:
        return f"Partition({self.topic}-{self.index})"

    # -- offsets -------------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        """This broker leads the partition (always on a single node)."""
        r = self.replication
        return r is None or (r.is_leader and not r.fenced)

    @property
    def high_watermark(self) -> int:
        r = self.replication
        return self.log.end_offset if r is None else r.high_watermark

    @property
    def log_start_offset(self) -> int:
        return self.log.start_offset

    @property
    def log_end_offset(self) -> int:
        return self.log.end_offset

    @property
    def last_stable_offset(self) -> int:
        lso = getattr(self.log, "last_stable_offset", None)
        hw = self.high_watermark
        return hw if lso is None else min(lso, hw)

    # -- config --------------------------------------------------------------------------
    def config_value(self, name: str) -> Any:
        from broker import topic_config

        return topic_config.resolve(name, self.configs, self.manager.broker.config).typed

    def refresh_config(self, topic: TopicInfo) -> None:
        self.configs = dict(topic.configs)
        kwargs = self.manager.log_kwargs(self.configs)
        self.log.update_config(**kwargs)
        self._limits = None

    _limits: AppendLimits | None = None

    @property
    def limits(self) -> AppendLimits:
        """The topic configs the append path enforces, resolved once per config change."""
        if self._limits is None:
            target = log_validator.target_codec(self.topic, self.config_value("compression.type"))
            before = int(self.config_value("message.timestamp.before.max.ms"))
            difference = int(self.config_value("message.timestamp.difference.max.ms"))
            self._limits = AppendLimits(
                max_message_bytes=int(self.config_value("max.message.bytes")),
                log_append_time=self.config_value("message.timestamp.type") == "LogAppendTime",
                compacted="compact" in self.config_value("cleanup.policy"),
                min_insync_replicas=int(self.config_value("min.insync.replicas")),
                timestamp_before_max_ms=min(before, difference),
                timestamp_after_max_ms=int(self.config_value("message.timestamp.after.max.ms")),
                target_compression=target,
                target_level=log_validator.target_level(target, self.config_value),
            )
        return self._limits

    @property
    def max_message_bytes(self) -> int:
        return self.limits.max_message_bytes

    @property
    def log_append_time_type(self) -> bool:
        return self.limits.log_append_time

    @property
    def compacted(self) -> bool:
        return self.limits.compacted

    # -- produce -------------------------------------------------------------------------
    def append(self, records: bytes | bytearray | None, required_acks: int) -> AppendResult:
        """Validate and append a Produce request's record set (synchronous: appends from
        one connection land in request order)."""
        from fastlog import _core

        result = AppendResult(log_start_offset=-1)
        if self.deleted:
            result.error_code = UNKNOWN_TOPIC_OR_PARTITION
            return result
        if self.offline:  # its log dir failed (broker/log_dirs.py)
            result.error_code = KAFKA_STORAGE_ERROR
            return result
        r = self.replication
        if r is not None and (not r.is_leader or r.fenced):
            result.error_code = NOT_LEADER_OR_FOLLOWER
            return result
        if not records:
            # Nothing to append: Kafka answers without error and without an offset.
            result.log_start_offset = self.log_start_offset
            return result
        buf = bytearray(records)
        limits = self.limits
        try:
            # The CRC is checked once, by Log.append_batches (and below for duplicates).
            batches = _core.scan_batches(buf, validate_crc=False)
        except _core.CorruptRecordError as exc:
            result.error_code = CORRUPT_MESSAGE
            result.error_message = str(exc)
            return result
        max_bytes = limits.max_message_bytes
        idempotent = False
        now_ms = int(time.time() * 1000)
        for b in batches:
            if b.size > max_bytes:
                result.error_code = MESSAGE_TOO_LARGE
                result.error_message = (
                    f"batch of {b.size} bytes is larger than max.message.bytes ({max_bytes})"
                )
                return result
            if b.is_control:
                result.error_code = INVALID_RECORD
                result.error_message = "clients cannot send control batches"
                return result
            if b.producer_id >= 0:
                idempotent = True
                if b.base_sequence < 0:  # Kafka's LogValidator
                    result.error_code = INVALID_RECORD
                    result.error_message = (
                        f"invalid sequence number {b.base_sequence} in a batch of producer id "
                        f"{b.producer_id}"
                    )
                    return result
            if not limits.log_append_time and b.timestamp_type == 0:
                error = _check_timestamps(b, now_ms, limits)
                if error is not None:
                    result.error_code = INVALID_TIMESTAMP
                    result.error_message = error
                    return result
        if idempotent and len(batches) != 1:
            result.error_code = INVALID_RECORD
            result.error_message = "idempotent produce requests must carry exactly one batch"
            return result
        if limits.compacted:
            error = self._check_keys(buf, batches)
            if error is not None:
                result.error_code = INVALID_RECORD
                result.error_message = error
                return result
        if required_acks == -1:
            if len(self.isr) < limits.min_insync_replicas:
                result.error_code = NOT_ENOUGH_REPLICAS
                return result

        producer = None
        if idempotent:
            b = batches[0]
            last_seq = b.base_sequence + b.last_offset_delta
            if last_seq > 2**31 - 1:
                last_seq -= 2**31
            error, dup = self.producer_state.check_batch(
                b.producer_id, b.producer_epoch, b.base_sequence, last_seq
            )
            if error:
                result.error_code = error
                result.log_start_offset = self.log_start_offset
                return result
            if dup is not None:
                try:
                    _core.scan_batches(buf)  # the retry must still be intact
                except _core.CorruptRecordError as exc:
                    result.error_code, result.error_message = CORRUPT_MESSAGE, str(exc)
                    return result
                result.base_offset = dup.first_offset
                result.log_start_offset = self.log_start_offset
                result.duplicate = True
                if limits.log_append_time:
                    result.log_append_time = dup.timestamp
                return result
            producer = (b.producer_id, b.producer_epoch, b.base_sequence, last_seq)

        target = limits.target_compression
        if target != log_validator.PRODUCER and log_validator.needs_recompression(batches, target):
            try:  # compression.type: Kafka's LogValidator re-encodes on the leader
                buf = log_validator.recompress(
                    buf,
                    batches,
                    target,
                    max_message_bytes=limits.max_message_bytes,
                    level=limits.target_level,
                )
            except log_validator.RecompressionError as exc:
                result.error_code, result.error_message = exc.error_code, exc.message
                return result

        log_append_time = now_ms if limits.log_append_time else -1
        from fastlog import errors

        try:
            info = self.log.append_batches(
                buf, log_append_time=log_append_time, leader_epoch=self.leader_epoch
            )
        except errors.CorruptRecordError as exc:
            result.error_code, result.error_message = CORRUPT_MESSAGE, str(exc)
            return result
        except errors.RecordTooLargeError as exc:
            result.error_code, result.error_message = MESSAGE_TOO_LARGE, str(exc)
            return result
        except errors.InvalidRecordError as exc:
            result.error_code, result.error_message = INVALID_RECORD, str(exc)
            return result
        except errors.LogClosedError:
            result.error_code = UNKNOWN_TOPIC_OR_PARTITION
            return result
        except (OSError, errors.FastlogError) as exc:
            log.error("append to %s failed: %s", self, exc)
            result.error_code, result.error_message = KAFKA_STORAGE_ERROR, str(exc)
            if isinstance(exc, OSError):  # disk full, I/O error: the log dir is offline
                from broker.log_dirs import log_dir_failed

                log_dir_failed(self.manager, exc, self)
            return result
        result.base_offset = info.first_offset
        result.log_append_time = log_append_time
        result.log_start_offset = self.log_start_offset
        if producer is not None:
            pid, epoch, first_seq, last_seq = producer
            ts = log_append_time if log_append_time >= 0 else info.max_timestamp
            self.producer_state.update(
                pid, epoch, first_seq, last_seq, info.first_offset, info.last_offset, ts
            )
        self.producer_state.map_end_offset = info.last_offset + 1
        self.notify_append()
        return result

    def _check_keys(self, buf: bytearray, batches: list[Any]) -> str | None:
        """Compacted topics need a key on every record (looks inside, bounded memory)."""
        from fastlog import _core

        # validate_records looks at the keys in C: decode_records would make a Python
        # object per record, and a few kB of zstd can hold millions of tiny records
        # (gigabytes of objects, seconds of a blocked event loop).
        for b in batches:
            view = memoryview(buf)[b.position : b.position + b.size]
            try:
                _core.validate_records(
                    view,
                    require_keys=True,
                    validate_crc=False,
                    max_uncompressed=MAX_UNCOMPRESSED_INSPECT,
                )
            except _core.InvalidRecordError as exc:
                return f"compacted topic {self.topic} cannot accept a record without a key: {exc}"
            except _core.CoreError as exc:
                return f"cannot read batch: {exc}"
        return None

    # -- fetch ---------------------------------------------------------------------------
    def notify_append(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def add_waiter(self, fut: asyncio.Future[None]) -> None:
        self._waiters.add(fut)

    def remove_waiter(self, fut: asyncio.Future[None]) -> None:
        self._waiters.discard(fut)

    def read_batches(self, start: int) -> Iterator[Any]:
        """Batch headers of the log from ``start`` (producer state rebuild)."""
        from fastlog import _core

        offset = start
        end = self.log.end_offset
        while offset < end:
            data = self.log.read_bytes(offset, 1 << 20)
            if not data:
                return
            batches = _core.scan_batches(data, validate_crc=False)
            if not batches:
                return
            for b in batches:
                if b.base_offset + b.last_offset_delta >= offset:
                    yield b
            offset = batches[-1].base_offset + batches[-1].last_offset_delta + 1

    def load_producer_state(self) -> None:
        try:
            self.producer_state.load(self.log_start_offset, self.log_end_offset, self.read_batches)
        except Exception:
            log.exception("cannot rebuild producer state of %s; starting empty", self)
            self.producer_state.producers.clear()

    def take_producer_snapshot(self) -> None:
        self.producer_state.remove_expired()
        self.producer_state.take_snapshot(self.log_end_offset)


PARTITION_METADATA = "partition.metadata"


def _topic_id_text(topic_id: uuid.UUID) -> str:
    """Kafka's Uuid.toString: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(topic_id.bytes).rstrip(b"=").decode()


def _claim_partition_dir(path: Path, topic_id: uuid.UUID) -> None:
    """Bind a partition directory to its topic id (Kafka's ``partition.metadata``).

    A directory left by a deleted topic of the same name (a crash between the metadata
    change and the log deletion) carries another id: it is removed, so a re-created topic
    never shows the old topic's records.
    """
    meta = path / PARTITION_METADATA
    want = _topic_id_text(topic_id)
    try:
        text = meta.read_text()
    except FileNotFoundError:
        text = None
    if text is not None:
        stored = (
            dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
            .get("topic_id", "")
            .strip()
        )
        if stored == want:
            return
        log.warning("removing %s: it belongs to an earlier topic (id %s)", path, stored)
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    tmp = meta.with_name(PARTITION_METADATA + ".tmp")
    with open(tmp, "w") as f:
        f.write(f"version: 0\ntopic_id: {want}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, meta)


class ReplicaManager:
    """All partitions hosted by this broker."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.data_dir: Path = broker.data_dir  # the first log dir
        # log.dirs (broker/log_dirs.py); where each partition found at start lives
        self.log_dirs: list[Any] = list(broker.log_dirs)
        self._found: dict[tuple[str, int], Any] = {}
        self.partitions: dict[tuple[str, int], Partition] = {}
        from broker.replica_mover import ReplicaMover

        self.mover = ReplicaMover(self)  # AlterReplicaLogDirs
        # AlterReplicaLogDirs for a replica not created here yet (Kafka's preferred log dir).
        self.preferred_log_dirs: dict[tuple[str, int], Any] = {}
        self._log_cls: Any = None
        self._warned_no_storage = False
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._cleaning: concurrent.futures.Future[bool] | None = None
        broker.metadata.add_listener(self)
        from broker.replication import ReplicationManager

        # Registered after us as a listener: it sees partitions we already opened.
        self.replication = ReplicationManager(broker)
        broker.replication = self.replication

    # -- logs ----------------------------------------------------------------------------
    def _log_class(self) -> Any:
        if self._log_cls is None:
            from fastlog.log import Log

            self._log_cls = Log
        return self._log_cls

    def log_kwargs(self, topic_configs: dict[str, str]) -> dict[str, Any]:
        from broker import topic_config

        try:
            from fastlog.config import LOG_CONFIG_KEYS
        except ImportError:
            LOG_CONFIG_KEYS = None  # noqa: N806
        accepted = LOG_CONFIG_KEYS
        return topic_config.log_kwargs(
            topic_configs,
            self.broker.config,
            accepted=(lambda k: k in accepted) if accepted else None,
        )

    def _open(self, topic: TopicInfo, index: int) -> Partition | None:
        key = (topic.name, index)
        existing = self.partitions.get(key)
        if existing is not None:
            return existing
        try:
            self._log_class()
        except ImportError as exc:
            # The storage engine is importable alone and may be absent in a partial build.
            if not self._warned_no_storage:
                log.error("storage engine unavailable (%s): partitions cannot be served", exc)
                self._warned_no_storage = True
            return None
        log_dir = self._found.get(key)
        if log_dir is None:
            log_dir = self._place(key)
        if log_dir is None or log_dir.offline:
            return None  # its log dir failed (broker/log_dirs.py): it cannot live here
        path = log_dir.path / partition_dir_name(topic.name, index)
        _claim_partition_dir(path, topic.topic_id)
        log_ = self._log_class()(path, **self.log_kwargs(dict(topic.configs)))
        partition = Partition(self, topic, index, log_, path)
        partition.log_dir = log_dir
        self._found[key] = log_dir
        partition.load_producer_state()
        self.partitions[key] = partition
        self.replication.partition_opened(partition)
        return partition

    def _place(self, key: tuple[str, int]) -> Any:
        """The log dir of a new partition: the one AlterReplicaLogDirs named for it before it
        was created here, else the one with the fewest partitions (Kafka's)."""
        from broker.log_dirs import pick_log_dir

        preferred = self.preferred_log_dirs.pop(key, None)
        if preferred is not None and not preferred.offline:
            return preferred
        counts: dict[Any, int] = {}
        for p in self.partitions.values():
            counts[p.log_dir] = counts.get(p.log_dir, 0) + 1
        return pick_log_dir(self.log_dirs, counts)

    def start(self, clean_shutdown: bool) -> None:
        """Open every partition assigned here: those found on disk first, in their own log
        dir (raises broker.log_dirs.LogDirError for one found in two), then new ones."""
        from broker.log_dirs import find_partitions, mark_unreachable, remove_leftovers

        self.clean_shutdown = clean_shutdown
        remove_leftovers(self.log_dirs)
        self._found = find_partitions(self.log_dirs)
        assigned = [
            (topic, index)
            for topic in self.broker.metadata.topics()
            for index, info in sorted(topic.partitions.items())
            if self.broker.node_id in info.replicas
        ]
        # Not found while a log dir is offline: maybe in it, so not created anew elsewhere.
        mark_unreachable(self._found, [(t.name, i) for t, i in assigned], self.log_dirs)
        # Existing logs first, so that the placement of new ones counts them all.
        assigned.sort(key=lambda ti: (ti[0].name, ti[1]) not in self._found)
        for topic, index in assigned:
            self._open(topic, index)
        log.info(
            "opened %d partition(s) in %d log dir(s) (%s shutdown before)",
            len(self.partitions),
            len(self.log_dirs),
            "clean" if clean_shutdown else "unclean",
        )
        self.replication.start()

    def open_log(self, path: Path, configs: dict[str, str]) -> Any:
        return self._log_class()(path, **self.log_kwargs(dict(configs)))

    def replace_log(self, p: Partition, new_log: Any, log_dir: Any) -> None:
        """The partition's log is now ``new_log`` in ``log_dir`` (a finished
        AlterReplicaLogDirs move, broker/replica_mover.py, on the event loop)."""
        p.log, p.path, p.log_dir = new_log, new_log.dir, log_dir
        self._found[(p.topic, p.index)] = log_dir
        p.producer_state = ProducerStateManager(
            p.path, int(self.broker.config.get("producer.id.expiration.ms"))
        )
        p.load_producer_state()
        # The copied leader-epoch-checkpoint (rebuilt from the log if unreadable).
        cache = self.replication._open_cache(p)
        p.leader_epoch_cache = cache
        if p.replication is not None:
            p.replication.cache = cache
        p.notify_append()

    def get_partition(self, topic: str, index: int) -> Partition | None:
        p = self.partitions.get((topic, index))
        if p is not None:
            return p
        info = self.broker.metadata.topic(topic)
        if info is None or index not in info.partitions:
            return None
        if self.broker.node_id not in info.partitions[index].replicas:
            return None
        return self._open(info, index)

    def partitions_of(self, topic: str) -> list[Partition]:
        return sorted(
            (p for (t, _), p in self.partitions.items() if t == topic), key=lambda p: p.index
        )

    # -- MetadataListener ----------------------------------------------------------------
    def on_topic_created(self, topic: TopicInfo) -> None:
        for index in sorted(topic.partitions):
            if self.broker.node_id in topic.partitions[index].replicas:  # a replica here
                self._open(topic, index)

    def on_partitions_added(self, topic: TopicInfo, old_count: int) -> None:
        for index in sorted(topic.partitions):
            if index >= old_count and self.broker.node_id in topic.partitions[index].replicas:
                self._open(topic, index)

    def on_topic_deleted(self, topic: TopicInfo) -> None:
        for index in list(topic.partitions):
            self._found.pop((topic.name, index), None)
            self.mover.cancel((topic.name, index))
            p = self.partitions.pop((topic.name, index), None)
            if p is None:
                continue
            p.deleted = True
            p.notify_append()  # long polls see the partition gone
            try:
                p.log.delete()
            except Exception:
                log.exception("cannot delete the log of %s", p)

    def on_topic_configs_changed(self, topic: TopicInfo) -> None:
        for p in self.partitions_of(topic.name):
            try:
                p.refresh_config(topic)
            except Exception:
                log.exception("cannot apply new configs to %s", p)

    # -- long poll -----------------------------------------------------------------------
    async def wait_for_append(self, partitions: Iterable[Partition], timeout: float) -> bool:
        """Wait until one of ``partitions`` gets an append or ``timeout`` seconds pass."""
        if timeout <= 0:
            return False
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        plist = list(partitions)
        for p in plist:
            p.add_waiter(fut)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            for p in plist:
                p.remove_waiter(fut)

    # -- maintenance ---------------------------------------------------------------------
    async def enforce_retention(self) -> int:
        deleted = 0
        for p in list(self.partitions.values()):
            if p.offline:
                continue  # its log dir failed: nothing runs there any more (as Kafka)
            try:
                n = p.log.enforce_retention()
                deleted += n or 0
            except Exception:
                log.exception("retention of %s failed", p)
            await asyncio.sleep(0)  # let requests in between partitions
        if deleted:
            log.info("retention deleted %d segment(s)", deleted)
        return deleted

    async def maybe_compact(self) -> int:
        """Run the LogCleaner where needed, in a worker thread: the cleaner reads and writes
        without the log's lock (only its final swap takes it), so appends and fetches go on."""
        cleaned = 0
        loop = asyncio.get_running_loop()
        for p in list(self.partitions.values()):
            if not p.compacted or p.deleted or p.offline:
                continue
            self._cleaning = self._cleaner_pool().submit(p.log.maybe_compact)
            try:
                if await asyncio.wrap_future(self._cleaning, loop=loop):
                    cleaned += 1
            except Exception:
                log.exception("compaction of %s failed", p)
        return cleaned

    def _cleaner_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="log-cleaner")
        return self._pool

    async def quiesce(self) -> None:
        """Wait for a cleaner run still in its thread (before the logs are closed)."""
        if self._cleaning is not None and not self._cleaning.done():
            try:
                await asyncio.wrap_future(self._cleaning)
            except Exception:
                log.exception("compaction failed during shutdown")

    def take_producer_snapshots(self) -> None:
        for p in list(self.partitions.values()):
            if p.producer_state.dirty and not p.offline:
                try:
                    p.take_producer_snapshot()
                except OSError as exc:
                    log.warning("cannot snapshot producer state of %s: %s", p, exc)

    def close(self) -> bool:
        """Snapshot producer state, flush and close every log; True if all went well."""
        ok = True
        self.mover.close()  # moves in progress are dropped: partitions stay where they are
        try:
            self.replication.close()  # no fetcher appends to a closing log
        except Exception:
            log.exception("cannot stop replication")
            ok = False
        for p in list(self.partitions.values()):
            if p.offline:
                # Its log dir failed: no producer snapshot into it, and a failure to close
                # (a full disk cannot take the checkpoints) does not make the other log
                # dirs' shutdown unclean; the failed append left no torn bytes behind.
                try:
                    p.log.close()
                except Exception as exc:  # noqa: BLE001 - the directory is known bad
                    log.warning("cannot close the log of %s in a failed log dir: %s", p, exc)
                continue
            try:
                p.take_producer_snapshot()
            except Exception:
                log.exception("cannot snapshot producer state of %s", p)
                ok = False
            try:
                p.log.flush()
                p.log.close()
            except Exception:
                log.exception("cannot close the log of %s", p)
                ok = False
        self.partitions.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        return ok
