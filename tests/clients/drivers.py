"""One driver per real Kafka client, all behind the same small interface.

The compatibility tests are written once against `Driver` and run with each client:
confluent-kafka (librdkafka), kcat (Debian's, librdkafka 2.0.x, driven as a subprocess),
kafka-python, aiokafka and kafkajs 2.2.4 (node, tests/js/client.js). Every call is bounded
in time so a broken broker fails a test quickly instead of hanging it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .wire import librdkafka_sends_codec

JS_DIR = Path(__file__).resolve().parent.parent / "js"
TIMEOUT = 20.0  # seconds, for any single client operation


@dataclass(frozen=True)
class Rec:
    """A record to produce (partition, timestamp) or as consumed (offset, timestamp)."""

    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp: int | None = None
    partition: int = 0
    offset: int | None = None

    def content(self) -> tuple:
        """What must round-trip exactly through the broker."""
        return (self.key, self.value, self.headers)


class BrokerError(Exception):
    """A Kafka error code the broker answered (admin API or produce), whatever client got it."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(f"Kafka error {code}: {message}")
        self.code = code


TOPIC_ALREADY_EXISTS = 36
MESSAGE_TOO_LARGE = 10
CORRUPT_MESSAGE = 2
INVALID_TOPIC_EXCEPTION = 17
# librdkafka's text for broker error codes, as kcat prints them after "Broker: "
_LIBRDKAFKA_BROKER_ERRORS = {
    "Message size too large": MESSAGE_TOO_LARGE,
    "Corrupt message": CORRUPT_MESSAGE,
    "Topic exception": INVALID_TOPIC_EXCEPTION,
}
UNKNOWN_TOPIC_OR_PARTITION = 3


@dataclass
class Driver:
    name: str
    codecs: tuple[str, ...] = ("none", "gzip", "snappy", "lz4", "zstd")
    sets_timestamps: bool = True  # can the producer set each record's CreateTime?
    reports_offsets: bool = True  # does produce() learn each record's offset?
    has_admin: bool = True  # create/delete topics through an admin API?
    null_header_values: bool = False  # can a header value be null (not just empty)?
    extra: dict = field(default_factory=dict)

    def produce(
        self,
        bootstrap: str,
        topic: str,
        records: list[Rec],
        *,
        compression: str = "none",
        idempotent: bool = False,
        acks: int = -1,
    ) -> list[int] | None:
        """Send records in order; returns each record's offset (None if the client can't tell)."""
        raise NotImplementedError

    def consume(
        self,
        bootstrap: str,
        topic: str,
        partition: int,
        offset: int,
        count: int,
        timeout: float = TIMEOUT,
        max_bytes: int | None = None,
    ) -> list[Rec]:
        """Up to count records of one partition from offset (fewer if the log ends first).

        max_bytes sets the client's fetch size limits (whole response and per partition)."""
        raise NotImplementedError

    def create_topic(
        self, bootstrap: str, topic: str, partitions: int, configs: dict[str, str] | None = None
    ) -> None:
        raise NotImplementedError

    def delete_topic(self, bootstrap: str, topic: str) -> None:
        raise NotImplementedError

    def topics(self, bootstrap: str) -> dict[str, int]:
        """Topic name -> partition count, from Metadata."""
        raise NotImplementedError

    def offset_for_time(self, bootstrap: str, topic: str, partition: int, ts: int) -> int | None:
        """Earliest offset whose timestamp >= ts (ListOffsets); None when there is none."""
        raise NotImplementedError

    def watermarks(self, bootstrap: str, topic: str, partition: int) -> tuple[int, int]:
        """(log start offset, high watermark) from ListOffsets earliest/latest."""
        raise NotImplementedError

    def wire_codec(self, bootstrap: str, codec: str) -> str:
        """The codec this client really puts in the batches when asked for `codec`."""
        return codec

    def sample_records(self, ts0: int, partition: int = 0) -> list[Rec]:
        """The records this client can express, timestamps from ts0 where it can set them."""
        return standard_records(ts0, partition, self.null_header_values)

    def __str__(self) -> str:
        return self.name


