"""Benchmarks of the Cython core (fastlog._core), with reference points.

Run: python -m pytest benchmarks/bench_core.py --benchmark-enable -q
Figures go in docs/core.md. These are benchmarks, not tests: nothing here asserts a timing.
"""

from __future__ import annotations

import gc
import os
import random
import struct
import zlib
from typing import NamedTuple

import crc32c as crc32c_pkg
import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder as AioBuilder
from aiokafka.record.memory_records import MemoryRecords as AioMemoryRecords

from fastlog import _core
from fastlog.records import Record

MIB = os.urandom(1 << 20)
RECORDS = [(b"key-%04d" % i, os.urandom(100), None, 1_700_000_000_000 + i) for i in range(1000)]


def produce_buffer() -> bytearray:
    """About 1 MB as one Produce request would carry it: 100 batches of 100 100-byte records."""
    buf = bytearray()
    for b in range(100):
        recs = [(None, os.urandom(100), None, 1_700_000_000_000 + b) for _ in range(100)]
        buf += _core.build_batch(recs, producer_id=1, producer_epoch=0, base_sequence=b * 100)
    return buf


PRODUCE = produce_buffer()
VALUES = [r[1] for r in RECORDS]
BATCH_1000 = _core.build_batch(RECORDS)
BATCH_1000_ZSTD = _core.build_batch(RECORDS, compression=_core.COMPRESSION_ZSTD)


# ------------------------------------------------------------------ CRC-32C of 1 MiB


@pytest.mark.benchmark(group="crc32c-1MiB")
def test_crc32c_fastlog(benchmark) -> None:
    assert benchmark(_core.crc32c, MIB) == crc32c_pkg.crc32c(MIB)


@pytest.mark.benchmark(group="crc32c-1MiB")
def test_crc32c_fastlog_software_path(benchmark) -> None:
    benchmark(_core._crc32c_software, MIB)


@pytest.mark.benchmark(group="crc32c-1MiB")
def test_crc32c_package(benchmark) -> None:
    benchmark(crc32c_pkg.crc32c, MIB)


@pytest.mark.benchmark(group="crc32c-1MiB")
def test_zlib_crc32_reference(benchmark) -> None:
    benchmark(zlib.crc32, MIB)


# ------------------------------------------------------------------ a 1 MB produce buffer


@pytest.mark.benchmark(group="produce-1MB")
def test_scan_batches_1mb(benchmark) -> None:
    assert len(benchmark(_core.scan_batches, PRODUCE)) == 100


@pytest.mark.benchmark(group="produce-1MB")
def test_valid_prefix_length_1mb(benchmark) -> None:
    assert benchmark(_core.valid_prefix_length, PRODUCE) == len(PRODUCE)


@pytest.mark.benchmark(group="produce-1MB")
def test_validate_records_1mb(benchmark) -> None:
    assert benchmark(_core.validate_records, PRODUCE) == 10_000


@pytest.mark.benchmark(group="produce-1MB")
def test_assign_offsets_1mb(benchmark) -> None:
    buf = bytearray(PRODUCE)
    benchmark(_core.assign_offsets, buf, 1_000_000)


@pytest.mark.benchmark(group="produce-1MB")
def test_assign_offsets_log_append_time_1mb(benchmark) -> None:
    buf = bytearray(PRODUCE)
    benchmark(_core.assign_offsets, buf, 1_000_000, 1_800_000_000_000)


# ------------------------------------------------------------------ 1000 records of 100 bytes


@pytest.mark.benchmark(group="build-1000x100B")
def test_build_batch_1000(benchmark) -> None:
    assert benchmark(_core.build_batch, RECORDS) == BATCH_1000


@pytest.mark.benchmark(group="build-1000x100B")
def test_build_batch_1000_bare_values(benchmark) -> None:
    # what Log.append_batch([b"...", ...]) hands the core: no tuple per record
    benchmark(_core.build_batch, VALUES, timestamp=1_700_000_000_000)


@pytest.mark.benchmark(group="build-1000x100B")
def test_join_1000_values_reference(benchmark) -> None:
    # what a plain file write of the same values costs before write(2)
    benchmark(b"".join, VALUES)


