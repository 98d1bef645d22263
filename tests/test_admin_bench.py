"""Admin API latency through confluent-kafka's AdminClient against a live broker.

Runs once as a plain test in the suite (benchmarks are disabled there); measure with
``python -m pytest tests/test_admin_bench.py --benchmark-enable``.
"""

from __future__ import annotations

import itertools
import logging

import pytest
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

QUIET = logging.getLogger("test.bench.librdkafka")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


@pytest.fixture(scope="module")
def client(broker) -> AdminClient:
    a = AdminClient({"bootstrap.servers": broker.bootstrap, "logger": QUIET})
    a.list_topics(timeout=10)
    return a


def test_bench_create_and_delete_topic(benchmark, client: AdminClient) -> None:
    counter = itertools.count()

    def cycle() -> None:
        name = f"bench-{next(counter)}"
        client.create_topics([NewTopic(name, 3, 1)])[name].result(10)
        client.delete_topics([name])[name].result(10)

    benchmark(cycle)


def test_bench_describe_configs(benchmark, client: AdminClient) -> None:
    client.create_topics([NewTopic("bench-describe", 1, 1)])["bench-describe"].result(10)
    res = ConfigResource(ResourceType.TOPIC, "bench-describe")
    configs = benchmark(lambda: client.describe_configs([res])[res].result(10))
    assert configs["retention.ms"].value == "604800000"


def test_bench_incremental_alter_configs(benchmark, client: AdminClient) -> None:
    client.create_topics([NewTopic("bench-alter", 3, 1)])["bench-alter"].result(10)
    values = itertools.cycle(["3600000", "7200000"])

    def alter() -> None:
        res = ConfigResource(
            ResourceType.TOPIC,
            "bench-alter",
            incremental_configs=[
                ConfigEntry(
                    "retention.ms", next(values), incremental_operation=AlterConfigOpType.SET
                )
            ],
        )
        client.incremental_alter_configs([res])[res].result(10)

    benchmark(alter)
