"""Cluster metadata: one MetadataStore interface, swappable stores.

``EmbeddedMetadataStore`` (single node, a JSON file under the data dir) is the default;
a ZooKeeper store implements the same interface in a later issue.
"""

from broker.metadata.embedded import EmbeddedMetadataStore
from broker.metadata.store import (
    BrokerInfo,
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidTopicError,
    MetadataError,
    MetadataListener,
    MetadataStore,
    PartitionInfo,
    TopicAlreadyExistsError,
    TopicInfo,
    UnknownTopicError,
    validate_topic_name,
)

__all__ = [
    "BrokerInfo",
    "EmbeddedMetadataStore",
    "InvalidPartitionsError",
    "InvalidReplicationFactorError",
    "InvalidTopicError",
    "MetadataError",
    "MetadataListener",
    "MetadataStore",
    "PartitionInfo",
    "TopicAlreadyExistsError",
    "TopicInfo",
    "UnknownTopicError",
    "validate_topic_name",
]
