"""LeaderEpochFileCache: which leader epoch wrote which offset range of a partition (KIP-101).

Owns the ``leader-epoch-checkpoint`` file of a partition directory, in Kafka's format: a
version line (0), a count line, then one ``epoch startOffset`` line per epoch, oldest first.
Entry (epoch E, start S) says that leader epoch E appended its first record at offset S; E's
range ends where the next entry starts (or at the log end offset for the latest epoch).

A leader assigns its new epoch at its log end offset when it is elected; a follower assigns
the epoch of each batch it copies from the leader. ``end_offset_for`` answers
OffsetForLeaderEpoch, and followers truncate by it instead of by high watermark, so a
returning replica drops exactly the records that no later leader kept. The cache is
truncated together with the log (``truncate_from_end`` / ``truncate_from_start``).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastlog.checkpoint import write_atomic
from fastlog.errors import FastlogError

LEADER_EPOCH_CHECKPOINT = "leader-epoch-checkpoint"
CHECKPOINT_VERSION = 0
UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


class LeaderEpochCheckpointError(FastlogError):
    """The leader-epoch-checkpoint file cannot be read (the cache can be rebuilt from the
    batches' partitionLeaderEpoch with ``rebuild``)."""


class LeaderEpochFileCache:
    """Epoch -> start offset entries of one partition, persisted on every change."""

    def __init__(self, partition_dir: str | Path, *, sync: bool = True) -> None:
        self.path = Path(partition_dir) / LEADER_EPOCH_CHECKPOINT
        self._sync = sync
        self._lock = threading.Lock()
        self._epochs: list[int] = []
        self._offsets: list[int] = []
        self._load()

    # -- file ----------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return
        lines = text.splitlines()
        try:
            version, count = int(lines[0]), int(lines[1])
            if version != CHECKPOINT_VERSION:
                raise ValueError(f"unknown version {version}")
            if count < 0 or len(lines) < 2 + count:
                raise ValueError(f"{count} entries announced, {len(lines) - 2} present")
            entries = []
            for line in lines[2 : 2 + count]:
                epoch_s, offset_s = line.split()
                entries.append((int(epoch_s), int(offset_s)))
        except (ValueError, IndexError) as exc:
            raise LeaderEpochCheckpointError(f"malformed {self.path}: {exc}") from None
        for epoch, offset in entries:
            if (
                epoch < 0
                or offset < 0
                or (self._epochs and (epoch <= self._epochs[-1] or offset < self._offsets[-1]))
            ):
                raise LeaderEpochCheckpointError(
                    f"malformed {self.path}: entry {epoch} {offset} out of order"
                )
            self._epochs.append(epoch)
            self._offsets.append(offset)

    def _flush(self) -> None:
        lines = [str(CHECKPOINT_VERSION), str(len(self._epochs))]
        lines += [f"{e} {o}" for e, o in zip(self._epochs, self._offsets, strict=True)]
        write_atomic(self.path, ("\n".join(lines) + "\n").encode(), sync=self._sync)

    # -- queries -------------------------------------------------------------------------
    def entries(self) -> list[tuple[int, int]]:
        with self._lock:
            return list(zip(self._epochs, self._offsets, strict=True))

    @property
    def latest_epoch(self) -> int:
        """The newest epoch, or -1 when the cache is empty."""
        with self._lock:
            return self._epochs[-1] if self._epochs else UNDEFINED_EPOCH

    @property
    def earliest_entry(self) -> tuple[int, int] | None:
        with self._lock:
            return (self._epochs[0], self._offsets[0]) if self._epochs else None

    def epoch_for_offset(self, offset: int) -> int:
        """The epoch whose range holds ``offset`` (-1 before the first entry)."""
        with self._lock:
            i = bisect.bisect_right(self._offsets, offset) - 1
            return self._epochs[i] if i >= 0 else UNDEFINED_EPOCH

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(epoch, end offset) for OffsetForLeaderEpoch, as Kafka's leader answers it.

        The end offset of an epoch is the start offset of the first larger epoch (the log
        end offset for the latest epoch). The epoch returned is the largest known epoch
        <= the requested one, so a follower whose epoch this leader never had learns where
        their histories diverge. (-1, -1) when the requested epoch is newer than any known
        or the cache is empty.
        """
        with self._lock:
            if requested_epoch == UNDEFINED_EPOCH or not self._epochs:
                return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
            if requested_epoch == self._epochs[-1]:
                return requested_epoch, log_end_offset
            higher = bisect.bisect_right(self._epochs, requested_epoch)
            if higher >= len(self._epochs):
                return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
            if higher == 0:
                # older than every epoch we know: it ended where our first epoch began
                return requested_epoch, self._offsets[0]
            return self._epochs[higher - 1], self._offsets[higher]

    # -- changes -------------------------------------------------------------------------
    def assign(self, epoch: int, start_offset: int) -> bool:
        """Record that ``epoch`` starts at ``start_offset``; True if the file changed.

        A repeated epoch is a no-op. Entries that conflict with the new one (an epoch >= it
        or a start offset >= its start) are dropped first, as Kafka does: they describe a
        history the log no longer has.
        """
        if epoch < 0 or start_offset < 0:
            raise ValueError(f"leader epoch entry {epoch} {start_offset} must not be negative")
        with self._lock:
            if self._epochs and self._epochs[-1] == epoch and start_offset >= self._offsets[-1]:
                return False
            while self._epochs and (self._epochs[-1] >= epoch or self._offsets[-1] >= start_offset):
                self._epochs.pop()
                self._offsets.pop()
            self._epochs.append(epoch)
            self._offsets.append(start_offset)
            self._flush()
            return True

    def assign_batches(self, batches: Iterable[Any]) -> bool:
        """Assign the partitionLeaderEpoch of each batch (fastlog._core.BatchInfo) a follower
        copied, at the batch's base offset."""
        changed = False
        for b in batches:
            epoch = b.partition_leader_epoch
            if epoch >= 0 and (not self._epochs or epoch > self._epochs[-1]):
                changed = self.assign(epoch, b.base_offset) or changed
        return changed

    def truncate_from_end(self, end_offset: int) -> bool:
        """The log was truncated to ``end_offset``: drop epochs starting at or after it."""
        with self._lock:
            n = bisect.bisect_left(self._offsets, end_offset)
            if n == len(self._offsets):
                return False
            del self._epochs[n:], self._offsets[n:]
            self._flush()
            return True

    def truncate_from_start(self, start_offset: int) -> bool:
        """The log start offset moved to ``start_offset``: the epoch holding it now starts
        there, older ones go."""
        with self._lock:
            i = bisect.bisect_right(self._offsets, start_offset) - 1
            if i < 0 or (i == 0 and self._offsets[0] == start_offset):
                return False
            del self._epochs[:i], self._offsets[:i]
            self._offsets[0] = start_offset
            self._flush()
            return True

    def clear(self) -> None:
        with self._lock:
            self._epochs.clear()
            self._offsets.clear()
            self._flush()

    def rebuild(self, batches: Iterable[Any]) -> None:
        """Recreate the entries from the log's batch headers (a lost or damaged file)."""
        with self._lock:
            self._epochs.clear()
            self._offsets.clear()
        for b in batches:
            epoch = b.partition_leader_epoch
            if epoch >= 0 and (not self._epochs or epoch > self._epochs[-1]):
                with self._lock:
                    self._epochs.append(epoch)
                    self._offsets.append(b.base_offset)
        with self._lock:
            self._flush()

    def __repr__(self) -> str:
        return f"LeaderEpochFileCache({self.path}, {self.entries()})"