def standard_records(ts0: int, partition: int = 0, null_headers: bool = False) -> list[Rec]:
    """Keys, null keys, null values, empty bytes, repeated and binary headers, a big value."""
    big = b"fastlog compatibility " * 300  # compressible: every codec really shrinks the batch
    recs = [
        Rec(b"key-0", b"value-0", (("h1", b"a"), ("h2", b""))),
        Rec(None, b"no key"),
        Rec(b"tombstone", None, (("deleted", b"yes"),)),
        Rec(b"", b""),
        Rec(b"multi", b"repeated header", (("h", b"1"), ("h", b"2"))),
        Rec(b"\x00\xff\x80bin", bytes(range(256)), (("bin", bytes(range(255, -1, -1))),)),
        Rec(b"big", big),
        Rec("clé-é".encode(), "héllo wörld ✓".encode(), (("ü", "ñ".encode()),)),
    ]
    recs += [
        Rec(f"k{i}".encode(), f"v{i}".encode() * (i + 1), (("i", str(i).encode()),))
        for i in range(24)
    ]
    if null_headers:
        recs.append(Rec(b"null-header", b"x", (("nh", None), ("after", b"y"))))
    return [Rec(r.key, r.value, r.headers, ts0 + i, partition) for i, r in enumerate(recs)]


def _check_delivered(offsets: list[int | None], errors: list) -> list[int]:
    if errors:
        codes = {err.code() for _, err in errors}
        if len(codes) == 1 and min(codes) > 0:  # a broker error code, not a local one
            raise BrokerError(codes.pop(), f"delivery failed: {errors[:5]}")
        raise AssertionError(f"delivery failed: {errors[:5]}")
    missing = [i for i, o in enumerate(offsets) if o is None]
    if missing:
        raise AssertionError(f"no delivery report for records {missing[:10]}")
    return [int(o) for o in offsets if o is not None]


