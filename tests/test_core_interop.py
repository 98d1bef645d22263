"""Cross-checks with independent implementations: aiokafka's and kafka-python's record builders
and readers, in both directions, uncompressed and with every codec they write."""

from __future__ import annotations

import struct

import crc32c as crc32c_pkg
import pytest
import snappy as python_snappy
from aiokafka.record.default_records import DefaultRecordBatchBuilder as AioBuilder
from aiokafka.record.memory_records import MemoryRecords as AioMemoryRecords
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatchBuilder as KpBuilder
from kafka.record.memory_records import MemoryRecords as KpMemoryRecords

from fastlog import _core

CODECS = [0, 1, 2, 3, 4]

blobs = st.one_of(st.none(), st.binary(max_size=200))
headers = st.lists(st.tuples(st.text(max_size=10), blobs), max_size=3)
records_st = st.lists(
    st.tuples(blobs, blobs, headers, st.integers(0, 2**50)), min_size=1, max_size=20
)


def sample_records(n: int = 50) -> list[tuple]:
    out = []
    for i in range(n):
        key = None if i % 7 == 0 else b"key-%d" % i
        value = None if i % 11 == 3 else (b"value-%d-" % i) * (i % 5 + 1)
        hdrs = [("trace", b"%d" % i), ("empty", b""), ("null", None)] if i % 3 == 0 else []
        out.append((key, value, hdrs, 1_700_000_000_000 + i * 3 - (i % 4) * 5))
    return out


def build_with(builder_cls, records, compression: int) -> bytes:
    builder = builder_cls(
        magic=2,
        compression_type=compression,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=64 * 1024 * 1024,
    )
    for i, (k, v, h, ts) in enumerate(records):
        assert builder.append(i, timestamp=ts, key=k, value=v, headers=h) is not None
    return bytes(builder.build())


def read_with(memory_records_cls, buf: bytes) -> list[tuple]:
    mr = memory_records_cls(buf)
    rows = []
    while True:
        batch = mr.next_batch()
        if batch is None:
            return rows
        assert batch.validate_crc()
        for r in batch:
            rows.append((r.offset, r.timestamp, r.key, r.value, [tuple(h) for h in r.headers]))


def expected(records, base_offset: int = 0) -> list[tuple]:
    return [(base_offset + i, ts, k, v, list(h)) for i, (k, v, h, ts) in enumerate(records)]


READERS = [
    pytest.param(AioMemoryRecords, id="aiokafka"),
    pytest.param(KpMemoryRecords, id="kafka-python"),
]
BUILDERS = [pytest.param(AioBuilder, id="aiokafka"), pytest.param(KpBuilder, id="kafka-python")]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("compression", CODECS)
def test_ours_read_by_theirs(reader, compression: int) -> None:
    records = sample_records()
    batch = _core.build_batch(records, base_offset=500, compression=compression)
    assert read_with(reader, batch) == expected(records, 500)


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("compression", CODECS)
def test_theirs_read_by_ours(builder, compression: int) -> None:
    records = sample_records()
    batch = build_with(builder, records, compression)
    [info] = _core.scan_batches(batch)  # CRC-32C checked
    assert _core.validate_records(batch, require_keys=False) == len(records)
    assert info.compression == compression
    assert info.record_count == len(records)
    if compression == 2:
        assert batch[61:].startswith(b"\x82SNAPPY\x00")  # both write xerial, as Java does
    assert _core.decode_records(batch) == expected(records)
    assert _core.iter_records(batch, start_offset=10, max_records=5) == expected(records)[10:15]


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("compression", CODECS)
def test_theirs_after_assign_offsets_and_log_append_time(builder, compression: int) -> None:
    records = sample_records(20)
    buf = bytearray(build_with(builder, records, compression) * 3)
    assert _core.assign_offsets(buf, 1000, log_append_time=1_800_000_000_000) == (
        1059,
        1_800_000_000_000,
        1019,
    )
    _core.set_partition_leader_epoch(buf, 9)
    infos = _core.scan_batches(buf)  # the rewritten CRCs hold
    assert [i.base_offset for i in infos] == [1000, 1020, 1040]
    assert all(i.partition_leader_epoch == 9 and i.timestamp_type == 1 for i in infos)
    for reader in (AioMemoryRecords, KpMemoryRecords):
        rows = read_with(reader, bytes(buf))
        assert [r[0] for r in rows] == list(range(1000, 1060))
        assert {r[1] for r in rows} == {1_800_000_000_000}
    assert [r[0] for r in _core.iter_records(buf)] == list(range(1000, 1060))


def test_uncompressed_bytes_identical_to_aiokafka_and_kafka_python() -> None:
    records = sample_records()
    # kafka-python writes partitionLeaderEpoch 0, aiokafka (like the Java producer) -1
    assert _core.build_batch(records) == build_with(AioBuilder, records, 0)
    assert _core.build_batch(records, partition_leader_epoch=0) == build_with(KpBuilder, records, 0)


@settings(max_examples=60, deadline=None)
@given(records_st, st.sampled_from(CODECS))
def test_round_trip_through_both_libraries(records, compression: int) -> None:
    ours = _core.build_batch(records, compression=compression)
    assert read_with(AioMemoryRecords, ours) == expected(records)
    assert read_with(KpMemoryRecords, ours) == expected(records)
    assert _core.decode_records(build_with(AioBuilder, records, compression)) == expected(records)
    assert _core.decode_records(build_with(KpBuilder, records, compression)) == expected(records)
    if compression == 0:
        assert ours == build_with(AioBuilder, records, 0)


def _rebatch(batch: bytes, compression: int, payload: bytes) -> bytes:
    """The header of batch with another records payload and codec, and a correct CRC."""
    head = bytearray(batch[:61])
    struct.pack_into(">i", head, 8, 61 - 12 + len(payload))
    attrs = struct.unpack_from(">h", head, 21)[0]
    struct.pack_into(">h", head, 21, (attrs & ~7) | compression)
    body = bytes(head[21:]) + payload
    struct.pack_into(">I", head, 17, crc32c_pkg.crc32c(body))
    return bytes(head) + payload


def test_raw_snappy_as_librdkafka_writes_it() -> None:
    # librdkafka compresses a batch's records as one raw snappy block (no xerial framing)
    records = sample_records()
    plain = _core.build_batch(records)
    batch = _rebatch(plain, 2, python_snappy.compress(plain[61:]))
    assert not batch[61:].startswith(b"\x82SNAPPY\x00")
    assert _core.decode_records(batch) == expected(records)


def test_xerial_snappy_as_java_writes_it() -> None:
    records = sample_records(2000)
    plain = _core.build_batch(records)
    raw = plain[61:]
    assert len(raw) > 64 * 1024  # several xerial blocks
    framed = bytearray(b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1))
    for i in range(0, len(raw), 32 * 1024):
        block = python_snappy.compress(raw[i : i + 32 * 1024])
        framed += struct.pack(">i", len(block)) + block
    assert _core.decode_records(_rebatch(plain, 2, bytes(framed))) == expected(records)
    # and our own snappy batches are xerial-framed, as the Java client writes them
    ours = _core.build_batch(records, compression=2)
    assert ours[61:].startswith(b"\x82SNAPPY\x00")
