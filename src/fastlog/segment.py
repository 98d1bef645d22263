"""LogSegment and FileRecords: one segment of a log on disk.

A segment is three files named by its base offset in 20 digits: ``.log`` (record batches v2,
byte for byte), ``.index`` (OffsetIndex) and ``.timeindex`` (TimeIndex). This module owns
appending batches to a segment and indexing them (one index entry per index.interval.bytes,
at batch granularity, like Kafka), translating an offset or a timestamp into a file position,
recovering (re-validating) a segment after an unclean shutdown, and truncation.

The caller (fastlog.log.Log) serialises every call with its lock; reading bytes
(FileRecords.read, os.pread) is safe without it.
"""

from __future__ import annotations

import logging
import os
import random
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastlog import _core
from fastlog.config import LogConfig
from fastlog.errors import CorruptRecordError
from fastlog.index import OffsetIndex, TimeIndex

logger = logging.getLogger("fastlog.log")

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"

# baseOffset, batchLength, partitionLeaderEpoch, magic, crc, attributes, lastOffsetDelta,
# baseTimestamp, maxTimestamp: the first 43 bytes of a v2 batch
_HEADER = struct.Struct(">qiibIhiqq")
_MIN_BATCH_LENGTH = 49  # batchLength of an empty v2 batch (61 - 12)
_WALK_WINDOW = 4096
RECOVERY_CHUNK = 8 * 1024 * 1024
_INT32_MAX = 2**31 - 1


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}"


