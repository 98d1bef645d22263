"""kill -9 the broker while a producer (acks=all) is sending; restart it on the same data dir;
every acknowledged record is there, at the offset it was acknowledged with, in order, once.

Modelled on Jepsen's queue checks: lost writes (acked, never read), duplicates, inconsistent
offsets (acked at one offset, found at another), and reordering.
"""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Producer

from .drivers import BY_NAME
from .helpers import unique_topic
from .ondisk import assert_contiguous, read_batches

REFERENCE = BY_NAME["confluent-kafka"]
MAX_IN_FLIGHT = 2000


class AckLog:
    """Delivery reports of one producer: value -> acknowledged offset, plus failures."""

    def __init__(self) -> None:
        self.acked: dict[bytes, int] = {}
        self.failed: dict[bytes, str] = {}
        self.lock = threading.Lock()

    def reported(self) -> int:
        return len(self.acked) + len(self.failed)

    def __call__(self, err, msg) -> None:
        with self.lock:
            if err is None:
                self.acked[msg.value()] = msg.offset()
            else:
                self.failed[msg.value()] = str(err)


def produce_until(
    producer: Producer, topic: str, stop: threading.Event, acks: AckLog, limit: int
) -> list[bytes]:
    """Send values 00000000, 00000001, ... until stop or limit; keep serving delivery reports
    (producer.poll) until stop either way."""
    sent: list[bytes] = []
    while not stop.is_set():
        # Bounded in flight, so that records wait for the broker, not in a deep local queue
        # where they would time out on a loaded machine before ever being sent.
        if len(sent) >= limit or len(sent) - acks.reported() >= MAX_IN_FLIGHT:
            producer.poll(0.01)
            continue
        value = b"%08d" % len(sent)
        try:
            producer.produce(topic, value=value, partition=0, on_delivery=acks)
        except BufferError:
            producer.poll(0.01)
            continue
        sent.append(value)
        producer.poll(0)
    return sent


def read_log(bootstrap: str, topic: str) -> list[bytes]:
    low, high = REFERENCE.watermarks(bootstrap, topic, 0)
    assert low == 0
    got = REFERENCE.consume(bootstrap, topic, 0, 0, high + 1, timeout=25)
    assert [r.offset for r in got] == list(range(high)), "offsets must run 0..high-1 without gaps"
    return [r.value for r in got]


def check_history(sent: list[bytes], acks: AckLog, log: list[bytes]) -> None:
    index = {v: i for i, v in enumerate(sent)}
    assert len(set(log)) == len(log), "duplicates in the log"
    assert all(v in index for v in log), "the log holds a record nobody sent"
    positions = [index[v] for v in log]
    assert positions == sorted(positions), "records reordered"
    in_log = set(log)
    lost = [v for v in acks.acked if v not in in_log]
    assert not lost, f"{len(lost)} acknowledged records lost, first {lost[:3]}"
    moved = {v: (o, log.index(v)) for v, o in acks.acked.items() if o >= len(log) or log[o] != v}
    assert not moved, f"acknowledged offsets differ from the log: {list(moved.items())[:3]}"


@pytest.mark.parametrize("codec", ["none", "lz4"])
def test_kill9_during_acks_all_produce(make_broker, codec):
    """Plain and compressed batches: a torn tail must be cut at a batch boundary on recovery."""
    b = make_broker({"num.partitions": "1"})
    topic = unique_topic("durable")
    REFERENCE.create_topic(b.bootstrap, topic, 1)
    acks = AckLog()
    producer = Producer(
        {
            "bootstrap.servers": b.bootstrap,
            "acks": "all",
            "linger.ms": 2,
            "batch.num.messages": 100,
            "compression.codec": codec,
            "enable.idempotence": False,
            # Once the broker is gone, pending records must fail rather than wait for its return:
            # a non-idempotent retry into the restarted broker could legitimately duplicate.
            "message.timeout.ms": 8000,
            "retries": 0,
            "socket.timeout.ms": 3000,
        }
    )
    stop = threading.Event()
    result: list[list[bytes]] = []
    t = threading.Thread(
        target=lambda: result.append(produce_until(producer, topic, stop, acks, 10**7))
    )
    t.start()
    try:
        deadline = time.monotonic() + 20
        while len(acks.acked) < 3000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(acks.acked) >= 3000, (
            f"only {len(acks.acked)} acks in 20 s: {acks.failed and list(acks.failed.items())[:3]}"
        )
        b.kill()
    finally:
        stop.set()
        t.join(10)
    # Records not acknowledged by now never will be: fail them at once instead of waiting for
    # message.timeout.ms (an unacknowledged record may or may not be in the log; both are fine).
    producer.purge()
    producer.flush(10)
    sent = result[0]
    assert len(acks.acked) + len(acks.failed) == len(sent), "every record gets a delivery report"
    assert len(acks.acked) < len(sent), "the kill must land while records are in flight"

    b.start()
    log = read_log(b.bootstrap, topic)
    check_history(sent, acks, log)
    batches = read_batches(b.data_dir, topic, 0)
    assert assert_contiguous(batches) == len(log)
    # librdkafka sends a batch too small to shrink uncompressed; the rest stay as sent.
    assert codec in {x.codec for x in batches} <= {codec, "none"}


