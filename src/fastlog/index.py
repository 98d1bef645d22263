"""OffsetIndex and TimeIndex: Kafka's sparse, memory-mapped segment indexes.

Layout (big-endian, as Kafka writes them):
  .index      8-byte entries: int32 offset relative to the segment base, int32 file position
  .timeindex 12-byte entries: int64 timestamp, int32 relative offset

The index of the active segment is memory-mapped and entries are written through the
mapping. Kafka preallocates the whole ``segment.index.bytes`` as a sparse file; fastlog
preallocates in 64 KiB steps with fallocate(2) (up to ``segment.index.bytes``), because a
store into a sparse mapped page on a full disk kills the process with SIGBUS. When the
segment stops being active (roll) or the log closes, the file is trimmed to its entries, so an
inactive index's file length is exactly ``entries * entry_size``. After an unclean shutdown
the active index is still full-length (trailing zeros): ``sanity_check`` rejects it and the
log rebuilds it from the segment (Kafka does the same).

Binary searches run in the Cython core over the mapping (no per-entry Python objects). All
calls must be made under the owning Log's lock: remapping an index while another thread
searches it would fail.
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
from pathlib import Path

from fastlog import _core
from fastlog.errors import CorruptRecordError

_OFF = struct.Struct(">ii")
_TIME = struct.Struct(">qi")
_INT32_MAX = 2**31 - 1
INDEX_GROWTH_BYTES = 64 * 1024  # mapped and fallocated in steps of this much


class _MappedIndex:
    entry_size = 0

    def __init__(
        self, path: Path, base_offset: int, max_index_size: int, read_only: bool = False
    ) -> None:
        self.path = path
        self.base_offset = base_offset
        self.read_only = read_only
        if read_only:
            try:
                self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                self._fd = -1
        else:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        length = os.fstat(self._fd).st_size if self._fd >= 0 else 0
        self._mm: mmap.mmap | bytes | None = None
        self._length = 0
        self._max_entries = max(1, max_index_size // self.entry_size)
        if read_only:
            # a copy, never a mapping: the writing process may shrink the file (trim on
            # roll) and touching a mapped page past the new end is SIGBUS
            data = b""
            if self._fd >= 0:
                data = os.pread(self._fd, length, 0)
                os.close(self._fd)
                self._fd = -1
            length = len(data) - len(data) % self.entry_size
            self._mm = data[:length] if length else None
            self._length = length
        else:
            self._map(length)
        self.entries = length // self.entry_size

    # ------------------------------------------------------------------ mapping

    def _map(self, length: int) -> None:
        if isinstance(self._mm, mmap.mmap):
            self._mm.close()
        self._mm = None
        self._length = length
        if length > 0:
            access = mmap.ACCESS_READ if self.read_only else mmap.ACCESS_WRITE
            self._mm = mmap.mmap(self._fd, length, access=access)

    def _ensure_fd(self) -> int:
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        return self._fd

    def release_fd(self) -> None:
        """Close the file descriptor of an inactive (trimmed, flushed) index; the mapping
        stays valid. Reopened on demand (resize, fsync). Keeps a broker with many segments
        at one descriptor per segment, the .log's."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _resize(self, length: int) -> None:
        fd = self._ensure_fd()
        old = os.fstat(fd).st_size
        if length == self._length and old == length:
            return
        if isinstance(self._mm, mmap.mmap):
            self._mm.close()
        self._mm = None
        os.ftruncate(fd, length)
        if length > old:
            # reserve the blocks now: a store into a sparse mapped page on a full disk is
            # SIGBUS, an ENOSPC here is an OSError
            try:
                os.posix_fallocate(fd, old, length - old)
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    os.ftruncate(fd, old)
                    self._map(old)
                    raise
        self._map(length)

    def make_active(self, max_index_size: int) -> None:
        """Map the index for appends, up to segment.index.bytes.

        Kafka preallocates the whole segment.index.bytes (sparse); fastlog maps and
        fallocates it in steps of INDEX_GROWTH_BYTES, so that a full disk is an error at
        growth time, never a SIGBUS on a store into the mapping.
        """
        self._max_entries = max(1, max_index_size // self.entry_size, self.entries)
        self._resize(self._grown_length(self.entries))

    def _grown_length(self, entries: int) -> int:
        step = max(INDEX_GROWTH_BYTES // self.entry_size, 1)
        want = min((entries // step + 1) * step, max(self._max_entries, entries + 1))
        return max(want, entries + 1) * self.entry_size

    def trim(self) -> None:
        """Shrink the file to its entries (roll, close)."""
        self._max_entries = max(self.entries, 1)
        self._resize(self.entries * self.entry_size)

    @property
    def is_full(self) -> bool:
        return self.entries >= self._max_entries

    @property
    def max_entries(self) -> int:
        return self._max_entries

    def _ensure_room(self) -> None:
        if (self.entries + 1) * self.entry_size > self._length:
            self._resize(self._grown_length(self.entries))

    def reset(self) -> None:
        self.entries = 0

    def flush(self) -> None:
        if isinstance(self._mm, mmap.mmap):
            self._mm.flush()
        if self._fd >= 0:
            os.fsync(self._fd)
        # else: released after a flush; msync above covers any rewrite of the entries

    def rename(self, path: Path) -> None:
        os.replace(self.path, path)
        self.path = path

    def close(self) -> None:
        if isinstance(self._mm, mmap.mmap):
            self._mm.close()
        self._mm = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def delete(self) -> None:
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def raw(self) -> bytes:
        """The entries' bytes (tests, tools)."""
        if self._mm is None:
            return b""
        return self._mm[: self.entries * self.entry_size]

    def _relative(self, offset: int) -> int:
        rel = offset - self.base_offset
        if not 0 <= rel <= _INT32_MAX:
            raise CorruptRecordError(
                f"offset {offset} does not fit a segment based at {self.base_offset}"
            )
        return rel


class OffsetIndex(_MappedIndex):
    """Maps an offset to the position of a batch at or before it in the segment's .log."""

    entry_size = 8

    def entry(self, slot: int) -> tuple[int, int]:
        assert self._mm is not None
        rel, pos = _OFF.unpack_from(self._mm, slot * 8)
        return self.base_offset + rel, pos

    def last_entry(self) -> tuple[int, int]:
        return self.entry(self.entries - 1) if self.entries else (self.base_offset, 0)

    def append(self, offset: int, position: int) -> None:
        """Index the batch whose last offset is ``offset``, starting at ``position``."""
        if self.entries and offset <= self.last_entry()[0]:
            raise CorruptRecordError(
                f"offset index {self.path}: offset {offset} not above the last entry"
            )
        self._ensure_room()
        assert self._mm is not None
        _OFF.pack_into(self._mm, self.entries * 8, self._relative(offset), position)
        self.entries += 1

    def lookup(self, offset: int) -> tuple[int, int]:
        """Largest entry with offset <= ``offset``; (base_offset, 0) if there is none."""
        if self.entries == 0 or offset < self.base_offset:
            return self.base_offset, 0
        rel = min(offset - self.base_offset, _INT32_MAX)
        slot = _core.offset_index_lookup(self._mm, self.entries, rel)
        return self.entry(slot) if slot >= 0 else (self.base_offset, 0)

    def lookup_position(self, position: int) -> tuple[int, int]:
        """Largest entry with file position <= ``position``; (base_offset, 0) if none."""
        lo, hi = 0, self.entries - 1
        best = (self.base_offset, 0)
        mm = self._mm
        while lo <= hi:
            mid = (lo + hi) // 2
            rel, pos = _OFF.unpack_from(mm, mid * 8)  # type: ignore[arg-type]
            if pos <= position:
                best = (self.base_offset + rel, pos)
                lo = mid + 1
            else:
                hi = mid - 1
        return best

    def truncate_to(self, offset: int) -> None:
        """Drop entries with offset >= ``offset``."""
        if self.entries == 0:
            return
        if offset <= self.base_offset:
            self.entries = 0
            return
        slot = _core.offset_index_lookup(
            self._mm, self.entries, min(offset - self.base_offset, _INT32_MAX)
        )
        if slot < 0:
            self.entries = 0
        elif self.entry(slot)[0] == offset:
            self.entries = slot
        else:
            self.entries = slot + 1

    def sanity_check(self, log_size: int) -> str | None:
        """None if the index is consistent, else why not (then it is rebuilt)."""
        if self._length % 8:
            return "file size is not a multiple of 8"
        if self.entries == 0:
            return None
        ok = (
            _core.offset_index_ordered(self._mm, self.entries)
            and self.entry(self.entries - 1)[1] < log_size
        )
        return None if ok else "entries out of order or past the end of the log"


class TimeIndex(_MappedIndex):
    """Maps a timestamp to an offset from which a scan finds the first record at or after it.

    An entry (T, O) means: every record appended before the entry has a timestamp <= T,
    and T is reached in the batch ending at offset O. Timestamps strictly increase.
    """

    entry_size = 12

    def entry(self, slot: int) -> tuple[int, int]:
        assert self._mm is not None
        ts, rel = _TIME.unpack_from(self._mm, slot * 12)
        return ts, self.base_offset + rel

    def last_entry(self) -> tuple[int, int]:
        return self.entry(self.entries - 1) if self.entries else (-1, self.base_offset)

    def maybe_append(self, timestamp: int, offset: int, *, skip_full_check: bool = False) -> None:
        if self.entries:
            last_ts, last_off = self.last_entry()
            if timestamp <= last_ts:
                return
            if offset < last_off:
                raise CorruptRecordError(
                    f"time index {self.path}: offset {offset} below the last entry's {last_off}"
                )
        if self.is_full and not skip_full_check:
            return
        self._ensure_room()
        assert self._mm is not None
        _TIME.pack_into(self._mm, self.entries * 12, timestamp, self._relative(offset))
        self.entries += 1

    def start_offset_for(self, timestamp: int) -> int:
        """An offset from which scanning forward finds the first record with ts >= timestamp."""
        if self.entries == 0:
            return self.base_offset
        slot = _core.time_index_lookup(self._mm, self.entries, timestamp)
        if slot < 0:
            # no entry reaches it: it can only be past the last indexed point
            return self.entry(self.entries - 1)[1]
        # entries before `slot` are all below the target, so nothing up to their offset is
        # a candidate: start from the previous entry's offset
        return self.entry(slot - 1)[1] if slot > 0 else self.base_offset

    def truncate_to(self, offset: int) -> None:
        """Drop entries with offset >= ``offset``."""
        n = self.entries
        while n > 0 and self.entry(n - 1)[1] >= offset:
            n -= 1
        self.entries = n

    def sanity_check(self, next_offset: int) -> str | None:
        if self._length % 12:
            return "file size is not a multiple of 12"
        if self.entries == 0:
            return None
        last_offset = self.entry(self.entries - 1)[1]
        ok = _core.time_index_ordered(self._mm, self.entries) and last_offset < max(
            next_offset, self.base_offset + 1
        )
        return None if ok else "entries out of order or past the end of the log"
