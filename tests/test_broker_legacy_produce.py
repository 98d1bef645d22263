"""Produce v0-v2: magic 0/1 message sets up-converted to v2 batches (broker/message_format.py).

- A property test: message sets built by kafka-python's LegacyRecordBatchBuilder (an
  independent writer) read back through our converter and fastlog._core with the same keys,
  values and timestamps, in the codec they came with.
- Hostile sets, in-process (each malformation gets Kafka's error code) and over the wire
  against a live broker: bad CRCs (outer and inner), truncation, absurd sizes, nested
  compression, compression bombs in every legacy codec, a wrapper holding hundreds of
  thousands of tiny messages. The broker answers, stays within its memory bound, appends
  nothing for a refused set, and an honest client keeps producing and reading.
- The v0/v1/v2 request and response layouts, acks=0, and the normal append path's checks
  (compacted topics need keys) applied to up-converted records.
"""

from __future__ import annotations

import datetime
import socket
import struct
import zlib
from collections.abc import Iterator

import cramjam
import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from support import BrokerProcess, free_port
from test_broker_produce import fetch_request
from test_hostile_records import create_topic, gzip_bomb, lz4_bomb, snappy_raw_bomb
from test_hostile_support import (
    MemoryProbe,
    Witness,
    cap_address_space,
    connect,
    honest_after,
    is_closed,
    read_frame,
)

from broker.handlers import produce as produce_handler
from broker.handlers._produce_legacy import PRODUCE_LEGACY
from broker.message_format import (
    CORRUPT_MESSAGE,
    INVALID_RECORD,
    MESSAGE_TOO_LARGE,
    UNSUPPORTED_COMPRESSION_TYPE,
    MessageSetError,
    up_convert,
)
from broker.protocol import decode_response, encode_request
from fastlog import _core

GIB = 1 << 30
MB = 1 << 20
MAX_MESSAGE = 64 * MB  # large enough that bombs reach the decompressor
NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4


# -- message sets built field by field, so a test can lie in any field -----------------------


def _bytes(b: bytes | None) -> bytes:
    return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b


def message(
    magic: int,
    key: bytes | None,
    value: bytes | None,
    *,
    timestamp: int = 1_700_000_000_000,
    attributes: int = 0,
    offset: int = 0,
    crc: int | None = None,
    size: int | None = None,
    extra: bytes = b"",
) -> bytes:
    body = struct.pack(">bb", magic, attributes)
    if magic == 1:
        body += struct.pack(">q", timestamp)
    body += _bytes(key) + _bytes(value) + extra
    msg = struct.pack(">I", zlib.crc32(body) if crc is None else crc) + body
    return struct.pack(">qi", offset, len(msg) if size is None else size) + msg


def lz4_magic0(data: bytes) -> bytes:
    """An LZ4 frame with the header checksum Kafka 0.8/0.9 wrote (over the frame magic too)."""
    frame = bytes(cramjam.lz4.compress(data))
    end = 6 + (8 if frame[4] & 0x08 else 0)
    wrong = (xxhash.xxh32_intdigest(frame[:end]) >> 8) & 0xFF
    return frame[:end] + bytes((wrong,)) + frame[end + 1 :]


def compress(codec: int, data: bytes, magic: int = 1) -> bytes:
    if codec == GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec == SNAPPY:
        return bytes(cramjam.snappy.compress_raw(data))
    if codec == LZ4:
        return lz4_magic0(data) if magic == 0 else bytes(cramjam.lz4.compress(data))
    raise ValueError(codec)


def wrapper(magic: int, codec: int, inner: bytes, **kwargs) -> bytes:
    return message(magic, None, compress(codec, inner, magic), attributes=codec, **kwargs)


def convert(records: bytes, max_message_bytes: int = MB, **kwargs) -> list:
    return _core.iter_records(up_convert(records, max_message_bytes=max_message_bytes, **kwargs))


def refused(records: bytes, max_message_bytes: int = MB, **kwargs) -> int:
    with pytest.raises(MessageSetError) as info:
        up_convert(records, max_message_bytes=max_message_bytes, **kwargs)
    return info.value.error_code


# -- the up-conversion, against kafka-python's builder --------------------------------------

