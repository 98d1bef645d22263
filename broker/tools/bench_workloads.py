"""Client-side workloads of ``fastlog bench``, each run in its own process (confluent-kafka).

Owns the producer, consumer and end-to-end latency loops. Each worker measures its own CPU
(whole process and busiest thread, which is the Python loop when the loop is the bottleneck)
so the suite can say whether the client or the broker limited a figure. Workers are plain
module-level functions so the ``spawn`` start method can import them; they report one dict
through a queue and never raise across the process boundary.
"""

from __future__ import annotations

import os
import struct
import time
import traceback
from array import array
from typing import Any

from broker.tools.bench_procs import CpuSnapshot, CpuUsage

# Clients behave as Kafka's own tools do: no Nagle delay on the sockets (the Java client sets
# TCP_NODELAY), everything else left at librdkafka's defaults unless the workload says so.
COMMON = {"socket.nagle.disable": True, "log_level": 3}

_TS = struct.Struct(">q8s")  # intended send time (CLOCK_MONOTONIC ns), run token


def _report(queue: Any, fn: Any, *args: Any) -> None:
    try:
        queue.put(fn(*args))
    except BaseException as exc:  # the parent must always get an answer
        queue.put({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()})


# ---------------------------------------------------------------------------- produce


def produce_worker(spec: dict[str, Any], ready: Any, go: Any, queue: Any) -> None:
    _report(queue, _produce, spec, ready, go)


def _produce(spec: dict[str, Any], ready: Any, go: Any) -> dict[str, Any]:
    from confluent_kafka import KafkaException, Producer

    conf = {
        **COMMON,
        "bootstrap.servers": spec["bootstrap"],
        "acks": str(spec["acks"]),
        "linger.ms": spec.get("linger_ms", 5),
    }
    errors: list[str] = []

    def on_error(err: Any) -> None:
        if len(errors) < 5:
            errors.append(str(err))

    conf["error_cb"] = on_error
    conf.update(spec.get("producer_conf", {}))
    p = Producer(conf)
    topic = spec["topic"]
    p.list_topics(topic, timeout=15)  # connections and metadata are not part of the figure
    payload = os.urandom(spec["record_size"])
    max_records = spec["max_records"]
    produce, poll = p.produce, p.poll
    ready.release()
    go.wait()
    before = CpuSnapshot.take(os.getpid())
    deadline = time.monotonic() + spec["duration"]
    sent = 0
    while sent < max_records and time.monotonic() < deadline:
        for _ in range(min(1000, max_records - sent)):
            try:
                produce(topic, payload)
            except BufferError:
                poll(0.001)  # the local queue is full: the broker is behind
                continue
            except KafkaException as exc:
                raise RuntimeError(f"produce failed: {exc}") from exc
            sent += 1
        poll(0)
    unflushed = p.flush(60)
    after = CpuSnapshot.take(os.getpid())
    usage = CpuUsage.between(before, after)
    return {
        "records": sent - unflushed,
        "unflushed": unflushed,
        "bytes": (sent - unflushed) * spec["record_size"],
        "elapsed": usage.wall,
        "cpu": usage.as_dict(),
        "errors": errors,
    }


# ---------------------------------------------------------------------------- consume


def consume_worker(spec: dict[str, Any], ready: Any, go: Any, queue: Any) -> None:
    _report(queue, _consume, spec, ready, go)


def _consume(spec: dict[str, Any], ready: Any, go: Any) -> dict[str, Any]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {
            **COMMON,
            "bootstrap.servers": spec["bootstrap"],
            "group.id": spec["group"],
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # librdkafka stops fetching a partition whose local queue holds queued.min.messages
            # and waits this long before it looks again; at its default (1000 ms) a fast loop
            # drains the queue and then idles, so the figure would time librdkafka's timer.
            "fetch.queue.backoff.ms": 10,
            **spec.get("consumer_conf", {}),
        }
    )
    topic = spec["topic"]
    # [(partition, start, end)]: read exactly what the produce phase left there
    ranges = spec["ranges"]
    target = sum(end - start for _, start, end in ranges)
    c.assign([TopicPartition(topic, part, start) for part, start, _ in ranges])
    ready.release()
    go.wait()
    before = CpuSnapshot.take(os.getpid())
    deadline = time.monotonic() + spec["duration"]
    records = nbytes = 0
    errors: list[str] = []
    consume = c.consume
    while records < target and time.monotonic() < deadline:
        for m in consume(10000, 0.2):
            if m.error() is not None:
                if len(errors) < 5:
                    errors.append(str(m.error()))
                continue
            records += 1
            nbytes += len(m.value())
    after = CpuSnapshot.take(os.getpid())
    c.close()
    usage = CpuUsage.between(before, after)
    return {
        "records": records,
        "bytes": nbytes,
        "target": target,
        "elapsed": usage.wall,
        "cpu": usage.as_dict(),
        "errors": errors,
    }


