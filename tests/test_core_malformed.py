"""Hostile and broken input: every reader raises CorruptRecordError (or returns a valid prefix),
never crashes, never reads past the buffer, and refuses compression bombs."""

from __future__ import annotations

import struct

import cramjam
import crc32c as crc32c_pkg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastlog import _core

HEADER = struct.Struct(">qiibIhiqqqhii")


def make_batch(
    payload: bytes,
    record_count: int,
    *,
    attributes: int = 0,
    last_offset_delta: int | None = None,
    base_offset: int = 0,
    length: int | None = None,
    magic: int = 2,
    crc: int | None = None,
) -> bytes:
    """A batch with any records payload and header fields; the CRC is correct unless given."""
    if last_offset_delta is None:
        last_offset_delta = max(record_count - 1, 0)
    if length is None:
        length = 49 + len(payload)
    head = bytearray(
        HEADER.pack(
            base_offset,
            length,
            -1,
            magic,
            0,
            attributes,
            last_offset_delta,
            0,
            0,
            -1,
            -1,
            -1,
            record_count,
        )
    )
    if crc is None:
        crc = crc32c_pkg.crc32c(bytes(head[21:]) + payload)
    struct.pack_into(">I", head, 17, crc)
    return bytes(head) + payload


def varint(v: int) -> bytes:
    return _core._encode_varint(v)


def record(body: bytes) -> bytes:
    return varint(len(body)) + body


GOOD = _core.build_batch([(b"k", b"v", [("h", b"x")], 1), (None, None, None, 2)])


def readers_reject_or_accept(buf: bytes) -> None:
    """Every reader either succeeds or raises CorruptRecordError on buf."""
    for fn in (
        lambda: _core.scan_batches(buf),
        lambda: _core.decode_records(buf),
        lambda: _core.iter_records(buf),
        lambda: _core.decode_records(buf, max_uncompressed=4096),
        lambda: _core.decode_records(buf, validate_crc=False),
        # records below start_offset are hopped over by their length, not decoded
        lambda: _core.iter_records(buf, start_offset=3, validate_crc=False),
        lambda: _core.iter_records(buf, start_offset=1, max_records=1),
    ):
        try:
            fn()
        except _core.CorruptRecordError:
            pass
    try:
        n = _core.validate_records(buf)
    except (_core.CorruptRecordError, _core.InvalidRecordError):
        pass
    else:
        # the two record parsers agree: what the validator passes decodes in full
        assert len(_core.iter_records(buf)) == n
    prefix = _core.valid_prefix_length(buf)
    assert 0 <= prefix <= len(buf)
    infos = _core.scan_batches(buf, stop_at_corruption=True)
    assert sum(i.size for i in infos) == prefix


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    readers_reject_or_accept(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=st.binary(max_size=400),
    record_count=st.one_of(st.integers(-3, 40), st.just(2**31 - 1), st.just(-(2**31))),
    attributes=st.integers(0, 0x3F),
)
def test_random_records_under_a_valid_crc(
    payload: bytes, record_count: int, attributes: int
) -> None:
    # the CRC is right, so the record parser (and the decompressors) see the hostile bytes
    readers_reject_or_accept(make_batch(payload, record_count, attributes=attributes))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_records_under_a_valid_crc(data) -> None:
    records = data.draw(
        st.lists(
            st.tuples(
                st.one_of(st.none(), st.binary(max_size=30)),
                st.one_of(st.none(), st.binary(max_size=30)),
                st.lists(
                    st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=5))),
                    max_size=3,
                ),
                st.integers(0, 2**40),
            ),
            min_size=1,
            max_size=5,
        )
    )
    good = _core.build_batch(records)
    payload = bytearray(good[61:])
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(payload)))
    readers_reject_or_accept(make_batch(bytes(payload[:cut]), len(records)))


def test_every_truncation_of_a_valid_log() -> None:
    log = bytearray()
    for i in range(3):
        log += _core.build_batch([(None, b"v%d" % j, None, j) for j in range(i + 1)], compression=i)
    sizes = [i.size for i in _core.scan_batches(log)]
    ends = [sum(sizes[: i + 1]) for i in range(len(sizes))]
    for cut in range(len(log)):
        torn = bytes(log[:cut])
        whole = max([e for e in ends if e <= cut], default=0)
        assert _core.valid_prefix_length(torn) == whole
        assert [i.position + i.size for i in _core.scan_batches(torn, stop_at_corruption=True)] == [
            e for e in ends if e <= cut
        ]
        if cut != whole:
            with pytest.raises(_core.CorruptRecordError, match="truncated"):
                _core.scan_batches(torn)
            with pytest.raises(_core.CorruptRecordError):
                _core.decode_records(torn[whole:])