class FileRecords:
    """The ``.log`` file of a segment: an fd opened for append, read with pread.

    Dropping the last reference closes the fd; a deleted segment's FileRecords therefore
    stays readable for whoever still holds it (a FetchSlice being sent, a reader).
    """

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = path
        if read_only:
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        else:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        # bytes of whole batches (a read-only view of a live log may see a batch half-written)
        self.size = os.fstat(self._fd).st_size

    def file_size(self) -> int:
        return os.fstat(self._fd).st_size

    def fileno(self) -> int:
        if self._fd < 0:
            raise ValueError(f"{self.path} is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def append(self, data: Any) -> int:
        """Write ``data`` at the end; returns the position it starts at."""
        position = self.size
        size = len(data) if type(data) is bytes else memoryview(data).nbytes
        try:
            written = os.write(self._fd, data)
            if written < size:  # a short write (signal, full disk): finish or fail
                view = memoryview(data).cast("B")[written:]
                while view:
                    view = view[os.write(self._fd, view) :]
        except BaseException:
            # never leave a torn batch behind the bytes we report as written
            os.ftruncate(self._fd, position)
            raise
        self.size = position + size
        return position

    def read(self, position: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``position`` (fewer only at the end of the file)."""
        data = os.pread(self._fd, size, position)
        if len(data) < size and data:
            parts = [data]
            got = len(data)
            while got < size:
                more = os.pread(self._fd, size - got, position + got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        return data

    def truncate_to(self, size: int) -> int:
        truncated = self.size - size
        if truncated > 0:
            os.ftruncate(self._fd, size)
            self.size = size
        return max(truncated, 0)

    def flush(self) -> None:
        os.fsync(self._fd)

    def rename(self, path: Path) -> None:
        os.replace(self.path, path)
        self.path = path

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


@dataclass(slots=True)
class BatchPosition:
    """Where one batch lies in a segment file (from its header)."""

    position: int
    base_offset: int
    size: int
    last_offset: int
    max_timestamp: int


class LogSegment:
    """One segment: FileRecords plus its OffsetIndex and TimeIndex."""

    def __init__(
        self,
        directory: Path,
        base_offset: int,
        config: LogConfig,
        suffix: str = "",
        read_only: bool = False,
    ) -> None:
        self.dir = directory
        self.base_offset = base_offset
        self.suffix = suffix
        self.read_only = read_only
        self._index_interval = config.index_interval_bytes
        self._index_bytes = config.segment_index_bytes
        name = segment_name(base_offset)
        self.log = FileRecords(directory / f"{name}{LOG_SUFFIX}{suffix}", read_only)
        try:
            self.offset_index = OffsetIndex(
                directory / f"{name}{INDEX_SUFFIX}{suffix}",
                base_offset,
                self._index_bytes,
                read_only,
            )
            self.time_index = TimeIndex(
                directory / f"{name}{TIME_INDEX_SUFFIX}{suffix}",
                base_offset,
                self._index_bytes,
                read_only,
            )
        except BaseException:
            self.log.close()
            raise
        self.created_ms = now_ms()
        # Kafka's rollJitterMs: segments of many partitions do not all roll at once
        jitter = config.segment_jitter_ms
        self.roll_jitter_ms = random.randrange(jitter) if jitter > 0 else 0
        self.generation = 0  # bumped by truncation: positions read before it are stale
        self.deleted = False
        self.max_timestamp_so_far = -1
        self.offset_of_max_timestamp_so_far = base_offset
        self.rolling_based_timestamp: int | None = None
        self.bytes_since_last_index_entry = 0
        self.next_offset = base_offset

    # ------------------------------------------------------------------ state

    @property
    def size(self) -> int:
        return self.log.size

    def update_config(self, config: LogConfig) -> None:
        self._index_interval = config.index_interval_bytes
        self._index_bytes = config.segment_index_bytes

    def load_state(self, *, live: bool = False) -> None:
        """Derive next offset and max timestamp from the indexes plus a short tail walk.

        ``live``: a read-only view of a segment another process is appending to; a batch
        cut off at the end of the file is not there yet (not corruption) and the segment's
        size stops before it.
        """
        ts, ts_off = self.time_index.last_entry()
        self.max_timestamp_so_far, self.offset_of_max_timestamp_so_far = ts, ts_off
        _, position = self.offset_index.last_entry()
        self.next_offset = self.base_offset
        if self.offset_index.entries:
            self.next_offset = self.offset_index.last_entry()[0] + 1
        limit = self.log.file_size() if live else None
        end = position
        for b in self.walk(position, limit=limit, live=live):
            self.next_offset = b.last_offset + 1
            end = b.position + b.size
            if b.max_timestamp > self.max_timestamp_so_far:
                self.max_timestamp_so_far = b.max_timestamp
                self.offset_of_max_timestamp_so_far = b.last_offset
        if live:
            self.log.size = end
        self.bytes_since_last_index_entry = 0
        self.rolling_based_timestamp = None
        if self.size:
            first = next(self.walk(0, stop_after=1), None)
            if first is not None:
                self.rolling_based_timestamp = first.max_timestamp

    @property
    def largest_timestamp(self) -> int:
        """Kafka's LogSegment.largestTimestamp: max record timestamp, else the file's mtime."""
        if self.max_timestamp_so_far >= 0:
            return self.max_timestamp_so_far
        return self.last_modified_ms

    @property
    def last_modified_ms(self) -> int:
        return os.stat(self.log.path).st_mtime_ns // 1_000_000

    def set_last_modified_ms(self, ms: int) -> None:
        os.utime(self.log.path, ns=(ms * 1_000_000, ms * 1_000_000))

    def should_roll(
        self,
        messages_size: int,
        max_timestamp: int,
        max_offset: int,
        segment_bytes: int,
        segment_ms: int,
        now: int,
    ) -> bool:
        """Kafka's LogSegment.shouldRoll."""
        size = self.size
        if size == 0:
            return False
        if size > segment_bytes - messages_size:
            return True
        ts = self.rolling_based_timestamp
        waited = max_timestamp - ts if ts is not None and ts >= 0 else now - self.created_ms
        if waited > segment_ms - self.roll_jitter_ms:
            return True
        if self.offset_index.is_full or self.time_index.is_full:
            return True
        return max_offset - self.base_offset > _INT32_MAX

    # ------------------------------------------------------------------ appending

    def _index_batch(self, position: int, size: int, last_offset: int, max_ts: int) -> None:
        if self.rolling_based_timestamp is None:
            self.rolling_based_timestamp = max_ts
        if max_ts > self.max_timestamp_so_far:
            self.max_timestamp_so_far = max_ts
            self.offset_of_max_timestamp_so_far = last_offset
        if self.bytes_since_last_index_entry > self._index_interval:
            self.offset_index.append(last_offset, position)
            self.time_index.maybe_append(
                self.max_timestamp_so_far, self.offset_of_max_timestamp_so_far
            )
            self.bytes_since_last_index_entry = 0
        self.bytes_since_last_index_entry += size

    def append(self, data: Any, batches: list[Any]) -> int:
        """Write ``data`` (whole batches, offsets assigned) and index them.

        ``batches``: the _core.BatchInfo of each batch in ``data`` (positions relative to it).
        Returns the file position the data starts at.
        """
        base_position = self.log.append(data)
        for b in batches:
            self._index_batch(base_position + b.position, b.size, b.last_offset, b.max_timestamp)
        if batches:
            self.next_offset = batches[-1].last_offset + 1
        return base_position

    def on_become_inactive(self) -> None:
        """Record the final max timestamp and trim both indexes (roll, close)."""
        if self.max_timestamp_so_far >= 0:
            self.time_index.maybe_append(
                self.max_timestamp_so_far,
                self.offset_of_max_timestamp_so_far,
                skip_full_check=True,
            )
        self.offset_index.trim()
        self.time_index.trim()

    def refresh_live(self) -> None:
        """Read-only view: pick up the batches the writing process appended since."""
        file_size = self.log.file_size()
        start = self.log.size  # end of the whole batches seen so far
        if file_size < start:
            # truncated by the writer: start over, without the indexes
            self.generation += 1
            self.offset_index.reset()
            self.time_index.reset()
            self.next_offset = self.base_offset
            self.max_timestamp_so_far = -1
            self.offset_of_max_timestamp_so_far = self.base_offset
            start = 0
        end = start
        for b in self.walk(start, limit=file_size, live=True):
            self.next_offset = b.last_offset + 1
            end = b.position + b.size
            if b.max_timestamp > self.max_timestamp_so_far:
                self.max_timestamp_so_far = b.max_timestamp
                self.offset_of_max_timestamp_so_far = b.last_offset
        self.log.size = end  # readers never see past whole batches

    def release_index_fds(self) -> None:
        """For an inactive segment whose indexes are trimmed and flushed."""
        self.offset_index.release_fd()
        self.time_index.release_fd()

    def make_active(self) -> None:
        self.offset_index.make_active(self._index_bytes)
        self.time_index.make_active(self._index_bytes)

    # ------------------------------------------------------------------ reading

    def read(self, position: int, size: int) -> bytes:
        return self.log.read(position, size)

    def walk(
        self,
        position: int,
        limit: int | None = None,
        stop_after: int | None = None,
        live: bool = False,
    ) -> Iterator[BatchPosition]:
        """Batch headers from ``position`` (a batch start) up to ``limit`` (default: the end).

        Reads windows of the file, not whole batches; a header that does not describe a
        plausible v2 batch inside the limit raises CorruptRecordError.
        """
        end = self.size if limit is None else limit
        buf = b""
        buf_pos = position
        pos = position
        n = 0
        while pos < end:
            rel = pos - buf_pos
            if rel < 0 or rel + _HEADER.size > len(buf):
                buf = self.log.read(pos, min(_WALK_WINDOW, max(end - pos, _HEADER.size)))
                buf_pos, rel = pos, 0
                if len(buf) < _HEADER.size:
                    if live:
                        return  # the writer is still writing this header
                    raise CorruptRecordError(
                        f"{self.log.path}: torn batch header at position {pos}"
                    )
            base, length, _ple, magic, _crc, _attrs, lod, _bts, max_ts = _HEADER.unpack_from(
                buf, rel
            )
            size = length + 12
            if live and magic == 2 and length >= _MIN_BATCH_LENGTH and pos + size > end:
                return  # the writer is still writing this batch
            if magic != 2 or length < _MIN_BATCH_LENGTH or pos + size > end or lod < 0:
                raise CorruptRecordError(
                    f"{self.log.path}: invalid batch header at position {pos} "
                    f"(magic {magic}, length {length})"
                )
            yield BatchPosition(pos, base, size, base + lod, max_ts)
            pos += size
            n += 1
            if stop_after is not None and n >= stop_after:
                return

    def translate_offset(self, offset: int, start_position: int = 0) -> BatchPosition | None:
        """The first batch whose last offset is >= ``offset`` (Kafka's translateOffset)."""
        _, position = self.offset_index.lookup(offset)
        for b in self.walk(max(position, start_position)):
            if b.last_offset >= offset:
                return b
        return None

    def boundary_at_or_before(self, target: int, start: int) -> int:
        """The largest batch boundary <= ``target`` at or after ``start`` (a batch start)."""
        _, position = self.offset_index.lookup_position(target)
        end = max(position, start)
        for b in self.walk(end):
            if b.position + b.size > target:
                break
            end = b.position + b.size
        return end

    def find_offset_by_timestamp(self, timestamp: int, start_offset: int) -> int | None:
        """First offset >= ``start_offset`` whose record timestamp is >= ``timestamp``."""
        if self.max_timestamp_so_far < timestamp:
            return None
        from_offset = max(self.time_index.start_offset_for(timestamp), start_offset)
        b0 = self.translate_offset(from_offset)
        if b0 is None:
            return None
        for b in self.walk(b0.position):
            if b.max_timestamp >= timestamp and b.last_offset >= start_offset:
                for off, ts, *_ in _core.iter_records(self.read(b.position, b.size), start_offset):
                    if ts >= timestamp:
                        return off
        return None

    def iter_chunks(self, chunk: int = RECOVERY_CHUNK) -> Iterator[tuple[bytes, list[Any]]]:
        """The segment in chunks of whole, CRC-validated batches: (bytes, [_core.BatchInfo])."""
        pos = 0
        size = self.size
        while pos < size:
            first = next(self.walk(pos, stop_after=1))
            data = self.read(pos, max(min(chunk, size - pos), first.size))
            infos = _core.scan_batches(data, True, True)
            end = infos[-1].position + infos[-1].size if infos else 0
            if end == 0:
                raise CorruptRecordError(f"{self.log.path}: corrupt batch at position {pos}")
            yield (data if end == len(data) else data[:end]), infos
            pos += end

    def iter_batches(self) -> Iterator[tuple[memoryview, Any]]:
        """Every batch, CRC-validated: (its bytes, its _core.BatchInfo)."""
        for data, infos in self.iter_chunks():
            view = memoryview(data)
            for info in infos:
                yield view[info.position : info.position + info.size], info

    # ------------------------------------------------------------------ recovery

    def recover(self) -> int:
        """Re-validate every batch, rebuild both indexes, truncate an invalid tail.

        Returns the number of bytes truncated (0 when the segment was whole).
        """
        self.offset_index.reset()
        self.time_index.reset()
        self.max_timestamp_so_far = -1
        self.offset_of_max_timestamp_so_far = self.base_offset
        self.rolling_based_timestamp = None
        self.bytes_since_last_index_entry = 0
        self.next_offset = self.base_offset
        size = self.size
        pos = 0
        chunk = RECOVERY_CHUNK
        prev_last = self.base_offset - 1
        reason = ""
        while pos < size:
            data = self.read(pos, min(chunk, size - pos))
            infos = _core.scan_batches(data, True, True)
            ok_end = 0
            for info in infos:
                last = info.last_offset
                if (
                    info.base_offset <= prev_last
                    or last < info.base_offset
                    or (last - self.base_offset > _INT32_MAX)
                ):
                    reason = f"offset {info.base_offset} out of order"
                    break
                self._index_batch(pos + info.position, info.size, last, info.max_timestamp)
                prev_last = last
                ok_end = info.position + info.size
            if reason:
                pos += ok_end
                break
            if ok_end == len(data):
                pos += ok_end
                continue
            rest = len(data) - ok_end
            if rest >= 12:
                length = int.from_bytes(data[ok_end + 8 : ok_end + 12], "big", signed=True)
                need = length + 12
                if length >= _MIN_BATCH_LENGTH and need > rest and pos + ok_end + need <= size:
                    # the next batch runs past this chunk: carry on from it
                    if ok_end == 0:
                        chunk = need
                    pos += ok_end
                    continue
            pos += ok_end
            reason = "corrupt or torn batch"
            break
        self.next_offset = prev_last + 1
        truncated = self.log.truncate_to(pos)
        if truncated:
            self.generation += 1
            logger.warning(
                "%s: %s at position %d; truncated %d bytes (log end offset now %d)",
                self.log.path,
                reason,
                pos,
                truncated,
                self.next_offset,
            )
        return truncated

    # ------------------------------------------------------------------ truncation

    def truncate_to(self, offset: int) -> int:
        """Drop every batch whose last offset is >= ``offset``; returns bytes truncated.

        Batch granularity: a batch holding offsets on both sides of ``offset`` is removed
        whole (the Log re-appends the part below ``offset``).
        """
        b = self.translate_offset(offset)
        if b is None:
            return 0
        self.offset_index.truncate_to(b.base_offset)
        self.time_index.truncate_to(b.base_offset)
        truncated = self.log.truncate_to(b.position)
        self.generation += 1
        self.load_state()
        if self.size == 0:
            self.created_ms = now_ms()
        return truncated

    # ------------------------------------------------------------------ files

    def flush(self) -> None:
        self.log.flush()
        self.offset_index.flush()
        self.time_index.flush()

    def rename_suffix(self, suffix: str) -> None:
        name = segment_name(self.base_offset)
        self.log.rename(self.dir / f"{name}{LOG_SUFFIX}{suffix}")
        self.offset_index.rename(self.dir / f"{name}{INDEX_SUFFIX}{suffix}")
        self.time_index.rename(self.dir / f"{name}{TIME_INDEX_SUFFIX}{suffix}")
        self.suffix = suffix

    def close(self) -> None:
        self.offset_index.close()
        self.time_index.close()
        self.log.close()

    def delete(self) -> None:
        """Remove the files. The .log fd is left to its last holder (see FileRecords)."""
        self.deleted = True
        self.offset_index.delete()
        self.time_index.delete()
        try:
            os.unlink(self.log.path)
        except FileNotFoundError:
            pass

    def __repr__(self) -> str:
        return (
            f"LogSegment(base_offset={self.base_offset}, size={self.size}, "
            f"next_offset={self.next_offset}{', deleted' if self.deleted else ''})"
        )
