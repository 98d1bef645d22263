"""Batch walking and in-place rewriting: scan_batches, valid_prefix_length, assign_offsets,
set_partition_leader_epoch."""

from __future__ import annotations

import mmap
from pathlib import Path

import pytest

from fastlog import _core


def batch(n: int, ts: list[int] | None = None, **kw) -> bytes:
    ts = ts or [1000 + i for i in range(n)]
    return _core.build_batch([(b"k%d" % i, b"v%d" % i, None, ts[i]) for i in range(n)], **kw)


def test_scan_positions_and_sizes() -> None:
    parts = [
        batch(1),
        batch(5, compression=4),
        batch(3, producer_id=77, producer_epoch=2, base_sequence=10),
    ]
    buf = b"".join(parts)
    infos = _core.scan_batches(buf)
    assert [i.position for i in infos] == [0, len(parts[0]), len(parts[0]) + len(parts[1])]
    assert [i.size for i in infos] == [len(p) for p in parts]
    assert [i.record_count for i in infos] == [1, 5, 3]
    assert (infos[2].producer_id, infos[2].producer_epoch, infos[2].base_sequence) == (77, 2, 10)
    assert infos[1].compression == _core.COMPRESSION_ZSTD
    assert infos[1].attributes == 4
    assert _core.scan_batches(b"") == []
    assert _core.valid_prefix_length(b"") == 0
    # plain attributes: the broker may annotate them
    infos[0].base_offset = 42
    assert infos[0].last_offset == 42
    assert "BatchInfo(" in repr(infos[0])


def test_scan_accepts_any_contiguous_buffer(tmp_path: Path) -> None:
    buf = batch(2) + batch(3)
    path = tmp_path / "00000000000000000000.log"
    path.write_bytes(buf)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        assert len(_core.scan_batches(m)) == 2
        assert _core.valid_prefix_length(m) == len(buf)
        assert len(_core.iter_records(m)) == 5
    assert len(_core.scan_batches(bytearray(buf))) == 2
    assert len(_core.scan_batches(memoryview(buf)[len(batch(2)) :])) == 1


def test_assign_offsets_create_time() -> None:
    buf = bytearray(batch(3, ts=[10, 50, 20]) + batch(2, ts=[40, 45]) + batch(4, ts=[50, 1, 2, 3]))
    crcs = [bytes(buf[i.position + 17 : i.position + 21]) for i in _core.scan_batches(buf)]
    last, max_ts, max_ts_offset = _core.assign_offsets(buf, 100)
    # maximum 50 first reached in the first batch: its last offset, as Kafka's LogSegment tracks it
    assert (last, max_ts, max_ts_offset) == (108, 50, 102)
    infos = _core.scan_batches(buf)
    assert [(i.base_offset, i.last_offset) for i in infos] == [(100, 102), (103, 104), (105, 108)]
    assert all(i.timestamp_type == 0 for i in infos)
    # baseOffset is outside the CRC: the CRCs are untouched
    assert [bytes(buf[i.position + 17 : i.position + 21]) for i in infos] == crcs
    assert [r[0] for r in _core.iter_records(buf)] == list(range(100, 109))
    assert [r[1] for r in _core.iter_records(buf)] == [10, 50, 20, 40, 45, 50, 1, 2, 3]


def test_assign_offsets_log_append_time() -> None:
    buf = bytearray(batch(3) + batch(2, compression=1))
    assert _core.assign_offsets(buf, 0, log_append_time=1_750_000_000_000) == (
        4,
        1_750_000_000_000,
        2,
    )
    infos = _core.scan_batches(buf)  # CRCs recomputed
    assert all(i.timestamp_type == 1 and i.max_timestamp == 1_750_000_000_000 for i in infos)
    assert all(i.base_timestamp == 1000 for i in infos)
    assert {r[1] for r in _core.iter_records(buf)} == {1_750_000_000_000}


def test_assign_offsets_in_a_writable_memoryview_slice() -> None:
    one = batch(2)
    buf = bytearray(b"HEADER" + one + b"TRAILER")
    view = memoryview(buf)[6 : 6 + len(one)]
    assert _core.assign_offsets(view, 7)[0] == 8
    assert buf.startswith(b"HEADER") and buf.endswith(b"TRAILER")
    assert _core.scan_batches(view)[0].base_offset == 7


def test_assign_offsets_of_nothing() -> None:
    assert _core.assign_offsets(bytearray(), 5) == (4, -1, -1)


def test_set_partition_leader_epoch() -> None:
    buf = bytearray(batch(1) + batch(2, compression=3))
    _core.set_partition_leader_epoch(buf, 12)
    assert [i.partition_leader_epoch for i in _core.scan_batches(buf)] == [12, 12]
    _core.set_partition_leader_epoch(buf, -1)
    assert [i.partition_leader_epoch for i in _core.scan_batches(buf)] == [-1, -1]


def test_flags() -> None:
    [info] = _core.scan_batches(batch(1, is_transactional=True, producer_id=5, producer_epoch=0))
    assert info.is_transactional and not info.is_control
    [info] = _core.scan_batches(batch(1, is_control=True))
    assert info.is_control
    assert info.attributes == 0x20


