"""Produce (key 0), versions 0-9.

Behavior:
- v0-v2 (Kafka 0.8-0.10 clients) carry magic 0/1 message sets: broker/message_format.py
  validates them (CRC-32 of every message, Kafka's error codes) and up-converts them to v2
  batches, keeping codec, keys, values and timestamps, before the checks below; a v0-v2
  request with v2 batches is taken as it is. v0 answers (partition, error, base offset), v1
  adds the throttle time, v2 the log append time (schemas: broker/handlers/_produce_legacy.py).
  librdkafka before 2.11.1 keeps gzip/snappy/lz4 only when Produce v0 is advertised.
- acks 0, 1 and -1 (anything else: INVALID_REQUIRED_ACKS). acks=0 gets no response; if a
  partition failed, the connection is closed so the producer notices (as Kafka does).
- Each partition's record set is validated by the core (length, magic 2, CRC-32C:
  CORRUPT_MESSAGE), checked against max.message.bytes (MESSAGE_TOO_LARGE) and, for
  idempotent producers, against the partition's producer state (a retried batch is
  acknowledged with its original offset and not appended twice; INVALID_PRODUCER_EPOCH,
  OUT_OF_ORDER_SEQUENCE_NUMBER). Compressed batches are stored as sent.
- Kafka's request-level checks: a zstd batch below v7 is UNSUPPORTED_COMPRESSION_TYPE; a
  transactional batch without the request's transactional id is
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED, and with one but no transaction coordinator
  INVALID_TXN_STATE (CVE-2018-17196: no uncommitted records for read_committed readers).
- Clients cannot append to the internal topics (__consumer_offsets, __transaction_state):
  INVALID_TOPIC_EXCEPTION, except for Kafka's admin client id ``__admin_client``.
- LogAppendTime topics (message.timestamp.type) get the broker's time, returned in
  log_append_time; otherwise log_append_time is -1.
- An unknown topic is created when auto.create.topics.enable is set; an unknown partition
  of a known topic is UNKNOWN_TOPIC_OR_PARTITION.
- The response is framed by broker/protocol.py (the hot path; kio's writer is slower).
- Appends happen synchronously in request order; with a single-node ISR the high
  watermark is the log end offset at once, so acks=-1 answers without waiting. In cluster
  mode acks=-1 waits (up to the request timeout) for the high watermark to pass the
  appended records (broker.replication); a non-leader answers NOT_LEADER_OR_FOLLOWER.
"""

from __future__ import annotations

from typing import Any

from broker import message_format
from broker.handlers import RequestContext, _produce_legacy
from broker.log_dirs import unavailable_error
from broker.metadata import InvalidTopicError, MetadataError
from broker.protocol import CloseConnection, encode_produce_response, error_code, make
from broker.replica import AppendResult

API_KEY = 0
MIN_VERSION = 0
MAX_VERSION = 9

_produce_legacy.register()  # Produce v0-v2 schemas (kio starts at v3)
# Up-converting a legacy set costs a Python step per record (~2 us), so its decompressed
# size is capped below the core's 64 MiB: a hostile request holds the loop ~1 s at most.
LEGACY_MAX_UNCOMPRESSED = 16 * 1024 * 1024

UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC_EXCEPTION = 17
INVALID_REQUIRED_ACKS = 21
INVALID_TXN_STATE = 48
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
UNSUPPORTED_COMPRESSION_TYPE = 76
ZSTD = 4
TRANSACTIONAL = 0x10  # attributes bit 4
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})
ADMIN_CLIENT_ID = "__admin_client"  # Kafka's own tools may append to internal topics


