"""Contract of the Cython core, ``fastlog._core`` (implemented in _core.pyx).

This stub is the interface the storage layer (src/fastlog) and the broker code
against. Change it only together with every caller.

Record batch v2 layout (offsets within one batch), all big-endian:
  0 baseOffset int64 | 8 batchLength int32 (bytes after this field)
  12 partitionLeaderEpoch int32 | 16 magic int8 (=2) | 17 crc uint32 (CRC-32C of bytes 21..end)
  21 attributes int16 (bits 0-2 compression, 3 timestampType, 4 transactional, 5 control)
  23 lastOffsetDelta int32 | 27 baseTimestamp int64 | 35 maxTimestamp int64
  43 producerId int64 | 51 producerEpoch int16 | 53 baseSequence int32 | 57 recordCount int32
  61 records...
"""

from collections.abc import Iterator, Sequence
from typing import Any

BATCH_HEADER_SIZE: int  # 61
LOG_OVERHEAD: int  # 12: baseOffset + batchLength
RECORD_BATCH_MAGIC: int  # 2
TIMESTAMP_CREATE_TIME: int  # 0
TIMESTAMP_LOG_APPEND_TIME: int  # 1
MAX_UNCOMPRESSED_DEFAULT: int  # 64 MiB: default bound on a decompressed batch (compression bombs)

# compression codes in attributes bits 0-2
COMPRESSION_NONE: int  # 0
COMPRESSION_GZIP: int  # 1
COMPRESSION_SNAPPY: int  # 2
COMPRESSION_LZ4: int  # 3
COMPRESSION_ZSTD: int  # 4

class CoreError(Exception):
    """Base of the core's errors (fastlog.errors re-exports these)."""

class CorruptRecordError(CoreError):
    """A batch or record failed validation (bad magic, length, CRC, varint ...)."""

class InvalidRecordError(CoreError):
    """Input from the caller that cannot be encoded (value not bytes, ...)."""

