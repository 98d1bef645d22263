"""Bad input from each client gets Kafka's error code, and the broker keeps serving."""

from __future__ import annotations

import pytest

from .drivers import (
    BY_NAME,
    DRIVERS,
    INVALID_TOPIC_EXCEPTION,
    MESSAGE_TOO_LARGE,
    BrokerError,
    Rec,
)
from .helpers import by_client, unique_topic

REFERENCE = BY_NAME["confluent-kafka"]


@by_client()
def test_record_over_topic_max_message_bytes(broker, client):
    """A batch over the topic's max.message.bytes (below every client's own limit) is refused
    with MESSAGE_TOO_LARGE; nothing of it is appended; the partition keeps working."""
    bs = broker.bootstrap
    topic = unique_topic(f"big-{client.name}")
    REFERENCE.create_topic(bs, topic, 1, {"max.message.bytes": "10000"})
    small = Rec(b"small", b"s" * 1000)
    offsets = client.produce(bs, topic, [small])
    if client.reports_offsets:
        assert offsets == [0]
    with pytest.raises(BrokerError) as exc:
        client.produce(bs, topic, [Rec(b"big", b"b" * 50_000)])
    assert exc.value.code == MESSAGE_TOO_LARGE
    assert client.watermarks(bs, topic, 0) == (0, 1)
    client.produce(bs, topic, [small])
    got = client.consume(bs, topic, 0, 0, 10)
    assert [(r.offset, r.key, r.value) for r in got] == [
        (0, b"small", small.value),
        (1, b"small", small.value),
    ]


@by_client([d for d in DRIVERS if d.has_admin])
def test_create_topic_with_invalid_name(broker, client):
    """Kafka's topic name rules ([a-zA-Z0-9._-], at most 249 characters, not . or ..):
    INVALID_TOPIC_EXCEPTION, and no such topic appears."""
    bs = broker.bootstrap
    for name in ("bad name!", "a" * 250, ".."):
        with pytest.raises(BrokerError) as exc:
            client.create_topic(bs, name, 1)
        assert exc.value.code == INVALID_TOPIC_EXCEPTION, name
        assert name not in REFERENCE.topics(bs)
