"""``fastlog log dump`` and ``fastlog log verify``: read segment files offline, as Kafka's
DumpLogSegments does.

Owns the offline inspection of a partition directory's files (DESIGN.md section 3):
``NNNNNNNNNNNNNNNNNNNN.log`` (v2 record batches), ``.index`` (offset index) and ``.timeindex``
(time index). It prints each batch (and with --deep-iteration each record), verifies every
batch's CRC-32C, checks that offsets increase, and checks the indexes against the log: every
index entry must point at the start of a batch holding its offset, and an index lookup
(``fastlog._core.offset_index_lookup``, the broker's own search) must never land past the
batch it looks for. Damage is reported with the file and byte position; the scan goes on
past a batch whose CRC is wrong (its length is still trusted) and stops at a broken length.
Exit status: 0 clean, 1 damage found, 2 usage error.
"""

from __future__ import annotations

import errno
import json
import mmap
import os
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import click

from broker.tools.console import CONTEXT_SETTINGS, ToolError, ToolGroup
from fastlog import _core

_HEADER = struct.Struct(">qiiBIhiqqqhii")  # the 61-byte v2 batch header (see _core.pyi)
_INDEX_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")
_CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
_SUFFIXES = (".log", ".index", ".timeindex", ".snapshot")


@dataclass(slots=True)
class Batch:
    """What the dump needs of one batch: _core.BatchInfo's fields plus its CRC verdict."""

    position: int
    size: int
    base_offset: int
    last_offset: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int
    crc_valid: bool = True

    @property
    def compression(self) -> int:
        return self.attributes & 0x07

    @property
    def timestamp_type(self) -> int:
        return (self.attributes >> 3) & 1

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & 0x10)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & 0x20)


@dataclass(slots=True)
class Problem:
    path: Path
    position: int | None  # byte position in the file
    message: str

    def __str__(self) -> str:
        where = f" at position {self.position}" if self.position is not None else ""
        return f"{self.path}{where}: {self.message}"


@dataclass
class LogScan:
    """The result of walking one .log file."""

    path: Path
    base_offset: int
    size: int
    batches: list[Batch] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    valid_bytes: int = 0  # bytes covered by structurally whole batches from position 0

    def batch_at(self) -> dict[int, Batch]:
        return {b.position: b for b in self.batches}


def segment_base_offset(path: Path) -> int | None:
    """The base offset encoded in a segment file name (20 digits), or None."""
    stem = path.name.split(".", 1)[0]
    return int(stem) if stem.isdigit() else None


class _Mapped:
    """A read-only view of a whole file (mmap; an empty file gives an empty view)."""

    def __init__(self, path: Path, limit: int | None = None) -> None:
        self._file = open(path, "rb")
        size = os.fstat(self._file.fileno()).st_size
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        self.view = memoryview(self._map) if self._map is not None else memoryview(b"")
        self.size = size
        if limit is not None and limit < size:
            self.view = self.view[:limit]

    def close(self) -> None:
        self.view.release()
        if self._map is not None:
            self._map.close()
        self._file.close()

    def __enter__(self) -> _Mapped:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _from_info(info: Any, offset: int) -> Batch:
    return Batch(
        position=info.position + offset,
        size=info.size,
        base_offset=info.base_offset,
        last_offset=info.base_offset + info.last_offset_delta,
        partition_leader_epoch=info.partition_leader_epoch,
        magic=2,
        crc=0,
        attributes=info.attributes,
        base_timestamp=info.base_timestamp,
        max_timestamp=info.max_timestamp,
        producer_id=info.producer_id,
        producer_epoch=info.producer_epoch,
        base_sequence=info.base_sequence,
        record_count=info.record_count,
    )


def _from_header(view: memoryview, position: int) -> Batch:
    (base, length, epoch, magic, crc, attrs, lod, base_ts, max_ts, pid, pepoch, bseq, count) = (
        _HEADER.unpack_from(view, position)
    )
    return Batch(
        position=position,
        size=length + _core.LOG_OVERHEAD,
        base_offset=base,
        last_offset=base + lod,
        partition_leader_epoch=epoch,
        magic=magic,
        crc=crc,
        attributes=attrs,
        base_timestamp=base_ts,
        max_timestamp=max_ts,
        producer_id=pid,
        producer_epoch=pepoch,
        base_sequence=bseq,
        record_count=count,
    )


