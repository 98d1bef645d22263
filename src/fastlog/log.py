"""Log: a directory of LogSegments, the unit the embedded API and the broker use.

Owns the log start offset and log end offset, appending (embedded records via
``_core.build_batch``; client batches via ``_core.scan_batches`` + ``_core.assign_offsets``),
rolling on segment.bytes / segment.ms, reading (records for the embedded API, file slices for
the broker's sendfile path), the recovery point and its checkpoint, the clean-shutdown
marker, recovery after an unclean shutdown, retention, truncation, flushing and the lock file.
Compaction lives in fastlog.cleaner.

Files in a log directory (Kafka's names):
  00000000000000000000.log / .index / .timeindex   segments, named by base offset
  recovery-point-offset-checkpoint                 offsets below it are fsynced and trusted
  log-start-offset-checkpoint                      the log start offset (DeleteRecords)
  cleaner-offset-checkpoint                        first dirty offset (compaction)
  .kafka_cleanshutdown                             present only between a clean close and
                                                   the next open: recovery is skipped
  .lock                                            fcntl lock held by the writing process

Thread safety: one RLock serialises every change and every index lookup; bytes are read
outside it. A ``read`` iterator re-checks its segment under the lock between chunks, so it
survives appends (it sees them), rolls, retention and compaction while it is suspended.
"""

from __future__ import annotations

import bisect
import errno
import fcntl
import gc
import logging
import os
import re
import shutil
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from fastlog import _core
from fastlog.checkpoint import OffsetCheckpointFile, fsync_dir, topic_partition_of
from fastlog.config import LogConfig
from fastlog.errors import (
    CorruptRecordError,
    InvalidConfigurationError,
    InvalidRecordError,
    LogClosedError,
    LogLockedError,
    OffsetOutOfRangeError,
    ReadOnlyLogError,
    RecordTooLargeError,
)
from fastlog.records import (
    CORE_TAKES_BARE_VALUES,
    AppendInfo,
    FetchSlice,
    Header,
    Record,
    normalize_one,
    rebuild_batches,
    to_core_records,
)
from fastlog.segment import (
    INDEX_SUFFIX,
    TIME_INDEX_SUFFIX,
    LogSegment,
    now_ms,
    segment_name,
)

logger = logging.getLogger("fastlog.log")

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
CLEANER_OFFSET_CHECKPOINT = "cleaner-offset-checkpoint"
CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
LOCK_FILE = ".lock"
CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
DELETED_SUFFIX = ".deleted"

READ_CHUNK = 256 * 1024
# Kafka: log.flush.offset.checkpoint.interval.ms; flushes between checkpoints stay durable,
# recovery merely re-validates a little more
CHECKPOINT_INTERVAL_MS = 60_000

_INT32_MAX = 2**31 - 1


def _decode(buf: Any, start_offset: int, max_records: int) -> list[Any]:
    """_core.iter_records with the cyclic GC paused. Records are not tracked by the GC, but
    records with headers carry a list each, and letting the collector run over a burst of
    those mid-decode triples the cost."""
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        return _core.iter_records(buf, start_offset, max_records, record_type=Record)
    finally:
        if enabled:
            gc.enable()


_SEGMENT_FILE = re.compile(r"(\d{20})\.(log|index|timeindex)(\.swap|\.cleaned|\.deleted)?")


