"""LogCleaner: log compaction (cleanup.policy=compact), in Kafka's terms.

Keeps the latest record per key in every segment but the active one; offsets are preserved
(a batch that loses records is re-encoded as one batch per run of consecutive surviving
offsets). Tombstones (null value) are dropped once their segment was last written more than
delete.retention.ms ago. Records without a key are dropped, as Kafka's cleaner does. Control
batches (transaction markers) are kept as they are.

The cleaner reads and writes without the log's lock: only the final swap takes it, and the
swap is abandoned if retention or truncation touched the segments meanwhile. Output goes to
``.cleaned`` files, renamed to ``.swap`` before the old segments are removed, then into
place; an open after a crash deletes ``.cleaned`` leftovers and completes ``.swap`` ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastlog import _core
from fastlog.checkpoint import fsync_dir
from fastlog.records import rebuild_batches
from fastlog.segment import LogSegment, now_ms

if TYPE_CHECKING:
    from fastlog.log import Log

logger = logging.getLogger("fastlog.cleaner")

_INT32_MAX = 2**31 - 1
_WRITE_CHUNK = 1024 * 1024


class _Aborted(Exception):
    """The log is being closed or deleted: stop cleaning."""


@dataclass
class CleanerStats:
    """What one cleaning did."""

    segments_before: int = 0
    segments_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    records_read: int = 0
    records_retained: int = 0
    tombstones_removed: int = 0
    first_dirty_offset: int = 0
    end_offset: int = 0  # first offset not cleaned (the active segment's base)


class LogCleaner:
    """Compacts one Log."""

    def __init__(self, log: Log) -> None:
        self.log = log

    def dirty_ratio(self) -> float:
        """Bytes not yet cleaned / bytes of the cleanable segments (Kafka's cleanableRatio)."""
        log = self.log
        with log._lock:
            segs = log._cleanable_segments(now_ms())
            if not segs:
                return 0.0
            first_dirty = max(log._cleaner_checkpoint, log.start_offset)
            bases = log._bases
            total = dirty = 0
            for seg in segs:
                i = bases.index(seg.base_offset)
                total += seg.size
                if bases[i + 1] > first_dirty:
                    dirty += seg.size
            return dirty / total if total else 0.0

    def needs_cleaning(self) -> bool:
        ratio = self.dirty_ratio()
        return ratio > 0 and ratio >= self.log.config.min_cleanable_dirty_ratio

    def clean(self, now: int | None = None) -> CleanerStats | None:
        """Compact every cleanable segment now; None when there is none."""
        log = self.log
        with log._cleaner_lock:
            now = now_ms() if now is None else now
            with log._lock:
                log._check_open()
                segs = log._cleanable_segments(now)
                if not segs:
                    return None
                end = log._bases[len(segs)]
                cfg = log.config
                log_start = log.start_offset
                generations = {id(s): s.generation for s in segs}
                stats = CleanerStats(
                    segments_before=len(segs),
                    bytes_before=sum(s.size for s in segs),
                    first_dirty_offset=max(log._cleaner_checkpoint, log_start),
                    end_offset=end,
                )

            # pass 1: the latest offset of every key below the active segment
            offset_map: dict[bytes, int] = {}
            for seg in segs:
                for data, _infos in seg.iter_chunks():
                    if log._closing:
                        return None
                    for off, _ts, key, _v, _h in _core.iter_records(data):
                        if key is not None:
                            offset_map[key] = off

            # pass 2: rewrite, group by group
            for group in self._group(segs, cfg.segment_bytes, cfg.segment_index_bytes):
                if log.closed:
                    return None
                try:
                    cleaned = self._clean_group(group, offset_map, log_start, now, cfg, stats)
                except _Aborted:
                    return None
                except FileNotFoundError:
                    # retention or truncation removed the group meanwhile
                    logger.info("%s: segments deleted while cleaning; group skipped", log.dir)
                    continue
                self._swap(group, cleaned, generations)
            with log._lock:
                if log.closed:
                    return None  # closed or deleted meanwhile (DeleteTopics)
                log._write_cleaner_checkpoint(end)
                stats.segments_after = sum(1 for s in log._segments if s.base_offset < end)
                stats.bytes_after = sum(s.size for s in log._segments if s.base_offset < end)
            logger.info("%s: compacted %s", log.dir, stats)
            return stats

    @staticmethod
    def _group(
        segs: list[LogSegment], max_bytes: int, max_index_bytes: int
    ) -> list[list[LogSegment]]:
        """Consecutive segments whose sum fits one segment (Kafka's groupSegmentsBySize)."""
        groups: list[list[LogSegment]] = []
        cur: list[LogSegment] = []
        size = index_size = 0
        for seg in segs:
            if cur and (
                size + seg.size > max_bytes
                or index_size + seg.offset_index.entries * 8 > max_index_bytes
                or seg.next_offset - 1 - cur[0].base_offset > _INT32_MAX
            ):
                groups.append(cur)
                cur, size, index_size = [], 0, 0
            cur.append(seg)
            size += seg.size
            index_size += seg.offset_index.entries * 8
        if cur:
            groups.append(cur)
        return groups

    def _clean_group(
        self,
        group: list[LogSegment],
        offset_map: dict[bytes, int],
        log_start: int,
        now: int,
        cfg,
        stats: CleanerStats,
    ) -> LogSegment:  # type: ignore[no-untyped-def]
        log = self.log
        base = group[0].base_offset
        for p in log.dir.glob(f"{base:020d}.*.cleaned"):
            p.unlink()
        cleaned = LogSegment(log.dir, base, cfg, suffix=".cleaned")
        out = bytearray()

        def spill() -> None:
            if out:
                cleaned.append(out, _core.scan_batches(out, False))
                out.clear()

        for seg in group:
            retain_deletes = seg.last_modified_ms > now - cfg.delete_retention_ms
            for view, info in seg.iter_batches():
                if log._closing:
                    cleaned.delete()
                    cleaned.close()
                    raise _Aborted
                if info.last_offset < log_start:
                    continue
                if info.is_control:
                    out += view
                    continue
                recs = _core.decode_records(view)
                stats.records_read += len(recs)
                keep = []
                for r in recs:
                    key = r[2]
                    if key is None or r[0] < log_start or offset_map.get(key) != r[0]:
                        continue
                    if r[3] is None and not retain_deletes:
                        stats.tombstones_removed += 1
                        continue
                    keep.append(r)
                stats.records_retained += len(keep)
                if len(keep) == len(recs):
                    out += view
                elif keep:
                    out += rebuild_batches(keep, info)
                if len(out) >= _WRITE_CHUNK:
                    spill()
        spill()
        cleaned.on_become_inactive()
        cleaned.flush()
        cleaned.release_index_fds()
        cleaned.set_last_modified_ms(group[-1].last_modified_ms)
        return cleaned

    def _swap(
        self, group: list[LogSegment], cleaned: LogSegment, generations: dict[int, int]
    ) -> None:
        log = self.log
        with log._lock:
            current = {id(s) for s in log._segments}
            if log.closed or any(
                id(s) not in current or s.deleted or s.generation != generations[id(s)]
                for s in group
            ):
                logger.info("%s: segments changed while cleaning; cleaning abandoned", log.dir)
                cleaned.delete()
                cleaned.close()
                return
            cleaned.rename_suffix(".swap")
            fsync_dir(log.dir)
            for seg in group:
                seg.delete()
            cleaned.rename_suffix("")
            fsync_dir(log.dir)
            i = log._segments.index(group[0])
            if cleaned.size == 0 and i > 0:
                # nothing survived: the segment just goes (the first one stays, empty, so
                # that the log start offset does not move: consumers there must not see
                # OFFSET_OUT_OF_RANGE because of compaction)
                cleaned.delete()
                cleaned.close()
                log._segments[i : i + len(group)] = []
            else:
                log._segments[i : i + len(group)] = [cleaned]
            log._rebuild_bases()