def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-32C of data continuing from crc (the CRC of the bytes before), as crc32c.crc32c.
    SSE4.2 on x86-64 (3 interleaved streams), a slicing-by-8 table elsewhere."""

def _crc32c_software(data: bytes | bytearray | memoryview, crc: int = 0) -> int: ...  # tests
def _crc32c_hardware() -> bool: ...  # whether crc32c() uses SSE4.2 here
def _encode_varint(value: int) -> bytes: ...  # zigzag varint (tests)
def _decode_varint(
    data: bytes | bytearray | memoryview, max_bytes: int = 10
) -> tuple[int, int]: ...

class BatchInfo:
    """Header fields of one validated batch; plain attributes, cheap to create."""

    position: int  # byte position of the batch within the scanned buffer
    size: int  # total bytes of the batch (batchLength + 12)
    base_offset: int
    last_offset_delta: int
    partition_leader_epoch: int
    attributes: int
    compression: int
    timestamp_type: int  # 0 CreateTime, 1 LogAppendTime
    is_transactional: bool
    is_control: bool
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int
    @property
    def last_offset(self) -> int: ...  # base_offset + last_offset_delta

def scan_batches(
    buf: bytes | bytearray | memoryview,
    validate_crc: bool = True,
    stop_at_corruption: bool = False,
) -> list[BatchInfo]:
    """Walk a buffer of concatenated v2 batches and return each batch's header.

    Checks length (>= 61 - 12, whole batch inside buf), magic == 2 and CRC-32C.
    stop_at_corruption=False: raise CorruptRecordError on the first bad batch.
    stop_at_corruption=True: return the valid prefix (log recovery: the caller
    truncates at position+size of the last returned batch).
    A trailing partial batch counts as corruption.
    """

def valid_prefix_length(buf: bytes | bytearray | memoryview, validate_crc: bool = True) -> int:
    """Bytes of buf covered by whole, valid batches from position 0 (log recovery)."""

def assign_offsets(
    buf: bytearray | memoryview, base_offset: int, log_append_time: int = -1
) -> tuple[int, int, int]:
    """Rewrite baseOffset of every batch in buf (writable) in place, consecutively from base_offset.

    log_append_time >= 0: set timestampType=LogAppendTime and maxTimestamp to it,
    and recompute the CRC (attributes and maxTimestamp are under the CRC; baseOffset is not).
    Returns (last_offset, max_timestamp, offset_of_max_timestamp); offset_of_max_timestamp is the
    last offset of the first batch holding the maximum timestamp (as Kafka's LogSegment tracks it).
    No batches: (base_offset - 1, -1, -1). Offsets advance by lastOffsetDelta + 1 per batch: the
    broker should first check record_count == last_offset_delta + 1 for producer batches, as Kafka's
    LogValidator does. The structure (lengths, magic) is checked before anything is written; the
    CRC is not re-checked (scan_batches did that). Raises TypeError if buf is not writable.
    """

def validate_records(
    buf: bytes | bytearray | memoryview,
    require_keys: bool = False,
    timestamp_min: int = ...,
    timestamp_max: int = ...,
    validate_crc: bool = True,
    max_uncompressed: int = ...,
) -> int:
    """Record-level checks of every batch in buf, as Kafka's LogValidator makes them on produce,
    without a Python object per record (compressed batches are decompressed, bounded).

    Header checks as scan_batches (CRC unless validate_crc=False), then per batch:
    recordCount > 0 and lastOffsetDelta == recordCount - 1, every record parses exactly within
    its length, offsetDeltas run 0..recordCount-1, no bytes after the last record; with
    require_keys (cleanup.policy=compact) every record has a key; CreateTime timestamps within
    [timestamp_min, timestamp_max] (log.message.timestamp.before/after.max.ms).
    Returns the number of records. Raises CorruptRecordError for malformed bytes (Kafka:
    CORRUPT_MESSAGE) and InvalidRecordError for well-formed but unacceptable records (Kafka:
    INVALID_RECORD / INVALID_TIMESTAMP for the timestamp range).
    """

def set_partition_leader_epoch(buf: bytearray | memoryview, epoch: int) -> None:
    """Set partitionLeaderEpoch of every batch in buf in place (not under the CRC)."""

def build_batch(
    records: Sequence[
        tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]] | None, int | None]
        | bytes
        | bytearray
        | memoryview
        | None
    ],
    base_offset: int = 0,
    compression: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    is_transactional: bool = False,
    is_control: bool = False,
    partition_leader_epoch: int = -1,
    timestamp_type: int = 0,
    timestamp: int | None = None,
    compression_level: int | None = None,
) -> bytes:
    """Encode one v2 batch from (key, value, headers, timestamp_ms) tuples.

    compression_level: Kafka's compression.<codec>.level (KIP-390) for the chosen codec: gzip
    -1 (zlib's default, 6) or 1-9, lz4 1-17, zstd -131072..22; None: the codec library's
    default (zstd: 3, Kafka's default). Ignored for snappy and uncompressed batches; a level
    outside the codec's range raises ValueError.

    An item that is bare bytes/bytearray/memoryview (or None) is a value-only record (key and
    headers None) stamped `timestamp` (None: now), so callers need no tuple per record.

    Raises InvalidRecordError for keys/values that are neither bytes-like nor None,
    header names that are not str, or an empty records sequence.
    timestamp_ms None means now; otherwise -1 or >= 0. baseTimestamp is the first record's
    timestamp, maxTimestamp the largest. Snappy is written xerial-framed (as the Java client does).
    """

class Record:
    """One record as read back: a compact immutable object, not a tuple, that behaves as the
    5-tuple (offset, timestamp, key, value, headers): unpacking, indexing, len, equality and
    ordering with tuples and Records, _fields, _asdict(), _replace(), pickling. offset and
    timestamp are held as C integers; headers (a list) is made on first access when the record
    has none. Instances come from a free list and are not tracked by the cyclic GC.
    Unhashable (headers is a list)."""

    _fields: tuple[str, str, str, str, str]
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    def __init__(
        self,
        offset: int,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]] | None = None,
    ) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __getitem__(self, i: int | slice) -> Any: ...
    def _asdict(self) -> dict[str, Any]: ...
    def _replace(self, **changes: Any) -> Record: ...

def decode_records(
    batch: bytes | bytearray | memoryview,
    max_uncompressed: int = ...,
    record_type: type[tuple[Any, ...]] | None = None,
    validate_crc: bool = True,
    tuple_headers: bool = False,
) -> list[tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]]:
    """Decode the records of ONE batch (starting at position 0) into
    (offset, timestamp, key, value, headers) tuples; decompresses gzip/snappy/lz4/zstd
    (cramjam), refusing more than max_uncompressed bytes (compression bombs).
    For LogAppendTime batches every record's timestamp is maxTimestamp.
    The batch is validated (length, magic, CRC-32C) first; bytes after it are ignored.
    Raises CorruptRecordError for anything malformed (record lengths, varints, counts, codecs).
    Header keys that are not valid UTF-8 read with U+FFFD, as Java's client reads them.
    record_type: Record (the fastest: see Record), or a tuple subclass of 5 fields (a NamedTuple)
    to create the records as, allocated directly (its __new__ is not called); None: plain tuples.
    validate_crc=False: skip the CRC-32C check (length, magic, codec and every record's bounds are
    still checked) for bytes the log already checked on append or recovery; Kafka's broker does
    not re-check CRCs when it serves a fetch either. Records that share a timestamp may share one
    int object.
    tuple_headers=True: headers are a tuple of (name, value) tuples, and the empty tuple () (a
    CPython singleton, no allocation) when a record has none: one type either way, immutable, and
    ~25 ns less per header-less record than a fresh empty list. Default False: a new list per
    record, as before.
    """

def iter_records(
    buf: bytes | bytearray | memoryview,
    start_offset: int = 0,
    max_records: int = -1,
    max_uncompressed: int = ...,
    record_type: type[tuple[Any, ...]] | None = None,
    validate_crc: bool = True,
    tuple_headers: bool = False,
) -> list[tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]]:
    """decode_records over many concatenated batches, skipping records with offset < start_offset
    and stopping after max_records (-1 = all). Control batches are skipped. Records below
    start_offset are hopped over by their length (only their length, timestampDelta and
    offsetDelta varints are read and bounds-checked), so their other fields are not validated.
    A trailing partial batch (a fetch cut at max_bytes) is ignored, as Kafka clients do; any other
    corruption raises CorruptRecordError."""

def offset_index_lookup(index: Any, entries: int, target_relative_offset: int) -> int:
    """Binary search an offset index buffer (8-byte entries: int32 relative offset, int32 position,
    big-endian). Returns the slot of the largest entry with relative offset <= target, or -1.
    index: any contiguous buffer (mmap, bytes, memoryview); ValueError if entries exceed it."""

def time_index_lookup(index: Any, entries: int, target_timestamp: int) -> int:
    """Binary search a time index buffer (12-byte entries: int64 timestamp, int32 relative offset).
    Returns the slot of the first entry with timestamp >= target, or -1 if none."""

def offset_index_ordered(index: Any, entries: int) -> bool:
    """True if the first `entries` entries of an offset index have non-negative relative offsets
    and positions, both strictly increasing (Kafka's OffsetIndex sanity check). ValueError if
    entries exceed the buffer."""

def time_index_ordered(index: Any, entries: int) -> bool:
    """True if the first `entries` entries of a time index have strictly increasing timestamps
    and non-negative, non-decreasing relative offsets (Kafka's TimeIndex sanity check)."""

def sendfile_chunk(out_fd: int, in_fd: int, offset: int, count: int) -> int:
    """Move up to count bytes from in_fd at offset to out_fd with sendfile(2), looping in C
    until done or the socket would block. Returns bytes sent (0 <= n <= count); never raises
    on EAGAIN (the caller waits for writability and calls again). Raises OSError otherwise.
    Returns fewer than count also when the file ends before offset + count."""
