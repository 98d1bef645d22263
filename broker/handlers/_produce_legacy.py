"""Schemas of Produce v0-v2, which kio no longer ships (Kafka 4.0 dropped them, KIP-896;
Kafka 0.8-0.10 clients send them, and librdkafka before 2.11.1 keeps gzip/snappy/lz4 only
when a broker advertises Produce v0).

They follow Kafka's ProduceRequest.json / ProduceResponse.json for those versions, in kio's
entity form (same field metadata), so kio's reader and writer serialize them:
- requests v0-v2: acks, timeout, [topic, [partition, records]] (no transactional id; the
  records are magic 0/1 message sets, see broker/message_format.py);
- response v0: [topic, [partition, error_code, base_offset]]; v1 adds throttle_time_ms at
  the end; v2 adds log_append_time per partition. No log start offset, no error message.

``register()`` merges them into broker.handlers._legacy_schemas.LEGACY, the table the
protocol layer consults when kio has no entity for a version (the produce handler calls it
when it is imported, before the broker decodes any request).
"""

# No "from __future__ import annotations": kio reads the field types at runtime.
from dataclasses import dataclass, field
from typing import ClassVar

from kio.schema.errors import ErrorCode
from kio.schema.request_header.v1.header import RequestHeader
from kio.schema.response_header.v0.header import ResponseHeader
from kio.schema.types import TopicName
from kio.static.constants import EntityType
from kio.static.primitive import Records, i16, i32, i32Timedelta, i64

API_KEY = i16(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionProduceDataV0:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = API_KEY
    __header_schema__: ClassVar[type[RequestHeader]] = RequestHeader
    index: i32 = field(metadata={"kafka_type": "int32"})
    records: Records | None = field(metadata={"kafka_type": "records"})


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicProduceDataV0:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = API_KEY
    __header_schema__: ClassVar[type[RequestHeader]] = RequestHeader
    name: TopicName = field(metadata={"kafka_type": "string"})
    partition_data: tuple[PartitionProduceDataV0, ...]


def _request(version: int) -> type:
    @dataclass(frozen=True, slots=True, kw_only=True)
    class ProduceRequest:
        __type__: ClassVar = EntityType.request
        __version__: ClassVar[i16] = i16(version)
        __flexible__: ClassVar[bool] = False
        __api_key__: ClassVar[i16] = API_KEY
        __header_schema__: ClassVar[type[RequestHeader]] = RequestHeader
        acks: i16 = field(metadata={"kafka_type": "int16"})
        timeout: i32Timedelta = field(metadata={"kafka_type": "timedelta_i32"})
        topic_data: tuple[TopicProduceDataV0, ...]

        @property
        def transactional_id(self) -> None:
            return None  # transactions start at v3

    ProduceRequest.__name__ = ProduceRequest.__qualname__ = f"ProduceRequestV{version}"
    return ProduceRequest


ProduceRequestV0 = _request(0)
ProduceRequestV1 = _request(1)
ProduceRequestV2 = _request(2)


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionProduceResponseV0:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = API_KEY
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    index: i32 = field(metadata={"kafka_type": "int32"})
    error_code: ErrorCode = field(metadata={"kafka_type": "error_code"})
    base_offset: i64 = field(metadata={"kafka_type": "int64"})


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionProduceResponseV2:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(2)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = API_KEY
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    index: i32 = field(metadata={"kafka_type": "int32"})
    error_code: ErrorCode = field(metadata={"kafka_type": "error_code"})
    base_offset: i64 = field(metadata={"kafka_type": "int64"})
    log_append_time_ms: i64 = field(metadata={"kafka_type": "int64"}, default=i64(-1))


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicProduceResponseV0:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = API_KEY
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    name: TopicName = field(metadata={"kafka_type": "string"})
    partition_responses: tuple[PartitionProduceResponseV0, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicProduceResponseV2:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(2)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = API_KEY
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    name: TopicName = field(metadata={"kafka_type": "string"})
    partition_responses: tuple[PartitionProduceResponseV2, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProduceResponseV0:
    __type__: ClassVar = EntityType.response
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = API_KEY
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    responses: tuple[TopicProduceResponseV0, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProduceResponseV1:
    __type__: ClassVar = EntityType.response
    __version__: ClassVar[i16] = i16(1)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = API_KEY
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    responses: tuple[TopicProduceResponseV0, ...]
    throttle_time_ms: i32 = field(metadata={"kafka_type": "int32"}, default=i32(0))


@dataclass(frozen=True, slots=True, kw_only=True)
class ProduceResponseV2:
    __type__: ClassVar = EntityType.response
    __version__: ClassVar[i16] = i16(2)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = API_KEY
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    responses: tuple[TopicProduceResponseV2, ...]
    throttle_time_ms: i32 = field(metadata={"kafka_type": "int32"}, default=i32(0))


PRODUCE_LEGACY: dict[tuple[int, int], tuple[type, type]] = {
    (0, 0): (ProduceRequestV0, ProduceResponseV0),
    (0, 1): (ProduceRequestV1, ProduceResponseV1),
    (0, 2): (ProduceRequestV2, ProduceResponseV2),
}

# (response class, topic result class, partition result class) per version
RESPONSE_CLASSES: dict[int, tuple[type, type, type]] = {
    0: (ProduceResponseV0, TopicProduceResponseV0, PartitionProduceResponseV0),
    1: (ProduceResponseV1, TopicProduceResponseV0, PartitionProduceResponseV0),
    2: (ProduceResponseV2, TopicProduceResponseV2, PartitionProduceResponseV2),
}


def register() -> None:
    """Make the protocol layer find these schemas (idempotent)."""
    from broker import protocol
    from broker.handlers._legacy_schemas import LEGACY

    if all(LEGACY.get(k) == v for k, v in PRODUCE_LEGACY.items()):
        return
    LEGACY.update(PRODUCE_LEGACY)
    # a lookup made before registering would have cached "no schema"
    protocol.request_schema.cache_clear()
    protocol.response_schema.cache_clear()