# --------------------------------------------------------------------------- confluent-kafka
class ConfluentDriver(Driver):
    def __init__(self) -> None:
        super().__init__("confluent-kafka", null_header_values=True)

    def wire_codec(self, bootstrap, codec):
        import confluent_kafka

        version = tuple(int(x) for x in confluent_kafka.libversion()[0].split(".")[:3])
        return librdkafka_sends_codec(bootstrap, version, codec)

    @staticmethod
    def _base(bootstrap: str) -> dict:
        return {
            "bootstrap.servers": bootstrap,
            "socket.timeout.ms": 10000,
            "api.version.request.timeout.ms": 10000,
            "topic.metadata.refresh.interval.ms": 1000,
        }

    def produce(self, bootstrap, topic, records, *, compression="none", idempotent=False, acks=-1):
        from confluent_kafka import Producer

        conf = self._base(bootstrap) | {
            "acks": str(acks),
            "compression.codec": compression,
            "linger.ms": 50,
            "enable.idempotence": idempotent,
            "message.timeout.ms": int(TIMEOUT * 1000) - 5000,
        }
        p = Producer(conf)
        offsets: list[int | None] = [None] * len(records)
        errors: list = []

        def report(i: int):
            def cb(err, msg):
                if err is not None:
                    errors.append((i, err))
                else:
                    offsets[i] = msg.offset()

            return cb

        for i, r in enumerate(records):
            kwargs = {"timestamp": r.timestamp} if r.timestamp is not None else {}
            p.produce(
                topic,
                value=r.value,
                key=r.key,
                partition=r.partition,
                headers=list(r.headers) or None,
                on_delivery=report(i),
                **kwargs,
            )
        left = p.flush(TIMEOUT)
        assert left == 0, f"{left} records not delivered within {TIMEOUT}s"
        return _check_delivered(offsets, errors)

    def consume(self, bootstrap, topic, partition, offset, count, timeout=TIMEOUT, max_bytes=None):
        from confluent_kafka import Consumer, KafkaError, TopicPartition

        # librdkafka's Python binding insists on a group.id even for assign() without commits.
        c = Consumer(
            self._base(bootstrap)
            | {
                "group.id": f"fastlog-test-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "error",
                "fetch.wait.max.ms": 100,
            }
            | self._fetch_limits(max_bytes)
        )
        out: list[Rec] = []
        try:
            c.assign([TopicPartition(topic, partition, offset)])
            deadline = time.monotonic() + timeout
            while len(out) < count and time.monotonic() < deadline:
                msg = c.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        break
                    raise AssertionError(f"consume error: {msg.error()}")
                out.append(
                    Rec(
                        msg.key(),
                        msg.value(),
                        tuple(msg.headers() or ()),
                        msg.timestamp()[1],
                        msg.partition(),
                        msg.offset(),
                    )
                )
        finally:
            c.close()
        return out

    @staticmethod
    def _fetch_limits(max_bytes: int | None) -> dict:
        # librdkafka wants fetch.max.bytes >= message.max.bytes (its smallest allowed is 1000).
        if max_bytes is None:
            return {}
        return {
            "fetch.max.bytes": max_bytes,
            "max.partition.fetch.bytes": max_bytes,
            "message.max.bytes": min(max_bytes, 1000),
        }

    def _admin(self, bootstrap):
        from confluent_kafka.admin import AdminClient

        return AdminClient(self._base(bootstrap))

    @staticmethod
    def _result(future, admin):
        """Wait for an admin future; admin is kept alive until then (its destruction fails it)."""
        from confluent_kafka import KafkaException

        assert admin is not None
        try:
            return future.result(timeout=TIMEOUT)
        except KafkaException as e:
            err = e.args[0]
            raise BrokerError(err.code(), err.str()) from e

    def create_topic(self, bootstrap, topic, partitions, configs=None):
        from confluent_kafka.admin import NewTopic

        admin = self._admin(bootstrap)
        fs = admin.create_topics(
            [
                NewTopic(
                    topic, num_partitions=partitions, replication_factor=1, config=configs or {}
                )
            ],
            operation_timeout=10,
            request_timeout=15,
        )
        self._result(fs[topic], admin)

    def delete_topic(self, bootstrap, topic):
        admin = self._admin(bootstrap)
        fs = admin.delete_topics([topic], operation_timeout=10, request_timeout=15)
        self._result(fs[topic], admin)

    def topics(self, bootstrap):
        md = self._admin(bootstrap).list_topics(timeout=TIMEOUT)
        return {name: len(t.partitions) for name, t in md.topics.items() if t.error is None}

    def describe_configs(self, bootstrap, topic) -> dict[str, str]:
        from confluent_kafka.admin import ConfigResource

        res = ConfigResource(ConfigResource.Type.TOPIC, topic)
        admin = self._admin(bootstrap)
        fs = admin.describe_configs([res], request_timeout=15)
        entries = self._result(fs[res], admin)
        return {k: v.value for k, v in entries.items()}

    def _consumer(self, bootstrap):
        from confluent_kafka import Consumer

        return Consumer(
            self._base(bootstrap)
            | {"group.id": f"fastlog-test-{uuid.uuid4().hex}", "enable.auto.commit": False}
        )

    def offset_for_time(self, bootstrap, topic, partition, ts):
        from confluent_kafka import TopicPartition

        c = self._consumer(bootstrap)
        try:
            [tp] = c.offsets_for_times([TopicPartition(topic, partition, ts)], timeout=TIMEOUT)
        finally:
            c.close()
        assert tp.error is None, tp.error
        return None if tp.offset < 0 else tp.offset

    def watermarks(self, bootstrap, topic, partition):
        from confluent_kafka import TopicPartition

        c = self._consumer(bootstrap)
        try:
            return c.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=TIMEOUT, cached=False
            )
        finally:
            c.close()


