"""``fastlog log-dirs describe``: the log directories of brokers and the size of every
partition in them (kafka-log-dirs.sh --describe); ``fastlog log-dirs move``: move a replica
to another log directory of its broker (what kafka-reassign-partitions.sh does for a plan
with log_dirs).

Sends DescribeLogDirs and AlterReplicaLogDirs (KIP-113) with kafka-python's
KafkaAdminClient (confluent-kafka has no call for them). Prints a table by default, or Kafka's JSON
(``--json``: {"version":1,"brokers":[{"broker":N,"logDirs":[{"logDir":...,"error":...,
"partitions":[{"partition":"t-0","size":...,"offsetLag":...,"isFuture":false}]}]}]}).
Errors are one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import json
from typing import Any

import click

from broker.tools.partitions import ReassignAdmin
from broker.tools.topics import BadUsage, Group, ToolError, common

# Kafka's names for the errors a log dir can carry.
_ERRORS = {56: "KafkaStorageException"}


@click.group("log-dirs", cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
def log_dirs() -> None:
    """Describe the log directories of brokers (kafka-log-dirs).

    \b
    Examples:
      fastlog log-dirs describe
      fastlog log-dirs describe --topic-list orders,payments --broker-list 0,1 --json
      fastlog log-dirs move --topic orders --partition 3 --broker 0 --dir /disk2/fastlog
    """


def _ints(text: str | None, what: str) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BadUsage(f"{what} expects comma-separated numbers, got {text!r}") from None


def collect(
    bootstrap: str, timeout: float, topics: list[str] | None, brokers: list[int] | None
) -> list[dict[str, Any]]:
    """Kafka's JSON model: one entry per broker with its log dirs."""
    admin = ReassignAdmin(bootstrap, timeout)
    try:
        if topics:
            known = admin._retry("cannot list topics", lambda c: set(c.list_topics()))
            missing = [t for t in topics if t not in known]
            if missing:
                raise ToolError(f"unknown topic(s): {', '.join(missing)}")
        raw = admin._retry(
            "describe log dirs failed",
            lambda c: c.describe_log_dirs(topics or None, brokers=brokers),
        )
    finally:
        admin.close()
    out = []
    for entry in sorted(raw, key=lambda e: e["broker"]):
        dirs = []
        for d in entry["log_dirs"]:
            code = int(d["error_code"])
            parts = [
                {
                    "partition": f"{t['name']}-{p['partition_index']}",
                    "size": p["partition_size"],
                    "offsetLag": p["offset_lag"],
                    "isFuture": p["is_future_key"],
                }
                for t in d["topics"]
                for p in t["partitions"]
            ]
            parts.sort(
                key=lambda p: (
                    p["partition"].rsplit("-", 1)[0],
                    int(p["partition"].rsplit("-", 1)[1]),
                )
            )
            dirs.append(
                {
                    "logDir": d["log_dir"],
                    "error": None if code == 0 else _ERRORS.get(code, f"error {code}"),
                    "partitions": parts,
                    "totalBytes": d.get("total_bytes", -1),
                    "usableBytes": d.get("usable_bytes", -1),
                }
            )
        out.append({"broker": entry["broker"], "logDirs": dirs})
    return out


def _size(n: int) -> str:
    if n < 0:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@log_dirs.command()
@click.option("--topic-list", help="Only these topics, comma-separated (default: all).")
@click.option("--broker-list", help="Only these brokers, comma-separated ids (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Kafka's JSON output instead of a table.")
@common
def describe(
    topic_list: str | None,
    broker_list: str | None,
    as_json: bool,
    bootstrap_server: str,
    timeout: float,
) -> None:
    """Every log directory of the brokers, its state and its partitions' sizes."""
    topics = [t.strip() for t in topic_list.split(",") if t.strip()] if topic_list else None
    brokers = collect(bootstrap_server, timeout, topics, _ints(broker_list, "--broker-list"))
    if as_json:
        click.echo(json.dumps({"version": 1, "brokers": brokers}))
        return
    for b in brokers:
        for d in b["logDirs"]:
            state = d["error"] or "online"
            space = ""
            if d["totalBytes"] >= 0:
                space = f", {_size(d['usableBytes'])} free of {_size(d['totalBytes'])}"
            click.echo(
                f"broker {b['broker']}  {d['logDir']}  {state}, "
                f"{len(d['partitions'])} partition(s){space}"
            )
            for p in d["partitions"]:
                future = "  (future: being moved here)" if p["isFuture"] else ""
                click.echo(
                    f"    {p['partition']:<40} {p['size']:>14} bytes  lag {p['offsetLag']}{future}"
                )


@log_dirs.command()
@click.option("--topic", "-t", required=True, help="Topic of the replica to move.")
@click.option("--partition", "-p", required=True, type=click.IntRange(min=0), help="Partition.")
@click.option("--broker", required=True, type=int, help="Broker holding the replica.")
@click.option("--dir", "path", required=True, help="Absolute path of the target log dir.")
@common
def move(
    topic: str, partition: int, broker: int, path: str, bootstrap_server: str, timeout: float
) -> None:
    """Move a replica to another log directory of its broker (in the background: follow it
    with describe, where the copy shows as a future replica until it takes over)."""
    from kafka import TopicPartitionReplica

    admin = ReassignAdmin(bootstrap_server, timeout)
    replica = TopicPartitionReplica(topic, partition, broker)
    try:
        result = admin._retry("move failed", lambda c: c.alter_replica_log_dirs({replica: path}))
    finally:
        admin.close()
    error = result.get(replica)
    name = getattr(error, "__name__", str(error))
    if name == "ReplicaNotAvailableError":  # remembered for when it is created there
        click.echo(
            f"{topic}-{partition} is not on broker {broker} yet: a replica created there "
            f"later goes to {path}"
        )
        return
    if name != "NoError":
        raise ToolError(f"{topic}-{partition} on broker {broker} to {path}: {name}")
    click.echo(f"moving {topic}-{partition} on broker {broker} to {path}")