record_st = st.tuples(
    st.none() | st.binary(max_size=40),
    st.none() | st.binary(max_size=200),
    st.integers(min_value=0, max_value=2**53),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    magic=st.sampled_from([0, 1]),
    codec=st.sampled_from([NONE, GZIP, SNAPPY, LZ4]),
    records=st.lists(record_st, min_size=1, max_size=30),
)
def test_up_conversion_keeps_the_records(magic: int, codec: int, records: list) -> None:
    builder = LegacyRecordBatchBuilder(magic, codec, batch_size=1 << 30)
    for i, (key, value, ts) in enumerate(records):
        # magic 1 compressed sets carry relative inner offsets, plain ones absolute: both
        # are replaced by the log's
        builder.append(i if codec else 1000 + i, ts, key, value)
    converted = up_convert(bytes(builder.build()), max_message_bytes=1 << 30)
    batches = _core.scan_batches(converted)
    assert {b.compression for b in batches} == {codec}
    assert {(b.producer_id, b.timestamp_type, b.is_transactional) for b in batches} == {
        (-1, 0, False)
    }
    got = _core.iter_records(converted)
    assert [r[0] for r in got] == list(range(len(records)))
    expected_ts = [ts if magic == 1 else -1 for _, _, ts in records]
    assert [(r[1], r[2], r[3], r[4]) for r in got] == [
        (ts, k, v, []) for (k, v, _), ts in zip(records, expected_ts, strict=True)
    ]


def test_several_wrappers_and_plain_messages_in_one_set() -> None:
    """Kafka rebuilds a mixed set as one codec: the last compressed wrapper's."""
    inner_a = message(1, b"a", b"1", timestamp=10) + message(1, b"b", b"2", offset=1, timestamp=11)
    inner_b = message(1, b"c", b"3", timestamp=12)
    records = (
        wrapper(1, GZIP, inner_a, offset=1)
        + message(1, b"d", b"4", timestamp=13, offset=2)
        + wrapper(1, SNAPPY, inner_b, offset=3)
    )
    converted = up_convert(records, max_message_bytes=MB)
    assert {b.compression for b in _core.scan_batches(converted)} == {SNAPPY}
    assert [(r[1], r[2], r[3]) for r in _core.iter_records(converted)] == [
        (10, b"a", b"1"),
        (11, b"b", b"2"),
        (13, b"d", b"4"),
        (12, b"c", b"3"),
    ]


def test_log_append_time_wrapper_gives_its_timestamp_to_the_inner_messages() -> None:
    inner = message(1, b"a", b"1", timestamp=5) + message(1, b"b", b"2", timestamp=6)
    records = message(1, None, compress(GZIP, inner), attributes=GZIP | 0x08, timestamp=99)
    assert [r[1] for r in convert(records)] == [99, 99]


def test_magic0_lz4_with_kafka_08_header_checksum() -> None:
    inner = message(0, b"k", b"v") + message(0, None, b"w")
    assert [(r[2], r[3]) for r in convert(wrapper(0, LZ4, inner))] == [(b"k", b"v"), (None, b"w")]


def test_many_records_are_encoded_in_chunks() -> None:
    builder = LegacyRecordBatchBuilder(1, GZIP, batch_size=1 << 30)
    for i in range(40_000):
        builder.append(i, 1_700_000_000_000 + i, None, b"%d" % i)
    converted = up_convert(bytes(builder.build()), max_message_bytes=MB)
    batches = _core.scan_batches(converted)
    assert len(batches) > 1 and {b.compression for b in batches} == {GZIP}
    got = _core.iter_records(converted)
    assert [r[3] for r in got] == [b"%d" % i for i in range(40_000)]


# -- hostile sets, in-process ------------------------------------------------------------------

GOOD = message(1, b"k", b"v")
INNER = message(1, b"k", b"v") + message(1, b"k2", b"v2", offset=1)


def _with_crc(raw: bytes) -> bytes:
    """Recompute the CRC of one hand-broken message, so that only the broken field is wrong."""
    body = raw[16:]
    return raw[:12] + struct.pack(">I", zlib.crc32(body)) + body


