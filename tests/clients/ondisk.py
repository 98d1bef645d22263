"""Read record batch headers straight from a partition's segment files.

The client tests use this as an independent witness of what the broker stored: the
compression codec a producer chose (stored as sent), the producer id, epoch and sequence
numbers of an idempotent producer, and offsets assigned without gaps. It parses only the
fixed 61-byte v2 batch header, in Kafka's on-disk layout (DESIGN.md section 3).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

# baseOffset, batchLength, partitionLeaderEpoch, magic, crc, attributes, lastOffsetDelta,
# baseTimestamp, maxTimestamp, producerId, producerEpoch, baseSequence, recordsCount
_HEADER = struct.Struct(">qiibIhiqqqhii")
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


@dataclass(frozen=True)
class BatchHeader:
    base_offset: int
    last_offset: int
    magic: int
    codec: str
    timestamp_type: int
    is_transactional: bool
    is_control: bool
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int


def partition_dir(data_dir: Path, topic: str, partition: int) -> Path:
    """The directory holding topic-partition's segments under a broker's data dir."""
    name = f"{topic}-{partition}"
    found = [p for p in data_dir.rglob(name) if p.is_dir()]
    if len(found) != 1:
        tree = sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*"))
        raise AssertionError(
            f"expected one directory {name} under {data_dir}, found {found}; tree: {tree}"
        )
    return found[0]


def read_batches(data_dir: Path, topic: str, partition: int) -> list[BatchHeader]:
    """Every batch header of the partition, in offset order, from all its .log segments."""
    batches: list[BatchHeader] = []
    for segment in sorted(partition_dir(data_dir, topic, partition).glob("*.log")):
        data = segment.read_bytes()
        pos = 0
        while pos + _HEADER.size <= len(data):
            (
                base,
                length,
                _epoch,
                magic,
                _crc,
                attrs,
                last_delta,
                base_ts,
                max_ts,
                pid,
                pepoch,
                base_seq,
                count,
            ) = _HEADER.unpack_from(data, pos)
            if length == 0:
                break  # preallocated, unwritten tail
            batches.append(
                BatchHeader(
                    base_offset=base,
                    last_offset=base + last_delta,
                    magic=magic,
                    codec=CODECS.get(attrs & 0x07, f"unknown({attrs & 0x07})"),
                    timestamp_type=(attrs >> 3) & 1,
                    is_transactional=bool(attrs & 0x10),
                    is_control=bool(attrs & 0x20),
                    base_timestamp=base_ts,
                    max_timestamp=max_ts,
                    producer_id=pid,
                    producer_epoch=pepoch,
                    base_sequence=base_seq,
                    records_count=count,
                )
            )
            pos += 12 + length
    return batches


def assert_contiguous(batches: list[BatchHeader], start: int = 0) -> int:
    """Offsets run start, start+1, ... without gap or overlap; returns the next offset."""
    expected = start
    for b in batches:
        assert b.magic == 2, b
        assert b.base_offset == expected, (
            f"batch at {b.base_offset}, expected {expected}: {batches}"
        )
        assert b.last_offset - b.base_offset + 1 == b.records_count, b
        expected = b.last_offset + 1
    return expected
