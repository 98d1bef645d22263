"""Cluster metadata: one MetadataStore interface, swappable stores.

``EmbeddedMetadataStore`` (single node, a JSON file under the data dir) is the default;
``broker.metadata.zookeeper.ZooKeeperMetadataStore`` (cluster mode, zookeeper.connect)
implements the same interface; it is imported lazily so kazoo stays optional.
"""

from broker.metadata.embedded import EmbeddedMetadataStore
from broker.metadata.store import (
    BrokerInfo,
    FencedLeaderEpochError,
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
    "FencedLeaderEpochError",
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
