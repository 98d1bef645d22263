"""Fuzz the broker with random and mutated frames of every advertised API and version.

Seed requests are generated from kio's schemas with a seeded RNG (deterministic), then
sent as is, truncated, bit-flipped, extended, with a wrong size or api version, and as
pure noise. Each frame goes on its own connection in batches; afterwards the broker must
still answer ApiVersions, Metadata, Produce and Fetch correctly. Bounded in frame count
and in time.
"""

from __future__ import annotations

import dataclasses
import datetime
import random
import selectors
import socket
import struct
import time
import uuid
from typing import Any

from kio.schema.errors import ErrorCode
from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveField,
    PrimitiveTupleField,
    classify_field,
    get_schema_field_type,
    is_optional,
)
from test_broker_fetch import produce
from test_broker_network import RawClient, request
from test_broker_produce import fetch_request

from broker.handlers import discover
from broker.protocol import encode_request, request_schema
from fastlog import _core

SEED = 20261126
FRAMES_PER_VERSION = 6
TIME_BUDGET = 60.0
# Side effects would be slow rather than wrong (many logs); keep counts small.
SMALL_INT_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def _primitive(rng: random.Random, kafka_type: str, optional: bool) -> Any:
    if optional and rng.random() < 0.2:
        return None
    if kafka_type in SMALL_INT_TYPES:
        return (
            rng.choice([0, 1, 2, -1, 3])
            if not kafka_type.startswith("u")
            else rng.choice([0, 1, 2])
        )
    if kafka_type == "bool":
        return rng.random() < 0.5
    if kafka_type == "string":
        return rng.choice(["fuzz", "fuzz-topic", "", "a.b_c", "x" * rng.randint(0, 40)])
    if kafka_type in ("bytes", "records"):
        if kafka_type == "records" and rng.random() < 0.5:
            return _core.build_batch([(b"k", b"v" * rng.randint(0, 50), None, 1000)])
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
    if kafka_type == "uuid":
        return uuid.UUID(int=rng.getrandbits(128)) if rng.random() < 0.7 else uuid.UUID(int=0)
    if kafka_type == "float64":
        return rng.random()
    if kafka_type == "error_code":
        return ErrorCode.none
    if kafka_type in ("timedelta_i32", "timedelta_i64"):
        return datetime.timedelta(milliseconds=rng.choice([0, 1, 50]))
    if kafka_type == "datetime_i64":
        return datetime.datetime.fromtimestamp(1.7e9, tz=datetime.UTC)
    raise NotImplementedError(kafka_type)


def random_entity(rng: random.Random, cls: type, depth: int = 0) -> Any:
    values = {}
    for f in dataclasses.fields(cls):
        kind = classify_field(f)
        if isinstance(kind, PrimitiveField):
            values[f.name] = _primitive(
                rng, get_schema_field_type(f), is_optional(f) and "tag" not in f.metadata
            )
        elif isinstance(kind, PrimitiveTupleField):
            values[f.name] = tuple(
                _primitive(rng, get_schema_field_type(f), False) for _ in range(rng.randint(0, 3))
            )
        elif isinstance(kind, EntityField):
            values[f.name] = random_entity(rng, kind.type_, depth + 1)
        elif isinstance(kind, EntityTupleField):
            n = rng.randint(0, 2 if depth < 2 else 0)
            values[f.name] = tuple(random_entity(rng, kind.type_, depth + 1) for _ in range(n))
    return cls(**values)


def seed_frames(rng: random.Random) -> list[bytes]:
    frames = []
    for api_key, module in sorted(discover().items()):
        for version in range(module.MIN_VERSION, module.MAX_VERSION + 1):
            cls = request_schema(api_key, version)
            if cls is None:
                continue
            for _ in range(2):
                try:
                    frames.append(
                        encode_request(random_entity(rng, cls), rng.randint(0, 2**31 - 1), "fuzz")
                    )
                except (NotImplementedError, TypeError, ValueError, struct.error, AttributeError):
                    continue
    return frames


