"""Legacy message sets (magic 0 and 1, sent with Produce v0-v2) up-converted to v2 record
batches, as Kafka's LogValidator does when the log's format is v2.

Owns: reading a magic 0/1 message set exactly as Kafka 0.8-0.10 clients write it, plain
messages and compressed wrapper messages with their inner messages; validating it with
Kafka's error codes; and re-encoding the records as v2 batches that then take the normal
append path (max.message.bytes, compacted-topic keys, timestamps, compression.type,
replication, metrics), so nothing downstream knows the producer was old.

Layout (all big-endian), one entry per message:
  offset int64 | size int32 | crc uint32 (CRC-32, not C, of magic..end) | magic int8 |
  attributes int8 (bits 0-2 codec, bit 3 timestamp type, magic 1 only) |
  [timestamp int64, magic 1 only] | key bytes (int32 length, -1 null) | value bytes
A compressed wrapper's value is a whole inner message set, compressed with its codec
(gzip; snappy raw or xerial-framed; LZ4 frame, written by Kafka 0.8/0.9 with a wrong header
checksum for magic 0). Inner offsets are relative for magic 1 (ignored here: the log assigns
offsets).

Kafka's rules kept (LogValidator, LegacyRecord.ensureValid):
- every message's CRC-32 is checked, the wrapper's and each inner one's: CORRUPT_MESSAGE;
  so is anything malformed (sizes, lengths, truncation, a codec payload that does not decode);
- a compressed inner message (nested compression) or an inner magic different from its
  wrapper's: INVALID_RECORD;
- zstd needs magic 2: UNSUPPORTED_COMPRESSION_TYPE; an outer message larger than
  max.message.bytes: MESSAGE_TOO_LARGE;
- keys, values and timestamps are kept (magic 0 has no timestamp: -1, as Kafka stores it;
  an inner message of a LogAppendTime wrapper reads with the wrapper's timestamp); a
  compressed set is re-encoded with the codec it came with (the last wrapper's codec when
  several differ), a plain one stays uncompressed. No headers, no producer id.

Bounds of our own: the decompressed bytes of one request's partition are capped at
``max_uncompressed`` (compression bombs, CVE-2023-34455) and decompression never allocates
more than that; records are re-encoded in chunks, so memory stays proportional to the
decompressed bytes, not to a Python object per record.

kafka-python's kafka.record.legacy_records reads the same format, but is not safe for
hostile input: it decompresses without any bound (gzip/snappy/lz4 bombs), loops forever on
an inner message whose size is -12, slices silently past the end of a short key or value,
and checks structure with ``assert``. The tests use its builder as an independent writer.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import cramjam
import xxhash

from fastlog import _core

CORRUPT_MESSAGE = 2
MESSAGE_TOO_LARGE = 10
UNSUPPORTED_COMPRESSION_TYPE = 76
INVALID_RECORD = 87

MAX_UNCOMPRESSED_DEFAULT: int = _core.MAX_UNCOMPRESSED_DEFAULT
CHUNK_RECORDS = 16384  # records per re-encoded v2 batch: bounds the Python objects alive

LOG_OVERHEAD = 12  # offset + size
_ENTRY = struct.Struct(">qi")
_HEAD = struct.Struct(">Ibb")  # crc, magic, attributes
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
# crc + magic + attributes [+ timestamp] + key length + value length
_MIN_SIZE = (14, 22)
_KEY_AT = (6, 14)
_CODECS = {1: "gzip", 2: "snappy", 3: "lz4"}
_ZSTD = 4
_TIMESTAMP_TYPE = 0x08
_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = 16  # magic, int32 version, int32 minimum compatible version
_LZ4_MAGIC = b"\x04\x22\x4d\x18"


class MessageSetError(Exception):
    """A legacy message set Kafka would refuse; ``error_code`` is Kafka's answer."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def _corrupt(message: str) -> MessageSetError:
    return MessageSetError(CORRUPT_MESSAGE, message)


def message_set_magic(records: bytes | bytearray | memoryview | None) -> int:
    """The magic byte of the first entry (byte 16 in every format), or -1 if too short."""
    if not records or len(records) <= 16:
        return -1
    return records[16]


def up_convert(
    records: bytes | bytearray | memoryview,
    *,
    max_message_bytes: int,
    max_uncompressed: int = MAX_UNCOMPRESSED_DEFAULT,
) -> bytes:
    """Validate a magic 0/1 message set and return the same records as v2 batches (offsets
    from 0, CreateTime, no producer id). Raises MessageSetError with Kafka's error code."""
    view = memoryview(records).cast("B")
    state = _State(max_message_bytes, max_uncompressed)
    # one codec for the whole set, as Kafka rebuilds it: the last compressed wrapper's
    codec = _last_codec(view)
    out = bytearray()
    chunk: list[tuple[bytes | None, bytes | None, None, int]] = []
    for key, value, timestamp in _records(view, state):
        chunk.append((key, value, None, timestamp))
        if len(chunk) >= CHUNK_RECORDS:
            out += _encode(chunk, codec)
            chunk = []
    if chunk:
        out += _encode(chunk, codec)
    if not out:
        raise _corrupt("message set holds no message")
    return bytes(out)