@pytest.mark.benchmark(group="build-1000x100B")
def test_build_batch_1000_zstd(benchmark) -> None:
    benchmark(_core.build_batch, RECORDS, compression=_core.COMPRESSION_ZSTD)


@pytest.mark.benchmark(group="build-1000x100B")
def test_build_batch_1000_aiokafka_reference(benchmark) -> None:
    def build() -> bytes:
        b = AioBuilder(
            magic=2,
            compression_type=0,
            is_transactional=0,
            producer_id=-1,
            producer_epoch=-1,
            base_sequence=-1,
            batch_size=1 << 24,
        )
        for i, (k, v, _h, ts) in enumerate(RECORDS):
            b.append(i, timestamp=ts, key=k, value=v, headers=[])
        return bytes(b.build())

    assert benchmark(build) == BATCH_1000


@pytest.mark.benchmark(group="decode-1000x100B")
def test_decode_records_1000(benchmark) -> None:
    assert len(benchmark(_core.decode_records, BATCH_1000)) == 1000


class _RecordTuple(NamedTuple):
    """What fastlog.Record was before it became the core's type: the reference it replaced."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list


@pytest.mark.benchmark(group="decode-1000x100B")
def test_decode_records_1000_as_records(benchmark) -> None:
    # how the storage layer reads (fastlog.Record), with the cyclic GC paused as it does
    gc.disable()
    try:
        assert len(benchmark(_core.decode_records, BATCH_1000, record_type=Record)) == 1000
    finally:
        gc.enable()


@pytest.mark.benchmark(group="decode-1000x100B")
def test_decode_records_1000_as_namedtuples_reference(benchmark) -> None:
    gc.disable()
    try:
        assert len(benchmark(_core.decode_records, BATCH_1000, record_type=_RecordTuple)) == 1000
    finally:
        gc.enable()


@pytest.mark.benchmark(group="decode-1000x100B")
def test_iter_records_last_of_1000(benchmark) -> None:
    # a lookup: records before start_offset are hopped over by their length, not decoded
    assert benchmark(_core.iter_records, BATCH_1000, 999, 1, record_type=Record)[0][0] == 999


@pytest.mark.benchmark(group="decode-1000x100B")
def test_decode_records_1000_zstd(benchmark) -> None:
    assert len(benchmark(_core.decode_records, BATCH_1000_ZSTD)) == 1000


@pytest.mark.benchmark(group="decode-1000x100B")
def test_decode_records_1000_aiokafka_reference(benchmark) -> None:
    def read() -> list:
        batch = AioMemoryRecords(BATCH_1000).next_batch()
        return [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in batch]

    assert len(benchmark(read)) == 1000


# ------------------------------------------------------------------ 100,000 offset-index lookups

INDEX_ENTRIES = 262_144  # a full 2 MiB .index (Kafka's default segment.index.bytes is 10 MiB)
INDEX = b"".join(struct.pack(">ii", i * 4, i * 4096) for i in range(INDEX_ENTRIES))
_rng = random.Random(7)
TARGETS = [_rng.randrange(0, INDEX_ENTRIES * 4) for _ in range(100_000)]


@pytest.mark.benchmark(group="index-100k-lookups")
def test_offset_index_100k_lookups(benchmark) -> None:
    lookup = _core.offset_index_lookup

    def run() -> int:
        index, n, total = INDEX, INDEX_ENTRIES, 0
        for t in TARGETS:
            total += lookup(index, n, t)
        return total

    assert benchmark(run) == sum(t // 4 for t in TARGETS)


@pytest.mark.benchmark(group="index-100k-lookups")
def test_time_index_100k_lookups(benchmark) -> None:
    tindex = b"".join(
        struct.pack(">qi", 1_700_000_000_000 + i * 10, i * 4) for i in range(INDEX_ENTRIES)
    )
    targets = [1_700_000_000_000 + t * 2 for t in TARGETS]
    lookup = _core.time_index_lookup

    def run() -> int:
        total = 0
        for t in targets:
            total += lookup(tindex, INDEX_ENTRIES, t)
        return total

    benchmark(run)