# --------------------------------------------------------------------------- kcat
class KcatDriver(Driver):
    """kcat has no admin API and cannot set timestamps or report offsets when producing;
    its text-line input cannot carry arbitrary bytes. What it can do is tested strictly."""

    KEY_DELIM = "|"

    def __init__(self) -> None:
        super().__init__(
            "kcat",
            sets_timestamps=False,
            reports_offsets=False,
            has_admin=False,
            null_header_values=True,
        )

    def wire_codec(self, bootstrap, codec):
        out = subprocess.run(["kcat", "-V"], capture_output=True, timeout=10).stdout.decode()
        version = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", out)
        assert version, out
        return librdkafka_sends_codec(bootstrap, tuple(int(x) for x in version.groups()), codec)

    def run(
        self, args: list[str], stdin: bytes | None = None, timeout: float = TIMEOUT
    ) -> subprocess.CompletedProcess:
        kcat = shutil.which("kcat")
        assert kcat, "kcat is not installed (scripts/test.sh installs it)"
        cmd = [
            kcat,
            "-X",
            "socket.timeout.ms=10000",
            "-X",
            "api.version.request.timeout.ms=10000",
            *args,
        ]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {proc.returncode}: "
                f"{proc.stderr.decode(errors='replace')[-2000:]}"
            )
        return proc

    def sample_records(self, ts0: int, partition: int = 0) -> list[Rec]:
        """What kcat's line input can express: text keys and values, null keys (no delimiter),
        null values (-Z with an empty value), headers shared by one invocation."""
        big = b"kcat compatibility " * 300
        shared = (("h1", b"a"), ("h", b"1"), ("h", b"2"), ("empty", b""), ("null", None))
        recs = [
            Rec(b"key-0", b"value-0", shared),
            Rec(None, b"no key", shared),
            Rec(b"tombstone", None, shared),
            Rec(b"big", big, shared),
        ]
        recs += [
            Rec(f"k{i}".encode(), f"v{i}".encode() * (i + 1), (("i", b"n"),)) for i in range(20)
        ]
        return [Rec(r.key, r.value, r.headers, None, partition) for r in recs]

    def produce(self, bootstrap, topic, records, *, compression="none", idempotent=False, acks=-1):
        # One kcat invocation per run of records sharing headers and partition (-H, -p apply to
        # every record of an invocation); invocations run in order, so offsets stay in order.
        groups: list[list[Rec]] = []
        for r in records:
            if groups and (groups[-1][0].headers, groups[-1][0].partition) == (
                r.headers,
                r.partition,
            ):
                groups[-1].append(r)
            else:
                groups.append([r])
        for group in groups:
            lines = []
            for r in group:
                assert r.value is None or (b"\n" not in r.value and r.value != b""), r
                key = b"" if r.key is None else r.key + self.KEY_DELIM.encode()
                lines.append(key + (r.value or b""))
                assert r.key is not None or self.KEY_DELIM.encode() not in (r.value or b""), r
            args = [
                "-P",
                "-b",
                bootstrap,
                "-t",
                topic,
                "-p",
                str(group[0].partition),
                "-K",
                self.KEY_DELIM,
                "-Z",
                "-z",
                compression,
                "-X",
                f"acks={'all' if acks == -1 else acks}",
                "-X",
                f"enable.idempotence={'true' if idempotent else 'false'}",
                "-X",
                "linger.ms=50",
                "-X",
                "message.timeout.ms=15000",
            ]
            for name, value in group[0].headers:
                # -H name=value; -H name alone sends a null value.
                args += ["-H", name if value is None else f"{name}={value.decode()}"]
            try:
                self.run(args, stdin=b"\n".join(lines) + b"\n")
            except AssertionError as e:
                # "% Delivery failed for message: Broker: Message size too large"
                for text, code in _LIBRDKAFKA_BROKER_ERRORS.items():
                    if f"Broker: {text}" in str(e):
                        raise BrokerError(code, str(e)) from e
                raise
        return None

    def consume(self, bootstrap, topic, partition, offset, count, timeout=TIMEOUT, max_bytes=None):
        """offset may also be any kcat -o form: "s@<ts>", "e@<ts>", -N (N from the end)."""
        proc = self.run(
            [
                "-C",
                "-b",
                bootstrap,
                "-t",
                topic,
                "-p",
                str(partition),
                "-o",
                str(offset),
                "-c",
                str(count),
                "-e",
                "-J",
                "-q",
                "-X",
                "fetch.wait.max.ms=100",
                *(
                    a
                    for k, v in ConfluentDriver._fetch_limits(max_bytes).items()
                    for a in ("-X", f"{k}={v}")
                ),
            ],
            timeout=timeout,
        )
        out = []
        for line in proc.stdout.decode().splitlines():
            m = json.loads(line)
            h = m.get("headers") or []
            headers = tuple(
                (h[i], None if h[i + 1] is None else h[i + 1].encode()) for i in range(0, len(h), 2)
            )
            out.append(
                Rec(
                    None if m["key"] is None else m["key"].encode(),
                    None if m["payload"] is None else m["payload"].encode(),
                    headers,
                    m.get("ts"),
                    m["partition"],
                    m["offset"],
                )
            )
        return out

    def metadata(self, bootstrap: str, topic: str | None = None) -> dict:
        args = ["-L", "-J", "-b", bootstrap] + (["-t", topic] if topic else [])
        return json.loads(self.run(args).stdout)

    def topics(self, bootstrap):
        md = self.metadata(bootstrap)
        return {t["topic"]: len(t["partitions"]) for t in md["topics"] if "error" not in t}

    def query(self, bootstrap: str, topic: str, partition: int, ts: int) -> int:
        proc = self.run(["-Q", "-J", "-b", bootstrap, "-t", f"{topic}:{partition}:{ts}"])
        answer = json.loads(proc.stdout)[topic][str(partition)]
        assert "error" not in answer, answer
        return answer["offset"]

    def offset_for_time(self, bootstrap, topic, partition, ts):
        offset = self.query(bootstrap, topic, partition, ts)
        return None if offset < 0 else offset

    def watermarks(self, bootstrap, topic, partition):
        # -Q passes the timestamp through to ListOffsets: -2 earliest, -1 latest.
        return (
            self.query(bootstrap, topic, partition, -2),
            self.query(bootstrap, topic, partition, -1),
        )