def test_buffer_is_released_after_calls() -> None:
    # a held export would make the bytearray impossible to resize
    buf = bytearray(batch(2))
    _core.scan_batches(buf)
    _core.assign_offsets(buf, 0)
    _core.set_partition_leader_epoch(buf, 1)
    _core.iter_records(buf)
    _core.decode_records(buf)
    _core.valid_prefix_length(buf)
    with pytest.raises(_core.CorruptRecordError):
        _core.scan_batches(buf + b"x")
    buf += b"more"  # would raise BufferError if any call leaked its Py_buffer
    del buf[-4:]


def test_buffer_is_released_after_errors() -> None:
    bad = bytearray(batch(2))
    bad[-1] ^= 1  # CRC mismatch
    for fn in (_core.scan_batches, _core.decode_records, _core.iter_records):
        with pytest.raises(_core.CorruptRecordError):
            fn(bad)
    torn = bytearray(batch(2)[:-3])
    for fn in (_core.assign_offsets, _core.set_partition_leader_epoch):
        with pytest.raises(_core.CorruptRecordError):
            fn(torn, 1)
    with pytest.raises(ValueError):
        _core.offset_index_lookup(bad, 10**6, 0)
    for b in (bad, torn):
        b += b"more"


# ------------------------------------------------------------------ validate_records (produce path)


@pytest.mark.parametrize("compression", [0, 1, 2, 3, 4])
def test_validate_records_accepts_good_batches(compression: int) -> None:
    buf = batch(3, compression=compression) + batch(5, compression=compression)
    assert _core.validate_records(buf) == 8
    assert _core.validate_records(buf, require_keys=True) == 8
    assert _core.validate_records(b"") == 0


def test_validate_records_require_keys() -> None:
    buf = _core.build_batch([(b"k", b"v", None, 1), (None, b"v", None, 2)], compression=1)
    with pytest.raises(_core.InvalidRecordError, match="record 1: no key"):
        _core.validate_records(buf, require_keys=True)
    assert _core.validate_records(buf) == 2


def test_validate_records_timestamp_range() -> None:
    buf = batch(3, ts=[100, 200, 300])
    assert _core.validate_records(buf, timestamp_min=100, timestamp_max=300) == 3
    with pytest.raises(_core.InvalidRecordError, match="record 2: timestamp 300"):
        _core.validate_records(buf, timestamp_max=299)
    with pytest.raises(_core.InvalidRecordError, match="record 0: timestamp 100"):
        _core.validate_records(buf, timestamp_min=101)
    # LogAppendTime batches carry the broker's time: their record timestamps are not checked
    lat = _core.build_batch([(None, b"v", None, 5)], timestamp_type=1)
    assert _core.validate_records(lat, timestamp_min=10) == 1


def test_validate_records_count_and_offset_deltas() -> None:
    good = bytearray(batch(3))
    # lastOffsetDelta 5 with 3 records (fix the CRC so only the count is wrong)
    bad = bytearray(good)
    bad[23:27] = (5).to_bytes(4, "big")
    bad[17:21] = _core.crc32c(bytes(bad[21:])).to_bytes(4, "big")
    with pytest.raises(_core.InvalidRecordError, match="does not match lastOffsetDelta"):
        _core.validate_records(bad)
    # records whose offsetDeltas are not 0, 1, 2 (as a compacted batch has them)
    compacted = _core.build_batch([(b"a", b"1", None, 1), (b"b", b"2", None, 2)])
    recs = bytearray(compacted[61:])
    # second record: length, attributes, timestampDelta, then offsetDelta
    second = 1 + recs[0] // 2
    assert recs[second + 3] == 2  # zigzag(1)
    recs[second + 3] = 4  # zigzag(2)
    head = bytearray(compacted[:61])
    head[23:27] = (1).to_bytes(4, "big")
    head[17:21] = _core.crc32c(bytes(head[21:]) + bytes(recs)).to_bytes(4, "big")
    with pytest.raises(_core.InvalidRecordError, match="offsetDelta 2, expected 1"):
        _core.validate_records(bytes(head) + bytes(recs))
    assert [r[0] for r in _core.decode_records(bytes(head) + bytes(recs))] == [0, 2]


def test_validate_records_checks_crc_unless_told() -> None:
    bad = bytearray(batch(2))
    bad[-1] ^= 1
    with pytest.raises(_core.CorruptRecordError, match="CRC"):
        _core.validate_records(bad)
    with pytest.raises(_core.CorruptRecordError, match="record 1"):
        _core.validate_records(bad, validate_crc=False)


def test_validate_records_bounds_decompression() -> None:
    big = _core.build_batch([(b"k", bytes(4 << 20), None, 1)], compression=4)
    assert len(big) < 4096
    with pytest.raises(_core.CorruptRecordError, match="max_uncompressed"):
        _core.validate_records(big, max_uncompressed=1 << 20)
    assert _core.validate_records(big) == 1
