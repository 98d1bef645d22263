"""build_batch / decode_records / iter_records round trips, zigzag varints and encoding errors."""

from __future__ import annotations

import struct
from typing import NamedTuple

import pytest
from aiokafka.record.util import decode_varint as ak_decode_varint
from aiokafka.record.util import encode_varint as ak_encode_varint
from hypothesis import given, settings
from hypothesis import strategies as st

from fastlog import _core

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)

# zigzag varint vectors (Kafka's ByteUtils.writeVarint/writeVarlong)
VARINT_VECTORS = [
    (0, "00"),
    (-1, "01"),
    (1, "02"),
    (-2, "03"),
    (63, "7e"),
    (-64, "7f"),
    (64, "8001"),
    (-65, "8101"),
    (8191, "fe7f"),
    (-8192, "ff7f"),
    (8192, "808001"),
    (2**31 - 1, "feffffff0f"),
    (-(2**31), "ffffffff0f"),
    (2**63 - 1, "feffffffffffffffff01"),
    (-(2**63), "ffffffffffffffffff01"),
]


@pytest.mark.parametrize(("value", "hexed"), VARINT_VECTORS)
def test_varint_vectors(value: int, hexed: str) -> None:
    encoded = bytes.fromhex(hexed)
    assert _core._encode_varint(value) == encoded
    assert _core._decode_varint(encoded) == (value, len(encoded))
    if -(2**31) <= value < 2**31:
        assert _core._decode_varint(encoded, 5) == (value, len(encoded))


@given(INT64)
def test_varint_round_trip_against_aiokafka(value: int) -> None:
    encoded = _core._encode_varint(value)
    theirs = bytearray()
    ak_encode_varint(value, theirs.append)
    assert encoded == bytes(theirs)
    assert _core._decode_varint(encoded + b"\x99") == (value, len(encoded))
    assert ak_decode_varint(encoded, 0) == (value, len(encoded))


@given(INT32)
def test_varint32_round_trip(value: int) -> None:
    encoded = _core._encode_varint(value)
    assert len(encoded) <= 5
    assert _core._decode_varint(encoded, 5) == (value, len(encoded))


@pytest.mark.parametrize(
    ("hexed", "max_bytes"),
    [
        ("", 10),  # nothing
        ("80", 10),  # continuation, then the end
        ("ffffffffff01", 5),  # six bytes for an int32
        ("ffffffff1f", 5),  # five bytes but 33 bits
        ("8080808080808080808001", 10),  # eleven bytes
        ("ffffffffffffffffff02", 10),  # tenth byte sets bits past 64
    ],
)
def test_varint_rejects(hexed: str, max_bytes: int) -> None:
    with pytest.raises(_core.CorruptRecordError):
        _core._decode_varint(bytes.fromhex(hexed), max_bytes)


# ------------------------------------------------------------------ round trips

blobs = st.one_of(st.none(), st.binary(max_size=300))
header = st.tuples(st.text(max_size=20), blobs)
timestamps = st.one_of(
    st.just(-1), st.integers(0, 2**63 - 1), st.integers(1_600_000_000_000, 1_900_000_000_000)
)
record = st.tuples(blobs, blobs, st.one_of(st.none(), st.lists(header, max_size=4)), timestamps)


def expected_rows(records, base_offset=0, log_append_time=None):
    return [
        (
            base_offset + i,
            log_append_time if log_append_time is not None else ts,
            k,
            v,
            list(h or []),
        )
        for i, (k, v, h, ts) in enumerate(records)
    ]


@settings(max_examples=150, deadline=None)
@given(
    records=st.lists(record, min_size=1, max_size=30),
    compression=st.integers(0, 4),
    base_offset=st.integers(0, 2**62),
    producer_id=st.integers(-1, 2**63 - 1),
    producer_epoch=st.integers(-1, 2**15 - 1),
    base_sequence=st.integers(-1, 2**31 - 1),
    transactional=st.booleans(),
    epoch=st.integers(-1, 2**31 - 1),
)
def test_build_decode_round_trip(
    records,
    compression,
    base_offset,
    producer_id,
    producer_epoch,
    base_sequence,
    transactional,
    epoch,
) -> None:
    batch = _core.build_batch(
        records,
        base_offset=base_offset,
        compression=compression,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        is_transactional=transactional,
        partition_leader_epoch=epoch,
    )
    assert _core.decode_records(batch) == expected_rows(records, base_offset)
    [info] = _core.scan_batches(batch)
    assert info.position == 0
    assert info.size == len(batch)
    assert info.base_offset == base_offset
    assert info.last_offset_delta == len(records) - 1
    assert info.last_offset == base_offset + len(records) - 1
    assert info.record_count == len(records)
    assert info.compression == compression
    assert info.timestamp_type == 0
    assert info.is_transactional == transactional
    assert not info.is_control
    assert info.base_timestamp == records[0][3]
    assert info.max_timestamp == max(r[3] for r in records)
    assert (info.producer_id, info.producer_epoch, info.base_sequence) == (
        producer_id,
        producer_epoch,
        base_sequence,
    )
    assert info.partition_leader_epoch == epoch
    assert _core.valid_prefix_length(batch) == len(batch)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(record, min_size=1, max_size=8), min_size=1, max_size=6), st.data())