# --------------------------------------------------------------------------- kafka-python
class KafkaPythonDriver(Driver):
    """api_version pins the client to the request versions of that Kafka release instead of
    negotiating the newest (how an old client sees the broker)."""

    def __init__(self, api_version: tuple[int, ...] | None = None) -> None:
        name = (
            "kafka-python"
            if api_version is None
            else f"kafka-python@{'.'.join(map(str, api_version))}"
        )
        super().__init__(name)
        self.api_version = api_version

    def _base(self, bootstrap):
        conf = {
            "bootstrap_servers": bootstrap,
            "request_timeout_ms": 15000,
            "bootstrap_timeout_ms": 10000,
            "client_id": "fastlog-kafka-python-test",
        }
        return conf | ({"api_version": self.api_version} if self.api_version else {})

    def produce(self, bootstrap, topic, records, *, compression="none", idempotent=False, acks=-1):
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        p = KafkaProducer(
            **self._base(bootstrap),
            acks="all" if acks == -1 else acks,
            compression_type=None if compression == "none" else compression,
            enable_idempotence=idempotent,
            linger_ms=50,
            max_block_ms=15000,
            delivery_timeout_ms=int(TIMEOUT * 1000) - 2000,
        )
        try:
            futures = [
                p.send(
                    topic,
                    value=r.value,
                    key=r.key,
                    partition=r.partition,
                    headers=list(r.headers),
                    timestamp_ms=r.timestamp,
                )
                for r in records
            ]
            p.flush(timeout=TIMEOUT)
            try:
                return [f.get(timeout=TIMEOUT).offset for f in futures]
            except KafkaError as e:
                if getattr(e, "errno", None) is None:
                    raise
                raise BrokerError(e.errno, str(e)) from e
        finally:
            p.close(timeout=5)

    def consume(self, bootstrap, topic, partition, offset, count, timeout=TIMEOUT, max_bytes=None):
        from kafka import KafkaConsumer, TopicPartition

        limits = (
            {}
            if max_bytes is None
            else {"fetch_max_bytes": max_bytes, "max_partition_fetch_bytes": max_bytes}
        )
        c = KafkaConsumer(
            **self._base(bootstrap),
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            auto_offset_reset="none",
            **limits,
        )
        tp = TopicPartition(topic, partition)
        out: list[Rec] = []
        try:
            c.assign([tp])
            c.seek(tp, offset)
            end = c.end_offsets([tp], timeout_ms=int(timeout * 1000))[tp]
            deadline = time.monotonic() + timeout
            while len(out) < count and c.position(tp) < end and time.monotonic() < deadline:
                for m in c.poll(timeout_ms=200).get(tp, []):
                    out.append(
                        Rec(m.key, m.value, tuple(m.headers), m.timestamp, m.partition, m.offset)
                    )
        finally:
            c.close()
        return out[:count]

    def _admin(self, bootstrap):
        from kafka import KafkaAdminClient

        return KafkaAdminClient(**self._base(bootstrap))

    @staticmethod
    def _call(fn, *args, **kwargs):
        from kafka.errors import KafkaError

        try:
            return fn(*args, **kwargs)
        except KafkaError as e:
            if getattr(e, "errno", None) is None:
                raise
            raise BrokerError(e.errno, str(e)) from e

    def create_topic(self, bootstrap, topic, partitions, configs=None):
        a = self._admin(bootstrap)
        try:
            self._call(
                a.create_topics,
                {
                    topic: {
                        "num_partitions": partitions,
                        "replication_factor": 1,
                        "configs": configs or {},
                    }
                },
                timeout_ms=10000,
            )
        finally:
            a.close()

    def delete_topic(self, bootstrap, topic):
        a = self._admin(bootstrap)
        try:
            self._call(a.delete_topics, [topic], timeout_ms=10000)
        finally:
            a.close()

    def topics(self, bootstrap):
        a = self._admin(bootstrap)
        try:
            return {
                t["name"]: len(t["partitions"]) for t in a.describe_topics() if t["error_code"] == 0
            }
        finally:
            a.close()

    def _with_consumer(self, bootstrap, fn):
        from kafka import KafkaConsumer

        c = KafkaConsumer(**self._base(bootstrap), group_id=None, enable_auto_commit=False)
        try:
            return fn(c)
        finally:
            c.close()

    def offset_for_time(self, bootstrap, topic, partition, ts):
        from kafka import TopicPartition

        tp = TopicPartition(topic, partition)
        found = self._with_consumer(
            bootstrap, lambda c: c.offsets_for_times({tp: ts}, timeout_ms=int(TIMEOUT * 1000))
        )[tp]
        return None if found is None else found.offset

    def watermarks(self, bootstrap, topic, partition):
        from kafka import TopicPartition

        tp = TopicPartition(topic, partition)

        def both(c):
            t = int(TIMEOUT * 1000)
            return c.beginning_offsets([tp], timeout_ms=t)[tp], c.end_offsets([tp], timeout_ms=t)[
                tp
            ]

        return self._with_consumer(bootstrap, both)


