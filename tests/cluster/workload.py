"""A client workload for fault tests: an idempotent acks=all producer and a consumer group
running throughout, recorded into a checker.History, then a final read of every partition."""

from __future__ import annotations

import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cluster.checker import History
from cluster.conftest import Cluster, wait_until


def create_topic(c: Cluster, topic: str, partitions: int = 3, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 3, config=config)])[topic].result(15)
    for p in range(partitions):
        wait_until(lambda p=p: len(c.state(topic, p)["isr"]) == 3, 20, f"{topic}-{p} ISR of 3")


class Workload:
    def __init__(self, cluster: Cluster, topic: str, partitions: int = 3, rate: float = 150):
        self.cluster = cluster
        self.topic = topic
        self.partitions = partitions
        self.rate = rate
        self.history = History()
        self.fatal: list[str] = []
        self.consumer_errors: list[str] = []
        self._stop_producing = threading.Event()
        self._stop_consuming = threading.Event()
        self._producer_done = threading.Event()
        self.produced_until = 0.0
        self._threads = [
            threading.Thread(target=self._produce, daemon=True),
            threading.Thread(target=self._consume, daemon=True),
        ]

    def start(self) -> Workload:
        for t in self._threads:
            t.start()
        return self

    # -- producer ------------------------------------------------------------------------
    def _produce(self) -> None:
        h = self.history
        p = Producer(
            {
                "bootstrap.servers": self.cluster.bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": 60000,
                "retry.backoff.ms": 100,
                "topic.metadata.refresh.interval.ms": 2000,
                "error_cb": self._on_error,
            }
        )

        def delivered(err: KafkaError | None, msg) -> None:
            h.answered(msg.value(), msg.offset(), None if err is None else str(err))

        i = 0
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop_producing.is_set():
            part = i % self.partitions
            value = f"v{i}".encode()
            h.sent(value, part, i // self.partitions)
            while True:
                try:
                    p.produce(self.topic, value, partition=part, on_delivery=delivered)
                    break
                except BufferError:
                    p.poll(0.1)
            i += 1
            p.poll(0)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()
        self.produced_until = time.monotonic()
        p.flush(60)
        self._producer_done.set()

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self.fatal.append(str(err))

    # -- consumer group ------------------------------------------------------------------
    def _consume(self) -> None:
        c = Consumer(
            {
                "bootstrap.servers": self.cluster.bootstrap,
                "group.id": f"checker-{self.topic}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
                "auto.commit.interval.ms": 500,
                "session.timeout.ms": 10000,
                "topic.metadata.refresh.interval.ms": 2000,
            }
        )
        c.subscribe([self.topic])
        try:
            while not self._stop_consuming.is_set():
                msg = c.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    self.consumer_errors.append(str(msg.error()))
                    continue
                self.history.polled(msg.partition(), msg.offset(), msg.value())
        finally:
            c.close()

    # -- the end -------------------------------------------------------------------------
    def stop(self, catch_up: float = 15.0) -> History:
        """Stop producing (waiting for every answer), let the consumer catch up, read every
        partition back whole."""
        self._stop_producing.set()
        self._producer_done.wait(70)
        final = self.final_read()
        wanted = {(p, o) for p, recs in final.items() for o, _ in recs}
        deadline = time.monotonic() + catch_up
        while time.monotonic() < deadline:
            with self.history.lock:
                seen = {(p, o) for p, o, _, _ in self.history.polls}
            if wanted <= seen:
                break
            time.sleep(0.2)
        self._stop_consuming.set()
        for t in self._threads:
            t.join(30)
        self.history.final = final
        return self.history

    def final_read(self, timeout: float = 30.0) -> dict[int, list[tuple[int, bytes]]]:
        out: dict[int, list[tuple[int, bytes]]] = {}
        c = Consumer(
            {
                "bootstrap.servers": self.cluster.bootstrap,
                "group.id": f"final-{time.monotonic_ns()}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        try:
            for p in range(self.partitions):
                for attempt in range(5):  # leadership may still be settling
                    try:
                        low, high = c.get_watermark_offsets(
                            TopicPartition(self.topic, p), timeout=10
                        )
                        break
                    except KafkaException:
                        if attempt == 4:
                            raise
                        time.sleep(1.0)
                c.assign([TopicPartition(self.topic, p, low)])
                records: list[tuple[int, bytes]] = []
                deadline = time.monotonic() + timeout
                while (not records or records[-1][0] < high - 1) and high > low:
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"final read of {self.topic}-{p} stuck at {records[-1:]}"
                        )
                    msg = c.poll(0.5)
                    if msg is None or msg.error():
                        continue
                    records.append((msg.offset(), msg.value()))
                out[p] = records
        finally:
            c.close()
        return out
