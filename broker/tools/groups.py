"""``fastlog groups``: list, describe, reset offsets of, and delete consumer groups
(kafka-consumer-groups).

Built on confluent-kafka's AdminClient (librdkafka), so it works against any Kafka-compatible
broker, and click. Errors (unreachable broker, unknown group, group still active, bad flag)
are one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable
from typing import Any

import click

from broker.tools.topics import common


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
                raise
            name = exc.ctx.command_path if exc.ctx is not None else "fastlog groups"
            raise BadUsage(f"{exc.format_message()} (see '{name} --help')") from None

    return wrapper


class _Command(click.Command):
    parse_args = _one_line_usage(click.Command.parse_args)


class _Group(click.Group):
    command_class = _Command
    parse_args = _one_line_usage(click.Group.parse_args)
    resolve_command = _one_line_usage(click.Group.resolve_command)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # the promise: one line, never a traceback
            raise ToolError(f"{type(exc).__name__}: {_kafka_message(exc)}") from None


def _kafka_message(exc: BaseException) -> str:
    err = exc.args[0] if exc.args else None
    if err is not None and hasattr(err, "str") and hasattr(err, "name"):
        text, name = err.str(), err.name()
        return text if name in text else f"{text} ({name})"
    return str(exc) or type(exc).__name__


class Admin:
    """AdminClient wrapper: every wait bounded, every failure a ToolError."""

    def __init__(self, bootstrap: str, timeout: float) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        logger = logging.getLogger("fastlog.tools.groups.librdkafka")
        logger.addHandler(logging.NullHandler())
        logger.propagate = False  # librdkafka's connection chatter; we report failures once
        self.bootstrap, self.timeout = bootstrap, timeout
        try:
            self.client = AdminClient(
                {
                    "bootstrap.servers": bootstrap,
                    "logger": logger,
                    "socket.timeout.ms": int(timeout * 1000),
                }
            )
            self.metadata = self.client.list_topics(timeout=timeout)
        except KafkaException as exc:
            raise ToolError(
                f"cannot reach a broker at {bootstrap}: {_kafka_message(exc)}"
            ) from None

    def result(self, fut: Any, what: str) -> Any:
        from confluent_kafka import KafkaException

        try:
            return fut.result(timeout=self.timeout + 5)
        except KafkaException as exc:
            raise ToolError(f"{what}: {_kafka_message(exc)}") from None
        except TimeoutError:
            raise ToolError(f"{what}: no answer from {self.bootstrap} in {self.timeout}s") from None

    def partitions(self, topic: str) -> list[int]:
        # From the full listing: asking for one topic would auto-create it on many brokers.
        meta = self.metadata.topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise ToolError(f"topic {topic!r} does not exist")
        return sorted(meta.partitions)

    def describe(self, group: str) -> Any:
        futs = self.client.describe_consumer_groups([group], request_timeout=self.timeout)
        return self.result(futs[group], f"describing group {group!r}")

    def committed(self, group: str) -> dict[tuple[str, int], int]:
        from confluent_kafka import ConsumerGroupTopicPartitions

        futs = self.client.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], request_timeout=self.timeout
        )
        res = self.result(futs[group], f"fetching offsets of group {group!r}")
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in res.topic_partitions or []
            if tp.error is None and tp.offset >= 0
        }

    def offsets(self, tps: list[tuple[str, int]], spec: Any) -> dict[tuple[str, int], int]:
        from confluent_kafka import TopicPartition

        if not tps:
            return {}
        futs = self.client.list_offsets(
            {TopicPartition(t, p): spec for t, p in tps}, request_timeout=self.timeout
        )
        return {
            (tp.topic, tp.partition): self.result(
                f, f"listing offsets of {tp.topic}-{tp.partition}"
            ).offset
            for tp, f in futs.items()
        }


def _state_name(state: Any) -> str:
    names = {
        "PREPARING_REBALANCING": "PreparingRebalance",
        "COMPLETING_REBALANCING": "CompletingRebalance",
        "STABLE": "Stable",
        "DEAD": "Dead",
        "EMPTY": "Empty",
        "UNKNOWN": "Unknown",
    }
    name = getattr(state, "name", str(state))
    return names.get(name, name)


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def groups() -> None:
    """List, describe, reset the offsets of, and delete consumer groups."""


@groups.command("list")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(
        ["Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"],
        case_sensitive=False,
    ),
    help="Only groups in this state (repeatable).",
)
@common
def list_(states: tuple[str, ...], bootstrap_server: str, timeout: float) -> None:
    """Every consumer group: id, state and protocol type."""
    from confluent_kafka import ConsumerGroupState

    admin = Admin(bootstrap_server, timeout)
    by_name = {
        "empty": ConsumerGroupState.EMPTY,
        "preparingrebalance": ConsumerGroupState.PREPARING_REBALANCING,
        "completingrebalance": ConsumerGroupState.COMPLETING_REBALANCING,
        "stable": ConsumerGroupState.STABLE,
        "dead": ConsumerGroupState.DEAD,
    }
    kwargs: dict[str, Any] = {"request_timeout": timeout}
    if states:
        kwargs["states"] = {by_name[s.lower()] for s in states}
    res = admin.result(admin.client.list_consumer_groups(**kwargs), "listing groups")
    if res.errors:
        raise ToolError(f"listing groups: {_kafka_message(res.errors[0])}")
    listed = sorted(res.valid, key=lambda g: g.group_id)
    if not listed:
        return
    rows = [["GROUP", "STATE", "TYPE"]]
    for g in listed:
        rows.append(
            [
                g.group_id,
                _state_name(g.state),
                "simple" if g.is_simple_consumer_group else "consumer",
            ]
        )
    _table(rows)


def _describe(admin: Admin, group: str) -> dict[str, Any]:
    from confluent_kafka.admin import OffsetSpec

    d = admin.describe(group)
    state = _state_name(d.state)
    committed = admin.committed(group)
    if state == "Dead" and not committed:
        raise ToolError(f"consumer group {group!r} does not exist")
    owner: dict[tuple[str, int], Any] = {}
    members = []
    for m in d.members:
        tps = sorted(
            (tp.topic, tp.partition)
            for tp in (m.assignment.topic_partitions if m.assignment else [])
        )
        for tp in tps:
            owner[tp] = m
        members.append(
            {
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "host": m.host,
                "assignment": [[t, p] for t, p in tps],
            }
        )
    tps = sorted(set(committed) | set(owner))
    ends = admin.offsets(tps, OffsetSpec.latest())
    partitions = []
    for tp in tps:
        cur = committed.get(tp)
        end = ends.get(tp)
        m = owner.get(tp)
        partitions.append(
            {
                "topic": tp[0],
                "partition": tp[1],
                "committed_offset": cur,
                "end_offset": end,
                "lag": (end - cur) if cur is not None and end is not None and end >= 0 else None,
                "member_id": m.member_id if m else None,
                "host": m.host if m else None,
                "client_id": m.client_id if m else None,
            }
        )
    return {
        "group": group,
        "state": state,
        "assignor": d.partition_assignor or "",
        "coordinator": d.coordinator.id if d.coordinator is not None else None,
        "members": members,
        "partitions": partitions,
    }


@groups.command()
@click.argument("group_ids", metavar="[GROUP]...", nargs=-1)
@click.option("--all-groups", is_flag=True, help="Describe every group.")
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
@common
def describe(
    group_ids: tuple[str, ...],
    all_groups: bool,
    as_json: bool,
    bootstrap_server: str,
    timeout: float,
) -> None:
    """State, members, assignment, committed offset, end offset and lag per partition."""
    if bool(group_ids) == all_groups:
        raise BadUsage("name one or more groups, or give --all-groups")
    admin = Admin(bootstrap_server, timeout)
    if all_groups:
        res = admin.result(
            admin.client.list_consumer_groups(request_timeout=timeout), "listing groups"
        )
        group_ids = tuple(sorted(g.group_id for g in res.valid))
    described = [_describe(admin, g) for g in group_ids]
    if as_json:
        # One group: its object; several (or --all-groups): a list.
        out: Any = described[0] if len(described) == 1 and not all_groups else described
        click.echo(json.dumps(out, indent=2))
        return
    for i, d in enumerate(described):
        if i:
            click.echo()
        _print_description(d)


def _print_description(d: dict[str, Any]) -> None:
    click.echo(
        f"Group {d['group']}: state {d['state']}, {len(d['members'])} member(s)"
        + (f", assignor {d['assignor']}" if d["assignor"] else "")
    )
    if d["members"]:
        click.echo()
        rows = [["MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"]]
        for m in d["members"]:
            assignment = ",".join(f"{t}-{p}" for t, p in m["assignment"]) or "-"
            rows.append(
                [
                    m["member_id"],
                    m["group_instance_id"] or "-",
                    m["client_id"],
                    m["host"],
                    assignment,
                ]
            )
        _table(rows)
    if d["partitions"]:
        click.echo()

        def s(v: Any) -> str:
            return "-" if v is None else str(v)

        rows = [["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID"]]
        for p in d["partitions"]:
            rows.append(
                [
                    p["topic"],
                    str(p["partition"]),
                    s(p["committed_offset"]),
                    s(p["end_offset"]),
                    s(p["lag"]),
                    s(p["member_id"]),
                ]
            )
        _table(rows)


def _parse_datetime(value: str) -> int:
    try:
        dt = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadUsage(
            f"--to-datetime expects ISO 8601 (2024-01-31T12:00:00Z), got {value!r}"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)  # Kafka's tool also reads a bare time as UTC
    return int(dt.timestamp() * 1000)


@groups.command("reset-offsets")
@click.argument("group")
@click.option("--topic", "topic_spec", required=True, help="TOPIC or TOPIC:P1,P2 to reset.")
@click.option("--to-earliest", is_flag=True, help="Reset to the log start offset.")
@click.option("--to-latest", is_flag=True, help="Reset to the log end offset.")
@click.option(
    "--to-offset", type=int, default=None, help="Reset to this offset (clamped to the log)."
)
@click.option(
    "--to-datetime", default=None, metavar="ISO8601", help="First offset at/after a time."
)
@click.option("--dry-run", is_flag=True, help="Show the new offsets without committing them.")
@click.option(
    "--execute",
    is_flag=True,
    help="Commit the new offsets (the default; kept for kafka-consumer-groups habits).",
)
@common
def reset_offsets(
    group: str,
    topic_spec: str,
    to_earliest: bool,
    to_latest: bool,
    to_offset: int | None,
    to_datetime: str | None,
    dry_run: bool,
    execute: bool,
    bootstrap_server: str,
    timeout: float,
) -> None:
    """Move a group's committed offsets; the group must have no active members."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    chosen = [to_earliest, to_latest, to_offset is not None, to_datetime is not None]
    if sum(chosen) != 1:
        raise BadUsage("give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime")
    if dry_run and execute:
        raise BadUsage("--dry-run and --execute exclude each other")
    ts = _parse_datetime(to_datetime) if to_datetime is not None else None
    topic, _, plist = topic_spec.partition(":")
    admin = Admin(bootstrap_server, timeout)
    all_parts = admin.partitions(topic)
    if plist:
        try:
            parts = sorted({int(x) for x in plist.split(",") if x.strip()})
        except ValueError:
            raise BadUsage(f"--topic expects TOPIC or TOPIC:P1,P2, got {topic_spec!r}") from None
        missing = [p for p in parts if p not in all_parts]
        if missing:
            raise ToolError(f"topic {topic!r} has no partition {missing[0]}")
    else:
        parts = all_parts
    d = admin.describe(group)
    state = _state_name(d.state)
    if state not in ("Empty", "Dead") and not dry_run:
        raise ToolError(
            f"group {group!r} is {state} with {len(d.members)} member(s): offsets can only be "
            "reset while it is inactive (stop its consumers first)"
        )
    tps = [(topic, p) for p in parts]
    earliest = admin.offsets(tps, OffsetSpec.earliest())
    latest = admin.offsets(tps, OffsetSpec.latest())
    if to_earliest:
        target = earliest
    elif to_latest:
        target = latest
    elif to_offset is not None:
        target = {tp: min(max(to_offset, earliest[tp]), latest[tp]) for tp in tps}
    else:
        by_time = admin.offsets(tps, OffsetSpec.for_timestamp(ts))
        # No record at or after the time: the end of the log, as Kafka's tool does.
        target = {tp: by_time[tp] if by_time[tp] >= 0 else latest[tp] for tp in tps}
    if not dry_run:
        req = ConsumerGroupTopicPartitions(
            group, [TopicPartition(t, p, target[(t, p)]) for t, p in tps]
        )
        futs = admin.client.alter_consumer_group_offsets([req], request_timeout=timeout)
        res = admin.result(futs[group], f"committing offsets of group {group!r}")
        failed = [tp for tp in res.topic_partitions or [] if tp.error is not None]
        if failed:
            tp = failed[0]
            raise ToolError(f"{tp.topic}-{tp.partition}: {_kafka_message(Exception(tp.error))}")
    rows = [["TOPIC", "PARTITION", "NEW-OFFSET"]]
    rows += [[t, str(p), str(target[(t, p)])] for t, p in tps]
    _table(rows)
    if dry_run:
        click.echo("(dry run: nothing committed)")


@groups.command()
@click.argument("group_ids", metavar="GROUP...", nargs=-1, required=True)
@common
def delete(group_ids: tuple[str, ...], bootstrap_server: str, timeout: float) -> None:
    """Delete groups with no active members, with all their committed offsets."""
    admin = Admin(bootstrap_server, timeout)
    futs = admin.client.delete_consumer_groups(list(group_ids), request_timeout=timeout)
    failures = []
    for gid, fut in futs.items():
        try:
            admin.result(fut, f"deleting group {gid!r}")
            click.echo(f"Deleted group {gid}")
        except ToolError as exc:
            failures.append(exc.format_message())
    if failures:
        raise ToolError("; ".join(failures))


def main() -> None:  # pragma: no cover - python -m broker.tools.groups
    groups(prog_name="fastlog groups")


if __name__ == "__main__":  # pragma: no cover
    main()