def mutate(rng: random.Random, frame: bytes) -> bytes:
    body = bytearray(frame[4:])
    choice = rng.randrange(7)
    if choice == 0 and body:  # truncate the body, keep a consistent size prefix
        body = body[: rng.randrange(len(body))]
    elif choice == 1 and body:  # flip bytes
        for _ in range(rng.randint(1, 8)):
            body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
    elif choice == 2:  # trailing garbage
        body += bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 32)))
    elif choice == 3 and len(body) >= 4:  # another (maybe unsupported) version
        struct.pack_into(">h", body, 2, rng.choice([-1, 0, 13, 100, 32767]))
    elif choice == 4 and len(body) >= 2:  # unknown api key
        struct.pack_into(">h", body, 0, rng.choice([-1, 93, 999, 32767]))
    elif choice == 5:  # size prefix lies (longer than what is sent: the broker waits, we close)
        return struct.pack(">i", len(body) + rng.randint(1, 100)) + bytes(body)
    elif choice == 6:  # pure noise with a plausible header
        body = bytearray(body[:4]) + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
    return struct.pack(">i", len(body)) + bytes(body)


def blast(bootstrap: str, frames: list[bytes], deadline: float) -> int:
    """Send each frame on its own connection, 32 connections at a time; drain answers for
    at most a short while per batch (a frame with a lying size prefix gets none)."""
    host, port = bootstrap.rsplit(":", 1)
    sent = 0
    for i in range(0, len(frames), 32):
        if time.monotonic() > deadline:
            break
        sel = selectors.DefaultSelector()
        for frame in frames[i : i + 32]:
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(frame)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            sent += 1
        batch_end = time.monotonic() + 0.5
        while sel.get_map() and time.monotonic() < batch_end:
            for key, _ in sel.select(timeout=0.05):
                try:
                    data = key.fileobj.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()
    return sent


def still_serving(bootstrap: str) -> None:
    c = RawClient(bootstrap)
    try:
        assert (
            c.call(
                request(18, 3, client_software_name="check", client_software_version="1")
            ).error_code.value
            == 0
        )
        base = produce(c, "after-fuzz", [b"alive"])
        r = c.call(fetch_request(12, "after-fuzz", 0, base))
        p = r.responses[0].partitions[0]
        assert [v for _o, _t, _k, v, _h in _core.iter_records(p.records, base)] == [b"alive"]
    finally:
        c.close()


def test_fuzz_every_api(make_broker) -> None:
    b = make_broker({"num.partitions": "1", "socket.request.max.bytes": str(1 << 20)})
    rng = random.Random(SEED)
    seeds = seed_frames(rng)
    assert len(seeds) > 100
    frames = list(seeds)
    for frame in seeds:
        frames += [mutate(rng, frame) for _ in range(FRAMES_PER_VERSION // 2)]
    frames += [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40))) for _ in range(100)]
    rng.shuffle(frames)
    deadline = time.monotonic() + TIME_BUDGET
    sent = blast(b.bootstrap, frames, deadline)
    assert sent >= min(len(frames), 200)
    still_serving(b.bootstrap)
    assert b.proc is not None and b.proc.poll() is None, "the broker died"
    # any traceback in the broker's log (a handler or the network layer raising on fuzzed
    # input) is a bug; the log line before it names the API and version
    lines = b.output().splitlines()
    failures = [
        lines[max(i - 1, 0)] for i, line in enumerate(lines) if line.startswith("Traceback")
    ]
    assert not failures, failures[:5]


def test_fuzz_pipelined_on_one_connection(make_broker) -> None:
    """Valid and broken frames back to back on one connection: answers until the first
    broken one, then a close; the broker serves the next connection."""
    b = make_broker({"num.partitions": "1"})
    rng = random.Random(SEED + 1)
    seeds = seed_frames(rng)[:50]
    for _ in range(10):
        c = RawClient(b.bootstrap)
        stream = b"".join(rng.choice(seeds) for _ in range(5)) + mutate(rng, rng.choice(seeds))
        c.send_frame(stream)
        c.sock.settimeout(2)
        try:
            while c.sock.recv(65536):
                pass
        except (TimeoutError, ConnectionError, OSError):
            pass
        c.close()
    still_serving(b.bootstrap)
