"""``fastlog topics``: create, list, describe, alter, grow and delete topics (kafka-topics).

Built on confluent-kafka's AdminClient (librdkafka), so it speaks to any Kafka-compatible
broker, and click. Errors (unreachable broker, unknown topic, bad flag or value) are one line
on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

import click

DEFAULT_BOOTSTRAP = "localhost:9092"
DEFAULT_TIMEOUT = 10.0
INTERNAL_TOPICS = ("__consumer_offsets", "__transaction_state")

# ConfigSource names as librdkafka reports them -> Kafka's shorter words for the listing.
_SOURCE_WORDS = {
    "DYNAMIC_TOPIC_CONFIG": "topic",
    "DYNAMIC_BROKER_CONFIG": "dynamic-broker",
    "DYNAMIC_DEFAULT_BROKER_CONFIG": "dynamic-default-broker",
    "STATIC_BROKER_CONFIG": "broker",
    "DEFAULT_CONFIG": "default",
    "UNKNOWN_CONFIG": "unknown",
}


class ToolError(click.ClickException):
    """A failure reported as one line on stderr, exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


class BadUsage(ToolError):
    exit_code = 2


def _one_line_usage(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: click.Command, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except click.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                raise  # a bare `fastlog topics` shows the help
            name = exc.ctx.command_path if exc.ctx is not None else "fastlog topics"
            raise BadUsage(f"{exc.format_message()} (see '{name} --help')") from None

    return wrapper


class Command(click.Command):
    """A click command whose usage errors are one line, not a usage block."""

    parse_args = _one_line_usage(click.Command.parse_args)


class Group(click.Group):
    command_class = Command
    parse_args = _one_line_usage(click.Group.parse_args)
    resolve_command = _one_line_usage(click.Group.resolve_command)


# ------------------------------------------------------------------------------ client


def _quiet_logger() -> logging.Logger:
    """librdkafka logs connection failures on its own; we report them once, ourselves."""
    logger = logging.getLogger("fastlog.tools.librdkafka")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


class Admin:
    """An AdminClient that has reached the cluster, with one-line error reporting."""

    def __init__(self, bootstrap: str, timeout: float) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        self.bootstrap = bootstrap
        self.timeout = timeout
        try:
            self.client = AdminClient(
                {
                    "bootstrap.servers": bootstrap,
                    "logger": _quiet_logger(),
                    "socket.timeout.ms": int(timeout * 1000),
                }
            )
        except KafkaException as exc:
            raise ToolError(
                f"bad --bootstrap-server {bootstrap!r}: {_kafka_message(exc)}"
            ) from None
        self.metadata = self.refresh()

    def refresh(self) -> Any:
        from confluent_kafka import KafkaException

        try:
            return self.client.list_topics(timeout=self.timeout)
        except KafkaException as exc:
            raise ToolError(
                f"cannot reach a broker at {self.bootstrap}: {_kafka_message(exc)}"
            ) from None

    def topic(self, name: str) -> Any:
        meta = self.metadata.topics.get(name)
        if meta is None or _error_name(meta.error) == "UNKNOWN_TOPIC_OR_PART":
            raise ToolError(f"topic {name!r} does not exist")
        return meta

    def wait(self, futures: dict[Any, Any], what: Callable[[Any], str]) -> dict[Any, Any]:
        """Wait for every future; report all failures as one ToolError line."""
        from confluent_kafka import KafkaException

        results, failures = {}, []
        for key, fut in futures.items():
            try:
                results[key] = fut.result(timeout=self.timeout + 5)
            except KafkaException as exc:
                failures.append(f"{what(key)}: {_kafka_message(exc)}")
            except TimeoutError:
                failures.append(f"{what(key)}: no answer from {self.bootstrap} in {self.timeout}s")
        if failures:
            raise ToolError("; ".join(failures))
        return results


def _kafka_message(exc: Exception) -> str:
    err = exc.args[0] if exc.args else None
    if err is not None and hasattr(err, "str"):
        text = err.str()
        name = err.name()
        return text if name in text else f"{text} ({name})"
    return str(exc)


def _error_name(err: Any) -> str | None:
    return None if err is None else err.name()


def _parse_configs(items: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadUsage(f"--config expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _fail(message: str) -> NoReturn:
    raise ToolError(message)


# ------------------------------------------------------------------------------ commands

_common = [
    click.option(
        "--bootstrap-server",
        "-b",
        default=DEFAULT_BOOTSTRAP,
        show_default=True,
        metavar="HOST:PORT",
        help="Broker(s) to connect to, comma-separated.",
    ),
    click.option(
        "--timeout",
        default=DEFAULT_TIMEOUT,
        show_default=True,
        type=click.FloatRange(min=0.1),
        help="Seconds to wait for the broker.",
    ),
]


def common(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_common):
        fn = option(fn)
    return fn


def _parse_assignment(text: str) -> list[list[int]]:
    """Kafka's --replica-assignment: "1:2,2:3" -> [[1, 2], [2, 3]]."""
    try:
        out = [[int(b) for b in part.split(":")] for part in text.split(",")]
    except ValueError:
        raise BadUsage(
            f"--replica-assignment {text!r}: broker ids separated by ':' within a partition "
            "and ',' between partitions, e.g. 1:2,2:3"
        ) from None
    return out


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
def topics() -> None:
    """Create, list, describe, alter and delete topics.

    \b
    Examples:
      fastlog topics create orders --partitions 6 --config retention.ms=86400000
      fastlog topics list
      fastlog topics describe orders
      fastlog topics alter orders --config cleanup.policy=compact --delete-config retention.ms
      fastlog topics add-partitions orders 12
      fastlog topics delete orders
    """


@topics.command()
@click.argument("topic")
@click.option(
    "--partitions",
    "-p",
    type=int,
    default=None,
    help="Number of partitions (default: the broker's num.partitions).",
)
@click.option(
    "--replication-factor",
    "-r",
    type=int,
    default=None,
    help="Replicas per partition (default: the broker's default.replication.factor).",
)
@click.option(
    "--config",
    "-c",
    "configs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Topic config override, e.g. retention.ms=3600000 (repeatable).",
)
@click.option(
    "--replica-assignment",
    metavar="B1:B2,B3:B4,...",
    default=None,
    help="The brokers of each partition, first = preferred leader: partitions separated by "
    "commas, replicas by colons (instead of --partitions/--replication-factor).",
)
@click.option("--if-not-exists", is_flag=True, help="Succeed quietly if the topic exists.")
@click.option("--validate-only", is_flag=True, help="Check everything, create nothing.")
@common
def create(
    topic: str,
    partitions: int | None,
    replication_factor: int | None,
    configs: tuple[str, ...],
    replica_assignment: str | None,
    if_not_exists: bool,
    validate_only: bool,
    bootstrap_server: str,
    timeout: float,
) -> None:
    """Create TOPIC.

    \b
    Examples:
      fastlog topics create events
      fastlog topics create events -p 12 -r 1 -c retention.ms=3600000 -c segment.bytes=104857600
      fastlog topics create compacted -c cleanup.policy=compact --if-not-exists
      fastlog topics create placed --replica-assignment 1:2,2:3,3:1
    """
    from confluent_kafka.admin import NewTopic

    config = _parse_configs(configs)
    assignment = _parse_assignment(replica_assignment) if replica_assignment else None
    if assignment is not None and (partitions is not None or replication_factor is not None):
        raise BadUsage("--replica-assignment cannot be used with --partitions/--replication-factor")
    admin = Admin(bootstrap_server, timeout)
    if if_not_exists and topic in admin.metadata.topics:
        return
    if assignment is not None:
        # confluent-kafka wants the count beside the assignment; it sends -1 for both counts
        new = NewTopic(
            topic, num_partitions=len(assignment), replica_assignment=assignment, config=config
        )
    else:
        new = NewTopic(
            topic,
            num_partitions=-1 if partitions is None else partitions,
            replication_factor=-1 if replication_factor is None else replication_factor,
            config=config,
        )
    futures = admin.client.create_topics(
        [new], validate_only=validate_only, operation_timeout=timeout, request_timeout=timeout
    )
    try:
        admin.wait(futures, lambda t: f"cannot create topic {t!r}")
    except ToolError:
        if if_not_exists and topic in admin.refresh().topics:
            return
        raise
    click.echo(f"{'Validated' if validate_only else 'Created'} topic {topic}.")


@topics.command(name="list")
@click.option("--exclude-internal", is_flag=True, help="Leave out __consumer_offsets and friends.")
@common
def list_(exclude_internal: bool, bootstrap_server: str, timeout: float) -> None:
    """List topic names, one per line.

    \b
    Examples:
      fastlog topics list
      fastlog topics list --exclude-internal -b broker1:9092
    """
    admin = Admin(bootstrap_server, timeout)
    for name in sorted(admin.metadata.topics):
        if exclude_internal and name.startswith("__"):
            continue
        click.echo(name)


def _offsets(admin: Admin, topic: str, partitions: Iterable[int]) -> dict[int, tuple[Any, Any]]:
    """(start, end) offset of each partition; '?' where the broker could not say."""
    from confluent_kafka import KafkaException, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    parts = list(partitions)
    out: dict[int, tuple[Any, Any]] = {p: ("?", "?") for p in parts}
    if not parts:
        return out
    found: dict[tuple[int, str], int] = {}
    for label, spec in (("start", OffsetSpec.earliest()), ("end", OffsetSpec.latest())):
        try:
            futures = admin.client.list_offsets(
                {TopicPartition(topic, p): spec for p in parts}, request_timeout=admin.timeout
            )
        except KafkaException:
            continue
        for tp, fut in futures.items():
            try:
                found[(tp.partition, label)] = fut.result(timeout=admin.timeout + 5).offset
            except (KafkaException, TimeoutError):
                pass
    for p in parts:
        out[p] = (found.get((p, "start"), "?"), found.get((p, "end"), "?"))
    return out


def _configs(admin: Admin, topic: str) -> dict[str, Any]:
    from confluent_kafka.admin import ConfigResource, ResourceType

    resource = ConfigResource(ResourceType.TOPIC, topic)
    result = admin.wait(
        admin.client.describe_configs([resource], request_timeout=admin.timeout),
        lambda r: f"cannot describe the configs of {topic!r}",
    )
    return next(iter(result.values()))


def _source_word(entry: Any) -> str:
    from confluent_kafka.admin import ConfigSource

    source = entry.source
    if isinstance(source, int):  # confluent-kafka reports the wire value
        try:
            source = ConfigSource(source)
        except ValueError:
            return str(source)
    name = getattr(source, "name", str(source))
    return _SOURCE_WORDS.get(name, name.lower())


def _topic_ids(admin: Admin, names: list[str]) -> dict[str, str]:
    """Topic ids (Kafka's base64 form) where the broker reports them; {} otherwise."""
    from confluent_kafka import KafkaException, TopicCollection

    try:
        futures = admin.client.describe_topics(
            TopicCollection(names), request_timeout=admin.timeout
        )
    except (KafkaException, TypeError, ValueError):
        return {}
    out = {}
    for name, fut in futures.items():
        try:
            # librdkafka prints standard base64; Kafka's tools print the URL-safe form
            raw = str(fut.result(timeout=admin.timeout + 5).topic_id)
            out[name] = raw.replace("+", "-").replace("/", "_")
        except (KafkaException, TimeoutError):
            pass
    return out


def _describe_one(admin: Admin, topic: str, all_configs: bool) -> dict[str, Any]:
    meta = admin.topic(topic)
    if meta.error is not None:
        _fail(f"topic {topic!r}: {meta.error.str()}")
    offsets = _offsets(admin, topic, sorted(meta.partitions))
    entries = _configs(admin, topic)
    configs = {
        name: {"value": e.value, "source": _source_word(e)}
        for name, e in sorted(entries.items())
        if all_configs or _source_word(e) == "topic"
    }
    partitions = []
    for index in sorted(meta.partitions):
        p = meta.partitions[index]
        start, end = offsets[index]
        partitions.append(
            {
                "partition": index,
                "leader": p.leader,
                "replicas": list(p.replicas),
                "isr": list(p.isrs),
                "start_offset": start,
                "end_offset": end,
                "error": None if p.error is None else p.error.name(),
            }
        )
    rf = len(meta.partitions[min(meta.partitions)].replicas) if meta.partitions else 0
    return {
        "topic": topic,
        "topic_id": None,
        "partition_count": len(meta.partitions),
        "replication_factor": rf,
        "configs": configs,
        "partitions": partitions,
    }


def _ids(values: list[int]) -> str:
    return ",".join(str(v) for v in values)


def _print_description(d: dict[str, Any], all_configs: bool) -> None:
    if all_configs:
        configs = "".join(f"\n\t{k}={v['value']} ({v['source']})" for k, v in d["configs"].items())
        head_configs = ""
    else:
        configs = ""
        head_configs = ",".join(f"{k}={v['value']}" for k, v in d["configs"].items())
    topic_id = f"TopicId: {d['topic_id']}\t" if d["topic_id"] else ""
    click.echo(
        f"Topic: {d['topic']}\t{topic_id}PartitionCount: {d['partition_count']}\t"
        f"ReplicationFactor: {d['replication_factor']}\tConfigs: {head_configs}"
    )
    if configs:
        click.echo(f"Configs:{configs}")
    for p in d["partitions"]:
        line = (
            f"\tTopic: {d['topic']}\tPartition: {p['partition']}\tLeader: {p['leader']}\t"
            f"Replicas: {_ids(p['replicas'])}\tIsr: {_ids(p['isr'])}\t"
            f"StartOffset: {p['start_offset']}\tEndOffset: {p['end_offset']}"
        )
        if p["error"]:
            line += f"\tError: {p['error']}"
        click.echo(line)


@topics.command()
@click.argument("topic_names", metavar="[TOPIC]...", nargs=-1)
@click.option(
    "--all-configs",
    is_flag=True,
    help="Show every config with its source, not only the topic's overrides.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option(
    "--exclude-internal",
    is_flag=True,
    help="Without TOPIC: leave out __consumer_offsets and friends.",
)
@common
def describe(
    topic_names: tuple[str, ...],
    all_configs: bool,
    as_json: bool,
    exclude_internal: bool,
    bootstrap_server: str,
    timeout: float,
) -> None:
    """Show partitions (leader, replicas, ISR, start and end offsets) and configs.

    With no TOPIC, every topic is described.

    \b
    Examples:
      fastlog topics describe orders
      fastlog topics describe orders --all-configs
      fastlog topics describe --exclude-internal --json | jq '.[].partitions'
    """
    admin = Admin(bootstrap_server, timeout)
    names = list(topic_names) or sorted(
        n for n in admin.metadata.topics if not (exclude_internal and n.startswith("__"))
    )
    for name in names:
        admin.topic(name)  # unknown topics fail before any output
    described = [_describe_one(admin, name, all_configs) for name in names]
    ids = _topic_ids(admin, names)
    for d in described:
        d["topic_id"] = ids.get(d["topic"])
    if as_json:
        click.echo(json.dumps(described, indent=2))
        return
    for d in described:
        _print_description(d, all_configs)


@topics.command()
@click.argument("topic")
@click.option(
    "--config",
    "-c",
    "configs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a topic config (repeatable).",
)
@click.option(
    "--delete-config",
    "-d",
    "deletes",
    multiple=True,
    metavar="KEY",
    help="Remove an override; the broker's value applies again (repeatable).",
)
@click.option("--validate-only", is_flag=True, help="Check the change, apply nothing.")
@common
def alter(
    topic: str,
    configs: tuple[str, ...],
    deletes: tuple[str, ...],
    validate_only: bool,
    bootstrap_server: str,
    timeout: float,
) -> None:
    """Change TOPIC's configs; they take effect on the live topic.

    \b
    Examples:
      fastlog topics alter orders --config retention.ms=3600000
      fastlog topics alter orders -c cleanup.policy=compact -c min.cleanable.dirty.ratio=0.1
      fastlog topics alter orders --delete-config retention.ms
    """
    from confluent_kafka.admin import (
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    sets = _parse_configs(configs)
    if not sets and not deletes:
        raise BadUsage("nothing to change: give --config KEY=VALUE or --delete-config KEY")
    both = sorted(set(sets) & set(deletes))
    if both:
        raise BadUsage(f"both set and deleted: {', '.join(both)}")
    admin = Admin(bootstrap_server, timeout)
    admin.topic(topic)
    entries = [
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in sets.items()
    ] + [ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in deletes]
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    admin.wait(
        admin.client.incremental_alter_configs(
            [resource], validate_only=validate_only, request_timeout=timeout
        ),
        lambda r: f"cannot alter the configs of {topic!r}",
    )
    verb = "Validated" if validate_only else "Updated"
    click.echo(f"{verb} configs of topic {topic}.")


@topics.command(name="add-partitions")
@click.argument("topic")
@click.argument("total", type=click.IntRange(min=1), metavar="N")
@click.option(
    "--replica-assignment",
    metavar="B1:B2,B3:B4,...",
    default=None,
    help="The brokers of every partition, as for create (Kafka's tool takes the whole list "
    "and uses the entries of the new partitions).",
)
@click.option("--validate-only", is_flag=True, help="Check the change, apply nothing.")
@common
def add_partitions(
    topic: str,
    total: int,
    replica_assignment: str | None,
    validate_only: bool,
    bootstrap_server: str,
    timeout: float,
) -> None:
    """Grow TOPIC to N partitions in total (Kafka's --alter --partitions N).

    N is the new partition count, not the number added; partitions can never be removed.

    \b
    Examples:
      fastlog topics add-partitions orders 12
      fastlog topics add-partitions orders 3 --replica-assignment 1:2,2:3,3:1
    """
    from confluent_kafka.admin import NewPartitions

    assignment = _parse_assignment(replica_assignment) if replica_assignment else None
    admin = Admin(bootstrap_server, timeout)
    current = len(admin.topic(topic).partitions)
    if total <= current:
        _fail(
            f"topic {topic!r} has {current} partition(s); N is the new total and must be "
            f"larger than {current}"
        )
    new = NewPartitions(topic, total)
    if assignment is not None:
        if len(assignment) != total:
            raise BadUsage(
                f"--replica-assignment lists {len(assignment)} partition(s), N is {total}"
            )
        new = NewPartitions(topic, total, replica_assignment=assignment[current:])
    admin.wait(
        admin.client.create_partitions([new], validate_only=validate_only, request_timeout=timeout),
        lambda t: f"cannot add partitions to {t!r}",
    )
    verb = "Validated growing" if validate_only else "Grew"
    click.echo(f"{verb} topic {topic} from {current} to {total} partitions.")


@topics.command()
@click.argument("topic_names", metavar="TOPIC...", nargs=-1, required=True)
@click.option("--if-exists", is_flag=True, help="Succeed quietly for topics that do not exist.")
@common
def delete(
    topic_names: tuple[str, ...], if_exists: bool, bootstrap_server: str, timeout: float
) -> None:
    """Delete TOPIC(s) and all their records.

    \b
    Examples:
      fastlog topics delete orders
      fastlog topics delete old-1 old-2 --if-exists
    """
    admin = Admin(bootstrap_server, timeout)
    names = []
    for name in dict.fromkeys(topic_names):
        if name not in admin.metadata.topics:
            if if_exists:
                continue
            _fail(f"topic {name!r} does not exist")
        if name in INTERNAL_TOPICS:
            _fail(f"topic {name!r} is a Kafka internal topic and cannot be deleted")
        names.append(name)
    if not names:
        return
    admin.wait(
        admin.client.delete_topics(names, operation_timeout=timeout, request_timeout=timeout),
        lambda t: f"cannot delete topic {t!r}",
    )
    for name in names:
        click.echo(f"Deleted topic {name}.")


def main() -> None:  # pragma: no cover - for `python -m broker.tools.topics`
    topics.main(args=sys.argv[1:], prog_name="fastlog topics")


if __name__ == "__main__":  # pragma: no cover
    main()