def _diagnose(
    view: memoryview, pos: int, path: Path, truncated_ok: bool
) -> tuple[Batch | None, Problem | None]:
    """Why the batch at ``pos`` failed validation. Returns (batch, problem): a batch when its
    length can still be trusted (a CRC mismatch), so the scan may go on past it."""
    left = len(view) - pos
    if left < _core.BATCH_HEADER_SIZE:
        if truncated_ok:
            return None, None
        return None, Problem(
            path,
            pos,
            f"truncated batch: {left} byte(s) left, a batch header needs {_core.BATCH_HEADER_SIZE}",
        )
    batch = _from_header(view, pos)
    length = batch.size - _core.LOG_OVERHEAD
    if length < _core.BATCH_HEADER_SIZE - _core.LOG_OVERHEAD:
        return None, Problem(
            path,
            pos,
            f"invalid batch length {length} (base offset field {batch.base_offset}); the rest of the file ({left} bytes) cannot be read",
        )
    if batch.size > left:
        if truncated_ok:
            return None, None
        return None, Problem(
            path, pos, f"truncated batch: its length says {batch.size} bytes, only {left} left"
        )
    if batch.magic != 2:
        return None, Problem(
            path,
            pos,
            f"unsupported magic {batch.magic} (only v2 record batches); the rest of the file ({left} bytes) is not read",
        )
    computed = _core.crc32c(view[pos + 21 : pos + batch.size])
    if computed != batch.crc:
        batch.crc_valid = False
        return batch, Problem(
            path,
            pos,
            f"CRC mismatch in batch at offset {batch.base_offset}: stored {batch.crc}, computed {computed}",
        )
    return None, Problem(path, pos, "batch failed validation for an unknown reason")


def scan_log(path: Path, max_bytes: int | None = None) -> LogScan:
    """Walk a .log file batch by batch, collecting damage instead of stopping at the first."""
    base = segment_base_offset(path)
    with _Mapped(path, max_bytes) as mapped:
        view = mapped.view
        scan = LogScan(path, base if base is not None else 0, mapped.size)
        truncated_ok = max_bytes is not None and max_bytes < mapped.size
        pos = 0
        structural_end = None
        while pos < len(view):
            infos = _core.scan_batches(view[pos:], validate_crc=True, stop_at_corruption=True)
            for info in infos:
                scan.batches.append(_from_info(info, pos))
            if infos:
                pos += infos[-1].position + infos[-1].size
            if pos >= len(view):
                break
            batch, problem = _diagnose(view, pos, path, truncated_ok)
            if problem is not None:
                scan.problems.append(problem)
            if batch is None:
                structural_end = pos
                break
            scan.batches.append(batch)
            pos += batch.size
        scan.valid_bytes = structural_end if structural_end is not None else pos
        for batch in scan.batches:
            if batch.crc == 0 and batch.crc_valid:
                batch.crc = _HEADER.unpack_from(view, batch.position)[4]
    _check_offsets(scan)
    return scan


def _check_offsets(scan: LogScan) -> None:
    prev: Batch | None = None
    for batch in scan.batches:
        if prev is None and batch.base_offset < scan.base_offset:
            scan.problems.append(
                Problem(
                    scan.path,
                    batch.position,
                    f"first batch starts at offset {batch.base_offset}, below the segment's base offset {scan.base_offset}",
                )
            )
        if batch.last_offset < batch.base_offset:
            scan.problems.append(
                Problem(
                    scan.path,
                    batch.position,
                    f"batch's last offset {batch.last_offset} is below its base offset {batch.base_offset}",
                )
            )
        if prev is not None and batch.base_offset <= prev.last_offset:
            scan.problems.append(
                Problem(
                    scan.path,
                    batch.position,
                    f"offsets do not increase: batch starts at {batch.base_offset}, the previous one ended at {prev.last_offset}",
                )
            )
        prev = batch
    scan.problems.sort(key=lambda p: -1 if p.position is None else p.position)


# --------------------------------------------------------------------------- records