def _encode(chunk: list[tuple[bytes | None, bytes | None, None, int]], codec: int) -> bytes:
    try:
        return _core.build_batch(chunk, compression=codec)
    except _core.CoreError as exc:
        raise _corrupt(f"cannot re-encode the records as a v2 batch: {exc}") from None


def _last_codec(view: memoryview) -> int:
    """Codec of the last compressed outer message (0: none). Reads only the framing; the
    full walk that follows checks everything."""
    codec = 0
    pos = 0
    n = len(view)
    while n - pos >= LOG_OVERHEAD + 6:
        _, size = _ENTRY.unpack_from(view, pos)
        if size < _MIN_SIZE[0] or size > n - pos - LOG_OVERHEAD:
            break
        attributes = view[pos + LOG_OVERHEAD + 5] & 0x07
        if attributes in _CODECS:
            codec = attributes
        pos += LOG_OVERHEAD + size
    return codec


class _State:
    __slots__ = ("max_message_bytes", "budget", "limit")

    def __init__(self, max_message_bytes: int, max_uncompressed: int) -> None:
        self.max_message_bytes = max_message_bytes
        self.limit = max_uncompressed
        self.budget = max_uncompressed  # decompressed bytes still allowed


def _records(view: memoryview, state: _State) -> Iterator[tuple[bytes | None, bytes | None, int]]:
    """(key, value, timestamp) of every record, plain or inside a compressed wrapper."""
    for magic, attributes, timestamp, key, value in _messages(view, outer=True, state=state):
        codec = attributes & 0x07
        if codec == 0:
            yield key, value, timestamp
            continue
        if codec == _ZSTD:
            raise MessageSetError(
                UNSUPPORTED_COMPRESSION_TYPE, "zstd needs message format v2 (Produce v7)"
            )
        if codec not in _CODECS:
            raise _corrupt(f"unknown compression codec {codec}")
        if value is None:
            raise _corrupt("compressed message without a value")
        inner = _decompress(codec, value, magic, state)
        log_append_time = magic == 1 and attributes & _TIMESTAMP_TYPE
        count = 0
        for inner_magic, inner_attributes, ts, k, v in _messages(inner, outer=False, state=state):
            if inner_attributes & 0x07:
                raise MessageSetError(
                    INVALID_RECORD,
                    "compressed outer record should not have an inner record with a "
                    "compression attribute set",
                )
            if inner_magic != magic:
                raise MessageSetError(
                    INVALID_RECORD,
                    f"inner message magic {inner_magic} does not match outer magic {magic}",
                )
            count += 1
            yield k, v, (timestamp if log_append_time else ts)
        if not count:
            raise _corrupt("compressed message set with no inner message")


def _messages(
    view: memoryview, *, outer: bool, state: _State
) -> Iterator[tuple[int, int, int, bytes | None, bytes | None]]:
    """(magic, attributes, timestamp, key, value) of each message of one message set level,
    every size bounds-checked and every CRC-32 verified before anything is read from it."""
    n = len(view)
    pos = 0
    where = "message set" if outer else "compressed message set"
    while pos < n:
        if n - pos < LOG_OVERHEAD:
            raise _corrupt(f"{where} ends with a partial message ({n - pos} bytes)")
        _, size = _ENTRY.unpack_from(view, pos)
        if size < _MIN_SIZE[0]:
            raise _corrupt(f"message size {size} is less than the minimum record overhead")
        if size > n - pos - LOG_OVERHEAD:
            raise _corrupt(
                f"message of {size} bytes at position {pos} runs past the end of the {where}"
            )
        if outer and size + LOG_OVERHEAD > state.max_message_bytes:
            raise MessageSetError(
                MESSAGE_TOO_LARGE,
                f"message of {size + LOG_OVERHEAD} bytes is larger than max.message.bytes "
                f"({state.max_message_bytes})",
            )
        start = pos + LOG_OVERHEAD
        end = start + size
        pos = end
        crc, magic, attributes = _HEAD.unpack_from(view, start)
        if magic not in (0, 1):
            raise _corrupt(
                f"message with magic {magic} in a magic 0/1 message set"
                if magic == 2
                else f"unknown message magic {magic}"
            )
        if size < _MIN_SIZE[magic]:
            raise _corrupt(f"message size {size} is less than the magic {magic} record overhead")
        if zlib.crc32(view[start + 4 : end]) != crc:
            raise _corrupt(f"message at position {start - LOG_OVERHEAD}: CRC-32 mismatch")
        timestamp = _I64.unpack_from(view, start + 6)[0] if magic == 1 else -1
        p = start + _KEY_AT[magic]
        key, p = _bytes(view, p, end, "key")
        value, p = _bytes(view, p, end, "value")
        if p != end:
            raise _corrupt(f"{end - p} bytes after the value of a message")
        yield magic, attributes, timestamp, key, value


