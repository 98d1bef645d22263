"""Schemas of DescribeLogDirs v0 and AlterReplicaLogDirs v0, which kio no longer ships (Kafka
4.0 dropped them, KIP-896; Kafka 3.x brokers serve them and older admin clients send them).

Each v0 is v1 on the wire (v1 only changed how throttling is applied), so these reuse kio's
v1 nested entities under version-0 requests and responses. ``LOG_DIRS_LEGACY`` is merged into
broker.handlers._legacy_schemas.LEGACY, which the protocol layer consults when kio has no
entity for a version.
"""

# No "from __future__ import annotations": kio reads the field types at runtime.
from dataclasses import dataclass, field
from typing import ClassVar

from kio.schema.alter_replica_log_dirs.v1.request import AlterReplicaLogDir
from kio.schema.alter_replica_log_dirs.v1.response import AlterReplicaLogDirTopicResult
from kio.schema.describe_log_dirs.v1.request import DescribableLogDirTopic
from kio.schema.describe_log_dirs.v1.response import DescribeLogDirsResult
from kio.schema.request_header.v1.header import RequestHeader
from kio.schema.response_header.v0.header import ResponseHeader
from kio.static.constants import EntityType
from kio.static.primitive import i16, i32Timedelta

API_KEY = i16(35)
ALTER_API_KEY = i16(34)


@dataclass(frozen=True, slots=True, kw_only=True)
class DescribeLogDirsRequestV0:
    __type__: ClassVar = EntityType.request
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = API_KEY
    __header_schema__: ClassVar[type[RequestHeader]] = RequestHeader
    topics: tuple[DescribableLogDirTopic, ...] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DescribeLogDirsResponseV0:
    __type__: ClassVar = EntityType.response
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = API_KEY
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    throttle_time: i32Timedelta = field(metadata={"kafka_type": "timedelta_i32"})
    results: tuple[DescribeLogDirsResult, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AlterReplicaLogDirsRequestV0:
    __type__: ClassVar = EntityType.request
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = ALTER_API_KEY
    __header_schema__: ClassVar[type[RequestHeader]] = RequestHeader
    dirs: tuple[AlterReplicaLogDir, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AlterReplicaLogDirsResponseV0:
    __type__: ClassVar = EntityType.response
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = ALTER_API_KEY
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    throttle_time: i32Timedelta = field(metadata={"kafka_type": "timedelta_i32"})
    results: tuple[AlterReplicaLogDirTopicResult, ...]


LOG_DIRS_LEGACY: dict[tuple[int, int], tuple[type, type]] = {
    (35, 0): (DescribeLogDirsRequestV0, DescribeLogDirsResponseV0),
    (34, 0): (AlterReplicaLogDirsRequestV0, AlterReplicaLogDirsResponseV0),
}
