"""``fastlog perf produce`` and ``fastlog perf consume``: throughput and latency tests.

Owns the two perf commands, modelled on Kafka's kafka-producer-perf-test and
kafka-consumer-perf-test: the same options where they make sense (--num-records,
--record-size, --throughput, --producer-props; --messages, --group, --from-latest), a live
progress bar (rich) while running, and a final summary of records/s, MB/s and latency
percentiles. Both use confluent-kafka (librdkafka); the broker under test sees an ordinary
client.

Produce latency is Kafka's: from the producer's send call to its acknowledgement (the
delivery report). Consume latency is end to end: wall clock at receipt minus the record's
timestamp, meaningful when the records were produced while the consumer ran.
"""

from __future__ import annotations

import json
import os
import random
import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

import click
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from broker.tools.console import (
    CONTEXT_SETTINGS,
    ToolError,
    ToolGroup,
    bootstrap_option,
    kafka_error_text,
    open_client,
    topic_metadata,
)

MB = 1024 * 1024
# at most this many latency samples are kept (Kafka's perf test keeps 500k as well)
MAX_SAMPLES = 500_000


class LatencyStats:
    """Counts and latencies of a run; latencies sampled evenly when there are many."""

    def __init__(self, expected: int) -> None:
        self.sampling = max(1, expected // MAX_SAMPLES)
        self.samples = array("d")
        self.count = 0
        self.bytes = 0
        self.total_latency = 0.0
        self.max_latency = 0.0

    def record(self, latency: float, nbytes: int) -> None:
        self.count += 1
        self.bytes += nbytes
        self.total_latency += latency
        if latency > self.max_latency:
            self.max_latency = latency
        if self.count % self.sampling == 0:
            self.samples.append(latency)

    def percentiles(self, qs: Iterable[float] = (0.5, 0.95, 0.99, 0.999)) -> dict[str, float]:
        ordered = sorted(self.samples)
        out = {}
        for q in qs:
            key = f"p{q * 100:g}"
            out[key] = ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0
        return out


@dataclass
class Summary:
    kind: str
    records: int
    bytes: int
    seconds: float
    avg_latency_ms: float
    max_latency_ms: float
    percentiles_ms: dict[str, float]
    errors: int = 0
    first_record_ms: float | None = None

    @property
    def records_per_sec(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_sec(self) -> float:
        return self.bytes / MB / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = {
            "kind": self.kind,
            "records": self.records,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 6),
            "records_per_sec": round(self.records_per_sec, 2),
            "mb_per_sec": round(self.mb_per_sec, 3),
            "avg_latency_ms": round(self.avg_latency_ms, 3),
            "max_latency_ms": round(self.max_latency_ms, 3),
            "latency_ms": {k: round(v, 3) for k, v in self.percentiles_ms.items()},
            "errors": self.errors,
        }
        if self.first_record_ms is not None:
            d["first_record_ms"] = round(self.first_record_ms, 1)
        return d

    def kafka_line(self) -> str:
        verb = "sent" if self.kind == "produce" else "consumed"
        p = self.percentiles_ms
        return (
            f"{self.records} records {verb}, {self.records_per_sec:.1f} records/sec "
            f"({self.mb_per_sec:.2f} MB/sec), {self.avg_latency_ms:.2f} ms avg latency, "
            f"{self.max_latency_ms:.2f} ms max latency, {p['p50']:.2f} ms 50th, {p['p95']:.2f} ms 95th, "
            f"{p['p99']:.2f} ms 99th, {p['p99.9']:.2f} ms 99.9th."
        )

    def table(self) -> Table:
        t = Table(title=f"perf {self.kind}", show_header=False, title_justify="left")
        t.add_column(style="bold")
        t.add_column(justify="right")
        t.add_row("records", f"{self.records:,}")
        t.add_row("data", f"{self.bytes / MB:,.2f} MB")
        t.add_row("time", f"{self.seconds:,.2f} s")
        t.add_row(
            "throughput", f"{self.records_per_sec:,.1f} records/s  {self.mb_per_sec:,.2f} MB/s"
        )
        label = "latency (send to ack)" if self.kind == "produce" else "latency (end to end)"
        t.add_row(label, f"avg {self.avg_latency_ms:.2f} ms  max {self.max_latency_ms:.2f} ms")
        for k, v in self.percentiles_ms.items():
            t.add_row(f"  {k}", f"{v:.2f} ms")
        if self.first_record_ms is not None:
            t.add_row("time to first record", f"{self.first_record_ms:,.0f} ms")
        if self.errors:
            t.add_row("errors", str(self.errors))
        return t


def _summary(
    kind: str, stats: LatencyStats, seconds: float, errors: int = 0, first_ms: float | None = None
) -> Summary:
    return Summary(
        kind=kind,
        records=stats.count,
        bytes=stats.bytes,
        seconds=seconds,
        avg_latency_ms=stats.total_latency / stats.count * 1000 if stats.count else 0.0,
        max_latency_ms=stats.max_latency * 1000,
        percentiles_ms={k: v * 1000 for k, v in stats.percentiles().items()},
        errors=errors,
        first_record_ms=first_ms,
    )


def _print_summary(summary: Summary, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.as_dict()))
        return
    out = Console()
    if out.is_terminal:
        out.print(summary.table())
    else:
        click.echo(summary.kafka_line())