def test_every_flipped_byte_is_caught() -> None:
    for i in range(len(GOOD)):
        bad = bytearray(GOOD)
        bad[i] ^= 0x40
        if i < 8 or 12 <= i < 16:
            # baseOffset and partitionLeaderEpoch are not under the CRC
            assert _core.scan_batches(bad)
            continue
        with pytest.raises(_core.CorruptRecordError):
            _core.scan_batches(bad)
        with pytest.raises(_core.CorruptRecordError):
            _core.decode_records(bad)
        assert _core.valid_prefix_length(bad) == 0


def test_garbage_tail_after_valid_batches() -> None:
    buf = GOOD + GOOD + b"\x00" * 5 + b"garbage" * 10
    assert _core.valid_prefix_length(buf) == 2 * len(GOOD)
    assert len(_core.scan_batches(buf, stop_at_corruption=True)) == 2
    with pytest.raises(_core.CorruptRecordError, match=f"position {2 * len(GOOD)}"):
        _core.scan_batches(buf)


@pytest.mark.parametrize(
    ("batch", "match"),
    [
        (make_batch(b"", 0, length=-1), "below the minimum"),
        (make_batch(b"", 0, length=48), "below the minimum"),
        (make_batch(b"", 0, length=2**31 - 1), "truncated"),
        (make_batch(b"", 0, magic=1), "magic"),
        (make_batch(b"", 0, magic=0), "magic"),
        (make_batch(b"", 0, magic=-1), "magic"),
        (make_batch(b"", 0, attributes=5), "compression codec 5"),
        (make_batch(b"", 0, attributes=7), "compression codec 7"),
        (make_batch(b"", -1), "negative"),
        (make_batch(b"", 0, last_offset_delta=-5), "negative"),
        (make_batch(b"", 0, crc=0xDEADBEEF), "CRC-32C mismatch"),
    ],
)
def test_bad_headers(batch: bytes, match: str) -> None:
    with pytest.raises(_core.CorruptRecordError, match=match):
        _core.scan_batches(batch)
    with pytest.raises(_core.CorruptRecordError, match=match):
        _core.decode_records(batch)
    assert _core.valid_prefix_length(batch) == 0


def test_validate_crc_false_skips_only_the_crc() -> None:
    bad = make_batch(b"", 0, crc=1)
    assert len(_core.scan_batches(bad, validate_crc=False)) == 1
    assert _core.valid_prefix_length(bad, validate_crc=False) == len(bad)


def test_decode_without_the_crc_check_still_checks_bounds() -> None:
    bad_crc = GOOD[:17] + bytes(4) + GOOD[21:]
    with pytest.raises(_core.CorruptRecordError, match="CRC"):
        _core.decode_records(bad_crc)
    with pytest.raises(_core.CorruptRecordError, match="CRC"):
        _core.iter_records(bad_crc)
    assert _core.decode_records(bad_crc, validate_crc=False) == _core.decode_records(GOOD)
    assert _core.iter_records(bad_crc, validate_crc=False) == _core.iter_records(GOOD)
    hostile = make_batch(varint(2**30) + VALID_BODY, 1, last_offset_delta=9, crc=1)
    with pytest.raises(_core.CorruptRecordError, match="exceeds"):
        _core.decode_records(hostile, validate_crc=False)
    with pytest.raises(_core.CorruptRecordError, match="exceeds"):
        _core.iter_records(hostile, start_offset=5, validate_crc=False)


def test_skipped_records_hop_by_length_and_keep_offset_gaps() -> None:
    def body(offset_delta: int, value: bytes) -> bytes:
        return (
            b"\x00\x00" + varint(offset_delta) + varint(-1) + varint(len(value)) + value + b"\x00"
        )

    # a compacted batch: offset deltas 0, 5, 9 (gaps), lastOffsetDelta 9
    payload = record(body(0, b"a")) + record(body(5, b"b")) + record(body(9, b"c"))
    batch = make_batch(payload, 3, last_offset_delta=9, base_offset=100)
    assert [r[0] for r in _core.iter_records(batch)] == [100, 105, 109]
    assert [r[3] for r in _core.iter_records(batch, start_offset=101)] == [b"b", b"c"]
    assert [r[3] for r in _core.iter_records(batch, start_offset=106, max_records=1)] == [b"c"]
    assert _core.iter_records(batch, start_offset=110) == []
    # a skipped record's fields past offsetDelta are not decoded (as a fetch skips them), but
    # its length still has to fit the batch
    broken = record(b"\x00\x00" + varint(0) + varint(-7)) + record(body(1, b"z"))
    batch = make_batch(broken, 2)
    with pytest.raises(_core.CorruptRecordError, match="key length"):
        _core.iter_records(batch)
    assert [r[3] for r in _core.iter_records(batch, start_offset=1)] == [b"z"]
    past_end = varint(500) + b"\x00\x00" + varint(0) + record(body(1, b"z"))
    with pytest.raises(_core.CorruptRecordError, match="exceeds"):
        _core.iter_records(make_batch(past_end, 2), start_offset=1)