def test_iter_records_over_many_batches(batch_records, data) -> None:
    buf = bytearray()
    flat = []
    for recs in batch_records:
        compression = data.draw(st.integers(0, 4))
        buf += _core.build_batch(recs, compression=compression)
        flat.extend(recs)
    last, _, _ = _core.assign_offsets(buf, 1000)
    assert last == 1000 + len(flat) - 1
    rows = expected_rows(flat, 1000)
    assert _core.iter_records(buf) == rows
    start = data.draw(st.integers(990, 1000 + len(flat) + 2))
    limit = data.draw(st.integers(-1, len(flat) + 1))
    wanted = [r for r in rows if r[0] >= start]
    if limit >= 0:
        wanted = wanted[:limit]
    assert _core.iter_records(buf, start_offset=start, max_records=limit) == wanted


def test_log_append_time_batch() -> None:
    records = [(b"k", b"v", None, 10), (None, b"w", None, 30), (None, b"x", None, 20)]
    batch = _core.build_batch(records, timestamp_type=1)
    [info] = _core.scan_batches(batch)
    assert info.timestamp_type == 1
    assert info.max_timestamp == 30
    # every record of a LogAppendTime batch carries the batch's maxTimestamp
    assert [r[1] for r in _core.decode_records(batch)] == [30, 30, 30]


def test_timestamp_none_means_now() -> None:
    import time

    before = int(time.time() * 1000)
    batch = _core.build_batch([(None, b"v", None, None), (None, b"w", None, 5)])
    after = int(time.time() * 1000)
    rows = _core.decode_records(batch)
    assert before <= rows[0][1] <= after
    assert rows[1][1] == 5


def test_bytes_like_inputs_accepted() -> None:
    rows = _core.decode_records(
        _core.build_batch(
            [
                (bytearray(b"key"), memoryview(b"value"), [("h", bytearray(b"hv"))], 1),
                (memoryview(b"xkx")[1:2], b"", [], 2),
            ]
        )
    )
    assert rows == [(0, 1, b"key", b"value", [("h", b"hv")]), (1, 2, b"k", b"", [])]


def test_unicode_header_names() -> None:
    records = [(None, b"v", [("ünïcødé-ключ-🔑", b"1"), ("", None)], 0)]
    assert _core.decode_records(_core.build_batch(records))[0][4] == records[0][2]


@pytest.mark.parametrize("compression", [0, 1, 2, 3, 4])
def test_large_records(compression: int) -> None:
    big = bytes(range(256)) * 4096 + b"tail"  # 1 MiB, compressible
    records = [(b"k", big, [("h", big[:1000])], 1), (None, big[::-1], None, 2)]
    batch = _core.build_batch(records, compression=compression)
    assert _core.decode_records(batch) == expected_rows(records)


def test_control_batches_are_skipped_by_iter_records() -> None:
    control = _core.build_batch(
        [(b"\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00\x00", None, 1)], is_control=True
    )
    data = _core.build_batch([(None, b"a", None, 1)])
    buf = bytearray(control + data)
    _core.assign_offsets(buf, 0)
    assert _core.scan_batches(buf)[0].is_control
    assert _core.iter_records(buf) == [(1, 1, None, b"a", [])]
    # decode_records still decodes a control batch when asked for it
    assert len(_core.decode_records(control)) == 1


def test_iter_records_ignores_a_trailing_partial_batch() -> None:
    one = _core.build_batch([(None, b"a", None, 1)])
    two = _core.build_batch([(None, b"b", None, 1)], base_offset=1)
    for cut in range(1, len(two)):
        assert _core.iter_records(one + two[:cut]) == [(0, 1, None, b"a", [])]


def test_decode_ignores_bytes_after_the_batch() -> None:
    batch = _core.build_batch([(None, b"a", None, 1)])
    assert _core.decode_records(batch + b"garbage") == _core.decode_records(batch)