class Reporter:
    """A rich progress bar on a terminal; Kafka-style interval lines on stderr otherwise."""

    def __init__(self, kind: str, total: int, enabled: bool, interval: float) -> None:
        self.kind = kind
        self.total = total
        self.console = Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self.lines = enabled and not self.live
        self.interval = interval
        self.progress: Progress | None = None
        self._task: Any = None
        self._next = 0.0
        self._window = (time.monotonic(), 0, 0)

    def __enter__(self) -> Reporter:
        if self.live:
            self.progress = Progress(
                TextColumn(f"[bold]{self.kind}"),
                BarColumn(bar_width=20),
                TaskProgressColumn(),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f} records"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self._task = self.progress.add_task(self.kind, total=self.total, rate="")
        self._next = time.monotonic() + self.interval
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, stats: LatencyStats, started: float) -> None:
        now = time.monotonic()
        if self.progress is not None:
            elapsed = max(now - started, 1e-9)
            rate = f"{stats.count / elapsed:,.0f} rec/s {stats.bytes / MB / elapsed:,.1f} MB/s"
            self.progress.update(self._task, completed=stats.count, rate=rate)
        elif self.lines and now >= self._next:
            t0, c0, b0 = self._window
            dt = max(now - t0, 1e-9)
            n = stats.count - c0
            avg = stats.total_latency / stats.count * 1000 if stats.count else 0.0
            self.console.print(
                f"{n} records {'sent' if self.kind == 'produce' else 'consumed'}, {n / dt:.1f} records/sec "
                f"({(stats.bytes - b0) / MB / dt:.2f} MB/sec), {avg:.1f} ms avg latency, "
                f"{stats.max_latency * 1000:.1f} ms max latency.",
                highlight=False,
                soft_wrap=True,
            )
            self._window = (now, stats.count, stats.bytes)
            self._next = now + self.interval


def _payloads(
    record_size: int | None, payload_file: IO[bytes] | None, delimiter: str
) -> list[bytes]:
    if payload_file is not None:
        items = [p for p in payload_file.read().split(delimiter.encode()) if p]
        if not items:
            raise ToolError("the payload file holds no payloads")
        return items
    assert record_size is not None
    # one random payload, reused for every record (as Kafka's perf test does)
    rnd = random.Random(0)
    return [bytes(65 + rnd.randrange(26) for _ in range(record_size))]


# --------------------------------------------------------------------------- commands


@click.group("perf", cls=ToolGroup, context_settings=CONTEXT_SETTINGS)
def perf() -> None:
    """Producer and consumer performance tests (as kafka-*-perf-test).

    \b
    Examples:
      fastlog perf produce --topic bench --num-records 1000000 --record-size 100
      fastlog perf consume --topic bench --messages 1000000
    """


