"""``fastlog produce`` and ``fastlog consume``: the console producer and consumer (kcat-like).

Owns the two console commands and the small client helpers the other client-side tools
(broker/tools/perf.py) share: the ``--bootstrap-server`` option, the client setup from a
config file and -X properties (``open_client``), the one-line error convention
(``Error: ...`` on stderr, exit 1 for runtime errors and 2 for usage errors, never a
traceback) and the metadata probe that tells an unreachable broker from an unknown topic.
Both commands are built on confluent-kafka (librdkafka); there is no hand-written client here.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import IO, Any

import click
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_STORED,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

DEFAULT_BOOTSTRAP = "localhost:9092"
# librdkafka's logical offset for "N before the end" (RD_KAFKA_OFFSET_TAIL_BASE)
_OFFSET_TAIL_BASE = -2000

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# --------------------------------------------------------------------------- errors


class ToolError(click.ClickException):
    """A runtime failure the user can act on; click prints it as one ``Error: ...`` line."""

    exit_code = 1


class OneLineUsageError(click.ClickException):
    """A usage error shown as one line (click's own UsageError prints usage and a hint too)."""

    exit_code = 2

    def __init__(self, exc: click.UsageError, ctx: click.Context | None) -> None:
        where = (exc.ctx or ctx).command_path if (exc.ctx or ctx) else "fastlog"
        message = exc.format_message().rstrip(".")
        super().__init__(f"{message} (see '{where} --help')")


def _translate(exc: BaseException) -> click.ClickException:
    if isinstance(exc, KafkaException):
        return ToolError(kafka_error_text(exc.args[0] if exc.args else exc))
    if isinstance(exc, OSError):
        name = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return ToolError(f"{name}{exc.strerror or exc}")
    return ToolError(f"internal error: {type(exc).__name__}: {exc}")


class ToolCommand(click.Command):
    """A click command that keeps every failure to one line on stderr."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise OneLineUsageError(exc, ctx) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise OneLineUsageError(exc, ctx) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None
        except BrokenPipeError:
            # the reader went away (``| head``): stop quietly, as cat does
            _silence_stdout()
            raise click.exceptions.Exit(0) from None
        except Exception as exc:
            if os.environ.get("FASTLOG_DEBUG"):
                raise
            raise _translate(exc) from None


class ToolGroup(click.Group):
    """A click group whose usage errors (unknown subcommand, bad flag) are one line too."""

    command_class = ToolCommand

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise OneLineUsageError(exc, ctx) from None

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            raise OneLineUsageError(exc, ctx) from None


ToolGroup.group_class = ToolGroup


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would report the broken pipe again
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# --------------------------------------------------------------------------- options


def bootstrap_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-b",
        "--bootstrap-server",
        "bootstrap",
        default=DEFAULT_BOOTSTRAP,
        show_default=True,
        envvar="FASTLOG_BOOTSTRAP_SERVER",
        metavar="HOST:PORT[,...]",
        help="Broker(s) to connect to (env FASTLOG_BOOTSTRAP_SERVER).",
    )(f)


def parse_properties(values: Iterable[str], what: str = "property") -> dict[str, str]:
    """``k=v`` strings (each may hold several, separated by spaces or commas) into a dict."""
    props: dict[str, str] = {}
    for value in values:
        for item in value.replace(",", " ").split():
            key, sep, val = item.partition("=")
            if not sep or not key:
                raise click.BadParameter(f"{what} {item!r} is not of the form key=value")
            props[key.strip()] = val.strip()
    return props


def properties_file(path: str | None) -> dict[str, str]:
    """A client properties file (Java syntax, as Kafka's --producer.config takes)."""
    if path is None:
        return {}
    from broker.config import parse_properties as parse_java_properties

    with open(path, encoding="utf-8") as f:
        props = parse_java_properties(f.read())
    # Java clients' (de)serializer classes mean nothing to a bytes tool (and to librdkafka)
    return {k: v for k, v in props.items() if not k.endswith(("serializer", "deserializer"))}


def config_file_option(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--producer.config FILE`` / ``--consumer.config FILE``, as Kafka's tools spell it."""
    return click.option(
        f"--{kind}.config",
        f"{kind}_config",
        type=click.Path(exists=True, dir_okay=False),
        help=f"{kind.capitalize()} properties file (Java syntax); -X properties win over it.",
    )


# --------------------------------------------------------------------------- clients


class ErrorLog:
    """Collects librdkafka's error callbacks so a failure can name its cause."""

    def __init__(self) -> None:
        self.errors: list[KafkaError] = []

    def __call__(self, err: KafkaError) -> None:
        self.errors.append(err)
        del self.errors[:-20]

    def brokers_down(self) -> bool:
        return any(
            e.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE) for e in self.errors
        )

    def cause(self) -> str | None:
        for err in reversed(self.errors):
            if err.code() in (
                KafkaError._TRANSPORT,
                KafkaError._RESOLVE,
                KafkaError._AUTHENTICATION,
                KafkaError._SSL,
            ):
                return _strip_broker_prefix(err.str())
        return _strip_broker_prefix(self.errors[-1].str()) if self.errors else None


def _strip_broker_prefix(text: str) -> str:
    # librdkafka prefixes "host:port/bootstrap: "; the message already names the broker
    head, sep, tail = text.partition(": ")
    return tail if sep and "/" in head else text


def kafka_error_text(err: Any) -> str:
    if isinstance(err, KafkaError):
        return f"{err.str()} ({err.name()})"
    return str(err)


def client_config(bootstrap: str, errors: ErrorLog, extra: dict[str, str] | None = None) -> dict:
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "error_cb": errors,
        # librdkafka logs connection failures to stderr itself; the tool reports them once
        "log_level": 0,
        "client.id": "fastlog-cli",
    }
    conf.update(extra or {})
    return conf


def make_client(kind: type, conf: dict) -> Any:
    try:
        return kind(conf)
    except (KafkaException, ValueError, TypeError) as exc:
        text = kafka_error_text(exc.args[0]) if exc.args else str(exc)
        raise click.UsageError(f"bad client configuration: {text}") from None


def open_client(
    kind: type,
    bootstrap: str,
    config_file: str | None,
    properties: Iterable[str],
    defaults: dict[str, Any],
    what: str = "property",
) -> tuple[Any, ErrorLog, str]:
    """A confluent-kafka ``kind`` (Producer or Consumer) configured as every client tool
    configures one: the tool's ``defaults``, then the ``--*.config`` file, then the -X
    properties (later wins; a ``bootstrap.servers`` among them replaces ``bootstrap``).

    Returns the client, the ErrorLog its error callbacks go to, and the bootstrap servers
    it uses (for the messages naming them). A bad property is a usage error.
    """
    props = properties_file(config_file)
    props.update(parse_properties(properties, what))
    bootstrap = props.pop("bootstrap.servers", bootstrap)
    errors = ErrorLog()
    client = make_client(kind, client_config(bootstrap, errors, {**defaults, **props}))
    return client, errors, bootstrap


def topic_metadata(
    client: Any, topic: str, bootstrap: str, errors: ErrorLog, timeout: float = 10.0
) -> Any:
    """The TopicMetadata of ``topic``, or a ToolError naming what is wrong.

    Polls in short steps so a refused connection is reported at once rather than after the
    whole timeout; LEADER_NOT_AVAILABLE (a topic being created, also by auto-creation) is
    retried until the deadline.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        remaining = deadline - time.monotonic()
        try:
            md = client.list_topics(topic=topic, timeout=max(0.1, min(1.0, remaining)))
        except KafkaException as exc:
            _serve_callbacks(client)
            if errors.brokers_down() or remaining <= 0:
                cause = errors.cause() or kafka_error_text(exc.args[0])
                raise ToolError(f"cannot reach broker at {bootstrap}: {cause}") from None
            continue
        tmd = md.topics.get(topic)
        err = tmd.error if tmd is not None else None
        if tmd is not None and err is None and tmd.partitions:
            return tmd
        last = err
        code = err.code() if err is not None else None
        if code == KafkaError.UNKNOWN_TOPIC_OR_PART or (tmd is None and remaining <= 0):
            raise ToolError(f"unknown topic '{topic}' (not found on {bootstrap})")
        if code == KafkaError.TOPIC_EXCEPTION:
            raise ToolError(
                f"invalid topic name '{topic}' (at most 249 of ASCII letters, digits, '.', '_', '-')"
            )
        if code == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            raise ToolError(f"not authorized to access topic '{topic}'")
        if time.monotonic() >= deadline:
            raise ToolError(f"topic '{topic}' is not available: {kafka_error_text(last)}")
        time.sleep(0.1)


def _serve_callbacks(client: Any) -> None:
    # error_cb runs only from poll(); a consumer without an assignment returns nothing here
    try:
        client.poll(0)
    except (RuntimeError, KafkaException):
        pass


def check_partition(tmd: Any, topic: str, partition: int | None) -> list[int]:
    partitions = sorted(tmd.partitions)
    if partition is None:
        return partitions
    if partition not in tmd.partitions:
        raise ToolError(
            f"topic '{topic}' has {len(partitions)} partition(s) (0-{len(partitions) - 1}); "
            f"there is no partition {partition}"
        )
    return [partition]


# --------------------------------------------------------------------------- produce

PRODUCE_HELP = """Produce records to TOPIC, one per line, from stdin or --file.

\b
Examples:
  echo hello | fastlog produce events
  fastlog produce events -f records.txt --key-separator :      # "key:value" lines
  fastlog produce events --header source=cli --partition 2 -X linger.ms=50
  fastlog produce events -b broker1:9092,broker2:9092 --acks 1 --compression zstd

Each line (without its newline) is one record; an empty line is a record with an empty
value. With --key-separator, the text before the first separator is the key; a line without
the separator is an error. Records are sent in order and the command waits for every
acknowledgement; it exits 1 if any record was not delivered.
"""


@click.command("produce", cls=ToolCommand, help=PRODUCE_HELP, context_settings=CONTEXT_SETTINGS)
@click.argument("topic")
@bootstrap_option
@click.option(
    "-f",
    "--file",
    "file",
    type=click.File("rb"),
    default="-",
    show_default=True,
    help="Read records from this file ('-' is stdin).",
)
@click.option("-K", "--key-separator", metavar="SEP", help="Split each line into key SEP value.")
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="K=V",
    help="Header on every record (repeatable).",
)
@click.option(
    "-p",
    "--partition",
    type=click.IntRange(min=0),
    help="Write to this partition (default: by key hash).",
)
@click.option(
    "--acks",
    type=click.Choice(["0", "1", "all", "-1"]),
    default="all",
    show_default=True,
    help="Acknowledgements the leader waits for.",
)
@click.option(
    "--compression",
    type=click.Choice(["none", "gzip", "snappy", "lz4", "zstd"]),
    default="none",
    show_default=True,
)
@click.option(
    "-X",
    "--property",
    "properties",
    multiple=True,
    metavar="K=V",
    help="librdkafka producer property (repeatable).",
)
@config_file_option("producer")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the broker and for delivery.",
)
def produce(
    topic: str,
    bootstrap: str,
    file: IO[bytes],
    key_separator: str | None,
    headers: tuple[str, ...],
    partition: int | None,
    acks: str,
    compression: str,
    properties: tuple[str, ...],
    producer_config: str | None,
    timeout: float,
) -> None:
    header_list = _parse_headers(headers)
    producer, errors, bootstrap = open_client(
        Producer,
        bootstrap,
        producer_config,
        properties,
        {
            "acks": acks,
            "compression.type": compression,
            "linger.ms": 5,
            # the Java client's partitioner: the same key lands on the same partition as there
            "partitioner": "murmur2_random",
            "message.timeout.ms": int(timeout * 1000),
        },
    )
    tmd = topic_metadata(producer, topic, bootstrap, errors, timeout)
    check_partition(tmd, topic, partition)

    report = _DeliveryReport()
    sep = key_separator.encode() if key_separator else None
    target = partition if partition is not None else -1
    sent = 0
    try:
        for lineno, raw in enumerate(file, 1):
            value = raw[:-1] if raw.endswith(b"\n") else raw
            if value.endswith(b"\r"):
                value = value[:-1]
            key = None
            if sep is not None:
                key, found, rest = value.partition(sep)
                if not found:
                    producer.flush(timeout)
                    raise ToolError(
                        f"line {lineno} has no key separator {key_separator!r} "
                        f"({report.delivered} record(s) sent before it)"
                    )
                value = rest
            _produce_one(producer, topic, key, value, target, header_list, report)
            sent += 1
        left = producer.flush(timeout)
    except KeyboardInterrupt:
        left = producer.flush(min(timeout, 5.0))
        if left:
            raise ToolError(f"interrupted; {left} record(s) not delivered") from None
        raise click.exceptions.Exit(130) from None
    if report.failed:
        raise ToolError(f"{report.failed} of {sent} record(s) failed: {report.first_error}")
    if left:
        cause = errors.cause()
        raise ToolError(
            f"{left} of {sent} record(s) not delivered within {timeout:g}s"
            + (f": {cause}" if cause else "")
        )


def _parse_headers(headers: Iterable[str]) -> list[tuple[str, bytes]]:
    out = []
    for item in headers:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(
                f"header {item!r} is not of the form key=value", param_hint="'--header'"
            )
        out.append((name, value.encode()))
    return out


class _DeliveryReport:
    __slots__ = ("delivered", "failed", "first_error")

    def __init__(self) -> None:
        self.delivered = 0
        self.failed = 0
        self.first_error: str | None = None

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.delivered += 1
            return
        self.failed += 1
        if self.first_error is None:
            self.first_error = kafka_error_text(err)


def _produce_one(
    producer: Producer,
    topic: str,
    key: bytes | None,
    value: bytes,
    partition: int,
    headers: list[tuple[str, bytes]],
    report: _DeliveryReport,
) -> None:
    while True:
        try:
            producer.produce(
                topic, value, key, partition=partition, headers=headers or None, on_delivery=report
            )
            break
        except BufferError:
            # the local queue is full: let deliveries drain, then retry
            producer.poll(0.05)
    producer.poll(0)


# --------------------------------------------------------------------------- consume

CONSUME_HELP = """Consume records from TOPIC and print them, one per line by default.

\b
Examples:
  fastlog consume events --from-beginning --exit            # dump the topic, then stop
  fastlog consume events --offset -10 --exit                # the last 10 records of each partition
  fastlog consume events --from-time 2024-05-01T12:00:00Z --max 100
  fastlog consume events --group billing                    # join a consumer group, commit offsets
  fastlog consume events -F '%p:%o %k=%s headers=%h ts=%T\\n'
  fastlog consume events --from-beginning --exit --json    # one JSON object per record

\b
--format tokens (as kcat's -f):
  %t topic   %p partition   %o offset   %k key   %s value   %T timestamp (ms)
  %h headers (k=v,k=v)   %K key length   %S value length   %%  \\n  \\t  \\\\

Without --group the command reads the partitions directly and commits nothing; it starts at
the end of the log (new records only) unless --from-beginning, --offset or --from-time says
otherwise. With --group it subscribes as a member of group G and commits offsets; a group's
committed offsets take precedence over --from-beginning (as in Kafka's console consumer).
"""


@click.command("consume", cls=ToolCommand, help=CONSUME_HELP, context_settings=CONTEXT_SETTINGS)
@click.argument("topic")
@bootstrap_option
@click.option("--from-beginning", is_flag=True, help="Start at the earliest offset.")
@click.option(
    "-o",
    "--offset",
    type=int,
    help="Start at this offset in each partition; a negative N starts N records before the end.",
)
@click.option(
    "--from-time",
    metavar="ISO8601|MS",
    help="Start at the first record with timestamp >= this time.",
)
@click.option(
    "-g", "--group", metavar="G", help="Consume as a member of consumer group G (commits offsets)."
)
@click.option(
    "-p",
    "--partition",
    type=click.IntRange(min=0),
    help="Read only this partition (not with --group).",
)
@click.option(
    "-F",
    "--format",
    "fmt",
    default="%s\\n",
    show_default=True,
    help="Output format (see tokens above).",
)
@click.option(
    "-J",
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per record (topic, partition, offset, timestamp, key, value, headers).",
)
@click.option(
    "-c", "--max", "max_records", type=click.IntRange(min=1), help="Stop after N records."
)
@click.option(
    "-e",
    "--exit",
    "exit_at_end",
    is_flag=True,
    help="Stop when every partition is read to its end.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the broker.",
)
@click.option(
    "-X",
    "--property",
    "properties",
    multiple=True,
    metavar="K=V",
    help="librdkafka consumer property (repeatable).",
)
@config_file_option("consumer")
def consume(
    topic: str,
    bootstrap: str,
    from_beginning: bool,
    offset: int | None,
    from_time: str | None,
    group: str | None,
    partition: int | None,
    fmt: str,
    as_json: bool,
    max_records: int | None,
    exit_at_end: bool,
    timeout: float,
    properties: tuple[str, ...],
    consumer_config: str | None,
) -> None:
    starts = [
        name
        for name, v in (
            ("--from-beginning", from_beginning),
            ("--offset", offset is not None),
            ("--from-time", from_time),
        )
        if v
    ]
    if len(starts) > 1:
        raise click.UsageError(f"{' and '.join(starts)} cannot be combined")
    if group and partition is not None:
        raise click.UsageError(
            "--partition cannot be combined with --group (the group assigns partitions)"
        )
    start_ts = parse_time(from_time) if from_time else None
    render = render_json if as_json else compile_format(fmt)
    consumer, errors, bootstrap = open_client(
        Consumer,
        bootstrap,
        consumer_config,
        properties,
        {
            "group.id": group or f"fastlog-console-consumer-{os.getpid()}",
            "enable.auto.commit": bool(group),
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.partition.eof": True,
        },
    )
    try:
        tmd = topic_metadata(consumer, topic, bootstrap, errors, timeout)
        partitions = check_partition(tmd, topic, partition)
        if group is None:
            start = OFFSET_BEGINNING if from_beginning else OFFSET_END
            assignment = [
                TopicPartition(topic, p, _start_offset(offset, start)) for p in partitions
            ]
            if start_ts is not None:
                assignment = _offsets_for_time(consumer, topic, partitions, start_ts, timeout)
            consumer.assign(assignment)
            assigned = {p for p in partitions}
        else:
            assigned = set()

            def on_assign(c: Consumer, tps: list[TopicPartition]) -> None:
                if start_ts is not None:
                    tps = _offsets_for_time(
                        c, topic, [tp.partition for tp in tps], start_ts, timeout
                    )
                elif offset is not None:
                    tps = [
                        TopicPartition(tp.topic, tp.partition, _start_offset(offset, OFFSET_STORED))
                        for tp in tps
                    ]
                assigned.update(tp.partition for tp in tps)
                c.assign(tps)

            def on_revoke(c: Consumer, tps: list[TopicPartition]) -> None:
                assigned.difference_update(tp.partition for tp in tps)

            consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
        _consume_loop(consumer, topic, assigned, render, max_records, exit_at_end)
    finally:
        try:
            consumer.close()
        except (KafkaException, RuntimeError):
            pass


def _start_offset(offset: int | None, default: int) -> int:
    if offset is None:
        return default
    if offset >= 0:
        return offset
    return _OFFSET_TAIL_BASE + offset  # RD_KAFKA_OFFSET_TAIL(-offset)


def _offsets_for_time(
    consumer: Consumer, topic: str, partitions: list[int], ts: int, timeout: float
) -> list[TopicPartition]:
    found = consumer.offsets_for_times(
        [TopicPartition(topic, p, ts) for p in partitions], timeout=timeout
    )
    out = []
    for tp in found:
        if tp.error is not None:
            raise ToolError(
                f"cannot look up offsets by time for {topic}-{tp.partition}: {kafka_error_text(tp.error)}"
            )
        # no record at or after ts: -1, start at the end
        out.append(TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END))
    return out


def _consume_loop(
    consumer: Consumer,
    topic: str,
    assigned: set[int],
    render: Callable[[Message], bytes],
    max_records: int | None,
    exit_at_end: bool,
) -> None:
    out = sys.stdout.buffer
    at_end: set[int] = set()
    count = 0
    while True:
        want = 500 if max_records is None else min(500, max_records - count)
        msgs = consumer.consume(num_messages=want, timeout=0.2)
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition())
                    continue
                if err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
                    raise ToolError(f"topic '{topic}' no longer exists")
                if err.fatal() or not err.retriable():
                    raise ToolError(f"consuming {topic}: {kafka_error_text(err)}")
                continue
            at_end.discard(msg.partition())
            out.write(render(msg))
            count += 1
        if msgs:
            out.flush()
        if max_records is not None and count >= max_records:
            return
        if exit_at_end and assigned and assigned <= at_end:
            return


def parse_time(text: str) -> int:
    """An ISO 8601 time (naive means local time, as Kafka's tools read it) or epoch ms."""
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither ISO 8601 (2024-05-01T12:00:00Z) nor epoch milliseconds",
            param_hint="'--from-time'",
        ) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return int(dt.timestamp() * 1000)


def _headers_text(msg: Message) -> bytes:
    headers = msg.headers() or []
    return b",".join(k.encode() + b"=" + (v if v is not None else b"") for k, v in headers)


_FIELDS: dict[str, Callable[[Message], bytes]] = {
    "t": lambda m: m.topic().encode(),
    "p": lambda m: str(m.partition()).encode(),
    "o": lambda m: str(m.offset()).encode(),
    "k": lambda m: m.key() or b"",
    "s": lambda m: m.value() or b"",
    "T": lambda m: str(m.timestamp()[1]).encode(),
    "h": _headers_text,
    "K": lambda m: str(len(m.key()) if m.key() is not None else -1).encode(),
    "S": lambda m: str(len(m.value()) if m.value() is not None else -1).encode(),
}
_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "\\": b"\\", "0": b"\0"}


def _json_text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="backslashreplace")


def render_json(msg: Message) -> bytes:
    """A record as one JSON line (kcat -J's fields; bytes shown as UTF-8, others escaped)."""
    obj = {
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "timestamp": msg.timestamp()[1],
        "key": _json_text(msg.key()),
        "value": _json_text(msg.value()),
        "headers": [[k, _json_text(v)] for k, v in (msg.headers() or [])],
    }
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def compile_format(fmt: str) -> Callable[[Message], bytes]:
    """Compile a kcat-style format string into a function Message -> bytes."""
    parts: list[bytes | Callable[[Message], bytes]] = []
    literal = bytearray()
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        nxt = fmt[i + 1] if i + 1 < len(fmt) else ""
        if ch == "%":
            if nxt == "%":
                literal += b"%"
            elif nxt in _FIELDS:
                if literal:
                    parts.append(bytes(literal))
                    literal.clear()
                parts.append(_FIELDS[nxt])
            else:
                raise click.BadParameter(
                    f"unknown token '%{nxt}' in {fmt!r} (tokens: %t %p %o %k %s %T %h %K %S %%)",
                    param_hint="'--format'",
                )
            i += 2
        elif ch == "\\" and nxt in _ESCAPES:
            literal += _ESCAPES[nxt]
            i += 2
        else:
            literal += ch.encode()
            i += 1
    if literal:
        parts.append(bytes(literal))

    def render(msg: Message) -> bytes:
        return b"".join(p if isinstance(p, bytes) else p(msg) for p in parts)

    return render
