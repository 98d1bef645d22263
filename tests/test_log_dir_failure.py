"""A single broker whose data directory runs out of space (broker/log_dirs.py).

The data directory is a size-limited tmpfs (``mount -t tmpfs -o size=8m``; needs root, as CI
has: skipped otherwise). It is filled with a ballast file, then records are produced one at a
time (acks=all, no retries) until one fails. Checked: the failure is KAFKA_STORAGE_ERROR, the
directory is then offline (every later produce fails the same way, even one that would fit,
and a fetch answers KAFKA_STORAGE_ERROR), the broker does not crash, and after the
space is freed and the broker restarted it accepts writes again with nothing acknowledged
lost and nothing refused present.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from support import BrokerProcess, fill_disk, free_port, tmpfs
from test_broker_network import RawClient
from test_broker_produce import fetch_request

pytestmark = pytest.mark.timeout(90)

TOPIC = "full"


@pytest.fixture
def tmpfs_dir(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "data") as path:
        yield path


def _produce(bootstrap: str, values: list[bytes]) -> list[KafkaError | None]:
    """Each value alone (one request each), acks=all, no retries; the outcome of each."""
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": False,
            "retries": 0,
            "linger.ms": 0,
            "max.in.flight": 1,
            "message.timeout.ms": 10000,
        }
    )
    out: list[KafkaError | None] = []
    for v in values:
        result: list[KafkaError | None] = []
        p.produce(TOPIC, v, partition=0, on_delivery=lambda err, msg, r=result: r.append(err))
        p.flush(15)
        assert result, "no delivery report"
        out.append(result[0])
    return out


def _read_all(bootstrap: str) -> list[bytes]:
    c = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False}
    )
    try:
        low, high = c.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10)
        c.assign([TopicPartition(TOPIC, 0, low)])
        got: list[tuple[int, bytes]] = []
        while not got or got[-1][0] < high - 1:
            if high == low:
                break
            msg = c.poll(5)
            assert msg is not None, f"read stuck at {got[-1:]} (high watermark {high})"
            if msg.error():
                continue
            got.append((msg.offset(), msg.value()))
        return [v for _, v in got]
    finally:
        c.close()


def test_full_log_dir_refuses_writes_and_stays_up(tmpfs_dir: Path) -> None:
    b = BrokerProcess(tmpfs_dir, free_port())
    b.start()
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(15)
        first = [f"before-{i}".encode() for i in range(20)]
        assert _produce(b.bootstrap, first) == [None] * len(first)

        ballast = fill_disk(tmpfs_dir)
        acked = list(first)
        refused: list[bytes] = []
        # Values of 3000 bytes cross a page within a few records; the append needing a new
        # page fails.
        for i in range(200):
            v = f"during-{i}-".encode() + b"x" * 3000
            (err,) = _produce(b.bootstrap, [v])
            if err is None:
                acked.append(v)
                continue
            assert err.code() == KafkaError.KAFKA_STORAGE_ERROR, err
            refused.append(v)
            break
        assert refused, "the full disk never refused a write"
        # Offline from now on: even a record that would fit in the last page is refused.
        later = [f"later-{i}".encode() for i in range(5)]
        errs = _produce(b.bootstrap, later)
        assert all(e is not None and e.code() == KafkaError.KAFKA_STORAGE_ERROR for e in errs)
        refused += later

        assert b.proc.poll() is None, b.output()[-3000:]
        out = b.output()
        assert "No space left on device" in out and "offline" in out, out[-3000:]
        # Nothing is read from the failed directory either (Kafka: KAFKA_STORAGE_ERROR).
        c = RawClient(b.bootstrap)
        try:
            fetched = c.call(fetch_request(12, TOPIC, 0, 0)).responses[0].partitions[0]
        finally:
            c.sock.close()
        assert fetched.error_code.value == KafkaError.KAFKA_STORAGE_ERROR

        # Space freed, broker restarted: the directory is back, nothing acknowledged lost.
        ballast.unlink()
        assert b.stop(signal.SIGTERM) == 0, b.output()[-3000:]
        b.start()
        after = [f"after-{i}".encode() for i in range(5)]
        assert _produce(b.bootstrap, after) == [None] * len(after)
        final = _read_all(b.bootstrap)
        assert final == acked + after
        assert not set(final) & set(refused)
    finally:
        b.stop()