def _bytes(view: memoryview, p: int, end: int, what: str) -> tuple[bytes | None, int]:
    if end - p < 4:
        raise _corrupt(f"message too short for its {what} length")
    (length,) = _I32.unpack_from(view, p)
    p += 4
    if length == -1:
        return None, p
    if length < 0 or length > end - p:
        raise _corrupt(f"{what} length {length} out of range")
    return bytes(view[p : p + length]), p + length


# ------------------------------------------------------------------------ decompression


def _decompress(codec: int, payload: bytes, magic: int, state: _State) -> memoryview:
    limit = state.budget
    name = _CODECS[codec]
    try:
        if codec == 2:
            out = _snappy(payload, limit)
        else:
            if codec == 3 and magic == 0:
                payload = _fix_lz4_header_checksum(payload)
            out = _bounded(
                cramjam.gzip.decompress_into if codec == 1 else cramjam.lz4.decompress_into,
                payload,
                limit,
            )
    except cramjam.DecompressionError as exc:
        raise _corrupt(
            f"{name} payload is invalid or decompresses to more than the "
            f"{state.limit} bytes allowed: {exc}"
        ) from None
    state.budget -= len(out)
    return out


def _bounded(into, payload: bytes, limit: int) -> memoryview:  # type: ignore[no-untyped-def]
    """Decompress into a buffer grown from a guess up to `limit` bytes, never further:
    cramjam's decompress_into refuses an output buffer that is too small."""
    size = min(len(payload) * 8 + 65536, limit)
    while True:
        out = bytearray(size)
        try:
            got = into(payload, out)
        except cramjam.DecompressionError:
            if size >= limit:
                raise
            size = min(size * 4, limit)
            continue
        return memoryview(out)[:got]


def _snappy(payload: bytes, limit: int) -> memoryview:
    """Raw snappy (librdkafka) or xerial-framed blocks (Java clients, kafka-python)."""
    if len(payload) >= _XERIAL_HEADER and payload[:8] == _XERIAL_MAGIC:
        blocks = []
        total = 0
        pos = _XERIAL_HEADER
        while pos < len(payload):
            if len(payload) - pos < 4:
                raise _corrupt("snappy: truncated xerial block length")
            (length,) = _I32.unpack_from(payload, pos)
            pos += 4
            if length < 0 or length > len(payload) - pos:
                raise _corrupt(f"snappy: xerial block length {length} out of range")
            block = payload[pos : pos + length]
            pos += length
            size = cramjam.snappy.decompress_raw_len(block)
            total += size
            if total > limit:
                raise cramjam.DecompressionError(f"more than {limit} bytes")
            blocks.append((block, size))
        out = bytearray(total)
        at = 0
        for block, size in blocks:
            if cramjam.snappy.decompress_raw_into(block, memoryview(out)[at : at + size]) != size:
                raise _corrupt("snappy: block shorter than its declared length")
            at += size
        return memoryview(out)
    size = cramjam.snappy.decompress_raw_len(payload)
    if size > limit:
        raise cramjam.DecompressionError(f"more than {limit} bytes")
    out = bytearray(size)
    if cramjam.snappy.decompress_raw_into(payload, out) != size:
        raise _corrupt("snappy: block shorter than its declared length")
    return memoryview(out)


def _fix_lz4_header_checksum(payload: bytes) -> bytes:
    """Kafka 0.8/0.9 wrote magic 0 LZ4 frames with the header checksum computed over the
    frame magic too; Kafka reads them ignoring it. Put the right checksum in (the second
    byte of XXH32 of the frame descriptor) so a standard decoder takes the frame."""
    if len(payload) < 7 or payload[:4] != _LZ4_MAGIC:
        raise _corrupt("lz4: not an LZ4 frame")
    flags = payload[4]
    end = 6 + (8 if flags & 0x08 else 0)  # FLG, BD, optional content size
    if len(payload) <= end:
        raise _corrupt("lz4: truncated frame header")
    checksum = (xxhash.xxh32_intdigest(payload[4:end]) >> 8) & 0xFF
    return payload[:end] + bytes((checksum,)) + payload[end + 1 :]