def _key_length(n: int) -> bytes:
    """A magic 1 message (null key, value b"v") whose key length field says n."""
    return _with_crc(GOOD[: GOOD.index(b"\0\0\0\x01k")] + struct.pack(">i", n) + b"\0" * 6)


HOSTILE = {
    "bad-crc": (message(1, b"k", b"v", crc=12345), CORRUPT_MESSAGE),
    "bad-inner-crc": (
        wrapper(1, GZIP, message(1, b"k", b"v") + message(1, b"x", b"y", crc=1)),
        CORRUPT_MESSAGE,
    ),
    "truncated": (GOOD + GOOD[:-3], CORRUPT_MESSAGE),
    "partial-entry-header": (GOOD + GOOD[:7], CORRUPT_MESSAGE),
    "size-below-overhead": (message(0, b"k", b"v", size=5), CORRUPT_MESSAGE),
    "size-2GiB": (message(1, b"k", b"v", size=2**31 - 1), CORRUPT_MESSAGE),
    "size-negative": (message(1, b"k", b"v", size=-12), CORRUPT_MESSAGE),
    # kafka-python's reader loops forever on this one
    "inner-size-negative": (wrapper(1, GZIP, message(1, b"k", b"v", size=-12)), CORRUPT_MESSAGE),
    "key-length-2GiB": (_key_length(2**31 - 1), CORRUPT_MESSAGE),
    "key-length-negative": (_key_length(-7), CORRUPT_MESSAGE),
    "bytes-after-value": (message(1, b"k", b"v", extra=b"junk"), CORRUPT_MESSAGE),
    "magic1-too-short": (
        _with_crc(struct.pack(">qi", 0, 14) + b"\0\0\0\0\x01\x00" + b"\xff" * 8),
        CORRUPT_MESSAGE,
    ),
    "unknown-magic": (_with_crc(GOOD[:16] + b"\x05" + GOOD[17:]), CORRUPT_MESSAGE),
    "nested-compression": (wrapper(1, GZIP, wrapper(1, GZIP, INNER)), INVALID_RECORD),
    "inner-magic-mismatch": (wrapper(1, GZIP, message(0, b"k", b"v")), INVALID_RECORD),
    "zstd": (
        message(1, None, bytes(cramjam.zstd.compress(INNER)), attributes=ZSTD),
        UNSUPPORTED_COMPRESSION_TYPE,
    ),
    "codec-7": (message(1, None, b"x", attributes=7), CORRUPT_MESSAGE),
    "compressed-null-value": (message(1, None, None, attributes=GZIP), CORRUPT_MESSAGE),
    "empty-wrapper": (wrapper(1, GZIP, b""), CORRUPT_MESSAGE),
    "garbage-gzip": (message(1, None, b"\x1f\x8b garbage", attributes=GZIP), CORRUPT_MESSAGE),
    "garbage-snappy": (
        message(1, None, b"\xff\xff\xff\xff\x0f", attributes=SNAPPY),
        CORRUPT_MESSAGE,
    ),
    "garbage-lz4": (message(1, None, b"\x04\x22\x4d\x18junk", attributes=LZ4), CORRUPT_MESSAGE),
    "lz4-magic0-short": (
        message(0, None, b"\x04\x22\x4d\x18\x60", attributes=LZ4),
        CORRUPT_MESSAGE,
    ),
    "xerial-block-2GiB": (
        message(
            1,
            None,
            b"\x82SNAPPY\x00" + struct.pack(">iii", 1, 1, 2**31 - 1) + b"x",
            attributes=SNAPPY,
        ),
        CORRUPT_MESSAGE,
    ),
    "v2-batch-inside": (GOOD + _core.build_batch([(b"k", b"v", None, 1)]), CORRUPT_MESSAGE),
}


def _hostile(name: str) -> tuple[bytes, int]:
    return HOSTILE[name]


@pytest.mark.parametrize("name", HOSTILE.keys())
def test_hostile_set_gets_kafkas_error(name: str) -> None:
    records, code = _hostile(name)
    assert refused(records) == code