@perf.command("produce", context_settings=CONTEXT_SETTINGS)
@bootstrap_option
@click.option("-t", "--topic", required=True, help="Topic to produce to.")
@click.option(
    "-n", "--num-records", type=click.IntRange(min=1), required=True, help="Records to send."
)
@click.option("-s", "--record-size", type=click.IntRange(min=0), help="Bytes per record value.")
@click.option(
    "--payload-file",
    type=click.File("rb"),
    help="Take values from this file (split by --payload-delimiter), chosen at random.",
)
@click.option(
    "--payload-delimiter",
    default="\n",
    show_default=repr("\n"),
    help="Separator of payloads in --payload-file.",
)
@click.option(
    "--throughput",
    type=float,
    default=-1,
    show_default=True,
    help="Cap in records/s; -1 for no cap.",
)
@click.option(
    "--acks", type=click.Choice(["0", "1", "all", "-1"]), default="all", show_default=True
)
@click.option(
    "--compression",
    type=click.Choice(["none", "gzip", "snappy", "lz4", "zstd"]),
    default="none",
    show_default=True,
)
@click.option(
    "--producer-props",
    multiple=True,
    metavar="K=V",
    help="librdkafka producer properties, e.g. 'linger.ms=5 batch.size=65536' (repeatable).",
)
@click.option(
    "--producer.config",
    "producer_config",
    type=click.Path(exists=True, dir_okay=False),
    help="Producer properties file (Java properties syntax); --producer-props win over it.",
)
@click.argument("more_props", nargs=-1, metavar="[K=V]...")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("--no-progress", is_flag=True, help="No progress bar or interval lines.")
@click.option(
    "--reporting-interval",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds between progress lines when not on a terminal.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the broker and for the last acknowledgements.",
)
def perf_produce(
    bootstrap: str,
    topic: str,
    num_records: int,
    record_size: int | None,
    payload_file: IO[bytes] | None,
    payload_delimiter: str,
    throughput: float,
    acks: str,
    compression: str,
    producer_props: tuple[str, ...],
    producer_config: str | None,
    more_props: tuple[str, ...],
    as_json: bool,
    no_progress: bool,
    reporting_interval: float,
    timeout: float,
) -> None:
    """Send records as fast as the broker takes them (or at --throughput) and report.

    Latency is measured from the send call to the broker's acknowledgement, as in
    kafka-producer-perf-test; percentiles come from up to 500,000 evenly spaced samples.

    \b
    Examples:
      fastlog perf produce -t bench -n 1000000 -s 100
      fastlog perf produce -t bench -n 200000 -s 1024 --throughput 20000 --acks 1
      fastlog perf produce -t bench -n 500000 -s 100 --producer-props 'linger.ms=20 batch.size=1048576' --json
      fastlog perf produce --topic bench --num-records 100000 --record-size 100 --throughput -1 \\
          --producer-props acks=1 bootstrap.servers=localhost:9092    # Kafka's own spelling
      fastlog perf produce -t bench -n 100000 -s 100 --producer.config producer.properties
    """
    if (record_size is None) == (payload_file is None):
        raise click.UsageError("give exactly one of --record-size and --payload-file")
    payloads = _payloads(record_size, payload_file, payload_delimiter)
    producer, errors, bootstrap = open_client(
        Producer,
        bootstrap,
        producer_config,
        (*producer_props, *more_props),
        {
            "acks": acks,
            "compression.type": compression,
            "linger.ms": 5,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "message.timeout.ms": int(timeout * 1000),
            "client.id": "fastlog-perf-producer",
        },
        "producer property",
    )
    topic_metadata(producer, topic, bootstrap, errors, timeout)

    stats = LatencyStats(num_records)
    failed = [0, None]

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failed[0] += 1
            if failed[1] is None:
                failed[1] = kafka_error_text(err)
            return
        stats.record(msg.latency() or 0.0, len(msg))

    produce = producer.produce
    poll = producer.poll
    single = payloads[0] if len(payloads) == 1 else None
    pick = random.Random(1).choice
    interrupted = False
    with Reporter("produce", num_records, not no_progress, reporting_interval) as reporter:
        started = time.monotonic()
        try:
            for i in range(num_records):
                value = single if single is not None else pick(payloads)
                while True:
                    try:
                        produce(topic, value, on_delivery=on_delivery)
                        break
                    except BufferError:
                        poll(0.001)
                if throughput > 0:
                    # sleep while ahead of the target rate (Kafka's ThroughputThrottler)
                    ahead = (i + 1) / throughput - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
                        poll(0)
                        reporter.update(stats, started)
                if i % 256 == 0:
                    poll(0)
                    reporter.update(stats, started)
        except KeyboardInterrupt:
            # Ctrl-C: stop sending, collect what is in flight, still print the summary
            interrupted = True
        deadline = time.monotonic() + (min(timeout, 5.0) if interrupted else timeout)
        while len(producer) and time.monotonic() < deadline:
            poll(0.05)
            reporter.update(stats, started)
        elapsed = time.monotonic() - started
        reporter.update(stats, started)
    left = len(producer)
    summary = _summary("produce", stats, elapsed, failed[0] + left)
    _print_summary(summary, as_json)
    if interrupted:
        raise click.exceptions.Exit(130)
    if failed[0]:
        raise ToolError(f"{failed[0]} of {num_records} record(s) failed: {failed[1]}")
    if left:
        cause = errors.cause()
        raise ToolError(
            f"{left} record(s) not acknowledged within {timeout:g}s"
            + (f": {cause}" if cause else "")
        )