# ---------------------------------------------------------------------------- latency


def latency_consumer_worker(spec: dict[str, Any], ready: Any, done: Any, queue: Any) -> None:
    _report(queue, _latency_consume, spec, ready, done)


def _latency_consume(spec: dict[str, Any], ready: Any, done: Any) -> dict[str, Any]:
    """Read the paced records; each carries its intended send time (CLOCK_MONOTONIC, ns)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {
            **COMMON,
            "bootstrap.servers": spec["bootstrap"],
            "group.id": spec["group"],
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **spec.get("consumer_conf", {}),
        }
    )
    topic = spec["topic"]
    c.assign([TopicPartition(topic, part, start) for part, start in spec["starts"]])
    # Prime the fetchers so the first records do not pay for connection setup.
    c.consume(1, 0.5)
    ready.set()
    dues = array("q")
    latencies = array("q")
    seen: set[int] = set()  # due times are unique per record: the key for duplicates
    duplicates = foreign = 0
    run_token = bytes.fromhex(spec["token"])
    errors: list[str] = []
    expected: int | None = None
    give_up = None
    unpack = _TS.unpack_from
    now_ns = time.monotonic_ns
    consume, poll = c.consume, c.poll
    while expected is None or len(latencies) < expected:
        if expected is None and done.value >= 0:
            expected = done.value
            give_up = time.monotonic() + 10.0
        if give_up is not None and time.monotonic() > give_up:
            break
        # consume(n, timeout) waits for n records or the timeout, which would add up to the
        # timeout to every latency: take what is there, else block for the next one only.
        msgs = consume(1000, 0)
        if not msgs:
            m = poll(0.05)
            msgs = [m] if m is not None else []
        for m in msgs:
            if m.error() is not None:
                if len(errors) < 5:
                    errors.append(str(m.error()))
                continue
            arrived = now_ns()
            value = m.value()
            due, token = unpack(value) if len(value) >= _TS.size else (0, b"")
            if token != run_token:
                foreign += 1  # not sent by this phase (a broker that served older records)
                continue
            if due in seen:
                duplicates += 1  # a record counts once, when it first arrives
                continue
            seen.add(due)
            latencies.append(arrived - due)
            dues.append(due)
    c.close()
    path = spec["latency_file"]
    with open(path, "wb") as f:
        dues.tofile(f)
        latencies.tofile(f)
    return {
        "received": len(latencies),
        "duplicates": duplicates,
        "foreign": foreign,
        "expected": expected,
        "file": path,
        "errors": errors,
    }


def latency_producer_worker(spec: dict[str, Any], ready: Any, done: Any, queue: Any) -> None:
    _report(queue, _latency_produce, spec, ready, done)


def _latency_produce(spec: dict[str, Any], ready: Any, done: Any) -> dict[str, Any]:
    """Send at a fixed rate; each record is stamped with the time it was due, not the time it
    left, so a stalled loop shows up as latency instead of hiding it (coordinated omission)."""
    from confluent_kafka import Producer

    p = Producer(
        {
            **COMMON,
            "bootstrap.servers": spec["bootstrap"],
            "acks": str(spec["acks"]),
            "linger.ms": spec.get("linger_ms", 1),
            **spec.get("producer_conf", {}),
        }
    )
    topic = spec["topic"]
    p.list_topics(topic, timeout=15)
    pad = os.urandom(max(0, spec["record_size"] - _TS.size))
    rate = spec["rate"]
    total = int(rate * spec["duration"])
    interval = 1e9 / rate
    ready.wait(30)
    pack = _TS.pack
    token = bytes.fromhex(spec["token"])
    start = time.monotonic_ns()
    sent = 0
    while sent < total:
        now = time.monotonic_ns()
        due_count = min(total, int((now - start) / interval) + 1)
        while sent < due_count:
            due = start + int(sent * interval)
            try:
                p.produce(topic, pack(due, token) + pad)
            except BufferError:
                p.poll(0.001)
                continue
            sent += 1
        p.poll(0)
        next_due = start + int(sent * interval)
        gap = (next_due - time.monotonic_ns()) / 1e9
        if gap > 0:
            time.sleep(gap)
    unflushed = p.flush(30)
    elapsed = (time.monotonic_ns() - start) / 1e9
    done.value = sent - unflushed
    return {"sent": sent - unflushed, "unflushed": unflushed, "elapsed": elapsed}