def _text(data: bytes | None) -> str:
    if data is None:
        return "null"
    return data.decode("utf-8", errors="backslashreplace")


def _control_text(key: bytes | None, value: bytes | None) -> str:
    # control records: key = (version int16, type int16); value = (version, coordinatorEpoch int32)
    if key is None or len(key) < 4:
        return "control record with an unreadable key"
    kind = struct.unpack_from(">h", key, 2)[0]
    name = {0: "ABORT", 1: "COMMIT"}.get(kind, f"UNKNOWN({kind})")
    epoch = struct.unpack_from(">i", value, 2)[0] if value is not None and len(value) >= 6 else -1
    return f"endTxnMarker: {name} coordinatorEpoch: {epoch}"


def _offsets_text(key: bytes | None, value: bytes | None) -> str:
    """A __consumer_offsets record decoded (Kafka's --offsets-decoder)."""
    from broker.coordinator import records as group_records

    try:
        k = group_records.decode_key(key or b"")
        if isinstance(k, group_records.OffsetKey):
            key_obj: dict[str, Any] = {
                "type": "offset_commit",
                "group": k.group,
                "topic": k.topic,
                "partition": k.partition,
            }
            if value is None:
                return f"key: {json.dumps(key_obj)} payload: null"
            v = group_records.decode_offset_value(value)
            payload: dict[str, Any] = {
                "offset": v.offset,
                "leaderEpoch": v.leader_epoch,
                "metadata": v.metadata,
                "commitTimestamp": v.commit_timestamp,
            }
            if v.expire_timestamp >= 0:
                payload["expireTimestamp"] = v.expire_timestamp
        else:
            key_obj = {"type": "group_metadata", "group": k.group}
            if value is None:
                return f"key: {json.dumps(key_obj)} payload: null"
            g = group_records.decode_group_value(value)
            payload = {
                "protocolType": g.protocol_type,
                "generation": g.generation,
                "protocol": g.protocol,
                "leader": g.leader,
                "currentStateTimestamp": g.current_state_timestamp,
                "members": [
                    {
                        "memberId": m.member_id,
                        "groupInstanceId": m.group_instance_id,
                        "clientId": m.client_id,
                        "clientHost": m.client_host,
                        "rebalanceTimeoutMs": m.rebalance_timeout_ms,
                        "sessionTimeoutMs": m.session_timeout_ms,
                    }
                    for m in g.members
                ],
            }
    except Exception as exc:  # noqa: BLE001 - any malformed record is shown, not fatal
        return f"key: {_text(key)} payload: {_text(value)} (not a __consumer_offsets record: {exc})"
    return f"key: {json.dumps(key_obj)} payload: {json.dumps(payload)}"


def decode_batch_records(
    view: memoryview, batch: Batch, path: Path
) -> tuple[list[tuple], Problem | None]:
    """The records of one batch, and a problem if they cannot be decoded or disagree with the header."""
    try:
        records = _core.decode_records(view[batch.position : batch.position + batch.size])
    except _core.CoreError as exc:
        return [], Problem(
            path,
            batch.position,
            f"records of batch at offset {batch.base_offset} cannot be decoded: {exc}",
        )
    if len(records) != batch.record_count:
        return records, Problem(
            path,
            batch.position,
            f"batch at offset {batch.base_offset} holds {len(records)} record(s), its header says {batch.record_count}",
        )
    if records and records[-1][0] > batch.last_offset:
        return records, Problem(
            path,
            batch.position,
            f"record offset {records[-1][0]} lies past the batch's last offset {batch.last_offset}",
        )
    return records, None


# --------------------------------------------------------------------------- indexes