VALID_BODY = (
    b"\x00\x00\x00" + varint(-1) + varint(-1) + varint(0)
)  # attrs, ts, offset, null key/value, 0 headers


@pytest.mark.parametrize(
    ("payload", "count", "match"),
    [
        (b"", 1, "length varint"),  # fewer records than recordCount
        (record(VALID_BODY), 2, "length varint"),
        (record(VALID_BODY), 2**31 - 1, "length varint"),  # hostile count, tiny payload
        (record(VALID_BODY) + b"\x00", 1, "left over"),  # bytes after the last record
        (varint(2**30) + VALID_BODY, 1, "exceeds"),  # record length past the end
        (varint(-5) + VALID_BODY, 1, "exceeds"),
        (b"\xff\xff\xff\xff\xff\xff", 1, "length varint"),  # varint too long
        (record(b""), 1, "empty record"),
        (record(b"\x00\x00"), 1, "offsetDelta"),  # runs out inside the record
        (record(b"\x00" + b"\xff" * 11), 1, "timestampDelta"),
        (record(b"\x00\x00\x00" + varint(100) + b"k"), 1, "key length"),
        (record(b"\x00\x00\x00" + varint(-2)), 1, "key length"),
        (record(b"\x00\x00\x00" + varint(-1) + varint(7) + b"v"), 1, "value length"),
        (record(b"\x00\x00\x00" + varint(-1) + varint(-1) + varint(2**31 - 1)), 1, "header count"),
        (record(b"\x00\x00\x00" + varint(-1) + varint(-1) + varint(-1)), 1, "header count"),
        (
            record(b"\x00\x00\x00" + varint(-1) + varint(-1) + varint(1) + varint(-1) + varint(-1)),
            1,
            "header key length",
        ),
        (
            record(
                b"\x00\x00\x00" + varint(-1) + varint(-1) + varint(1) + varint(1) + b"h" + varint(9)
            ),
            1,
            "header value length",
        ),
        (record(VALID_BODY + b"\x00\x00"), 1, "fields end"),  # record length longer than its fields
    ],
)
def test_bad_records(payload: bytes, count: int, match: str) -> None:
    batch = make_batch(payload, count)
    assert _core.scan_batches(batch)  # the header alone is fine
    with pytest.raises((_core.CorruptRecordError, _core.InvalidRecordError)):
        _core.validate_records(batch)
    with pytest.raises(_core.CorruptRecordError, match=match):
        _core.decode_records(batch)
    with pytest.raises(_core.CorruptRecordError, match=match):
        _core.iter_records(batch)


def test_valid_hand_made_record() -> None:
    assert _core.decode_records(make_batch(record(VALID_BODY), 1)) == [(0, 0, None, None, [])]


def test_header_key_not_utf8_reads_as_replacement() -> None:
    # Kafka accepts such keys (librdkafka sends header names as raw bytes); Java reads them with
    # U+FFFD, and so do we, instead of failing the whole read
    body = b"\x00\x00\x00" + varint(-1) + varint(-1) + varint(1) + varint(2) + b"a\xff" + varint(-1)
    batch = make_batch(record(body), 1)
    assert _core.decode_records(batch) == [(0, 0, None, None, [("a\ufffd", None)])]
    assert _core.validate_records(batch) == 1


BOMB = bytes(32 * 1024 * 1024)  # 32 MiB of zeros


def bomb_records() -> bytes:
    # a single record whose value is the bomb, so an unbounded decompressor would allocate it all
    body = b"\x00\x00\x00" + varint(-1) + varint(len(BOMB)) + BOMB + varint(0)
    return record(body)


@pytest.fixture(scope="module")
def bomb_plain() -> bytes:
    return bomb_records()


@pytest.mark.parametrize(
    ("codec", "compress"),
    [
        (1, lambda b: bytes(cramjam.gzip.compress(b))),
        (2, lambda b: bytes(cramjam.snappy.compress_raw(b))),
        (3, lambda b: bytes(cramjam.lz4.compress(b))),
        (4, lambda b: bytes(cramjam.zstd.compress(b))),
    ],
)
def test_compression_bomb_is_refused(bomb_plain: bytes, codec: int, compress) -> None:
    payload = compress(bomb_plain)
    assert len(payload) < len(bomb_plain) // 20
    batch = make_batch(payload, 1, attributes=codec)
    with pytest.raises(_core.CorruptRecordError, match="max_uncompressed"):
        _core.decode_records(batch, max_uncompressed=1024 * 1024)
    with pytest.raises(_core.CorruptRecordError, match="max_uncompressed"):
        _core.iter_records(batch, max_uncompressed=1024 * 1024)
    # the same batch within the bound decodes
    [row] = _core.decode_records(batch, max_uncompressed=len(bomb_plain))
    assert len(row[3]) == len(BOMB)


