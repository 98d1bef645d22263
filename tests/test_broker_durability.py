"""kill -9 durability: every record acknowledged with acks=all is there after a restart,
in order, exactly once (the idempotent producer keeps going across the crash)."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list[bytes]:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "verify",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    c.assign([TopicPartition(topic, 0, 0)])
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if len(out) >= expected:
                        break
                    continue
                raise AssertionError(m.error())
            out.append(m.value())
    finally:
        c.close()
    return out


@pytest.mark.parametrize("idempotent", [True, False])
def test_kill_9_during_produce(make_broker, idempotent: bool) -> None:
    b = make_broker({"num.partitions": "1"})
    topic = "crash"
    acked: list[int] = []
    failed: list[int] = []
    lock = threading.Lock()

    def on_delivery(err, msg) -> None:
        with lock:
            (failed if err is not None else acked).append(int(msg.value()))

    p = Producer(
        {
            "bootstrap.servers": b.bootstrap,
            "acks": "all",
            "enable.idempotence": idempotent,
            "linger.ms": 2,
            "message.timeout.ms": 60000,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
            "retry.backoff.ms": 50,
        }
    )
    acked_before_kill = 2000
    after_restart = 3000
    killed_at = None
    i = 0
    # Produce until enough are acknowledged (records are in flight at that moment: some
    # acknowledged, some not yet), kill -9, restart, and keep producing.
    while killed_at is None or i < killed_at + after_restart:
        while True:
            try:
                p.produce(topic, value=b"%d" % i, partition=0, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0.002 if i % 20 == 0 else 0)
        i += 1
        if killed_at is None and len(acked) >= acked_before_kill:
            killed_at = i
            b.kill()
            time.sleep(0.3)
            b.start()
        assert i < 1_000_000, "the broker never acknowledged enough records"
    assert p.flush(90) == 0
    with lock:
        acked_set = list(acked)
    values = [int(v) for v in read_all(b.bootstrap, topic, len(acked_set))]
    present = set(values)
    # every acknowledged record is there
    missing = [v for v in acked_set if v not in present]
    assert not missing, f"{len(missing)} acked records lost, e.g. {missing[:5]}"
    # acknowledged records appear in the order they were produced (single partition)
    order = [v for v in values if v in set(acked_set)]
    first_seen = list(dict.fromkeys(order))
    assert first_seen == sorted(first_seen)
    if idempotent:
        # exactly once: the retries across the crash were deduplicated
        assert len(values) == len(present), "duplicates in an idempotent partition"
        assert values == sorted(values)
