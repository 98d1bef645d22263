"""Schemas of admin API versions that kio no longer ships (Kafka 4.0 dropped them, KIP-896).

kio 0.6.5 starts CreateTopics at v2, DeleteTopics at v1 and DescribeConfigs at v1, but
kafka-python and older librdkafka still send the older versions. These dataclasses follow
Kafka's JSON message specs for those versions, in kio's own entity form (same field
metadata, so kio's reader and writer serialize them), reusing kio's nested types where a
version left them unchanged.

``LEGACY[(api_key, version)] = (RequestClass, ResponseClass)``; the protocol layer consults it
when kio has no entity for a version.
"""

import datetime
from dataclasses import dataclass, field
from typing import ClassVar

from kio.schema.create_topics.v2.request import CreatableTopic as _CreatableTopicV2
from kio.schema.describe_configs.v1.request import (
    DescribeConfigsResource as _DescribeConfigsResourceV1,
)
from kio.schema.errors import ErrorCode
from kio.schema.request_header.v1.header import RequestHeader
from kio.schema.response_header.v0.header import ResponseHeader
from kio.schema.types import TopicName
from kio.static.constants import EntityType
from kio.static.primitive import i8, i16, i32Timedelta

_TIMEOUT = i32Timedelta.parse(datetime.timedelta(milliseconds=60000))