def test_kill9_idempotent_producer_rides_through_restart(make_broker):
    """An idempotent producer keeps sending across kill -9 and restart: the broker rebuilds
    producer state from its log, so a retried batch that had been written is acknowledged
    with its original offset, not appended twice. In the end: all sent, all acked, once."""
    b = make_broker({"num.partitions": "1"})
    topic = unique_topic("durable-idem")
    REFERENCE.create_topic(b.bootstrap, topic, 1)
    acks = AckLog()
    producer = Producer(
        {
            "bootstrap.servers": b.bootstrap,
            "acks": "all",
            "linger.ms": 2,
            "batch.num.messages": 100,
            "enable.idempotence": True,
            "message.timeout.ms": 30000,
            "socket.timeout.ms": 3000,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 200,
        }
    )
    total = 20000
    stop = threading.Event()
    result: list[list[bytes]] = []
    t = threading.Thread(
        target=lambda: result.append(produce_until(producer, topic, stop, acks, total))
    )
    t.start()
    try:
        deadline = time.monotonic() + 20
        while len(acks.acked) < 3000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(acks.acked) >= 3000, f"only {len(acks.acked)} acks in 20 s"
        b.kill()
        acked_at_kill = len(acks.acked)
        b.start()
        deadline = time.monotonic() + 40
        while len(acks.acked) + len(acks.failed) < total and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        t.join(10)
    left = producer.flush(10)
    sent = result[0]
    assert left == 0 and not acks.failed, (
        f"{left} undelivered, failures {list(acks.failed.items())[:3]}"
    )
    assert len(sent) == total and len(acks.acked) == total
    assert acked_at_kill < total, "the kill must land while records are in flight"

    log = read_log(b.bootstrap, topic)
    assert len(log) == total
    check_history(sent, acks, log)
    assert log == sent


def _ride_kafka_python(bootstrap: str, topic: str, values: list[bytes], acks: AckLog, kill) -> None:
    from kafka import KafkaProducer

    p = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        delivery_timeout_ms=30000,
        request_timeout_ms=5000,
        reconnect_backoff_max_ms=200,
        bootstrap_timeout_ms=10000,
    )
    try:
        for i, v in enumerate(values):
            f = p.send(topic, value=v, partition=0)
            f.add_callback(lambda md, v=v: acks.acked.__setitem__(v, md.offset))
            f.add_errback(lambda e, v=v: acks.failed.__setitem__(v, repr(e)))
            while i - acks.reported() > MAX_IN_FLIGHT:
                time.sleep(0.001)
            kill()
        p.flush(timeout=40)
    finally:
        p.close(timeout=5)


def _ride_aiokafka(bootstrap: str, topic: str, values: list[bytes], acks: AckLog, kill) -> None:
    import asyncio

    from aiokafka import AIOKafkaProducer

    async def go() -> None:
        p = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            request_timeout_ms=5000,
            retry_backoff_ms=100,
        )
        await p.start()
        pending = []
        try:
            for i, v in enumerate(values):
                fut = await p.send(topic, value=v, partition=0)

                def done(f, v=v):
                    if f.exception() is not None:
                        acks.failed[v] = repr(f.exception())
                    else:
                        acks.acked[v] = f.result().offset

                fut.add_done_callback(done)
                pending.append(fut)
                while i - acks.reported() > MAX_IN_FLIGHT:
                    await asyncio.sleep(0.001)
                kill()  # blocks the loop while the broker restarts: the client must cope
            await asyncio.wait(pending, timeout=40)
        finally:
            await p.stop()

    asyncio.run(asyncio.wait_for(go(), 90))


@pytest.mark.parametrize(
    "ride", [_ride_kafka_python, _ride_aiokafka], ids=["kafka-python", "aiokafka"]
)
def test_kill9_idempotent_python_clients_ride_through_restart(make_broker, ride):
    """The same with kafka-python's and aiokafka's idempotent producers."""
    b = make_broker({"num.partitions": "1"})
    topic = unique_topic("durable-idem-py")
    REFERENCE.create_topic(b.bootstrap, topic, 1)
    acks = AckLog()
    total = 6000
    values = [b"%08d" % i for i in range(total)]
    at_kill: list[int] = []

    def kill() -> None:
        if not at_kill and len(acks.acked) >= 2000:
            at_kill.append(len(acks.acked))
            b.kill()
            b.start()

    ride(b.bootstrap, topic, values, acks, kill)
    assert at_kill and at_kill[0] < total, "the kill must land while records are in flight"
    assert not acks.failed, list(acks.failed.items())[:3]
    assert len(acks.acked) == total
    log = read_log(b.bootstrap, topic)
    check_history(values, acks, log)
    assert log == values
