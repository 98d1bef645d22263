"""Kafka's LogValidator compression rules on the leader's append path.

Owns the decision of how a produced batch is stored under the topic's ``compression.type``
and the re-encoding itself:

- ``producer`` (the default, and always ``__consumer_offsets``): batches are stored as the
  producer sent them, whatever their codec.
- ``uncompressed``, ``gzip``, ``snappy``, ``lz4``, ``zstd``: a batch already in that codec is
  stored as sent (no decode, no copy); any other batch is decoded and built again with the
  target codec (``uncompressed`` = decompressed). Producer id, epoch and base sequence, the
  transactional flag, the timestamp type, every record's timestamp, key, value and headers
  are kept; offsets are assigned afterwards as for any produced batch (``Log.append_batches``),
  and LogAppendTime topics get the broker's time there as usual.

As in Kafka, a request that needs re-encoding must hold exactly one v2 batch (Kafka's "compressed
outer record has more than one batch"); the original is validated first (CRC-32C, framing,
record counts, offset deltas) so that a corrupt batch gets the same error whether or not it is
re-encoded. Followers never come here: they append the leader's bytes as they are.

Compression levels (``compression.gzip.level``, ``compression.lz4.level``,
``compression.zstd.level``, KIP-390) are validated in broker/topic_config.py and applied here
when a batch is re-encoded (``target_level``); as in Kafka, a batch already in the target
codec is stored as sent, whatever level the producer used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastlog import _core

# Kafka error codes this module answers with
CORRUPT_MESSAGE = 2
MESSAGE_TOO_LARGE = 10
INVALID_RECORD = 87

PRODUCER = -1  # target codec "keep what the producer sent"

# compression.type values -> attributes codec (bits 0-2 of a batch's attributes)
CODECS: dict[str, int] = {
    "uncompressed": _core.COMPRESSION_NONE,
    "gzip": _core.COMPRESSION_GZIP,
    "snappy": _core.COMPRESSION_SNAPPY,
    "lz4": _core.COMPRESSION_LZ4,
    "zstd": _core.COMPRESSION_ZSTD,
    "producer": PRODUCER,
}
CODEC_NAMES: dict[int, str] = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}

# Kafka's internal topics keep the producer's codec whatever the broker default says.
PRODUCER_ONLY_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})

# Decoding for re-encoding makes a Python object per record; a few kB of zstd can hold
# millions of tiny records. Bounded in bytes (as everywhere on the produce path) and in records.
MAX_UNCOMPRESSED = _core.MAX_UNCOMPRESSED_DEFAULT
MAX_RECORDS = 1_000_000


class RecompressionError(Exception):
    """The batch cannot be stored under the topic's compression.type; carries Kafka's error."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def target_codec(topic: str, compression_type: str) -> int:
    """The codec batches of ``topic`` are stored with, or PRODUCER to keep the producer's."""
    if topic in PRODUCER_ONLY_TOPICS:
        return PRODUCER
    try:
        return CODECS[compression_type]
    except KeyError:  # topic_config validated it; an unknown value must not stop appends
        return PRODUCER


LEVEL_KEYS: dict[int, str] = {
    _core.COMPRESSION_GZIP: "compression.gzip.level",
    _core.COMPRESSION_LZ4: "compression.lz4.level",
    _core.COMPRESSION_ZSTD: "compression.zstd.level",
}


def target_level(target: int, config_value: Any) -> int | None:
    """The compression level for codec ``target`` from the topic's configs (``config_value``:
    name -> value), or None for codecs without levels (snappy, uncompressed, producer)."""
    key = LEVEL_KEYS.get(target)
    return None if key is None else int(config_value(key))


def needs_recompression(batches: Sequence[Any], target: int) -> bool:
    """Whether any batch is in another codec than ``target`` (never for PRODUCER)."""
    if target == PRODUCER:
        return False
    for b in batches:
        if b.compression != target:
            return True
    return False


def recompress(
    buf: bytearray,
    batches: Sequence[Any],
    target: int,
    *,
    max_message_bytes: int,
    level: int | None = None,
) -> bytearray:
    """The one batch in ``buf`` (described by ``batches``) built again with codec ``target``.

    Raises RecompressionError with INVALID_RECORD (several batches, too many records, records
    the producer may not send), CORRUPT_MESSAGE (bad CRC or framing) or MESSAGE_TOO_LARGE (an
    uncompressed target larger than max.message.bytes).
    """
    if len(batches) != 1:
        raise RecompressionError(
            INVALID_RECORD,
            f"a produce request re-encoded to {CODEC_NAMES[target]} (compression.type) must "
            f"carry one record batch per partition, not {len(batches)}",
        )
    b = batches[0]
    if b.record_count > MAX_RECORDS:
        raise RecompressionError(
            INVALID_RECORD,
            f"batch of {b.record_count} records is more than the broker re-encodes at once "
            f"({MAX_RECORDS}); send smaller batches or use compression.type "
            f"{CODEC_NAMES[b.compression]} / producer for this topic",
        )
    try:
        # Everything a stored-as-sent batch is checked for (Log.append_batches), on the
        # original bytes: the CRC is under the producer's encoding, not ours.
        _core.validate_records(buf, validate_crc=True, max_uncompressed=MAX_UNCOMPRESSED)
    except _core.InvalidRecordError as exc:
        raise RecompressionError(INVALID_RECORD, str(exc)) from None
    except _core.CoreError as exc:
        raise RecompressionError(CORRUPT_MESSAGE, str(exc)) from None
    # Stored uncompressed, the records take as many bytes as they decompress to: more than
    # max.message.bytes can never be appended, so stop decompressing there.
    limit = MAX_UNCOMPRESSED
    if target == _core.COMPRESSION_NONE:
        limit = max(0, min(limit, max_message_bytes - _core.BATCH_HEADER_SIZE))
    try:
        records = _core.decode_records(
            buf, max_uncompressed=limit, validate_crc=False, tuple_headers=True
        )
    except _core.CoreError as exc:
        if limit < MAX_UNCOMPRESSED:  # validate_records read it whole: only the size is left
            raise RecompressionError(
                MESSAGE_TOO_LARGE,
                f"batch decompresses to more than max.message.bytes ({max_message_bytes}) "
                f"and compression.type is uncompressed",
            ) from None
        raise RecompressionError(CORRUPT_MESSAGE, str(exc)) from None
    items = [(key, value, headers, ts) for _, ts, key, value, headers in records]
    del records  # one list of objects per record at a time, not two
    try:
        out = _core.build_batch(
            items,
            compression=target,
            producer_id=b.producer_id,
            producer_epoch=b.producer_epoch,
            base_sequence=b.base_sequence,
            is_transactional=b.is_transactional,
            timestamp_type=b.timestamp_type,
            compression_level=level,
        )
    except (_core.CoreError, ValueError) as exc:  # ValueError: a level topic_config let by
        raise RecompressionError(INVALID_RECORD, str(exc)) from None
    return bytearray(out)