def _read_entries(
    path: Path, entry: struct.Struct, problems: list[Problem]
) -> tuple[bytes, list[tuple[int, int]]]:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(_data_end(f.fileno(), size))
    if size % entry.size:
        problems.append(
            Problem(
                path,
                size - size % entry.size,
                f"file size {size} is not a multiple of the {entry.size}-byte entry size",
            )
        )
        data = data[: size - size % entry.size]
    # a preallocated index (Kafka sizes it to segment.index.bytes, 10 MB by default) ends in
    # zeroed slots: the used part ends with the last entry that is not all zeros (slot 0 may
    # be all zeros and still used: relative offset 0 at position 0)
    used = -(-_used_length(data) // entry.size)
    used = max(used, 1 if size >= entry.size else 0)
    if len(data) < used * entry.size:  # slot 0 in a hole
        data = data + bytes(used * entry.size - len(data))
    entries = list(entry.iter_unpack(data[: used * entry.size]))
    return data, entries


def _data_end(fd: int, size: int) -> int:
    """Where the file's last data region ends: a preallocated index is a sparse file, and the
    holes after its entries need not be read (they are zeros)."""
    end = pos = 0
    try:
        while pos < size:
            pos = os.lseek(fd, os.lseek(fd, pos, os.SEEK_DATA), os.SEEK_HOLE)
            end = pos
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # no SEEK_DATA here: read it all
            end = size
    finally:
        os.lseek(fd, 0, os.SEEK_SET)
    return min(end, size)


_ZEROS = bytes(1 << 16)


def _used_length(data: bytes) -> int:
    """Length of data without its zero tail (memcmp over 64 KiB chunks: bytes.rstrip walks
    byte by byte, slow on a 10 MB preallocated index)."""
    end = len(data)
    while end > 0:
        start = max(0, end - len(_ZEROS))
        if data[start:end] != _ZEROS[: end - start]:
            return start + len(data[start:end].rstrip(b"\0"))
        end = start
    return 0


def _unused_if_empty(entries: list[tuple[int, int]], scan: LogScan) -> list[tuple[int, int]]:
    # the preallocated index of an empty segment is all zeros: slot 0 is unused too
    if not scan.batches and entries == [(0, 0)]:
        return []
    return entries


def verify_offset_index(path: Path, scan: LogScan) -> tuple[list[tuple[int, int]], list[Problem]]:
    problems: list[Problem] = []
    data, entries = _read_entries(path, _INDEX_ENTRY, problems)
    entries = _unused_if_empty(entries, scan)
    base = scan.base_offset
    by_position = scan.batch_at()
    prev: tuple[int, int] | None = None
    flagged: set[int] = set()  # entries already reported; their lookups would only repeat it
    for i, (rel, position) in enumerate(entries):
        offset = base + rel
        where = i * _INDEX_ENTRY.size
        label = f"index entry {i} (offset {offset}, log position {position})"
        if prev is not None and (rel <= prev[0] or position <= prev[1]):
            problems.append(
                Problem(
                    path,
                    where,
                    f"{label}: does not increase (previous: offset {base + prev[0]}, position {prev[1]})",
                )
            )
        prev = (rel, position)
        before = len(problems)
        if position >= scan.size:
            problems.append(
                Problem(
                    path, where, f"{label}: position is past the end of the log ({scan.size} bytes)"
                )
            )
            flagged.add(i)
            continue
        batch = by_position.get(position)
        if batch is None:
            problems.append(
                Problem(path, where, f"{label}: no batch starts at that position of the log")
            )
        elif not batch.base_offset <= offset <= batch.last_offset:
            problems.append(
                Problem(
                    path,
                    where,
                    f"{label}: the batch there holds offsets {batch.base_offset}-{batch.last_offset}",
                )
            )
        if len(problems) > before:
            flagged.add(i)
    # the broker's own lookup must never start a read past the batch holding an offset
    if entries:
        buf = data[: len(entries) * _INDEX_ENTRY.size]
        for batch in scan.batches:
            slot = _core.offset_index_lookup(buf, len(entries), batch.last_offset - base)
            if slot >= 0 and slot not in flagged and entries[slot][1] > batch.position:
                problems.append(
                    Problem(
                        path,
                        slot * _INDEX_ENTRY.size,
                        f"a lookup of offset {batch.last_offset} lands at log position {entries[slot][1]}, past its batch at position {batch.position}",
                    )
                )
    return entries, problems


def verify_time_index(path: Path, scan: LogScan) -> tuple[list[tuple[int, int]], list[Problem]]:
    problems: list[Problem] = []
    _, entries = _read_entries(path, _TIME_ENTRY, problems)
    entries = _unused_if_empty(entries, scan)
    base = scan.base_offset
    # running max timestamp at the end of each batch, to check entries against
    batches = scan.batches
    running: list[int] = []
    top = -1
    for b in batches:
        top = max(top, b.max_timestamp)
        running.append(top)
    prev: tuple[int, int] | None = None
    j = 0
    for i, (ts, rel) in enumerate(entries):
        offset = base + rel
        where = i * _TIME_ENTRY.size
        label = f"time index entry {i} (timestamp {ts}, offset {offset})"
        if prev is not None and (ts < prev[0] or rel < prev[1]):
            problems.append(
                Problem(
                    path,
                    where,
                    f"{label}: goes backwards (previous: timestamp {prev[0]}, offset {base + prev[1]})",
                )
            )
        prev = (ts, rel)
        while j < len(batches) and batches[j].last_offset < offset:
            j += 1
        if j >= len(batches) or batches[j].base_offset > offset:
            j = 0 if j >= len(batches) else j
            problems.append(Problem(path, where, f"{label}: no batch in the log holds that offset"))
            continue
        if ts > running[j]:
            problems.append(
                Problem(
                    path,
                    where,
                    f"{label}: no record up to that offset has a timestamp that large (largest: {running[j]})",
                )
            )
    return entries, problems


# --------------------------------------------------------------------------- printing


@dataclass
class DumpOptions:
    print_data: bool = False
    deep: bool = False
    offsets_decoder: bool = False
    verify_index_only: bool = False
    max_bytes: int | None = None
    quiet: bool = False  # verify: print only problems


class Dumper:
    def __init__(self, out: IO[str], opts: DumpOptions) -> None:
        self.out = out
        self.opts = opts
        self.problems: list[Problem] = []
        self._scans: dict[Path, LogScan] = {}

    def emit(self, line: str) -> None:
        if not self.opts.quiet:
            self.out.write(line + "\n")

    def report(self, problems: list[Problem]) -> None:
        for p in problems:
            self.out.write(f"DAMAGE {p}\n")
        self.problems.extend(problems)

    def scan(self, log_path: Path) -> LogScan:
        scan = self._scans.get(log_path)
        if scan is None:
            scan = self._scans[log_path] = scan_log(log_path, self.opts.max_bytes)
        return scan

    def dump(self, path: Path) -> None:
        suffix = path.suffix
        if suffix == ".log":
            self.dump_log(path)
        elif suffix in (".index", ".timeindex"):
            self.dump_index(path)
        elif suffix == ".snapshot":
            self.dump_snapshot(path)
        else:
            raise ToolError(
                f"{path}: not a segment file (expected .log, .index, .timeindex or .snapshot)"
            )

    def dump_snapshot(self, path: Path) -> None:
        """A producer state snapshot (broker/producer_state.py: Kafka's v1 layout)."""
        from broker.producer_state import ProducerStateManager, SnapshotError

        if self.opts.verify_index_only:
            return
        self.emit(f"Dumping {path}")
        try:
            entries = ProducerStateManager.decode(path.read_bytes())
        except SnapshotError as exc:
            self.report([Problem(path, None, f"producer snapshot cannot be read: {exc}")])
            return
        for pid, epoch, last_seq, last_offset, delta, ts, coord_epoch, txn_first in entries:
            self.emit(
                f"producerId: {pid} producerEpoch: {epoch} coordinatorEpoch: {coord_epoch} "
                f"currentTxnFirstOffset: {txn_first} firstSequence: {last_seq - delta} "
                f"lastSequence: {last_seq} lastOffset: {last_offset} offsetDelta: {delta} "
                f"timestamp: {ts}"
            )
        self.emit(f"Snapshot entries: {len(entries)}")

    def dump_log(self, path: Path) -> None:
        scan = self.scan(path)
        self.emit(f"Dumping {path}")
        self.emit(f"Log starting offset: {scan.base_offset}")
        problems = list(scan.problems)
        deep = self.opts.deep or self.opts.print_data or self.opts.offsets_decoder
        with _Mapped(path, self.opts.max_bytes) as mapped:
            for batch in scan.batches:
                self.emit(_batch_line(batch))
                if not deep:
                    continue
                if not batch.crc_valid:
                    self.emit("| (records not decoded: the batch's CRC is wrong)")
                    continue
                records, problem = decode_batch_records(mapped.view, batch, path)
                if problem is not None:
                    problems.append(problem)
                for rec in records:
                    self.emit(
                        _record_line(batch, rec, self.opts.print_data, self.opts.offsets_decoder)
                    )
        if scan.valid_bytes < scan.size and not any(
            p.position == scan.valid_bytes for p in problems
        ):
            if self.opts.max_bytes is None or self.opts.max_bytes >= scan.size:
                problems.append(
                    Problem(
                        path,
                        scan.valid_bytes,
                        f"{scan.size - scan.valid_bytes} trailing byte(s) are not a whole batch",
                    )
                )
        problems.sort(key=lambda p: p.position or 0)
        self.report(problems)
        self.emit(f"Batches: {len(scan.batches)}, bytes: {scan.size}, damage: {len(problems)}")

    def dump_index(self, path: Path) -> None:
        log_path = path.with_suffix(".log")
        if not log_path.exists():
            raise ToolError(
                f"{path}: its log {log_path.name} is missing; an index is checked against its log"
            )
        scan = self.scan(log_path)
        if path.suffix == ".index":
            entries, problems = verify_offset_index(path, scan)
            if not self.opts.verify_index_only:
                self.emit(f"Dumping {path}")
                for rel, position in entries:
                    self.emit(f"offset: {scan.base_offset + rel} position: {position}")
        else:
            entries, problems = verify_time_index(path, scan)
            if not self.opts.verify_index_only:
                self.emit(f"Dumping {path}")
                for ts, rel in entries:
                    self.emit(f"timestamp: {ts} offset: {scan.base_offset + rel}")
        self.report(problems)
        self.emit(f"Index entries: {len(entries)}, damage: {len(problems)}")


def _batch_line(b: Batch) -> str:
    last_seq = b.base_sequence + (b.last_offset - b.base_offset) if b.base_sequence >= 0 else -1
    ts_name = "LogAppendTime" if b.timestamp_type else "CreateTime"
    return (
        f"baseOffset: {b.base_offset} lastOffset: {b.last_offset} count: {b.record_count} "
        f"baseSequence: {b.base_sequence} lastSequence: {last_seq} producerId: {b.producer_id} "
        f"producerEpoch: {b.producer_epoch} partitionLeaderEpoch: {b.partition_leader_epoch} "
        f"isTransactional: {str(b.is_transactional).lower()} isControl: {str(b.is_control).lower()} "
        f"position: {b.position} {ts_name}: {b.max_timestamp} size: {b.size} magic: {b.magic} "
        f"compresscodec: {_CODECS.get(b.compression, b.compression)} crc: {b.crc} "
        f"isvalid: {str(b.crc_valid).lower()}"
    )


def _record_line(b: Batch, rec: tuple, print_data: bool, offsets_decoder: bool = False) -> str:
    offset, ts, key, value, headers = rec
    seq = b.base_sequence + (offset - b.base_offset) if b.base_sequence >= 0 else -1
    ts_name = "LogAppendTime" if b.timestamp_type else "CreateTime"
    line = (
        f"| offset: {offset} {ts_name}: {ts} keySize: {-1 if key is None else len(key)} "
        f"valueSize: {-1 if value is None else len(value)} sequence: {seq} "
        f"headerKeys: [{','.join(h[0] for h in headers)}]"
    )
    if b.is_control:
        return f"{line} {_control_text(key, value)}"
    if offsets_decoder:
        return f"{line} {_offsets_text(key, value)}"
    if print_data:
        line += f" key: {_text(key)} payload: {_text(value)}"
    return line


def _segment_files(directory: Path) -> list[Path]:
    files = [
        p
        for p in directory.iterdir()
        if p.suffix in _SUFFIXES and segment_base_offset(p) is not None
    ]
    order = {".log": 0, ".index": 1, ".timeindex": 2, ".snapshot": 3}
    return sorted(files, key=lambda p: (segment_base_offset(p), order[p.suffix]))


def expand_paths(paths: tuple[str, ...]) -> Iterator[Path]:
    """Files as given; a partition directory stands for its segment files in offset order,
    and a log directory (partition directories inside) for all of them."""
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            yield path
            continue
        files = _segment_files(path)
        if not files:
            for sub in sorted(p for p in path.iterdir() if p.is_dir()):
                files += _segment_files(sub)
        if not files:
            raise ToolError(
                f"{path}: no segment files (.log, .index, .timeindex, .snapshot) here or in "
                "its partition directories"
            )
        yield from files


def _run(paths: tuple[str, ...], opts: DumpOptions) -> None:
    out = sys.stdout
    dumper = Dumper(out, opts)
    files = list(expand_paths(paths))
    if opts.quiet:
        # verifying a .log also verifies the indexes next to it
        for path in list(files):
            for suffix in (".index", ".timeindex"):
                sibling = path.with_suffix(suffix)
                if path.suffix == ".log" and sibling.exists() and sibling not in files:
                    files.append(sibling)
    for path in files:
        if opts.verify_index_only and path.suffix == ".log":
            continue
        dumper.dump(path)
    out.flush()
    if dumper.problems:
        first = dumper.problems[0]
        raise ToolError(f"damage found: {len(dumper.problems)} problem(s); first: {first}")
    if opts.quiet:
        click.echo(f"OK: {len(files)} file(s) verified, no damage found")


# --------------------------------------------------------------------------- commands


@click.group("log", cls=ToolGroup, context_settings=CONTEXT_SETTINGS)
def log() -> None:
    """Inspect segment files offline (as Kafka's DumpLogSegments).

    \b
    Examples:
      fastlog log dump /var/lib/fastlog/events-0/00000000000000000000.log
      fastlog log dump --deep-iteration --print-data-log /var/lib/fastlog/events-0
      fastlog log verify /var/lib/fastlog/events-0
    """


_paths = click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True, readable=True)
)
_max_bytes = click.option(
    "--max-bytes",
    type=click.IntRange(min=1),
    help="Read at most this many bytes of each .log file.",
)


