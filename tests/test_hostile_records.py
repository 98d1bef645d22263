"""Hostile record batches in Produce requests against a live broker: compression bombs
(CVE-2023-34455) for normal and compacted topics, batches whose counts, lengths, CRC or
magic lie, and batches above message.max.bytes.

Each attack must get the protocol's error (CORRUPT_MESSAGE, INVALID_RECORD,
MESSAGE_TOO_LARGE, ...) with nothing appended, the broker's peak memory must stay bounded
(the bombs announce 1 GiB), and an honest confluent-kafka client must still produce and
read back every record acknowledged before and after.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import cramjam
import lz4.frame
import pytest
from support import BrokerProcess, free_port
from test_broker_produce import fetch_request, produce_request
from test_hostile_support import (
    MB,
    MemoryProbe,
    Witness,
    cap_address_space,
    connect,
    honest_after,
    raw_batch,
    read_frame,
    tiny_record,
)

from broker.protocol import decode_response, encode_request

GIB = 1 << 30
MAX_MESSAGE = 64 * MB  # the bombs must reach the decompressor, not stop at the size check

CORRUPT_MESSAGE = 2
MESSAGE_TOO_LARGE = 10
INVALID_RECORD = 87
UNSUPPORTED_COMPRESSION_TYPE = 76

GZIP, SNAPPY, LZ4, ZSTD = 1, 2, 3, 4


# -- bombs: 1 GiB of zeros, built without holding 1 GiB ------------------------------------


def gzip_bomb(total: int = GIB) -> bytes:
    """A valid gzip member of ``total`` zero bytes: one 1 MiB deflate block ending in a full
    flush (no back reference across it) repeated, then the real CRC-32 and size."""
    chunk = bytes(MB)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(total // MB):
        crc = zlib.crc32(chunk, crc)
    trailer = b"\x03\x00" + struct.pack("<II", crc, total & 0xFFFFFFFF)
    return b"\x1f\x8b\x08\0\0\0\0\0\0\xff" + block * (total // MB) + trailer


def zstd_bomb(total: int = GIB) -> bytes:
    c = cramjam.zstd.Compressor()
    chunk = bytes(MB)
    for _ in range(total // MB):
        c.compress(chunk)
    return bytes(c.finish())


def lz4_bomb(total: int = GIB) -> bytes:
    c = lz4.frame.LZ4FrameCompressor()
    parts = [c.begin()]
    chunk = bytes(MB)
    parts += [c.compress(chunk) for _ in range(total // MB)]
    parts.append(c.flush())
    return b"".join(parts)


def snappy_xerial_bomb(total: int = GIB) -> bytes:
    """Java's framing: 32 KiB blocks, each compressed alone (snappy tops out near 21:1, so
    1 GiB is about 50 MB on the wire)."""
    block = bytes(cramjam.snappy.compress_raw(bytes(32 * 1024)))
    head = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    return head + (struct.pack(">i", len(block)) + block) * (total // (32 * 1024))


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def snappy_raw_bomb(claimed: int) -> bytes:
    """A raw snappy block (librdkafka's framing) of 80 MiB of zeros whose length preamble
    says ``claimed``: the decompressor must not trust it in either direction."""
    real = bytes(cramjam.snappy.compress_raw(bytes(80 * MB)))
    # skip the real preamble (a uvarint)
    i = 0
    while real[i] & 0x80:
        i += 1
    return _uvarint(claimed) + real[i + 1 :]


BOMBS = {
    "gzip": (GZIP, gzip_bomb),
    "zstd": (ZSTD, zstd_bomb),
    "lz4": (LZ4, lz4_bomb),
    "snappy-xerial": (SNAPPY, snappy_xerial_bomb),
    "snappy-raw-1GiB": (SNAPPY, lambda: snappy_raw_bomb(GIB)),
    "snappy-raw-lying-1MiB": (SNAPPY, lambda: snappy_raw_bomb(MB)),
}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    d = tmp_path_factory.mktemp("hostile-records") / "data"
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


def create_topic(broker: BrokerProcess, name: str, configs: dict[str, str]) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics([NewTopic(name, 1, 1, config=configs)])
    try:
        futures[name].result(15)
    except Exception as exc:  # already there from an earlier parametrisation
        if "TOPIC_ALREADY_EXISTS" not in str(exc) and "already exists" not in str(exc):
            raise


def produce(broker: BrokerProcess, topic: str, batch: bytes, version: int = 9) -> tuple[int, str]:
    """(error code, message) of a one-batch Produce on its own connection."""
    with connect(broker, timeout=60) as s:
        s.sendall(encode_request(produce_request(version, topic, 0, batch), 9, "hostile"))
        _, response = decode_response(read_frame(s), 0, version)
    p = response.responses[0].partition_responses[0]
    return p.error_code.value, getattr(p, "error_message", None)


def log_end(broker: BrokerProcess, topic: str) -> int:
    with connect(broker) as s:
        s.sendall(encode_request(fetch_request(12, topic, 0, 0), 3, "hostile"))
        _, response = decode_response(read_frame(s), 1, 12)
    p = response.responses[0].partitions[0]
    return 0 if p.error_code.value == 3 else p.high_watermark  # 3: not created yet


# -- compression bombs (CVE-2023-34455) ----------------------------------------------------


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    return {}


@pytest.mark.parametrize("policy", ["delete", "compact"])
@pytest.mark.parametrize("name", BOMBS.keys())
def test_compression_bomb_is_refused_in_bounded_memory(
    target: BrokerProcess, witness: Witness, bombs: dict[str, bytes], name: str, policy: str
) -> None:
    codec, make = BOMBS[name]
    if name not in bombs:
        bombs[name] = make()
    topic = f"bomb-{policy}"
    create_topic(target, topic, {"cleanup.policy": policy})
    before = log_end(target, topic)
    batch = raw_batch(bombs[name], record_count=1, codec=codec)
    probe = MemoryProbe(target.proc.pid)
    code, message = produce(target, topic, batch)
    assert code in (CORRUPT_MESSAGE, INVALID_RECORD), (code, message)
    probe.assert_bounded()
    assert log_end(target, topic) == before
    honest_after(target, witness)


@pytest.mark.parametrize("policy", ["delete", "compact"])
def test_millions_of_tiny_records_are_not_inflated_into_objects(
    target: BrokerProcess, witness: Witness, policy: str
) -> None:
    """7 million keyed 8-byte records (56 MB, under the decompression bound) in one
    zstd batch of a few kB. Looking inside (keys of a compacted topic, record validation)
    must not create an object per record: that is gigabytes and seconds of a stalled
    event loop for a request smaller than a page."""
    n = 7_000_000
    payload = tiny_record(b"k", None, 0) * n  # every offsetDelta 0: invalid, but late
    batch = raw_batch(bytes(cramjam.zstd.compress(payload)), record_count=n, codec=ZSTD)
    del payload
    assert len(batch) < 16 * 1024
    topic = f"tiny-{policy}"
    create_topic(target, topic, {"cleanup.policy": policy})
    probe = MemoryProbe(target.proc.pid)
    code, message = produce(target, topic, batch)
    assert code in (CORRUPT_MESSAGE, INVALID_RECORD), (code, message)
    probe.assert_bounded()
    assert log_end(target, topic) == 0
    honest_after(target, witness)


# -- batches that lie ----------------------------------------------------------------------

_REC = tiny_record(b"k", b"v", 0) + tiny_record(b"k", b"v", 1)


def _with_length(batch: bytes, length: int) -> bytes:
    return batch[:8] + struct.pack(">i", length) + batch[12:]


LYING = {
    # recordCount and lastOffsetDelta disagree
    "count-3-delta-1": (raw_batch(_REC, record_count=3, last_offset_delta=1), None),
    "count-2-delta-5": (raw_batch(_REC, record_count=2, last_offset_delta=5), None),
    # both agree on far more records than the batch holds
    "count-2^31-1": (raw_batch(_REC, record_count=2**31 - 1), None),
    "count-2^31-1-zstd": (
        raw_batch(bytes(cramjam.zstd.compress(_REC)), record_count=2**31 - 1, codec=ZSTD),
        None,
    ),
    "count-zero": (raw_batch(b"", record_count=0, last_offset_delta=0), None),
    "count-negative": (raw_batch(_REC, record_count=-2, last_offset_delta=-3), None),
    "delta-negative": (raw_batch(_REC, record_count=2, last_offset_delta=-1), None),
    # fewer records than announced, and bytes after the last one
    "count-3-has-2": (raw_batch(_REC, record_count=3), None),
    "count-1-has-2": (raw_batch(_REC, record_count=1), None),
    # record-level lengths that lie under a valid CRC
    "record-length-huge": (raw_batch(_uvarint(2**31) + _REC[1:], record_count=2), None),
    "key-length-huge": (
        raw_batch(b"\x10\0\0\0" + _uvarint(2**30) + b"k" * 11, record_count=1),
        None,
    ),
    # batchLength that lies: beyond the bytes sent, below a header, negative
    "batch-length-long": (_with_length(raw_batch(_REC, record_count=2), 1 << 20), None),
    "batch-length-short": (_with_length(raw_batch(_REC, record_count=2), 20), None),
    "batch-length-negative": (_with_length(raw_batch(_REC, record_count=2), -1), None),
    # a corrupt CRC: exactly CORRUPT_MESSAGE
    "bad-crc": (raw_batch(_REC, record_count=2, crc=0xDEADBEEF), CORRUPT_MESSAGE),
    # an unknown codec (5, 6, 7)
    "codec-7": (raw_batch(_REC, record_count=2, codec=7), None),
    # garbage where the compressed records should be
    "gzip-garbage": (raw_batch(b"\x1f\x8b" + b"\xa5" * 200, record_count=2, codec=GZIP), None),
    # trailing bytes after a valid batch
    "trailing-garbage": (raw_batch(_REC, record_count=2) + b"\0\0\0", None),
}


@pytest.mark.parametrize("batch,expected", LYING.values(), ids=LYING.keys())
def test_lying_batch_is_refused(
    target: BrokerProcess, witness: Witness, batch: bytes, expected: int | None
) -> None:
    topic = "lies"
    before = log_end(target, topic)
    probe = MemoryProbe(target.proc.pid)
    code, message = produce(target, topic, batch)
    if expected is not None:
        assert code == expected, (code, message)
    else:
        assert code in (CORRUPT_MESSAGE, INVALID_RECORD), (code, message)
    probe.assert_bounded()
    assert log_end(target, topic) == before
    honest_after(target, witness)


@pytest.mark.parametrize("magic", [0, 1, 3, -1])
def test_old_or_unknown_magic_is_refused(
    target: BrokerProcess, witness: Witness, magic: int
) -> None:
    """Produce v3+ carries magic 2 batches only (Kafka: INVALID_RECORD; CORRUPT_MESSAGE
    is as clear a refusal). Message sets of magic 0/1 are also built here with their own
    layout (offset, size, crc, magic, attributes, [timestamp], key, value)."""
    if magic in (0, 1):
        body = struct.pack(">bb", magic, 0)
        if magic == 1:
            body += struct.pack(">q", 0)
        body += struct.pack(">i", 1) + b"k" + struct.pack(">i", 1) + b"v"
        message = struct.pack(">I", zlib.crc32(body)) + body
        batch = struct.pack(">qi", 0, len(message)) + message
    else:
        batch = raw_batch(_REC, record_count=2, magic=magic)
    before = log_end(target, "magic")
    code, message_ = produce(target, "magic", batch)
    assert code in (CORRUPT_MESSAGE, INVALID_RECORD), (code, message_)
    assert log_end(target, "magic") == before
    honest_after(target, witness)


def test_batch_above_message_max_bytes(target: BrokerProcess, witness: Witness) -> None:
    """MESSAGE_TOO_LARGE for a batch above the topic's max.message.bytes, and for one above
    the broker's message.max.bytes; one just under the topic limit is accepted."""
    from fastlog import _core

    create_topic(target, "small-max", {"max.message.bytes": "10000"})
    small = _core.build_batch([(b"k", b"x" * 9000, None, None)])
    assert len(small) < 10000
    assert produce(target, "small-max", small)[0] == 0
    big = _core.build_batch([(b"k", b"x" * 10001, None, None)])
    assert produce(target, "small-max", big)[0] == MESSAGE_TOO_LARGE
    # compressed small, but the batch itself is what counts (as Kafka does)
    huge = raw_batch(b"\0" * (MAX_MESSAGE + 1), record_count=1)
    probe = MemoryProbe(target.proc.pid)
    assert produce(target, "big-max", huge)[0] == MESSAGE_TOO_LARGE
    probe.assert_bounded()
    honest_after(target, witness)


def test_zstd_needs_produce_v7(target: BrokerProcess, witness: Witness) -> None:
    """Kafka refuses zstd batches in Produce below v7 (UNSUPPORTED_COMPRESSION_TYPE): such
    a client could not read them back with the Fetch versions it speaks."""
    from fastlog import _core

    batch = _core.build_batch([(b"k", b"v", None, None)], compression=ZSTD)
    assert produce(target, "zstd-old", batch, version=6)[0] == UNSUPPORTED_COMPRESSION_TYPE
    assert produce(target, "zstd-old", batch, version=7)[0] == 0
    honest_after(target, witness)
