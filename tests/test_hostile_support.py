"""Helpers of the hostile-input tests (tests/test_hostile_*.py); no tests of its own.

- ``Witness``: an honest client (confluent-kafka) that produces before and after an attack
  and checks that every acknowledged record is still there, once and in order.
- ``MemoryProbe``: the broker process's resident memory from /proc/<pid>/status; its peak
  (VmHWM) is reset at the start through /proc/<pid>/clear_refs so that one attack's peak
  is not hidden by an earlier one.
- ``cap_address_space``: an RLIMIT_AS on the broker, so a memory bug ends in a MemoryError
  inside the broker (which the probe then reports) rather than in the machine's OOM killer.
- ``raw_batch``: a v2 record batch built field by field, so a test can lie in any field.
"""

from __future__ import annotations

import os
import resource
import socket
import struct
import time
import uuid
from dataclasses import dataclass, field

from confluent_kafka import Consumer, Producer, TopicPartition
from support import BrokerProcess

from fastlog import _core

MB = 1 << 20
# Generous: the bound is on growth caused by one attack, far below what the attacks would
# cost if the broker allocated what they announce (gigabytes).
MEMORY_GROWTH_LIMIT = 200 * MB


def _status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


@dataclass
class MemoryProbe:
    """Peak resident memory of a process since the probe was made."""

    pid: int
    start_rss: int = 0

    def __post_init__(self) -> None:
        with open(f"/proc/{self.pid}/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
        self.start_rss = _status_kb(self.pid, "VmRSS") * 1024

    @property
    def peak_growth(self) -> int:
        return _status_kb(self.pid, "VmHWM") * 1024 - self.start_rss

    @property
    def rss_growth(self) -> int:
        return _status_kb(self.pid, "VmRSS") * 1024 - self.start_rss

    def assert_bounded(self, limit: int = MEMORY_GROWTH_LIMIT) -> None:
        peak = self.peak_growth
        if os.environ.get("HOSTILE_REPORT"):  # the figures in docs/hostile-input.md (-s)
            test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
            print(f"\n{test}: broker peak RSS growth {peak / MB:.0f} MB")
        assert peak < limit, f"broker peak RSS grew by {peak / MB:.0f} MB (limit {limit / MB:.0f})"


def cap_address_space(broker: BrokerProcess, extra: int = 3 << 30) -> None:
    """Limit the broker's virtual memory to its current size plus ``extra`` bytes."""
    assert broker.proc is not None
    pid = broker.proc.pid
    limit = _status_kb(pid, "VmSize") * 1024 + extra
    resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))


def assert_alive(broker: BrokerProcess) -> None:
    assert broker.proc is not None
    code = broker.proc.poll()
    assert code is None, f"broker exited with {code}:\n" + "\n".join(
        broker.output().splitlines()[-30:]
    )


@dataclass
class Witness:
    """An honest confluent-kafka client on its own topic: ``produce`` returns only once
    every record is acknowledged (acks=all, idempotent), ``verify`` reads the topic back."""

    bootstrap: str
    topic: str = field(default_factory=lambda: f"witness-{uuid.uuid4().hex[:8]}")
    acked: list[bytes] = field(default_factory=list)

    def produce(self, n: int = 20, tag: str = "r") -> None:
        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": 20000,
            }
        )
        errors: list[str] = []
        acked: list[bytes] = []

        def on_delivery(err, msg) -> None:
            if err is not None:
                errors.append(str(err))
            else:
                acked.append(msg.value())

        base = len(self.acked)
        for i in range(n):
            value = f"{tag}-{base + i}".encode()
            producer.produce(self.topic, value=value, key=b"k", on_delivery=on_delivery)
        left = producer.flush(25)
        close = getattr(producer, "close", None)  # confluent-kafka >= 2.x: free it now
        if close is not None:
            close()
        assert left == 0 and not errors, f"honest produce failed: {errors}, {left} unsent"
        assert len(acked) == n
        self.acked += acked

    def read_all(self, timeout: float = 20.0) -> list[bytes]:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": "witness",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        try:
            # the witness topic has one partition (num.partitions default)
            consumer.assign([TopicPartition(self.topic, 0, 0)])
            got: list[bytes] = []
            deadline = time.monotonic() + timeout
            while len(got) < len(self.acked) and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                assert msg.error() is None, msg.error()
                got.append(msg.value())
            return got
        finally:
            consumer.close()

    def verify(self) -> None:
        got = self.read_all()
        assert got == self.acked, (
            f"acknowledged {len(self.acked)} records, read back {len(got)}; "
            f"missing {sorted(set(self.acked) - set(got))[:5]}"
        )


def honest_after(broker: BrokerProcess, witness: Witness) -> None:
    """The attack is over: the broker lives, takes new records and lost none."""
    assert_alive(broker)
    witness.produce(10, tag="after")
    witness.verify()
    assert_alive(broker)


# --------------------------------------------------------------------------------------
# raw sockets


def connect(broker: BrokerProcess, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", broker.port), timeout=timeout)


def is_closed(sock: socket.socket, timeout: float = 10.0) -> bool:
    """True once the broker closed the connection (EOF or reset); False if it stays open."""
    sock.settimeout(timeout)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def header_v1(api_key: int, version: int, correlation_id: int, client_id: str = "hostile") -> bytes:
    raw = client_id.encode()
    return struct.pack(">hhih", api_key, version, correlation_id, len(raw)) + raw


def header_v2(api_key: int, version: int, correlation_id: int, client_id: str = "hostile") -> bytes:
    return header_v1(api_key, version, correlation_id, client_id) + b"\0"  # no tagged fields


def read_frame(sock: socket.socket) -> bytes:
    def exact(n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed by broker")
            out += chunk
        return bytes(out)

    (size,) = struct.unpack(">i", exact(4))
    return exact(size)


# --------------------------------------------------------------------------------------
# record batches with any field wrong

_BATCH_TAIL = struct.Struct(">hiqqqhii")  # attributes .. recordCount (bytes 21..61)


def raw_batch(
    payload: bytes,
    *,
    record_count: int = 1,
    last_offset_delta: int | None = None,
    codec: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
    timestamp: int | None = None,
    magic: int = 2,
    crc: int | None = None,
) -> bytes:
    """A v2 batch around ``payload`` (the records, compressed or not) with a correct CRC
    unless ``crc`` is given."""
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    delta = record_count - 1 if last_offset_delta is None else last_offset_delta
    attributes = codec | (0x10 if transactional else 0)
    tail = (
        _BATCH_TAIL.pack(
            attributes, delta, ts, ts, producer_id, producer_epoch, base_sequence, record_count
        )
        + payload
    )
    if crc is None:
        crc = _core.crc32c(tail)
    head = struct.pack(">qiibI", 0, 4 + 1 + 4 + len(tail), -1, magic, crc)
    return head + tail


def _varint(value: int) -> bytes:
    return _core._encode_varint(value)


def tiny_record(
    key: bytes | None = b"k", value: bytes | None = None, offset_delta: int = 0
) -> bytes:
    """One v2 record (attributes, timestamp delta 0, no headers), length-prefixed."""
    body = b"\0" + _varint(0) + _varint(offset_delta)
    body += _varint(-1) if key is None else _varint(len(key)) + key
    body += _varint(-1) if value is None else _varint(len(value)) + value
    body += _varint(0)
    return _varint(len(body)) + body