@log.command("dump", context_settings=CONTEXT_SETTINGS)
@_paths
@click.option(
    "--print-data-log",
    is_flag=True,
    help="Print each record's key and value (implies --deep-iteration).",
)
@click.option(
    "--deep-iteration", is_flag=True, help="Decode and print every record, not only batch headers."
)
@click.option(
    "--verify-index-only", is_flag=True, help="Check indexes against their logs; print only damage."
)
@click.option(
    "--offsets-decoder",
    is_flag=True,
    help="Decode __consumer_offsets records (offset commits, group metadata) as JSON.",
)
@_max_bytes
def dump(
    paths: tuple[str, ...],
    print_data_log: bool,
    deep_iteration: bool,
    verify_index_only: bool,
    offsets_decoder: bool,
    max_bytes: int | None,
) -> None:
    """Print the batches (and records) of segment files and verify them.

    PATHS are .log, .index or .timeindex files, or partition directories (all their
    segments). Every batch's CRC is checked; an index is checked against the .log next to it.
    Damage is printed as 'DAMAGE <file> at position <byte>: <what>' lines and the command
    exits 1.

    \b
    Examples:
      fastlog log dump events-0/00000000000000000000.log
      fastlog log dump --print-data-log events-0/00000000000000000000.log
      fastlog log dump events-0/00000000000000000000.index   # entries + check against .log
      fastlog log dump --verify-index-only events-0
      fastlog log dump --offsets-decoder data/__consumer_offsets-12
    """
    _run(
        paths,
        DumpOptions(
            print_data=print_data_log,
            deep=deep_iteration,
            verify_index_only=verify_index_only,
            offsets_decoder=offsets_decoder,
            max_bytes=max_bytes,
        ),
    )


@log.command("verify", context_settings=CONTEXT_SETTINGS)
@_paths
def verify(paths: tuple[str, ...]) -> None:
    """Verify segment files and print only damage (exit 1 if any, 0 if clean).

    Checks batch CRCs, record decoding, increasing offsets, and the offset and time
    indexes against their logs.

    \b
    Examples:
      fastlog log verify /var/lib/fastlog/events-0
      fastlog log verify 00000000000000000000.log 00000000000000000000.index
    """
    _run(paths, DumpOptions(deep=True, quiet=True))