@perf.command("consume", context_settings=CONTEXT_SETTINGS)
@bootstrap_option
@click.option("-t", "--topic", required=True, help="Topic to consume.")
@click.option(
    "-m", "--messages", type=click.IntRange(min=1), required=True, help="Records to consume."
)
@click.option(
    "-g",
    "--group",
    metavar="G",
    help="Consume as group G (default: read partitions directly, no group).",
)
@click.option(
    "--from-latest", is_flag=True, help="Start at the end of the log (default: the beginning)."
)
@click.option(
    "--consumer.config",
    "consumer_config",
    type=click.Path(exists=True, dir_okay=False),
    help="Consumer properties file (Java properties syntax); --consumer-props win over it.",
)
@click.option(
    "--consumer-props",
    multiple=True,
    metavar="K=V",
    help="librdkafka consumer properties (repeatable).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Give up after this many seconds without a record.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("--no-progress", is_flag=True, help="No progress bar or interval lines.")
@click.option(
    "--reporting-interval",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds between progress lines when not on a terminal.",
)
def perf_consume(
    bootstrap: str,
    topic: str,
    messages: int,
    group: str | None,
    from_latest: bool,
    consumer_config: str | None,
    consumer_props: tuple[str, ...],
    timeout: float,
    as_json: bool,
    no_progress: bool,
    reporting_interval: float,
) -> None:
    """Consume --messages records as fast as possible and report.

    Latency is end to end (receipt time minus the record's timestamp): run it alongside
    `fastlog perf produce` for a produce-to-consume latency. The run fails (exit 1) if fewer
    than --messages records arrive with --timeout seconds of silence.

    \b
    Examples:
      fastlog perf consume -t bench -m 1000000
      fastlog perf consume -t bench -m 100000 --group perf --json
    """
    consumer, errors, bootstrap = open_client(
        Consumer,
        bootstrap,
        consumer_config,
        consumer_props,
        {
            "group.id": group or f"fastlog-perf-consumer-{os.getpid()}",
            "enable.auto.commit": bool(group),
            "auto.offset.reset": "latest" if from_latest else "earliest",
            "client.id": "fastlog-perf-consumer",
        },
        "consumer property",
    )
    try:
        tmd = topic_metadata(consumer, topic, bootstrap, errors, timeout)
        if group:
            consumer.subscribe([topic])
        else:
            start = OFFSET_END if from_latest else OFFSET_BEGINNING
            consumer.assign([TopicPartition(topic, p, start) for p in sorted(tmd.partitions)])
        summary, interrupted = _consume_run(
            consumer, messages, timeout, not no_progress, reporting_interval
        )
    finally:
        try:
            consumer.close()
        except Exception:  # noqa: BLE001 - closing must not mask the real error
            pass
    _print_summary(summary, as_json)
    if interrupted:
        raise click.exceptions.Exit(130)
    if summary.records < messages:
        raise ToolError(
            f"consumed {summary.records} of {messages} record(s): none arrived for {timeout:g}s"
        )


def _consume_run(
    consumer: Consumer, messages: int, timeout: float, progress: bool, interval: float
) -> tuple[Summary, bool]:
    stats = LatencyStats(messages)
    first_ms: float | None = None
    with Reporter("consume", messages, progress, interval) as reporter:
        started = time.monotonic()
        last_seen = started
        first_at = None
        interrupted = False
        try:
            while stats.count < messages:
                batch = consumer.consume(
                    num_messages=min(10_000, messages - stats.count), timeout=0.2
                )
                now = time.monotonic()
                if batch:
                    wall_ms = time.time() * 1000
                    for msg in batch:
                        err = msg.error()
                        if err is not None:
                            if err.code() in (
                                KafkaError.UNKNOWN_TOPIC_OR_PART,
                                KafkaError._UNKNOWN_TOPIC,
                            ):
                                raise ToolError("the topic no longer exists")
                            if err.fatal():
                                raise ToolError(kafka_error_text(err))
                            continue
                        ts = msg.timestamp()[1]
                        stats.record(
                            max(0.0, (wall_ms - ts) / 1000) if ts > 0 else 0.0,
                            len(msg) + len(msg.key() or b""),
                        )
                    if first_at is None and stats.count:
                        first_at = now
                        first_ms = (now - started) * 1000
                    last_seen = now
                elif now - last_seen > timeout:
                    break
                reporter.update(stats, started)
        except KeyboardInterrupt:
            interrupted = True  # Ctrl-C: report what was consumed so far
            last_seen = time.monotonic()
        ended = time.monotonic() if stats.count >= messages and not interrupted else last_seen
        reporter.update(stats, started)
    # throughput over the fetching time, as Kafka's fetch.MB.sec: connecting and joining a
    # group are reported apart as time to first record
    return _summary("consume", stats, ended - (first_at or started), 0, first_ms), interrupted