# ------------------------------------------------------------------ encoding errors


@pytest.mark.parametrize(
    ("records", "match"),
    [
        ([], "at least one record"),
        ([(None, "text", None, 1)], "not str"),
        ([("text", b"v", None, 1)], "not str"),
        ([(1, b"v", None, 1)], "bytes-like"),
        ([(None, b"v", [(b"name", b"v")], 1)], "header name must be str"),
        ([(None, b"v", [("name",)], 1)], "pair"),
        ([(None, b"v", [("name", 5)], 1)], "bytes-like"),
        ([(None, b"v", "headers", 1)], "headers"),
        ([(None, b"v", 7, 1)], "headers"),
        ([(None, b"v", None)], "tuple"),
        (["value"], "tuple or a bytes-like value"),
        ([5], "tuple or a bytes-like value"),
        ([(None, b"v", None, 1), bytes], "tuple or a bytes-like value"),
        ([(None, b"v", None, "now")], "timestamp"),
        ([(None, b"v", None, 1.5)], "timestamp"),
        ([(None, b"v", None, -2)], "out of range"),
        ([(None, b"v", None, 2**63)], "out of range"),
        ([(None, memoryview(b"abcd")[::2], None, 1)], "contiguous"),
    ],
)
def test_build_batch_rejects_bad_records(records, match: str) -> None:
    with pytest.raises(_core.InvalidRecordError, match=match):
        _core.build_batch(records)


def test_build_batch_rejects_bad_options() -> None:
    ok = [(None, b"v", None, 1)]
    with pytest.raises(_core.InvalidRecordError):
        _core.build_batch(ok, compression=5)
    with pytest.raises(_core.InvalidRecordError):
        _core.build_batch(ok, compression=-1)
    with pytest.raises(_core.InvalidRecordError):
        _core.build_batch(ok, timestamp_type=2)
    with pytest.raises(_core.InvalidRecordError):
        _core.build_batch(ok, producer_epoch=40000)
    with pytest.raises(_core.InvalidRecordError):
        _core.build_batch(5)  # type: ignore[arg-type]


def test_uncompressed_batch_layout() -> None:
    batch = _core.build_batch(
        [(b"k", b"v", [("h", b"x")], 1234)], base_offset=7, partition_leader_epoch=3
    )
    (base, length, epoch, magic, _crc, attrs, delta, base_ts, max_ts, pid, pepoch, seq, count) = (
        struct.unpack(">qiibIhiqqqhii", batch[:61])
    )
    assert (base, length, epoch, magic, attrs, delta, base_ts, max_ts, pid, pepoch, seq, count) == (
        7,
        len(batch) - 12,
        3,
        2,
        0,
        0,
        1234,
        1234,
        -1,
        -1,
        -1,
        1,
    )
    # length 12, attributes 0, ts delta 0, offset delta 0, key "k", value "v", 1 header "h": "x"
    assert batch[61:] == bytes.fromhex("18 00 00 00 02 6b 02 76 02 02 68 02 78".replace(" ", ""))


