"""Idempotent producer state of one partition (Kafka's ProducerStateManager).

For each producer id: its epoch and the metadata (first/last sequence, first/last offset,
timestamp) of its last five appended batches. Before an append the broker asks
``check_batch``: a retried batch that matches a remembered one is a duplicate and gets its
original offsets back without being appended again; a stale epoch is
INVALID_PRODUCER_EPOCH; a gap in sequence numbers is OUT_OF_ORDER_SEQUENCE_NUMBER.

Snapshots: ``<partition dir>/<20-digit offset>.snapshot``, in the layout of Kafka's
producer snapshot v1 (version int16, CRC-32C uint32 of the rest, int32 entry count, then
per entry: producer id int64, epoch int16, last sequence int32, last offset int64, offset
delta int32, timestamp int64, coordinator epoch int32, current txn first offset int64).
We write one entry per remembered batch (oldest first), so up to five per producer survive
a restart. The offset in the file name is the log end offset the state covers; on load the
newest snapshot at or below the log end is read and the log after it is replayed.
"""

from __future__ import annotations

import collections
import logging
import os
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import crc32c

log = logging.getLogger(__name__)

NUM_BATCHES_TO_RETAIN = 5
INT32_MAX = 2**31 - 1
SNAPSHOT_SUFFIX = ".snapshot"
SNAPSHOT_VERSION = 1
SNAPSHOTS_KEPT = 2

# Kafka error codes answered by check_batch.
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47

_HEADER = struct.Struct(">hIi")  # version, crc, count
_ENTRY = struct.Struct(">qhiqiqiq")