async def handle(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    rm = broker.replica_manager
    metrics = getattr(broker, "metrics", None)
    acks = request.acks
    results: list[tuple[str, list[tuple[int, AppendResult]]]] = []
    failed = False
    # acks=-1 in cluster mode: (partition, result, offset the high watermark must reach)
    awaiting: list[tuple[Any, AppendResult, int]] = []
    for topic_data in request.topic_data:
        name = topic_data.name
        topic_results: list[tuple[int, AppendResult]] = []
        results.append((name, topic_results))
        topic_error = 0
        if acks not in (0, 1, -1):
            topic_error = INVALID_REQUIRED_ACKS
        elif broker.metadata.topic(name) is None:
            try:
                if broker.auto_create_topic(name) is None:
                    topic_error = UNKNOWN_TOPIC_OR_PARTITION
            except InvalidTopicError:
                topic_error = INVALID_TOPIC_EXCEPTION
            except MetadataError as exc:
                topic_error = exc.error_code
        elif name in INTERNAL_TOPICS and ctx.client_id != ADMIN_CLIENT_ID:
            # Kafka: "Cannot append to internal topic" (forged group offsets otherwise)
            topic_error = INVALID_TOPIC_EXCEPTION
        for pdata in topic_data.partition_data:
            if topic_error:
                topic_results.append((pdata.index, AppendResult(error_code=topic_error)))
                failed = True
                continue
            partition = rm.get_partition(name, pdata.index)
            records = pdata.records
            refused: AppendResult | None = None
            if partition is not None and ctx.api_version < 3:
                records, refused = _up_convert(partition, records)
            if partition is None:
                # a replica here whose log dir is offline since the start: KAFKA_STORAGE_ERROR
                result = AppendResult(error_code=unavailable_error(rm, name, pdata.index))
            elif refused is not None:
                result = refused
            elif code := _refused(ctx, request, records or b""):
                result = AppendResult(error_code=code)
            else:
                result = partition.append(records, acks)
                if acks == -1 and partition.replication is not None and not result.error_code:
                    awaiting.append((partition, result, partition.log_end_offset))
                if metrics is not None and not result.error_code and not result.duplicate:
                    records = records or b""
                    metrics.record_produce(name, pdata.index, _record_count(records), len(records))
            failed = failed or result.error_code != 0
            topic_results.append((pdata.index, result))
    if awaiting:
        timeout_ms = request.timeout
        timeout_s = (
            timeout_ms.total_seconds()
            if hasattr(timeout_ms, "total_seconds")
            else timeout_ms / 1000
        )
        await broker.replication.wait_for_acks(awaiting, timeout_s)
    if acks == 0:
        if failed:
            raise CloseConnection("acks=0 produce failed")
        return None
    if ctx.api_version < 3:
        return _legacy_response(ctx.api_version, results)
    return encode_produce_response(
        ctx.api_version,
        ctx.correlation_id,
        [
            (
                name,
                [
                    (
                        index,
                        r.error_code,
                        r.base_offset,
                        r.log_append_time,
                        r.log_start_offset,
                        r.error_message if r.error_code else None,
                    )
                    for index, r in parts
                ],
            )
            for name, parts in results
        ],
    )


def _up_convert(partition: Any, records: Any) -> tuple[Any, AppendResult | None]:
    """A v0-v2 request's record set as v2 batches (magic 0/1 up-converted; v2 batches as
    they are), or the error Kafka answers for it."""
    if message_format.message_set_magic(records) not in (0, 1):
        return records, None
    try:
        converted = message_format.up_convert(
            records,
            max_message_bytes=partition.limits.max_message_bytes,
            max_uncompressed=LEGACY_MAX_UNCOMPRESSED,
        )
    except message_format.MessageSetError as exc:
        return None, AppendResult(error_code=exc.error_code, error_message=exc.message)
    return converted, None


def _legacy_response(
    version: int, results: list[tuple[str, list[tuple[int, AppendResult]]]]
) -> Any:
    """The v0-v2 response entity (kio writes it with the legacy schemas)."""
    response_cls, topic_cls, partition_cls = _produce_legacy.RESPONSE_CLASSES[version]
    return response_cls(
        responses=tuple(
            topic_cls(
                name=name,
                partition_responses=tuple(
                    make(  # v2 has log_append_time_ms, v0-v1 do not
                        partition_cls,
                        index=index,
                        error_code=error_code(r.error_code),
                        base_offset=r.base_offset,
                        log_append_time_ms=r.log_append_time,
                    )
                    for index, r in parts
                ),
            )
            for name, parts in results
        )
    )


def _record_count(records: bytes) -> int:
    """Records in a record set, from the batch headers (recordCount at byte 57)."""
    count = 0
    pos = 0
    n = len(records)
    while pos + 61 <= n:
        length = int.from_bytes(records[pos + 8 : pos + 12], "big")
        count += int.from_bytes(records[pos + 57 : pos + 61], "big")
        pos += 12 + length
    return count


def _attributes(records: bytes) -> list[int]:
    """The attributes (int16 at byte 21) of each batch header in a record set; malformed
    framing ends the walk (the append's validation answers it)."""
    out = []
    pos = 0
    n = len(records)
    while pos + 61 <= n:
        length = int.from_bytes(records[pos + 8 : pos + 12], "big", signed=True)
        if length < 49 or pos + 12 + length > n:
            break  # not a whole batch: the append answers CORRUPT_MESSAGE
        out.append(int.from_bytes(records[pos + 21 : pos + 23], "big"))
        pos += 12 + length
    return out


def _refused(ctx: RequestContext, request: Any, records: bytes) -> int:
    """Kafka's request-level checks of a partition's batches: an error code, or 0."""
    attributes = _attributes(records)
    if ctx.api_version < 7 and any(a & 0x07 == ZSTD for a in attributes):
        # zstd needs Produce v7 (and Fetch v10 to read it back)
        return UNSUPPORTED_COMPRESSION_TYPE
    if any(a & TRANSACTIONAL for a in attributes):
        # CVE-2018-17196: transactional records need the request's transactional id ...
        if request.transactional_id is None:
            return TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        # ... and a transaction; with no transaction coordinator there is none, and
        # records no one will commit or abort must not reach read_committed consumers.
        if getattr(ctx.broker, "transaction_coordinator", None) is None:
            return INVALID_TXN_STATE
    return 0