# --------------------------------------------------------------------------- CreateTopics v0-1


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTopicsRequestV0:
    __type__: ClassVar = EntityType.request
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = i16(19)
    __header_schema__: ClassVar[type[RequestHeader]] = RequestHeader
    topics: tuple[_CreatableTopicV2, ...]
    timeout: i32Timedelta = field(metadata={"kafka_type": "timedelta_i32"}, default=_TIMEOUT)

    @property
    def validate_only(self) -> bool:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTopicsRequestV1:
    __type__: ClassVar = EntityType.request
    __version__: ClassVar[i16] = i16(1)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = i16(19)
    __header_schema__: ClassVar[type[RequestHeader]] = RequestHeader
    topics: tuple[_CreatableTopicV2, ...]
    timeout: i32Timedelta = field(metadata={"kafka_type": "timedelta_i32"}, default=_TIMEOUT)
    validate_only: bool = field(metadata={"kafka_type": "bool"}, default=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatableTopicResultV0:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = i16(19)
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    name: TopicName = field(metadata={"kafka_type": "string"})
    error_code: ErrorCode = field(metadata={"kafka_type": "error_code"})


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTopicsResponseV0:
    __type__: ClassVar = EntityType.response
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = i16(19)
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    topics: tuple[CreatableTopicResultV0, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatableTopicResultV1:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(1)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = i16(19)
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    name: TopicName = field(metadata={"kafka_type": "string"})
    error_code: ErrorCode = field(metadata={"kafka_type": "error_code"})
    error_message: str | None = field(metadata={"kafka_type": "string"})


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTopicsResponseV1:
    __type__: ClassVar = EntityType.response
    __version__: ClassVar[i16] = i16(1)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = i16(19)
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    topics: tuple[CreatableTopicResultV1, ...]


# --------------------------------------------------------------------------- DeleteTopics v0


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteTopicsRequestV0:
    __type__: ClassVar = EntityType.request
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = i16(20)
    __header_schema__: ClassVar[type[RequestHeader]] = RequestHeader
    topic_names: tuple[TopicName, ...] = field(metadata={"kafka_type": "string"}, default=())
    timeout: i32Timedelta = field(metadata={"kafka_type": "timedelta_i32"})


@dataclass(frozen=True, slots=True, kw_only=True)
class DeletableTopicResultV0:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = i16(20)
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    name: TopicName = field(metadata={"kafka_type": "string"})
    error_code: ErrorCode = field(metadata={"kafka_type": "error_code"})


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteTopicsResponseV0:
    __type__: ClassVar = EntityType.response
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = i16(20)
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    responses: tuple[DeletableTopicResultV0, ...]


# --------------------------------------------------------------------------- DescribeConfigs v0


@dataclass(frozen=True, slots=True, kw_only=True)
class DescribeConfigsRequestV0:
    __type__: ClassVar = EntityType.request
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = i16(32)
    __header_schema__: ClassVar[type[RequestHeader]] = RequestHeader
    resources: tuple[_DescribeConfigsResourceV1, ...]

    @property
    def include_synonyms(self) -> bool:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class DescribeConfigsResourceResultV0:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = i16(32)
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    name: str = field(metadata={"kafka_type": "string"})
    value: str | None = field(metadata={"kafka_type": "string"})
    read_only: bool = field(metadata={"kafka_type": "bool"})
    is_default: bool = field(metadata={"kafka_type": "bool"})
    is_sensitive: bool = field(metadata={"kafka_type": "bool"})


@dataclass(frozen=True, slots=True, kw_only=True)
class DescribeConfigsResultV0:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = i16(32)
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    error_code: ErrorCode = field(metadata={"kafka_type": "error_code"})
    error_message: str | None = field(metadata={"kafka_type": "string"})
    resource_type: i8 = field(metadata={"kafka_type": "int8"})
    resource_name: str = field(metadata={"kafka_type": "string"})
    configs: tuple[DescribeConfigsResourceResultV0, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DescribeConfigsResponseV0:
    __type__: ClassVar = EntityType.response
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    __api_key__: ClassVar[i16] = i16(32)
    __header_schema__: ClassVar[type[ResponseHeader]] = ResponseHeader
    throttle_time: i32Timedelta = field(metadata={"kafka_type": "timedelta_i32"})
    results: tuple[DescribeConfigsResultV0, ...]


LEGACY: dict[tuple[int, int], tuple[type, type]] = {
    (19, 0): (CreateTopicsRequestV0, CreateTopicsResponseV0),
    (19, 1): (CreateTopicsRequestV1, CreateTopicsResponseV1),
    (20, 0): (DeleteTopicsRequestV0, DeleteTopicsResponseV0),
    (32, 0): (DescribeConfigsRequestV0, DescribeConfigsResponseV0),
}

# The response classes of each legacy version under the names kio's modules use, so a handler
# looks its classes up the same way for every version.
RESPONSE_NAMESPACES: dict[tuple[int, int], dict[str, type]] = {
    (19, 0): {
        "CreateTopicsResponse": CreateTopicsResponseV0,
        "CreatableTopicResult": CreatableTopicResultV0,
    },
    (19, 1): {
        "CreateTopicsResponse": CreateTopicsResponseV1,
        "CreatableTopicResult": CreatableTopicResultV1,
    },
    (20, 0): {
        "DeleteTopicsResponse": DeleteTopicsResponseV0,
        "DeletableTopicResult": DeletableTopicResultV0,
    },
    (32, 0): {
        "DescribeConfigsResponse": DescribeConfigsResponseV0,
        "DescribeConfigsResult": DescribeConfigsResultV0,
        "DescribeConfigsResourceResult": DescribeConfigsResourceResultV0,
    },
}

# Group API versions kio dropped (OffsetCommit v0-1, OffsetFetch v0), owned by the group
# coordinator: broker/coordinator/legacy.py.
from broker.coordinator.legacy import GROUP_LEGACY  # noqa: E402

LEGACY.update(GROUP_LEGACY)

# OffsetForLeaderEpoch v0-1, owned by replication: broker/replication/legacy.py.
from broker.replication.legacy import EPOCH_LEGACY  # noqa: E402

LEGACY.update(EPOCH_LEGACY)

# DescribeLogDirs and AlterReplicaLogDirs v0, owned by log dirs: broker/handlers/_log_dirs_legacy.py.
from broker.handlers._log_dirs_legacy import LOG_DIRS_LEGACY  # noqa: E402

LEGACY.update(LOG_DIRS_LEGACY)