@dataclass(slots=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


@dataclass(slots=True)
class ProducerStateEntry:
    producer_id: int
    epoch: int
    batches: collections.deque[BatchMetadata] = field(
        default_factory=lambda: collections.deque(maxlen=NUM_BATCHES_TO_RETAIN)
    )
    last_timestamp: int = -1
    coordinator_epoch: int = -1
    current_txn_first_offset: int = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1

    def find_duplicate(self, epoch: int, first_seq: int, last_seq: int) -> BatchMetadata | None:
        if epoch != self.epoch:
            return None
        for b in self.batches:
            if b.first_seq == first_seq and b.last_seq == last_seq:
                return b
        return None


def in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


def snapshot_path(directory: Path, offset: int) -> Path:
    return directory / f"{offset:020d}{SNAPSHOT_SUFFIX}"


def list_snapshots(directory: Path) -> list[tuple[int, Path]]:
    out = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        if name.endswith(SNAPSHOT_SUFFIX):
            stem = name[: -len(SNAPSHOT_SUFFIX)]
            if stem.isdigit():
                out.append((int(stem), directory / name))
    return sorted(out)


class SnapshotError(Exception):
    """A snapshot file that cannot be read (bad CRC, short...)."""


class ProducerStateManager:
    def __init__(self, directory: str | Path, expiration_ms: int = 86_400_000) -> None:
        self.directory = Path(directory)
        self.expiration_ms = expiration_ms
        self.producers: dict[int, ProducerStateEntry] = {}
        self.map_end_offset = 0  # the state covers the log below this offset
        self.last_snapshot_offset = -1
        self.dirty = False

    # -- the append path -----------------------------------------------------------------
    def check_batch(
        self, producer_id: int, epoch: int, first_seq: int, last_seq: int
    ) -> tuple[int, BatchMetadata | None]:
        """(error code, duplicate) for an idempotent batch about to be appended.

        (0, BatchMetadata) means a duplicate: answer with its offsets, do not append.
        """
        entry = self.producers.get(producer_id)
        if entry is None:
            # Unknown producer (new, or its state expired / was removed with the log):
            # Kafka accepts any sequence here.
            return 0, None
        if epoch < entry.epoch:
            return INVALID_PRODUCER_EPOCH, None
        dup = entry.find_duplicate(epoch, first_seq, last_seq)
        if dup is not None:
            return 0, dup
        if epoch > entry.epoch:
            if first_seq != 0:
                return OUT_OF_ORDER_SEQUENCE_NUMBER, None
            return 0, None
        if entry.batches and not in_sequence(entry.last_seq, first_seq):
            return OUT_OF_ORDER_SEQUENCE_NUMBER, None
        return 0, None

    def update(
        self,
        producer_id: int,
        epoch: int,
        first_seq: int,
        last_seq: int,
        first_offset: int,
        last_offset: int,
        timestamp: int,
    ) -> None:
        entry = self.producers.get(producer_id)
        if entry is None or epoch > entry.epoch:
            entry = ProducerStateEntry(producer_id, epoch)
            self.producers[producer_id] = entry
        entry.batches.append(
            BatchMetadata(first_seq, last_seq, first_offset, last_offset, timestamp)
        )
        entry.last_timestamp = max(entry.last_timestamp, timestamp)
        self.map_end_offset = max(self.map_end_offset, last_offset + 1)
        self.dirty = True

    def update_from_batches(self, batches: Iterable[object]) -> None:
        """Apply batch headers (fastlog._core.BatchInfo) read back from the log."""
        for b in batches:
            pid = b.producer_id  # type: ignore[attr-defined]
            last_offset = b.base_offset + b.last_offset_delta  # type: ignore[attr-defined]
            if pid >= 0 and not b.is_control:  # type: ignore[attr-defined]
                first_seq = b.base_sequence  # type: ignore[attr-defined]
                last_seq = first_seq + b.last_offset_delta  # type: ignore[attr-defined]
                if last_seq > INT32_MAX:
                    last_seq -= INT32_MAX + 1
                self.update(
                    pid,
                    b.producer_epoch,  # type: ignore[attr-defined]
                    first_seq,
                    last_seq,
                    b.base_offset,  # type: ignore[attr-defined]
                    last_offset,
                    b.max_timestamp,  # type: ignore[attr-defined]
                )
            self.map_end_offset = max(self.map_end_offset, last_offset + 1)

    def remove_expired(self, now_ms: int | None = None) -> int:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        expired = [
            pid
            for pid, e in self.producers.items()
            if e.last_timestamp >= 0 and now_ms - e.last_timestamp > self.expiration_ms
        ]
        for pid in expired:
            del self.producers[pid]
        if expired:
            self.dirty = True
        return len(expired)

    # -- snapshots -----------------------------------------------------------------------
    def encode(self) -> bytes:
        body = bytearray()
        count = 0
        for e in self.producers.values():
            for b in e.batches:
                body += _ENTRY.pack(
                    e.producer_id,
                    e.epoch,
                    b.last_seq,
                    b.last_offset,
                    b.last_offset - b.first_offset,
                    b.timestamp,
                    e.coordinator_epoch,
                    e.current_txn_first_offset,
                )
                count += 1
        rest = struct.pack(">i", count) + bytes(body)
        return struct.pack(">hI", SNAPSHOT_VERSION, crc32c.crc32c(rest)) + rest

    @staticmethod
    def decode(data: bytes) -> list[tuple[int, ...]]:
        if len(data) < _HEADER.size:
            raise SnapshotError("snapshot shorter than its header")
        version, crc, count = _HEADER.unpack_from(data, 0)
        if version != SNAPSHOT_VERSION:
            raise SnapshotError(f"unknown snapshot version {version}")
        if crc32c.crc32c(data[6:]) != crc:
            raise SnapshotError("snapshot CRC mismatch")
        if count < 0 or len(data) != _HEADER.size + count * _ENTRY.size:
            raise SnapshotError("snapshot length does not match its entry count")
        return [_ENTRY.unpack_from(data, _HEADER.size + i * _ENTRY.size) for i in range(count)]

    def take_snapshot(self, end_offset: int) -> Path | None:
        """Write the state covering offsets below ``end_offset``; keep the newest two."""
        if end_offset == self.last_snapshot_offset and not self.dirty:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        path = snapshot_path(self.directory, end_offset)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(self.encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self.last_snapshot_offset = end_offset
        self.dirty = False
        for offset, old in list_snapshots(self.directory)[:-SNAPSHOTS_KEPT]:
            if offset != end_offset:
                old.unlink(missing_ok=True)
        return path

    def load(self, log_start_offset: int, log_end_offset: int, read_batches: object) -> None:
        """Rebuild the state: newest valid snapshot at or below the log end, then replay the
        log after it. ``read_batches(from_offset)`` yields BatchInfo of the log from there."""
        self.producers.clear()
        start = log_start_offset
        for offset, path in reversed(list_snapshots(self.directory)):
            if offset > log_end_offset:
                # From a log that was truncated below it (unclean shutdown): useless now.
                path.unlink(missing_ok=True)
                continue
            try:
                entries = self.decode(path.read_bytes())
            except (OSError, SnapshotError) as exc:
                log.warning("ignoring producer snapshot %s: %s", path, exc)
                continue
            for pid, epoch, last_seq, last_offset, delta, ts, coord_epoch, txn_first in entries:
                entry = self.producers.get(pid)
                if entry is None or epoch > entry.epoch:
                    entry = ProducerStateEntry(pid, epoch)
                    self.producers[pid] = entry
                first_seq = (
                    last_seq - delta if last_seq - delta >= 0 else last_seq - delta + INT32_MAX + 1
                )
                entry.batches.append(
                    BatchMetadata(first_seq, last_seq, last_offset - delta, last_offset, ts)
                )
                entry.last_timestamp = max(entry.last_timestamp, ts)
                entry.coordinator_epoch = coord_epoch
                entry.current_txn_first_offset = txn_first
            start = max(offset, log_start_offset)
            self.last_snapshot_offset = offset
            break
        self.map_end_offset = start
        if start < log_end_offset:
            self.update_from_batches(read_batches(start))  # type: ignore[operator]
        self.map_end_offset = log_end_offset
        self.dirty = start != self.last_snapshot_offset

    def truncate_and_reload(
        self, log_start_offset: int, log_end_offset: int, read_batches: object
    ) -> None:
        """After the log was truncated or had records deleted below a snapshot."""
        for offset, path in list_snapshots(self.directory):
            if offset > log_end_offset:
                path.unlink(missing_ok=True)
        self.last_snapshot_offset = -1
        self.load(log_start_offset, log_end_offset, read_batches)