# --------------------------------------------------------------------------- aiokafka
def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT + 10))


class AiokafkaDriver(Driver):
    def __init__(self) -> None:
        super().__init__("aiokafka")

    @staticmethod
    def _base(bootstrap):
        return {
            "bootstrap_servers": bootstrap,
            "request_timeout_ms": 15000,
            "client_id": "fastlog-aiokafka-test",
        }

    def produce(self, bootstrap, topic, records, *, compression="none", idempotent=False, acks=-1):
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        async def go():
            p = AIOKafkaProducer(
                **self._base(bootstrap),
                acks="all" if acks == -1 else acks,
                compression_type=None if compression == "none" else compression,
                enable_idempotence=idempotent,
                linger_ms=50,
            )
            await p.start()
            try:
                futures = [
                    await p.send(
                        topic,
                        value=r.value,
                        key=r.key,
                        partition=r.partition,
                        headers=list(r.headers),
                        timestamp_ms=r.timestamp,
                    )
                    for r in records
                ]
                try:
                    return [(await f).offset for f in futures]
                except KafkaError as e:
                    if getattr(e, "errno", None) is None:
                        raise
                    raise BrokerError(e.errno, str(e)) from e
            finally:
                await p.stop()

        return _run(go())

    def consume(self, bootstrap, topic, partition, offset, count, timeout=TIMEOUT, max_bytes=None):
        from aiokafka import AIOKafkaConsumer, TopicPartition

        async def go():
            limits = (
                {}
                if max_bytes is None
                else {"fetch_max_bytes": max_bytes, "max_partition_fetch_bytes": max_bytes}
            )
            c = AIOKafkaConsumer(
                **self._base(bootstrap),
                group_id=None,
                enable_auto_commit=False,
                fetch_max_wait_ms=100,
                auto_offset_reset="none",
                **limits,
            )
            await c.start()
            tp = TopicPartition(topic, partition)
            out: list[Rec] = []
            try:
                c.assign([tp])
                c.seek(tp, offset)
                end = (await c.end_offsets([tp]))[tp]
                deadline = time.monotonic() + timeout
                while (
                    len(out) < count and await c.position(tp) < end and time.monotonic() < deadline
                ):
                    batch = await c.getmany(tp, timeout_ms=200)
                    for m in batch.get(tp, []):
                        out.append(
                            Rec(
                                m.key, m.value, tuple(m.headers), m.timestamp, m.partition, m.offset
                            )
                        )
            finally:
                await c.stop()
            return out[:count]

        return _run(go())

    async def _admin_call(self, bootstrap, method, *args, **kwargs):
        from aiokafka.admin import AIOKafkaAdminClient

        a = AIOKafkaAdminClient(**self._base(bootstrap))
        await a.start()
        try:
            return await getattr(a, method)(*args, **kwargs)
        finally:
            await a.close()

    @staticmethod
    def _raise_topic_errors(response):
        # aiokafka returns the response as is; the per-topic error codes are ours to read.
        for entry in (
            response.topic_errors
            if hasattr(response, "topic_errors")
            else response.topic_error_codes
        ):
            code = entry[1]
            if code != 0:
                raise BrokerError(code, str(entry))

    def create_topic(self, bootstrap, topic, partitions, configs=None):
        from aiokafka.admin import NewTopic

        nt = NewTopic(
            topic, num_partitions=partitions, replication_factor=1, topic_configs=configs or {}
        )
        self._raise_topic_errors(
            _run(self._admin_call(bootstrap, "create_topics", [nt], timeout_ms=10000))
        )

    def delete_topic(self, bootstrap, topic):
        self._raise_topic_errors(
            _run(self._admin_call(bootstrap, "delete_topics", [topic], timeout_ms=10000))
        )

    def topics(self, bootstrap):
        described = _run(self._admin_call(bootstrap, "describe_topics"))
        return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}

    async def _with_consumer(self, bootstrap, fn):
        from aiokafka import AIOKafkaConsumer

        c = AIOKafkaConsumer(**self._base(bootstrap), group_id=None, enable_auto_commit=False)
        await c.start()
        try:
            return await fn(c)
        finally:
            await c.stop()

    def offset_for_time(self, bootstrap, topic, partition, ts):
        from aiokafka import TopicPartition

        tp = TopicPartition(topic, partition)
        found = _run(self._with_consumer(bootstrap, lambda c: c.offsets_for_times({tp: ts})))[tp]
        return None if found is None else found.offset

    def watermarks(self, bootstrap, topic, partition):
        from aiokafka import TopicPartition

        tp = TopicPartition(topic, partition)

        async def both(c):
            return (await c.beginning_offsets([tp]))[tp], (await c.end_offsets([tp]))[tp]

        return _run(self._with_consumer(bootstrap, both))