class Log:
    """An append-only, Kafka-format log in a directory.

    >>> with Log("data/events", segment_bytes=1 << 20) as log:  # doctest: +SKIP
    ...     off = log.append(b"value", key=b"k")
    ...     [r.value for r in log.read(off)]
    """

    def __init__(
        self, path: str | os.PathLike[str], *, read_only: bool = False, **config: Any
    ) -> None:
        """Open (creating if need be) the log in directory ``path`` for writing.

        ``read_only=True`` opens a view for reading only, without the lock file, that may be
        taken while another process writes the log: it changes no file, follows the writer's
        appends and rolls (see ``refresh``), and ignores indexes it cannot trust (the
        writer's active one), walking batch headers instead.
        """
        self.dir = Path(path)
        self.config = LogConfig.from_dict(config)
        self.read_only = read_only
        self._lock = threading.RLock()
        self._cleaner_lock = threading.Lock()
        self._closing = False  # set by close()/delete(): the cleaner stops at the next batch
        self._closed = True
        self._segments: list[LogSegment] = []
        self._bases: list[int] = []
        self._tp = topic_partition_of(self.dir)
        self._lock_fd = -1
        if read_only:
            if not self.dir.is_dir():
                raise FileNotFoundError(f"no log directory {self.dir}")
            try:
                self._load_read_only()
            except BaseException:
                for seg in self._segments:
                    seg.close()
                raise
            self._closed = False
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = self._acquire_lock_file()
        try:
            self._load()
        except BaseException:
            for seg in self._segments:
                seg.close()
            os.close(self._lock_fd)
            raise
        self._closed = False

    # ================================================================== read-only view

    def _open_live_segment(self, base: int) -> LogSegment:
        seg = LogSegment(self.dir, base, self.config, read_only=True)
        try:
            seg.log.size = seg.log.file_size()
            if seg.offset_index.sanity_check(seg.log.size) is not None:
                seg.offset_index.reset()  # the writer's preallocated active index
                seg.time_index.reset()
            seg.load_state(live=True)
            if seg.time_index.sanity_check(seg.next_offset) is not None:
                seg.offset_index.reset()
                seg.time_index.reset()
                seg.load_state(live=True)
            seg.release_index_fds()
        except BaseException:
            seg.close()
            raise
        return seg

    def _segment_bases_on_disk(self) -> list[int]:
        return sorted(
            int(p.name[:20]) for p in self.dir.iterdir() if re.fullmatch(r"\d{20}\.log", p.name)
        )

    def _load_read_only(self) -> None:
        for base in self._segment_bases_on_disk():
            try:
                self._segments.append(self._open_live_segment(base))
            except FileNotFoundError:
                continue  # deleted by the writer meanwhile
        if not self._segments:
            raise FileNotFoundError(f"no log segments in {self.dir}")
        self._rebuild_bases()
        self._after_refresh()
        self._recovery_point = self._end
        self._unflushed = 0
        self._cleaner_checkpoint = 0

    def _after_refresh(self) -> None:
        start = self._checkpoint(LOG_START_OFFSET_CHECKPOINT).read_single() or 0
        self._end = self._segments[-1].next_offset
        self._log_start_offset = min(max(start, self._segments[0].base_offset), self._end)

    def refresh(self) -> None:
        """Read-only view: pick up what the writing process appended, rolled or deleted.

        ``read`` calls it when it reaches the end; the offset properties call it too."""
        if not self.read_only:
            return
        with self._lock:
            self._check_open()
            on_disk = self._segment_bases_on_disk()
            present = set(on_disk)
            for seg in [s for s in self._segments if s.base_offset not in present]:
                self._segments.remove(seg)
                seg.deleted = True  # retention in the writer; readers holding it finish
            if not self._segments:
                on_disk_new = on_disk
            else:
                self._segments[-1].refresh_live()
                on_disk_new = [b for b in on_disk if b > self._segments[-1].base_offset]
            for base in on_disk_new:
                if self._segments:
                    self._segments[-1].refresh_live()  # its last batches before the roll
                try:
                    self._segments.append(self._open_live_segment(base))
                except FileNotFoundError:
                    continue
            if not self._segments:
                raise LogClosedError(f"log {self.dir} was deleted")
            self._rebuild_bases()
            self._after_refresh()

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            raise ReadOnlyLogError(f"log {self.dir} was opened read_only")

    # ================================================================== opening

    def _acquire_lock_file(self) -> int:
        path = self.dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LogLockedError(
                    f"log {self.dir} is already open for writing"
                    + (f" by process {holder}" if holder else "")
                    + f" (lock file {path})"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    def _checkpoint(self, name: str) -> OffsetCheckpointFile:
        return OffsetCheckpointFile(self.dir / name)

    def _load(self) -> None:
        clean = (self.dir / CLEAN_SHUTDOWN_FILE).exists()
        self._remove_leftovers()
        self._complete_swaps()
        recovery_ckpt = self._checkpoint(RECOVERY_POINT_CHECKPOINT).read_single() or 0
        start_ckpt = self._checkpoint(LOG_START_OFFSET_CHECKPOINT).read_single() or 0
        self._cleaner_checkpoint = self._checkpoint(CLEANER_OFFSET_CHECKPOINT).read_single() or 0

        bases = sorted(
            int(p.name[:20]) for p in self.dir.iterdir() if re.fullmatch(r"\d{20}\.log", p.name)
        )
        segments: list[LogSegment] = []
        self._segments = segments  # so a failure below closes what was opened
        changed = False
        recovered: list[LogSegment] = []
        for i, base in enumerate(bases):
            name = segment_name(base)
            missing = [
                s
                for s in (INDEX_SUFFIX, TIME_INDEX_SUFFIX)
                if not (self.dir / f"{name}{s}").exists()
            ]
            seg = LogSegment(self.dir, base, self.config)
            segments.append(seg)
            next_base = bases[i + 1] if i + 1 < len(bases) else None
            problem = f"missing {', '.join(missing)}" if missing else None
            unflushed = not clean and (next_base is None or next_base > recovery_ckpt)
            if not problem and not unflushed:
                problem = seg.offset_index.sanity_check(seg.size)
                if problem is None:
                    try:
                        seg.load_state()
                    except CorruptRecordError as e:
                        problem = str(e)
                if problem is None:
                    problem = seg.time_index.sanity_check(seg.next_offset)
            if problem or unflushed:
                recovered.append(seg)
                if problem:
                    changed = True
                    logger.warning("%s: index %s; rebuilding it", seg.log.path, problem)
                if seg.recover():
                    # everything after a torn/corrupt batch is unreachable: drop it
                    for later in bases[i + 1 :]:
                        stale = LogSegment(self.dir, later, self.config)
                        logger.warning(
                            "%s: deleted, it follows a truncated segment", stale.log.path
                        )
                        stale.delete()
                        stale.log.close()
                        changed = True
                    break
        if not segments:
            segments.append(LogSegment(self.dir, start_ckpt, self.config))
            changed = True
        self._rebuild_bases()
        for seg in segments[:-1]:
            if seg in recovered:
                seg.on_become_inactive()  # rebuilt indexes: final time entry, trimmed
            seg.release_index_fds()
        active = segments[-1]
        active.make_active()
        self._end = active.next_offset
        self._log_start_offset = min(max(start_ckpt, segments[0].base_offset), self._end)
        self._recovery_point = self._end if clean else min(recovery_ckpt, self._end)
        self._unflushed = 0
        self._last_flush_ms = now_ms()
        self._last_checkpoint_ms = 0
        self._dir_dirty = False
        self._checkpointed = (recovery_ckpt, start_ckpt)
        if clean:
            # from here on the directory may change: a crash must not look clean
            os.unlink(self.dir / CLEAN_SHUTDOWN_FILE)
        if clean or changed:
            fsync_dir(self.dir)

    def _remove_leftovers(self) -> None:
        """Delete half-written cleaner output, files marked deleted and temp checkpoints."""
        for p in self.dir.iterdir():
            if p.name.endswith((CLEANED_SUFFIX, DELETED_SUFFIX, ".tmp")):
                p.unlink()
            else:
                m = _SEGMENT_FILE.fullmatch(p.name)
                if m and m.group(2) != "log":
                    has_log = (self.dir / f"{m.group(1)}.log").exists()
                    has_swap = (self.dir / f"{m.group(1)}.log{SWAP_SUFFIX}").exists()
                    if (not m.group(3) and not has_log and not has_swap) or (
                        m.group(3) == SWAP_SUFFIX and not has_swap
                    ):
                        p.unlink()  # an index without its segment (or its swap)

    def _complete_swaps(self) -> None:
        """Finish a compaction interrupted after its output was renamed to .swap (Kafka does
        the same): drop the segments the swap replaces, then rename it into place."""
        swaps = sorted(p for p in self.dir.iterdir() if p.name.endswith(f".log{SWAP_SUFFIX}"))
        for swap_log in swaps:
            base = int(swap_log.name[:20])
            seg = LogSegment(self.dir, base, self.config, suffix=SWAP_SUFFIX)
            try:
                seg.recover()
                last = seg.next_offset - 1
                for p in list(self.dir.iterdir()):
                    m = _SEGMENT_FILE.fullmatch(p.name)
                    if m and not m.group(3) and base <= int(m.group(1)) <= max(last, base):
                        p.unlink()
                seg.on_become_inactive()
                seg.flush()
                seg.rename_suffix("")
                logger.warning("%s: completed an interrupted compaction swap", seg.log.path)
            finally:
                seg.close()
        if swaps:
            fsync_dir(self.dir)

    def _rebuild_bases(self) -> None:
        self._bases = [s.base_offset for s in self._segments]

    # ================================================================== properties

    @property
    def start_offset(self) -> int:
        """The log start offset: the first offset that can be read."""
        if self.read_only and not self._closed:
            self.refresh()
        return self._log_start_offset

    @property
    def end_offset(self) -> int:
        """The log end offset: the offset the next record will get."""
        if self.read_only and not self._closed:
            self.refresh()
        return self._end

    @property
    def last_stable_offset(self) -> int:
        return self._end

    @property
    def recovery_point(self) -> int:
        """Offsets below it are flushed (fsynced) and not re-validated after a crash."""
        return self._recovery_point

    @property
    def segments(self) -> list[LogSegment]:
        with self._lock:
            return list(self._segments)

    @property
    def active_segment(self) -> LogSegment:
        return self._segments[-1]

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._segments)

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return (
            f"Log({str(self.dir)!r}, start_offset={self._log_start_offset}, "
            f"end_offset={self._end}, segments={len(self._segments)})"
        )

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError(f"log {self.dir} is closed")

    # ================================================================== appending

    def append(
        self,
        value: bytes | None,
        key: bytes | None = None,
        headers: Sequence[Header] | None = None,
        timestamp: int | None = None,
    ) -> int:
        """Append one record; returns its offset."""
        now = now_ms()
        return self._append_records([normalize_one(0, (key, value, headers, timestamp), now)], now)

    def append_batch(self, records: Iterable[Any]) -> int:
        """Append records as one batch; returns the offset of the first.

        Each item: bytes (a value), None (a null value), or a tuple
        (key, value[, headers[, timestamp]]).
        """
        now = now_ms()
        if not isinstance(records, (list, tuple)):
            if isinstance(records, (bytes, bytearray, memoryview, str)):
                raise InvalidRecordError("append_batch takes a sequence of records, not one value")
            try:
                records = list(records)
            except TypeError:
                raise InvalidRecordError(
                    f"append_batch takes a sequence of records, not {type(records).__name__}"
                ) from None
        try:
            return self._append_records(to_core_records(records, now), now)
        except InvalidRecordError:
            # the fast path let the core check types: redo it item by item for a clear error
            return self._append_records(to_core_records(records, now, validate=True), now)

    def _append_records(self, records: list[Any], now: int | None = None) -> int:
        if not records:
            raise InvalidRecordError("append_batch needs at least one record")
        cfg = self.config
        ts_type = 0
        if cfg.compact or cfg.log_append_time:
            if CORE_TAKES_BARE_VALUES and records and type(records[0]) is bytes:
                records = to_core_records(records, now or now_ms(), validate=True)
            if cfg.compact and any(r[0] is None for r in records):
                # Kafka: "Compacted topic cannot accept message without key"
                raise InvalidRecordError(f"log {self.dir} is compacted: every record needs a key")
            if cfg.log_append_time:
                t = now_ms()
                records = [(k, v, h, t) for k, v, h, _ in records]
                ts_type = 1
        with self._lock:
            self._check_writable()
            base = self._end
            try:
                if ts_type or not CORE_TAKES_BARE_VALUES:
                    batch = _core.build_batch(records, base_offset=base, timestamp_type=ts_type)
                else:
                    batch = _core.build_batch(records, base_offset=base, timestamp=now)
            except (TypeError, ValueError, OverflowError) as e:
                raise InvalidRecordError(f"cannot encode records: {e}") from e
            if len(batch) > cfg.max_message_bytes:
                raise RecordTooLargeError(
                    f"batch of {len(records)} records is {len(batch)} bytes, above "
                    f"max.message.bytes={cfg.max_message_bytes}"
                )
            infos = _core.scan_batches(batch, False)
            self._append_locked(batch, infos, len(records))
            return base

    def append_batches(
        self,
        buf: bytearray | memoryview,
        *,
        assign_offsets: bool = True,
        log_append_time: int = -1,
        leader_epoch: int = -1,
    ) -> AppendInfo:
        """Append v2 batches as a client (or, with assign_offsets=False, a leader) sent them.

        Validated by _core.scan_batches (length, magic, CRC-32C); offsets (and LogAppendTime)
        are written into ``buf`` in place, then the bytes are appended unchanged.
        """
        if assign_offsets and (
            not isinstance(buf, (bytearray, memoryview))
            or (isinstance(buf, memoryview) and buf.readonly)
        ):
            raise InvalidRecordError("append_batches needs a writable buffer (bytearray)")
        infos = _core.scan_batches(buf)
        if not infos:
            raise InvalidRecordError("no record batches in the buffer")
        cfg = self.config
        records = 0
        for info in infos:
            if info.size > cfg.max_message_bytes:
                raise RecordTooLargeError(
                    f"batch of {info.size} bytes is above max.message.bytes={cfg.max_message_bytes}"
                )
            if assign_offsets and info.record_count != info.last_offset_delta + 1:
                raise InvalidRecordError(
                    f"batch at {info.position}: {info.record_count} records but "
                    f"lastOffsetDelta {info.last_offset_delta}"
                )
            records += info.record_count
        if assign_offsets:
            # Kafka's LogValidator: record counts, offset deltas, record framing, and keys
            # when the log is compacted; in C, no object per record (CRCs were checked above)
            _core.validate_records(buf, require_keys=cfg.compact, validate_crc=False)
        total = infos[-1].position + infos[-1].size
        if total > cfg.segment_bytes:
            raise RecordTooLargeError(
                f"{total} bytes of batches is above segment.bytes={cfg.segment_bytes}"
            )
        with self._lock:
            self._check_writable()
            if log_append_time < 0 and cfg.log_append_time:
                log_append_time = now_ms()
            first = self._end
            if assign_offsets:
                last, max_ts, off_max = _core.assign_offsets(buf, first, log_append_time)
            else:
                prev = first - 1
                for info in infos:
                    if info.base_offset <= prev or info.last_offset < info.base_offset:
                        raise InvalidRecordError(
                            f"batch with base offset {info.base_offset} does not follow "
                            f"offset {prev} (log end offset {self._end})"
                        )
                    prev = info.last_offset
                first = infos[0].base_offset
                last = infos[-1].last_offset
                max_ts, off_max = -1, first
                for info in infos:
                    if info.max_timestamp > max_ts:
                        max_ts, off_max = info.max_timestamp, info.last_offset
                log_append_time = -1
            if leader_epoch >= 0:
                _core.set_partition_leader_epoch(buf, leader_epoch)
            if assign_offsets or leader_epoch >= 0:
                infos = _core.scan_batches(buf, False)
            self._append_locked(buf, infos, records, last)
            return AppendInfo(
                first_offset=first,
                last_offset=last,
                max_timestamp=max_ts,
                offset_of_max_timestamp=off_max,
                log_append_time=log_append_time,
                batches=list(infos),
                log_start_offset=self._log_start_offset,
            )

    def _append_locked(
        self, data: Any, infos: list[Any], records: int, last_offset: int | None = None
    ) -> None:
        cfg = self.config
        if last_offset is None:
            last_offset = infos[-1].last_offset
        max_ts = max(i.max_timestamp for i in infos) if len(infos) > 1 else infos[0].max_timestamp
        now = now_ms()
        seg = self._segments[-1]
        first = infos[0].base_offset
        if first - seg.base_offset > _INT32_MAX or seg.should_roll(
            len(data), max_ts, last_offset, cfg.segment_bytes, cfg.segment_ms, now
        ):
            # a replicated batch far past the end (a compacted leader) starts its own segment
            seg = self._roll_locked(new_base=max(self._end, first))
        seg.append(data, infos)
        self._end = last_offset + 1
        self._unflushed += records
        if (cfg.flush_messages is not None and self._unflushed >= cfg.flush_messages) or (
            cfg.flush_ms is not None and now - self._last_flush_ms >= cfg.flush_ms
        ):
            self._flush_locked(self._end, checkpoint=False)

    def _roll_locked(
        self, *, enforce_retention: bool = True, new_base: int | None = None
    ) -> LogSegment:
        old = self._segments[-1]
        new_base = self._end if new_base is None else new_base
        if old.base_offset == new_base:
            return old  # empty active segment: nothing to roll
        old.on_become_inactive()
        new = LogSegment(self.dir, new_base, self.config)
        new.make_active()
        self._segments.append(new)
        self._rebuild_bases()
        self._dir_dirty = True
        # Kafka flushes the rolled segment: only the active one is left to recover
        self._flush_locked(new_base, checkpoint=True)
        old.release_index_fds()
        if enforce_retention:
            self._enforce_retention_locked()
        return new

    def roll(self) -> None:
        """Start a new active segment now (tests, tools); no-op if the active one is empty."""
        with self._lock:
            self._check_writable()
            self._roll_locked()

    # ================================================================== flushing

    def flush(self) -> None:
        """fsync everything appended so far (data, indexes) and checkpoint the recovery point."""
        with self._lock:
            self._check_writable()
            self._flush_locked(self._end, checkpoint=True)

    def maybe_flush(self) -> bool:
        """fsync if flush.ms has passed since the last fsync and something is unflushed (for
        a scheduler: the embedded log otherwise checks flush.ms only when appending)."""
        with self._lock:
            if self._closed or self.read_only or self.config.flush_ms is None:
                return False
            if self._end > self._recovery_point and (
                now_ms() - self._last_flush_ms >= self.config.flush_ms
            ):
                self._flush_locked(self._end, checkpoint=False)
                return True
            return False

    def _flush_locked(self, offset: int, *, checkpoint: bool) -> None:
        if offset > self._recovery_point or self._unflushed:
            for i, seg in enumerate(self._segments):
                next_base = self._bases[i + 1] if i + 1 < len(self._bases) else None
                if (next_base is None or next_base > self._recovery_point) and (
                    seg.base_offset < offset
                ):
                    seg.flush()
            if self._dir_dirty:
                fsync_dir(self.dir)
                self._dir_dirty = False
            self._recovery_point = max(self._recovery_point, offset)
            self._unflushed = 0
            self._last_flush_ms = now_ms()
        now = now_ms()
        if checkpoint or now - self._last_checkpoint_ms >= CHECKPOINT_INTERVAL_MS:
            self._write_checkpoints()
            self._last_checkpoint_ms = now

    def _write_checkpoints(self) -> None:
        rp, start = self._recovery_point, self._log_start_offset
        if self._checkpointed[0] != rp:
            self._checkpoint(RECOVERY_POINT_CHECKPOINT).write({self._tp: rp})
        if self._checkpointed[1] != start:
            self._checkpoint(LOG_START_OFFSET_CHECKPOINT).write({self._tp: start})
        self._checkpointed = (rp, start)

    def _write_log_start_checkpoint(self) -> None:
        # written at once: DeleteRecords must survive a crash
        self._checkpoint(LOG_START_OFFSET_CHECKPOINT).write({self._tp: self._log_start_offset})
        self._checkpointed = (self._checkpointed[0], self._log_start_offset)

    # ================================================================== reading

    def read(self, offset: int | None = None, max_records: int | None = None) -> Iterator[Record]:
        """Records from ``offset`` (default: the log start offset) to the log end offset.

        The iterator reads in chunks; appends made while it is suspended are seen. Raises
        OffsetOutOfRangeError for an offset outside [start_offset, end_offset].
        """
        if max_records is not None and (not isinstance(max_records, int) or max_records < 0):
            raise ValueError("max_records must be None or an int >= 0")
        with self._lock:
            self._check_open()
            if self.read_only:
                self.refresh()
            if offset is None:
                offset = self._log_start_offset
            if not isinstance(offset, int) or isinstance(offset, bool):
                raise TypeError(f"offset must be an int, got {type(offset).__name__}")
            if not self._log_start_offset <= offset <= self._end:
                raise OffsetOutOfRangeError(
                    f"offset {offset} is outside [{self._log_start_offset}, {self._end}]"
                )
        # chain: records are handed out at C speed; the generator runs once per chunk
        return chain.from_iterable(
            self._read_chunks(offset, -1 if max_records is None else max_records)
        )

    def __iter__(self) -> Iterator[Record]:
        return self.read()

    def _locate(self, offset: int) -> tuple[LogSegment, Any] | None:
        i = max(bisect.bisect_right(self._bases, offset) - 1, 0)
        while i < len(self._segments):
            seg = self._segments[i]
            b = seg.translate_offset(offset)
            if b is not None:
                return seg, b
            i += 1
        return None

    def _segment_after(self, seg: LogSegment) -> LogSegment | None:
        i = bisect.bisect_right(self._bases, seg.base_offset)
        return self._segments[i] if i < len(self._segments) else None

    def _read_chunks(self, offset: int, remaining: int) -> Iterator[list[Record]]:
        seg: LogSegment | None = None
        pos = gen = 0
        want = READ_CHUNK
        while remaining != 0:
            with self._lock:
                self._check_open()
                if offset >= self._end and self.read_only:
                    self.refresh()  # the writing process may have appended since
                if offset >= self._end:
                    return
                if seg is None or seg.deleted or seg.generation != gen:
                    if offset < self._log_start_offset:
                        # retention / DeleteRecords overtook this reader: say so rather
                        # than skip ahead silently (Kafka answers OFFSET_OUT_OF_RANGE)
                        raise OffsetOutOfRangeError(
                            f"offset {offset} was deleted while being read "
                            f"(log start offset is now {self._log_start_offset})"
                        )
                    loc = self._locate(offset)
                    if loc is None:
                        return
                    seg, first = loc
                    pos, gen = first.position, seg.generation
                    # a short read (a lookup) needs the first batch only
                    want = first.size if 0 < remaining <= 16 else max(READ_CHUNK, first.size)
                limit = seg.size
                if pos >= limit:
                    nxt = self._segment_after(seg)
                    if nxt is None:
                        return
                    seg, pos, gen = nxt, 0, nxt.generation
                    continue
                f = seg.log
            try:
                data = f.read(pos, min(want, limit - pos))
            except OSError:
                self._check_open()  # closed under us: say so
                raise
            want = READ_CHUNK
            # boundaries only: iter_records checks each batch's CRC as it decodes it
            infos = _core.scan_batches(data, False, True)
            end = infos[-1].position + infos[-1].size if infos else 0
            if end < len(data):
                rest = len(data) - end
                need = (
                    int.from_bytes(data[end + 8 : end + 12], "big", signed=True) + 12
                    if rest >= 12
                    else -1
                )
                straddles = need >= 61 and need > rest and pos + end + need <= limit
                if not straddles and not (rest < 12 and pos + len(data) < limit):
                    if seg.generation != gen:
                        seg = None
                        continue
                    raise CorruptRecordError(
                        f"{f.path}: corrupt record batch at position {pos + end}"
                    )
                if end == 0:
                    want = need  # a batch larger than the chunk: read it whole next
                    continue
            if seg.generation != gen:
                seg = None  # truncated while we read: relocate
                continue
            recs = _decode(data if end == len(data) else memoryview(data)[:end], offset, remaining)
            offset = max(offset, infos[-1].last_offset + 1)
            pos += end
            if remaining > 0:
                remaining -= len(recs)
            if recs:
                yield recs

    def read_slice(
        self,
        offset: int,
        max_bytes: int,
        max_offset: int | None = None,
        min_one_batch: bool = True,
    ) -> FetchSlice | None:
        """Whole batches of one segment starting with the batch that holds ``offset``.

        At most ``max_bytes`` (but one whole batch if ``min_one_batch``, KIP-74); batches whose
        base offset is >= ``max_offset`` (the high watermark) are left out. None when there
        is nothing to return.
        """
        with self._lock:
            self._check_open()
            if not self._log_start_offset <= offset <= self._end:
                raise OffsetOutOfRangeError(
                    f"offset {offset} is outside [{self._log_start_offset}, {self._end}]"
                )
            if offset == self._end or (max_offset is not None and offset >= max_offset):
                return None
            loc = self._locate(offset)
            if loc is None:
                return None
            seg, first = loc
            if max_offset is not None and first.base_offset >= max_offset:
                return None
            limit = seg.size
            if max_offset is not None and max_offset < seg.next_offset:
                hw = seg.translate_offset(max_offset, first.position)
                if hw is not None:
                    limit = hw.position if hw.base_offset >= max_offset else hw.position + hw.size
            target = first.position + max(max_bytes, 0)
            end = limit if target >= limit else seg.boundary_at_or_before(target, first.position)
            if end <= first.position:
                if not min_one_batch:
                    return None
                end = first.position + first.size
            return FetchSlice(
                file=seg.log,
                fd=seg.log.fileno(),
                position=first.position,
                length=end - first.position,
                first_offset=first.base_offset,
            )

    def read_bytes(self, offset: int, max_bytes: int, max_offset: int | None = None) -> bytes:
        """The bytes ``read_slice`` would send (copied); b"" when there is nothing."""
        s = self.read_slice(offset, max_bytes, max_offset)
        return s.read() if s is not None else b""

    def offset_for_timestamp(self, timestamp: int) -> int | None:
        """The first offset whose record timestamp is >= ``timestamp`` (Kafka's ListOffsets),
        or None if every record is older."""
        with self._lock:
            self._check_open()
            for seg in self._segments:
                if seg.max_timestamp_so_far >= timestamp:
                    found = seg.find_offset_by_timestamp(timestamp, self._log_start_offset)
                    if found is not None:
                        return found
            return None

    def max_timestamp_and_offset(self) -> tuple[int, int] | None:
        """(max timestamp, its offset) over the log (ListOffsets MAX_TIMESTAMP), or None."""
        with self._lock:
            best: tuple[int, int] | None = None
            for seg in self._segments:
                ts = seg.max_timestamp_so_far
                if ts >= 0 and (best is None or ts > best[0]):
                    best = (ts, max(seg.offset_of_max_timestamp_so_far, self._log_start_offset))
            return best

    # ================================================================== deleting

    def delete_before(self, offset: int) -> int:
        """Advance the log start offset to ``offset`` (DeleteRecords); returns the new one.

        Segments wholly below it are deleted now; records below it in the first remaining
        segment are no longer readable.
        """
        with self._lock:
            self._check_writable()
            if not 0 <= offset <= self._end:
                raise OffsetOutOfRangeError(
                    f"cannot delete before {offset}: log end offset is {self._end}"
                )
            if offset > self._log_start_offset:
                self._log_start_offset = offset
                self._write_log_start_checkpoint()
                self._delete_segments(self._log_start_breached())
            return self._log_start_offset

    def enforce_retention(self, now: int | None = None) -> int:
        """Delete segments past retention.ms / retention.bytes / the log start offset.

        Returns the number of segments deleted. Embedded logs run it on every roll; the broker
        calls it periodically.
        """
        with self._lock:
            self._check_writable()
            return self._enforce_retention_locked(now)

    def _enforce_retention_locked(self, now: int | None = None) -> int:
        deleted = self._delete_segments(self._log_start_breached())
        cfg = self.config
        if cfg.delete:
            if cfg.retention_ms >= 0:
                horizon = (now_ms() if now is None else now) - cfg.retention_ms
                deleted += self._delete_segments(
                    self._deletable(lambda seg: seg.largest_timestamp < horizon)
                )
            if cfg.retention_bytes >= 0:
                excess = [sum(s.size for s in self._segments) - cfg.retention_bytes]

                def over(seg: LogSegment) -> bool:
                    if excess[0] - seg.size >= 0:
                        excess[0] -= seg.size
                        return True
                    return False

                deleted += self._delete_segments(self._deletable(over))
        return deleted

    def _log_start_breached(self) -> list[LogSegment]:
        out = []
        for seg, nxt in zip(self._segments, self._bases[1:], strict=False):
            if nxt > self._log_start_offset:
                break
            out.append(seg)
        return out

    def _deletable(self, predicate: Any) -> list[LogSegment]:
        out: list[LogSegment] = []
        empty: list[LogSegment] = []
        for i, seg in enumerate(self._segments):
            last = i == len(self._segments) - 1
            if seg.size == 0 and not last:
                # an empty segment (left by compaction) has no timestamp of its own: it goes
                # with the next segment, or not at all
                empty.append(seg)
                continue
            if (last and seg.size == 0) or not predicate(seg):
                break
            out += empty
            out.append(seg)
            empty = []
        return out

    def _delete_segments(self, doomed: list[LogSegment]) -> int:
        if not doomed:
            return 0
        if len(doomed) == len(self._segments):
            # keep one segment: roll so the active one can go
            self._roll_locked(enforce_retention=False)
        for seg in doomed:
            self._segments.remove(seg)
            seg.delete()
            logger.info("%s: deleted segment %s", self.dir, seg)
        self._rebuild_bases()
        fsync_dir(self.dir)
        new_start = max(self._log_start_offset, self._segments[0].base_offset)
        if new_start != self._log_start_offset:
            self._log_start_offset = new_start
            self._write_log_start_checkpoint()
        return len(doomed)

    def truncate_to(self, offset: int) -> None:
        """Remove every record with offset >= ``offset`` (the end offset becomes ``offset``).

        A batch straddling ``offset`` is re-written with its records below ``offset``.
        """
        with self._lock:
            self._check_writable()
            if offset < 0:
                raise OffsetOutOfRangeError(f"cannot truncate to a negative offset {offset}")
            if offset >= self._end:
                return
            if offset <= self._segments[0].base_offset or offset < self._log_start_offset:
                self._truncate_fully_locked(offset)
                return
            i = max(bisect.bisect_right(self._bases, offset) - 1, 0)
            seg = self._segments[i]
            for later in self._segments[i + 1 :]:
                later.delete()
            del self._segments[i + 1 :]
            self._rebuild_bases()
            keep: bytes = b""
            b = seg.translate_offset(offset)
            if b is not None and b.base_offset < offset:
                batch = seg.read(b.position, b.size)
                info = _core.scan_batches(batch)[0]
                recs = [r for r in _core.decode_records(batch) if r[0] < offset]
                keep = rebuild_batches(recs, info) if recs else b""
            seg.truncate_to(offset)
            seg.make_active()
            if keep:
                seg.append(keep, _core.scan_batches(keep, False))
            self._end = offset
            if seg.next_offset < offset:
                # the end falls in a gap (compacted records): an empty segment based at it
                # keeps the end offset across a reopen
                self._roll_locked(enforce_retention=False, new_base=offset)
            self._after_truncation()

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Empty the log and restart it at ``offset``, which may lie past the end (Kafka's
        truncateFullyAndStartAt: a follower whose leader's log now starts beyond it)."""
        with self._lock:
            self._check_writable()
            if offset < 0:
                raise OffsetOutOfRangeError(f"cannot start a log at a negative offset {offset}")
            self._truncate_fully_locked(offset)

    def _truncate_fully_locked(self, offset: int) -> None:
        for seg in self._segments:
            seg.delete()
        self._segments = [LogSegment(self.dir, offset, self.config)]
        self._segments[0].make_active()
        self._rebuild_bases()
        self._end = offset
        self._log_start_offset = offset
        self._after_truncation()

    def _after_truncation(self) -> None:
        self._recovery_point = min(self._recovery_point, self._end)
        self._cleaner_checkpoint = min(self._cleaner_checkpoint, self._end)
        self._checkpoint(CLEANER_OFFSET_CHECKPOINT).write({self._tp: self._cleaner_checkpoint})
        self._write_checkpoints()
        fsync_dir(self.dir)

    # ================================================================== compaction

    def compact(self) -> Any:
        """Run the LogCleaner now, whatever the dirty ratio (cleanup.policy must include
        compact). Returns its CleanerStats, or None if nothing was cleanable."""
        from fastlog.cleaner import LogCleaner

        if not self.config.compact:
            raise InvalidConfigurationError(
                f"log {self.dir} has cleanup.policy={self.config.cleanup_policy}: "
                "compaction needs cleanup_policy='compact' (or 'compact,delete')"
            )
        self._check_writable()
        return LogCleaner(self).clean()

    def maybe_compact(self) -> bool:
        """Clean if cleanup.policy includes compact and the dirty ratio reaches
        min.cleanable.dirty.ratio; True if it cleaned."""
        from fastlog.cleaner import LogCleaner

        if not self.config.compact or self._closed or self.read_only:
            return False
        cleaner = LogCleaner(self)
        if not cleaner.needs_cleaning():
            return False
        return cleaner.clean() is not None

    # ================================================================== config & lifecycle

    def update_config(self, **config: Any) -> None:
        """Change settings on the live log (new segment sizes apply from the next roll)."""
        with self._lock:
            self.config = self.config.update(config)
            for seg in self._segments:
                seg.update_config(self.config)

    def close(self) -> None:
        """Flush, trim the active segment's indexes and leave the clean-shutdown marker.

        A cleaning in progress (another thread) is aborted first, as Kafka aborts cleaning
        of a partition being closed or deleted."""
        self._closing = True
        with self._cleaner_lock, self._lock:
            if self._closed:
                return
            self._closed = True
            if self.read_only:
                for seg in self._segments:
                    seg.close()
                return
            try:
                active = self._segments[-1]
                active.on_become_inactive()
                self._flush_locked(self._end, checkpoint=True)
                # no directory fsync for the marker: losing it only costs a recovery
                (self.dir / CLEAN_SHUTDOWN_FILE).touch()
            finally:
                for seg in self._segments:
                    seg.close()
                os.close(self._lock_fd)

    def delete(self) -> None:
        """Close the log and remove its directory (DeleteTopics)."""
        if self.read_only:
            raise ReadOnlyLogError(f"log {self.dir} was opened read_only")
        self._closing = True
        with self._cleaner_lock, self._lock:
            if not self._closed:
                self._closed = True
                for seg in self._segments:
                    seg.close()
                os.close(self._lock_fd)
            shutil.rmtree(self.dir, ignore_errors=True)

    def __del__(self) -> None:
        # never closed: release the lock and the files (no clean-shutdown marker, so the
        # next open recovers), as an unclosed file does, with a ResourceWarning
        if getattr(self, "_closed", True):
            return
        self._closed = True
        warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=1, source=self)
        for seg in self._segments:
            try:
                seg.close()
            except (OSError, BufferError, ValueError):
                pass
        if self._lock_fd >= 0:
            try:
                os.close(self._lock_fd)
            except OSError:
                pass

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ================================================================== internals

    def _cleanable_segments(self, now: int) -> list[LogSegment]:
        """Segments the cleaner may rewrite: never the active one, none newer than
        min.compaction.lag.ms."""
        out = []
        lag = self.config.min_compaction_lag_ms
        for seg in self._segments[:-1]:
            if lag > 0 and seg.largest_timestamp > now - lag:
                break
            out.append(seg)
        return out

    def _write_cleaner_checkpoint(self, offset: int) -> None:
        self._cleaner_checkpoint = offset
        self._checkpoint(CLEANER_OFFSET_CHECKPOINT).write({self._tp: offset})