VALID_SETS = [
    GOOD + message(0, None, b"w"),
    wrapper(1, GZIP, INNER),
    wrapper(1, SNAPPY, INNER),
    wrapper(1, LZ4, INNER),
    wrapper(0, LZ4, message(0, b"k", b"v")),
]


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from(VALID_SETS),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4),
    cut=st.integers(0, 40),
    fix_crc=st.booleans(),
)
def test_mutated_sets_get_an_error_code_or_convert(
    base: bytes, flips, cut: int, fix_crc: bool
) -> None:
    """Any damage to a valid set ends in MessageSetError (a Kafka error code) or, when it
    leaves a valid set, in v2 batches the core reads back; never another exception.
    fix_crc re-signs the damage so that it reaches the parsers and decompressors."""
    records = bytearray(base)
    for at, xor in flips:
        records[at % len(records)] ^= xor
    records = records[: len(records) - min(cut, len(records) - 1)] if cut else records
    if fix_crc and len(records) > 16:
        records = bytearray(_with_crc(bytes(records)))
    try:
        converted = up_convert(bytes(records), max_message_bytes=MB, max_uncompressed=MB)
    except MessageSetError as exc:
        assert exc.error_code in (
            CORRUPT_MESSAGE,
            INVALID_RECORD,
            MESSAGE_TOO_LARGE,
            UNSUPPORTED_COMPRESSION_TYPE,
        )
        return
    assert len(_core.iter_records(converted)) >= 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_get_an_error_code(records: bytes) -> None:
    try:
        up_convert(records, max_message_bytes=MB, max_uncompressed=MB)
    except MessageSetError:
        pass


def test_outer_message_above_max_message_bytes() -> None:
    assert refused(message(1, b"k", b"v" * 2000), max_message_bytes=1000) == MESSAGE_TOO_LARGE
    # the cap is on an outer message: inner ones add up past it only through the wrapper
    assert len(convert(wrapper(1, GZIP, INNER * 50), max_message_bytes=1000)) == 100


@pytest.mark.parametrize(
    "codec,bomb",
    [
        (GZIP, lambda: gzip_bomb(256 * MB)),
        (LZ4, lambda: lz4_bomb(256 * MB)),
        (SNAPPY, lambda: snappy_raw_bomb(GIB)),
        (SNAPPY, lambda: snappy_raw_bomb(MB)),  # a preamble lying low
    ],
    ids=["gzip", "lz4", "snappy-raw-1GiB", "snappy-raw-lying"],
)
def test_bomb_is_refused_at_the_cap(codec: int, bomb) -> None:
    records = message(1, None, bomb(), attributes=codec)
    assert refused(records, max_message_bytes=1 << 30, max_uncompressed=16 * MB) == CORRUPT_MESSAGE


# -- over the wire --------------------------------------------------------------------------


def legacy_request(version: int, topic: str, records: bytes | None, acks: int = -1, partition=0):
    req_cls = PRODUCE_LEGACY[(0, version)][0]
    module = __import__(req_cls.__module__, fromlist=["_"])
    return req_cls(
        acks=acks,
        timeout=datetime.timedelta(seconds=10),
        topic_data=(
            module.TopicProduceDataV0(
                name=topic,
                partition_data=(module.PartitionProduceDataV0(index=partition, records=records),),
            ),
        ),
    )


def send(broker: BrokerProcess, version: int, topic: str, records: bytes | None):
    with connect(broker, timeout=60) as s:
        s.sendall(encode_request(legacy_request(version, topic, records), 7, "legacy"))
        cid, response = decode_response(read_frame(s), 0, version)
    assert cid == 7
    return response


def send_one(broker: BrokerProcess, version: int, topic: str, records: bytes) -> tuple[int, int]:
    p = send(broker, version, topic, records).responses[0].partition_responses[0]
    return p.error_code.value, p.base_offset


def log_end(broker: BrokerProcess, topic: str) -> int:
    with connect(broker) as s:
        s.sendall(encode_request(fetch_request(12, topic, 0, 0), 3, "legacy"))
        _, response = decode_response(read_frame(s), 1, 12)
    p = response.responses[0].partitions[0]
    return 0 if p.error_code.value == 3 else p.high_watermark