def test_xerial_snappy_bomb_is_refused(bomb_plain: bytes) -> None:
    framed = bytearray(b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1))
    for i in range(0, len(bomb_plain), 1 << 20):
        block = bytes(cramjam.snappy.compress_raw(bomb_plain[i : i + (1 << 20)]))
        framed += struct.pack(">i", len(block)) + block
    batch = make_batch(bytes(framed), 1, attributes=2)
    with pytest.raises(_core.CorruptRecordError, match="max_uncompressed"):
        _core.decode_records(batch, max_uncompressed=1024 * 1024)
    assert len(_core.decode_records(batch, max_uncompressed=64 << 20)[0][3]) == len(BOMB)


@pytest.mark.parametrize("isize", [0, 16, 99_999, 2**32 - 1])
def test_gzip_with_a_lying_size_trailer(isize: int) -> None:
    # the decoder sizes its buffer from ISIZE but must neither trust nor overrun it
    plain = _core.build_batch([(None, b"x" * 100_000, None, 1)])[61:]
    payload = bytearray(cramjam.gzip.compress(plain))
    struct.pack_into("<I", payload, len(payload) - 4, isize)
    with pytest.raises(_core.CorruptRecordError, match="gzip"):
        _core.decode_records(make_batch(bytes(payload), 1, attributes=1))


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00",
        b"not compressed at all" * 3,
        b"\x82SNAPPY\x00" + b"\x00" * 8 + b"\x7f\xff\xff\xff",
        b"\xff" * 64,
    ],
)
def test_garbage_compressed_payloads(codec: int, payload: bytes) -> None:
    with pytest.raises(_core.CorruptRecordError):
        _core.decode_records(make_batch(payload, 1, attributes=codec))


def test_compressed_payload_with_wrong_record_count() -> None:
    plain = _core.build_batch([(None, b"a", None, 1), (None, b"b", None, 2)])[61:]
    for codec, compress in ((1, cramjam.gzip.compress), (4, cramjam.zstd.compress)):
        payload = bytes(compress(plain))
        with pytest.raises(_core.CorruptRecordError, match="left over"):
            _core.decode_records(make_batch(payload, 1, attributes=codec))
        with pytest.raises(_core.CorruptRecordError):
            _core.decode_records(make_batch(payload, 3, attributes=codec))


def test_rewriters_refuse_bad_structure_without_writing() -> None:
    buf = bytearray(GOOD + GOOD[:30])
    before = bytes(buf)
    with pytest.raises(_core.CorruptRecordError):
        _core.assign_offsets(buf, 10)
    with pytest.raises(_core.CorruptRecordError):
        _core.set_partition_leader_epoch(buf, 3)
    assert bytes(buf) == before


def test_rewriters_need_a_writable_buffer() -> None:
    with pytest.raises(TypeError, match="writable"):
        _core.assign_offsets(GOOD, 0)
    with pytest.raises(TypeError, match="writable"):
        _core.set_partition_leader_epoch(memoryview(GOOD), 0)
    with pytest.raises(ValueError):
        _core.assign_offsets(bytearray(GOOD), -1)


def test_non_buffer_inputs() -> None:
    for fn in (
        _core.scan_batches,
        _core.decode_records,
        _core.iter_records,
        _core.valid_prefix_length,
    ):
        with pytest.raises(TypeError):
            fn("text")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            fn(None)  # type: ignore[arg-type]


def test_negative_max_uncompressed_is_refused() -> None:
    batch = _core.build_batch([(None, b"x" * 1000, None, 1)], compression=1)
    for fn in (_core.decode_records, _core.iter_records, _core.validate_records):
        with pytest.raises(ValueError, match="max_uncompressed"):
            fn(batch, max_uncompressed=-1)
        with pytest.raises(_core.CorruptRecordError, match="max_uncompressed=0"):
            fn(batch, max_uncompressed=0)


def test_extreme_offsets_wrap_like_java() -> None:
    batch = make_batch(
        record(VALID_BODY) + record(VALID_BODY.replace(b"\x00\x00\x00", b"\x00\x00\x02", 1)), 2
    )
    hostile = bytearray(batch)
    struct.pack_into(">q", hostile, 0, 2**63 - 1)  # baseOffset is not under the CRC
    rows = _core.decode_records(hostile)
    assert [r[0] for r in rows] == [2**63 - 1, -(2**63)]
    assert [r[0] for r in _core.iter_records(hostile, start_offset=-(2**63))] == [
        2**63 - 1,
        -(2**63),
    ]