@pytest.mark.parametrize("size", [0, 1, 63, 64, 8191, 8192, 1_048_575, 1_048_576])
def test_lengths_around_varint_boundaries(size: int) -> None:
    # key, value, header value and record lengths each cross a varint width here
    blob = bytes(range(256)) * (size // 256) + bytes(size % 256)
    records = [(blob, blob, [("h" * min(size, 70), blob)], 1), (None, blob[: size // 2], None, 2)]
    batch = _core.build_batch(records)
    assert _core.decode_records(batch) == expected_rows(records)
    assert _core.validate_records(batch) == 2
    # aiokafka agrees on the bytes
    from aiokafka.record.memory_records import MemoryRecords

    rows = [
        (r.offset, r.timestamp, r.key, r.value, list(r.headers))
        for r in MemoryRecords(batch).next_batch()
    ]
    assert rows == expected_rows(records)


def test_bare_values_are_value_only_records() -> None:
    batch = _core.build_batch(
        [b"a", bytearray(b"b"), memoryview(b"c"), None, (b"k", b"v", [("h", b"x")], 5)],
        timestamp=77,
    )
    assert _core.decode_records(batch) == [
        (0, 77, None, b"a", []),
        (1, 77, None, b"b", []),
        (2, 77, None, b"c", []),
        (3, 77, None, None, []),
        (4, 5, b"k", b"v", [("h", b"x")]),
    ]
    # same bytes as the tuples a caller would otherwise build
    assert _core.build_batch([b"a", b"b"], timestamp=9) == _core.build_batch(
        [(None, b"a", None, 9), (None, b"b", None, 9)]
    )
    with pytest.raises(_core.InvalidRecordError, match="timestamp"):
        _core.build_batch([b"a"], timestamp=-5)
    with pytest.raises(_core.InvalidRecordError, match="timestamp"):
        _core.build_batch([b"a"], timestamp="now")


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.sampled_from([b"x" * 63, b"x" * 64, b"x" * 8191, b"x" * 8192]),
            st.none(),
            st.binary(max_size=20).map(bytearray),
            st.binary(max_size=20).map(lambda v: [v]),  # becomes a (key, value, ...) tuple
        ),
        min_size=1,
        max_size=150,
    ),
    st.integers(-1, 2**63 - 1),
)
def test_bare_bytes_fast_path_matches_the_tuple_encoding(items, ts: int) -> None:
    # bare bytes take their own path in build_batch: the bytes must be those of the tuples
    values = [(None, v[0], None, ts) if isinstance(v, list) else v for v in items]
    as_tuples = [v if isinstance(v, tuple) else (None, v, None, ts) for v in values]
    assert _core.build_batch(values, timestamp=ts) == _core.build_batch(as_tuples)
    assert _core.validate_records(_core.build_batch(values, timestamp=ts)) == len(values)


def test_bare_values_default_to_now() -> None:
    import time

    before = int(time.time() * 1000)
    [(_, ts, _, _, _)] = _core.decode_records(_core.build_batch([b"a"]))
    assert before <= ts <= int(time.time() * 1000)


class _Rec(NamedTuple):
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list


@settings(max_examples=50, deadline=None)
@given(st.lists(record, min_size=1, max_size=20), st.integers(0, 4))
def test_record_type_gives_namedtuples(records, compression: int) -> None:
    batch = _core.build_batch(records, compression=compression)
    rows = _core.decode_records(batch, record_type=_Rec)
    assert all(type(r) is _Rec for r in rows)
    assert [tuple(r) for r in rows] == expected_rows(records)
    assert [r.value for r in rows] == [r[1] for r in records]
    assert _core.iter_records(batch, 1, 2, record_type=_Rec) == expected_rows(records)[1:3]
    assert all(type(r) is _Rec for r in _core.iter_records(batch, record_type=_Rec))
    assert all(type(r) is tuple for r in _core.iter_records(batch, record_type=tuple))


def test_record_type_must_be_a_tuple_subclass() -> None:
    batch = _core.build_batch([b"a"])
    for bad in (list, dict, "Record", 5):
        with pytest.raises(TypeError, match="tuple subclass"):
            _core.decode_records(batch, record_type=bad)
        with pytest.raises(TypeError, match="tuple subclass"):
            _core.iter_records(batch, record_type=bad)


def test_record_type_instances_survive_gc() -> None:
    import gc

    batch = _core.build_batch([(b"k%d" % i, b"v", [("h", b"x")], i) for i in range(1000)])
    rows = _core.iter_records(batch * 1, record_type=_Rec)
    cycle = [rows]
    rows[0].headers.append(cycle)  # a reference cycle through a record
    gc.collect()
    assert rows[999] == (999, 999, b"k999", b"v", [("h", b"x")])
    del rows, cycle
    gc.collect()


@settings(max_examples=50, deadline=None)
@given(st.lists(record, min_size=1, max_size=20), st.integers(0, 4))
def test_tuple_headers_are_one_immutable_type(records, compression: int) -> None:
    batch = _core.build_batch(records, compression=compression)
    as_lists = _core.decode_records(batch)
    got = _core.decode_records(batch, record_type=_Rec, tuple_headers=True)
    assert all(type(r.headers) is tuple for r in got)
    assert [r.headers for r in got] == [tuple(r[4]) for r in as_lists]
    assert [r[:4] for r in got] == [r[:4] for r in as_lists]
    assert _core.iter_records(batch, tuple_headers=True) == [
        r[:4] + (tuple(r[4]),) for r in as_lists
    ]


def test_records_sharing_a_timestamp_decode_right() -> None:
    # one int object serves a run of equal timestamps; the values must still be each record's
    recs = [(None, b"v", None, ts) for ts in (5, 5, 7, 7, 5, 2**40, 2**40, -1, -1)]
    for codec in (0, 4):
        batch = _core.build_batch(recs, compression=codec)
        assert [r[1] for r in _core.decode_records(batch)] == [r[3] for r in recs]
    got = _core.iter_records(_core.build_batch([b"a", b"b", b"c"], timestamp=2**50))
    assert [r[1] for r in got] == [2**50] * 3