def read_back(broker: BrokerProcess, topic: str) -> list:
    with connect(broker) as s:
        s.sendall(encode_request(fetch_request(12, topic, 0, 0), 4, "legacy"))
        _, response = decode_response(read_frame(s), 1, 12)
    return _core.iter_records(response.responses[0].partitions[0].records or b"")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    d = tmp_path_factory.mktemp("legacy-produce") / "data"
    d.mkdir()
    b = BrokerProcess(
        d, free_port(), {"num.partitions": "1", "message.max.bytes": str(MAX_MESSAGE)}
    ).start()
    cap_address_space(b)
    yield b
    b.stop()


@pytest.fixture
def witness(target: BrokerProcess) -> Witness:
    w = Witness(target.bootstrap)
    w.produce(10, tag="before")
    return w


def test_response_layouts(target: BrokerProcess) -> None:
    """v0: (partition, error, base offset); v1 adds throttle time; v2 the log append time.
    The responses are read with the legacy schemas and, independently, with kafka-python's."""
    from kafka.protocol.old import produce as theirs_produce

    topic = "layouts"
    offset = 0
    for version in (0, 1, 2):
        records = message(min(version, 1), b"k%d" % version, b"v")
        with connect(target) as s:
            s.sendall(encode_request(legacy_request(version, topic, records), 11, "legacy"))
            frame = read_frame(s)
        cid, response = decode_response(frame, 0, version)
        p = response.responses[0].partition_responses[0]
        assert (cid, p.index, p.error_code.value, p.base_offset) == (11, 0, 0, offset)
        theirs = getattr(theirs_produce, f"ProduceResponse_v{version}").decode(frame[4:])
        [(name, [part])] = theirs.responses
        assert (name, part[0], part[1], part[2]) == (topic, 0, 0, offset)
        if version >= 1:
            assert theirs.throttle_time_ms == 0
        if version == 2:
            assert part[3] == p.log_append_time_ms == -1
        offset += 1
    got = read_back(target, topic)
    assert [(r[0], r[2]) for r in got] == [(0, b"k0"), (1, b"k1"), (2, b"k2")]
    assert got[0][1] == -1 and got[1][1] == got[2][1] == 1_700_000_000_000


def test_v2_batches_in_a_legacy_request_are_taken_as_they_are(target: BrokerProcess) -> None:
    batch = _core.build_batch([(b"k", b"v", [("h", b"x")], 5)], compression=GZIP)
    assert send_one(target, 2, "v2-in-v2", batch) == (0, 0)
    assert [(r[2], r[3], r[4]) for r in read_back(target, "v2-in-v2")] == [
        (b"k", b"v", [("h", b"x")])
    ]


def test_compacted_topic_needs_keys_after_up_conversion(target: BrokerProcess) -> None:
    create_topic(target, "legacy-compact", {"cleanup.policy": "compact"})
    code, _ = send_one(target, 2, "legacy-compact", message(1, None, b"no key"))
    assert code == INVALID_RECORD
    assert send_one(target, 2, "legacy-compact", message(1, b"k", b"v"))[0] == 0


def test_log_append_time_topic(target: BrokerProcess) -> None:
    """The topic's message.timestamp.type applies to up-converted records; v2 answers the
    broker's time."""
    topic = "legacy-append-time"
    create_topic(target, topic, {"message.timestamp.type": "LogAppendTime"})
    inner = message(1, b"a", b"1", timestamp=5) + message(1, b"b", b"2", timestamp=6, offset=1)
    p = send(target, 2, topic, wrapper(1, GZIP, inner)).responses[0].partition_responses[0]
    assert p.error_code.value == 0 and p.log_append_time_ms > 1_700_000_000_000
    assert [(r[1], r[2]) for r in read_back(target, topic)] == [
        (p.log_append_time_ms, b"a"),
        (p.log_append_time_ms, b"b"),
    ]


INVALID_TIMESTAMP = 32


def test_magic0_records_have_no_timestamp_to_bound(target: BrokerProcess) -> None:
    """Kafka checks message.timestamp.before/after.max.ms only on records that carry a
    timestamp: magic 0 records (stored with NO_TIMESTAMP, -1) are accepted; magic 1 ones from
    2023 are not, on a topic that takes records at most a minute old."""
    topic = "legacy-no-timestamp"
    create_topic(target, topic, {"message.timestamp.before.max.ms": "60000"})
    assert send_one(target, 0, topic, message(0, b"k", b"old client"))[0] == 0
    assert send_one(target, 2, topic, message(1, b"k", b"stale"))[0] == INVALID_TIMESTAMP
    assert [(r[1], r[3]) for r in read_back(target, topic)] == [(-1, b"old client")]