# --------------------------------------------------------------------------- kafkajs
def _b64(b: bytes | None) -> str | None:
    return None if b is None else base64.b64encode(b).decode()


def _unb64(s: str | None) -> bytes | None:
    return None if s is None else base64.b64decode(s)


class KafkajsDriver(Driver):
    """kafkajs 2.2.4 through tests/js/client.js (node). Only gzip is built into kafkajs."""

    def __init__(self) -> None:
        super().__init__("kafkajs", codecs=("none", "gzip"))

    def call(self, op: str, request: dict, timeout: float = TIMEOUT + 10) -> dict:
        assert (JS_DIR / "node_modules" / "kafkajs").is_dir(), (
            "kafkajs is not installed: run scripts/test.sh (npm ci in tests/js)"
        )
        env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
        proc = subprocess.run(
            ["node", str(JS_DIR / "client.js"), op],
            input=json.dumps(request).encode(),
            capture_output=True,
            timeout=timeout,
            cwd=JS_DIR,
            env=env,
        )
        if proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace")
            code = _kafkajs_error_code(stderr)
            if code is not None:
                raise BrokerError(code, stderr[-2000:])
            raise AssertionError(f"kafkajs {op} exited {proc.returncode}: {stderr[-3000:]}")
        return json.loads(proc.stdout)

    def produce(self, bootstrap, topic, records, *, compression="none", idempotent=False, acks=-1):
        # One send() (one batch per partition) per run of records to the same partition.
        batches: list[list[Rec]] = []
        for r in records:
            if batches and batches[-1][0].partition == r.partition:
                batches[-1].append(r)
            else:
                batches.append([r])
        reply = self.call(
            "produce",
            {
                "brokers": [bootstrap],
                "topic": topic,
                "compression": compression,
                "idempotent": idempotent,
                "acks": acks,
                "batches": [
                    {
                        "partition": b[0].partition,
                        "messages": [
                            {
                                "key": _b64(r.key),
                                "value": _b64(r.value),
                                "partition": r.partition,
                                "headers": [[k, _b64(v)] for k, v in r.headers],
                                "timestamp": r.timestamp,
                            }
                            for r in b
                        ],
                    }
                    for b in batches
                ],
            },
        )
        offsets = []
        for batch, result in zip(batches, reply["results"], strict=True):
            [meta] = result
            assert meta["errorCode"] == 0 and meta["partition"] == batch[0].partition, meta
            offsets += [meta["baseOffset"] + i for i in range(len(batch))]
        return offsets

    def consume(self, bootstrap, topic, partition, offset, count, timeout=TIMEOUT, max_bytes=None):
        reply = self.call(
            "consume",
            {
                "brokers": [bootstrap],
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "count": count,
                "timeoutMs": int(timeout * 1000),
                "maxBytes": max_bytes,
            },
            timeout=timeout + 10,
        )
        return [
            Rec(
                _unb64(m["key"]),
                _unb64(m["value"]),
                tuple((k, _unb64(v)) for k, v in m["headers"]),
                m["timestamp"],
                partition,
                m["offset"],
            )
            for m in reply["records"]
        ]

    def create_topic(self, bootstrap, topic, partitions, configs=None):
        reply = self.call(
            "create-topics",
            {
                "brokers": [bootstrap],
                "topics": [{"topic": topic, "numPartitions": partitions, "configs": configs or {}}],
            },
        )
        if not reply["created"]:
            # kafkajs swallows TOPIC_ALREADY_EXISTS and answers false.
            raise BrokerError(TOPIC_ALREADY_EXISTS, "kafkajs createTopics returned false")

    def delete_topic(self, bootstrap, topic):
        self.call("delete-topics", {"brokers": [bootstrap], "topics": [topic]})

    def topics(self, bootstrap):
        return self.call("list-topics", {"brokers": [bootstrap]})["topics"]

    def offset_for_time(self, bootstrap, topic, partition, ts):
        reply = self.call(
            "offsets-by-time", {"brokers": [bootstrap], "topic": topic, "timestamp": ts}
        )
        [found] = [o for o in reply["offsets"] if o["partition"] == partition]
        # kafkajs answers the high watermark where ListOffsets found no record (-1).
        high = self.watermarks(bootstrap, topic, partition)[1]
        return None if found["offset"] == high else found["offset"]

    def watermarks(self, bootstrap, topic, partition):
        reply = self.call("offsets", {"brokers": [bootstrap], "topic": topic})
        [o] = [o for o in reply["offsets"] if o["partition"] == partition]
        return o["low"], o["high"]


_KAFKAJS_TYPES = {
    "TOPIC_ALREADY_EXISTS": TOPIC_ALREADY_EXISTS,
    "UNKNOWN_TOPIC_OR_PARTITION": UNKNOWN_TOPIC_OR_PARTITION,
    "MESSAGE_TOO_LARGE": MESSAGE_TOO_LARGE,
    "CORRUPT_MESSAGE": CORRUPT_MESSAGE,
    "INVALID_TOPIC_EXCEPTION": INVALID_TOPIC_EXCEPTION,
}


def _kafkajs_error_code(stderr: str) -> int | None:
    for line in stderr.splitlines():
        if line.strip().startswith("type="):
            name = line.split()[0].split("=", 1)[1]
            if name in _KAFKAJS_TYPES:
                return _KAFKAJS_TYPES[name]
    return None


DRIVERS: list[Driver] = [
    ConfluentDriver(),
    KcatDriver(),
    KafkaPythonDriver(),
    AiokafkaDriver(),
    KafkajsDriver(),
]
BY_NAME = {d.name: d for d in DRIVERS}