@pytest.mark.parametrize("target_codec", ["zstd", "uncompressed"])
def test_topic_compression_type_applies_after_up_conversion(
    target: BrokerProcess, target_codec: str
) -> None:
    """compression.type re-encodes up-converted records as Kafka's LogValidator does for a
    magic 0/1 set (the legacy codec is only the source)."""
    topic = f"legacy-ct-{target_codec}"
    create_topic(target, topic, {"compression.type": target_codec})
    assert send_one(target, 2, topic, wrapper(1, GZIP, INNER)) == (0, 0)
    with connect(target) as s:
        s.sendall(encode_request(fetch_request(12, topic, 0, 0), 4, "legacy"))
        _, response = decode_response(read_frame(s), 1, 12)
    stored = response.responses[0].partitions[0].records
    expected = ZSTD if target_codec == "zstd" else NONE
    assert {b.compression for b in _core.scan_batches(stored)} == {expected}
    assert [(r[2], r[3]) for r in _core.iter_records(stored)] == [(b"k", b"v"), (b"k2", b"v2")]


def test_acks0_refused_set_closes_the_connection(target: BrokerProcess, witness) -> None:
    with connect(target) as s:
        s.sendall(
            encode_request(legacy_request(1, "acks0", message(0, b"k", b"v", crc=1), acks=0), 1)
        )
        assert is_closed(s)
    honest_after(target, witness)


@pytest.mark.parametrize("name", HOSTILE.keys())
def test_hostile_set_over_the_wire(target: BrokerProcess, witness, name: str) -> None:
    records, code = _hostile(name)
    topic = f"hostile-{name}"
    before = log_end(target, topic)
    for version in (0, 2):
        assert send_one(target, version, topic, records)[0] == code
    assert log_end(target, topic) == before
    honest_after(target, witness)


@pytest.mark.parametrize(
    "codec,bomb",
    [
        (GZIP, lambda: gzip_bomb(GIB)),
        (LZ4, lambda: lz4_bomb(GIB)),
        (SNAPPY, lambda: snappy_raw_bomb(GIB)),
    ],
    ids=["gzip-1GiB", "lz4-1GiB", "snappy-raw-1GiB"],
)
def test_bomb_over_the_wire_in_bounded_memory(target: BrokerProcess, witness, codec, bomb) -> None:
    topic = "legacy-bomb"
    before = log_end(target, topic)
    records = message(1, None, bomb(), attributes=codec)
    probe = MemoryProbe(target.proc.pid)
    assert send_one(target, 2, topic, records)[0] == CORRUPT_MESSAGE
    probe.assert_bounded()
    assert log_end(target, topic) == before
    honest_after(target, witness)


def test_wrapper_of_tiny_messages_in_bounded_memory(target: BrokerProcess, witness) -> None:
    """~15 MiB of 35-byte messages (just under the 16 MiB cap) in one gzip wrapper: taken,
    re-encoded in chunks rather than as half a million Python objects at once."""
    one = message(1, None, b"x")
    count = (produce_handler.LEGACY_MAX_UNCOMPRESSED - MB) // len(one)
    records = wrapper(1, GZIP, one * count)
    probe = MemoryProbe(target.proc.pid)
    assert send_one(target, 2, "tiny", records) == (0, 0)
    probe.assert_bounded()
    assert log_end(target, "tiny") == count
    honest_after(target, witness)


def test_slow_legacy_client_does_not_stop_others(target: BrokerProcess, witness) -> None:
    """A legacy request sent byte by byte is framed like any other: others go on meanwhile."""
    frame = encode_request(legacy_request(1, "slow", message(0, b"k", b"v")), 1, "slow")
    with socket.create_connection(("127.0.0.1", target.port), timeout=10) as s:
        s.sendall(frame[:10])
        honest_after(target, witness)
        s.sendall(frame[10:])
        _, response = decode_response(read_frame(s), 0, 1)
    assert response.responses[0].partition_responses[0].error_code.value == 0
