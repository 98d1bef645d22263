"""``fastlog partitions``: reassign partitions, list reassignments, elect leaders
(kafka-reassign-partitions and kafka-leader-election).

Reassignments go through AlterPartitionReassignments / ListPartitionReassignments with
kafka-python's KafkaAdminClient (confluent-kafka has no call for them); elections through
confluent-kafka's AdminClient.elect_leaders. Errors are one line on stderr and a non-zero
exit status, never a traceback.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import click

from broker.tools.topics import Admin, BadUsage, Group, ToolError, _kafka_message, common


def _quiet() -> None:
    # kafka-python logs every connection failure; the tool reports once, itself.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


class ReassignAdmin:
    """kafka-python's admin client, with one-line errors."""

    def __init__(self, bootstrap: str, timeout: float) -> None:
        _quiet()
        self.bootstrap = bootstrap
        self.timeout = timeout
        self.timeout_ms = int(timeout * 1000)
        self.client = self._connect()

    def _connect(self) -> Any:
        from kafka.admin import KafkaAdminClient

        try:
            return KafkaAdminClient(
                bootstrap_servers=self.bootstrap.split(","),
                request_timeout_ms=self.timeout_ms + 5000,
                bootstrap_timeout_ms=self.timeout_ms,
                client_id="fastlog-partitions",
            )
        except Exception as exc:  # noqa: BLE001 - kafka-python raises many kinds
            raise ToolError(f"cannot reach a broker at {self.bootstrap}: {exc}") from None

    def _retry(self, what: str, call: Any) -> Any:
        """kafka-python gives up on the first node it cannot reach (a broker just killed is
        still in the metadata until its session expires) and keeps asking a controller that
        is gone: retry, with a fresh client, until the timeout."""
        from kafka.errors import KafkaError

        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return call(self.client)
            except KafkaError as exc:
                again = (
                    getattr(exc, "retriable", False) or type(exc).__name__ == "UnknownBrokerIdError"
                )
                if not again or time.monotonic() > deadline:
                    raise ToolError(f"{what}: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - kafka-python raises many kinds
                raise ToolError(f"{what}: {exc}") from None
            time.sleep(0.3)
            self.close()
            self.client = self._connect()

    def alter(self, plan: dict[tuple[str, int], list[int] | None]) -> dict[tuple[str, int], str]:
        from kafka import TopicPartition

        result = self._retry(
            "reassignment failed",
            lambda client: client.alter_partition_reassignments(
                {TopicPartition(t, p): r for (t, p), r in plan.items()}, timeout_ms=self.timeout_ms
            ),
        )
        errors = {}
        for tp, err in result.items():
            if err is not None:
                name = getattr(err, "message", None) or getattr(err, "__name__", str(err))
                errors[(tp.topic, tp.partition)] = str(name)
        return errors

    def ongoing(self, topics: dict[str, list[int]] | None = None) -> dict[tuple[str, int], Any]:
        result = self._retry(
            "cannot list reassignments",
            lambda client: client.list_partition_reassignments(topics, timeout_ms=self.timeout_ms),
        )
        return {(tp.topic, tp.partition): v for tp, v in result.items()}

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001, S110 - closing is best effort
            pass


def _replicas(text: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BadUsage(f"--replicas expects broker ids like 1,2,3, got {text!r}") from None
    if not out:
        raise BadUsage("--replicas is empty")
    return out


def load_plan(path: str) -> dict[tuple[str, int], list[int]]:
    """kafka-reassign-partitions' JSON: {"version":1,"partitions":[{"topic":..,"partition":..,
    "replicas":[..]}]} (log_dirs, if any, must be "any": one log dir per broker)."""
    try:
        obj = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ToolError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ToolError(f"{path} is not JSON: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("partitions"), list):
        raise ToolError(f'{path}: expected {{"version":1,"partitions":[...]}}')
    plan: dict[tuple[str, int], list[int]] = {}
    for i, e in enumerate(obj["partitions"]):
        try:
            key = (str(e["topic"]), int(e["partition"]))
            reps = [int(r) for r in e["replicas"]]
        except (KeyError, TypeError, ValueError):
            raise ToolError(
                f"{path}: partitions[{i}] needs topic, partition and replicas (broker ids)"
            ) from None
        dirs = e.get("log_dirs")
        if dirs is not None and any(d != "any" for d in dirs):
            raise ToolError(f'{path}: partitions[{i}]: log_dirs other than "any" unsupported')
        if key in plan:
            raise ToolError(f"{path}: {key[0]}-{key[1]} appears twice")
        plan[key] = reps
    if not plan:
        raise ToolError(f"{path}: no partitions")
    return plan


def _plan_from_options(
    topic: str | None, partition: int | None, replicas: str | None, json_file: str | None
) -> dict[tuple[str, int], list[int]]:
    if json_file:
        if topic or partition is not None or replicas:
            raise BadUsage("use either --reassignment-json-file or --topic/--partition/--replicas")
        return load_plan(json_file)
    if not topic or partition is None or not replicas:
        raise BadUsage("give --topic, --partition and --replicas, or --reassignment-json-file")
    return {(topic, partition): _replicas(replicas)}


def _current(admin: Admin, keys: list[tuple[str, int]]) -> dict[tuple[str, int], list[int]]:
    out = {}
    for t, p in keys:
        meta = admin.topic(t)
        part = meta.partitions.get(p)
        if part is None:
            raise ToolError(f"partition {t}-{p} does not exist")
        out[(t, p)] = list(part.replicas)
    return out


def _as_json(plan: dict[tuple[str, int], list[int]]) -> str:
    return json.dumps(
        {
            "version": 1,
            "partitions": [
                {"topic": t, "partition": p, "replicas": r, "log_dirs": ["any"] * len(r)}
                for (t, p), r in sorted(plan.items())
            ],
        }
    )


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
def partitions() -> None:
    """Move partitions between brokers and elect leaders.

    \b
    Examples:
      fastlog partitions reassign --topic orders --partition 0 --replicas 4,2,3
      fastlog partitions reassign --reassignment-json-file plan.json
      fastlog partitions reassign --reassignment-json-file plan.json --verify
      fastlog partitions generate --topic orders --broker-list 1,2,3,4 > proposal
      fastlog partitions list-reassignments
      fastlog partitions elect-leaders --topic orders --type preferred
    """


@partitions.command()
@click.option("--topic", "-t", help="Topic of the partition to move.")
@click.option("--partition", "-p", type=click.IntRange(min=0), help="Partition to move.")
@click.option("--replicas", help="New replica list, preferred leader first: 4,2,3.")
@click.option(
    "--reassignment-json-file",
    "json_file",
    metavar="FILE",
    help="A kafka-reassign-partitions JSON plan.",
)
@click.option("--execute", is_flag=True, help="Start the plan (the default action).")
@click.option("--verify", is_flag=True, help="Check whether the plan is complete (exit 1 if not).")
@click.option("--cancel", is_flag=True, help="Cancel the reassignments of the plan in flight.")
@common
def reassign(
    topic: str | None,
    partition: int | None,
    replicas: str | None,
    json_file: str | None,
    execute: bool,
    verify: bool,
    cancel: bool,
    bootstrap_server: str,
    timeout: float,
) -> None:
    """Start, verify or cancel partition reassignments."""
    if execute + verify + cancel > 1:
        raise BadUsage("--execute, --verify and --cancel exclude each other")
    if cancel and not json_file and replicas is None and topic and partition is not None:
        plan = {(topic, partition): []}
    else:
        plan = _plan_from_options(topic, partition, replicas, json_file)
    admin = Admin(bootstrap_server, timeout)
    current = _current(admin, list(plan))
    ra = ReassignAdmin(bootstrap_server, timeout)
    try:
        if verify:
            ongoing = ra.ongoing(_by_topic(plan))
            complete = True
            for key, target in sorted(plan.items()):
                name = f"{key[0]}-{key[1]}"
                if key in ongoing:
                    click.echo(f"Reassignment of partition {name} is still in progress.")
                    complete = False
                elif current[key] == target:
                    click.echo(f"Reassignment of partition {name} is completed.")
                else:
                    click.echo(
                        f"There is no active reassignment of partition {name}, but replica set "
                        f"is {current[key]} rather than {target}."
                    )
                    complete = False
            if not complete:
                raise SystemExit(1)
            return
        if cancel:
            errors = ra.alter({k: None for k in plan})
            _report(errors)
            click.echo(
                "Successfully cancelled partition reassignment(s) for "
                + ",".join(f"{t}-{p}" for t, p in sorted(plan))
            )
            return
        click.echo("Current partition replica assignment\n")
        click.echo(_as_json(current))
        click.echo("\nSave this to use as the --reassignment-json-file option during rollback")
        errors = ra.alter(dict(plan))
        _report(errors)
        click.echo(
            "Successfully started partition reassignment(s) for "
            + ",".join(f"{t}-{p}" for t, p in sorted(plan))
        )
    finally:
        ra.close()


def propose(
    current: dict[tuple[str, int], list[int]], brokers: list[int]
) -> dict[tuple[str, int], list[int]]:
    """A plan spreading every listed partition over ``brokers`` (kafka-reassign-partitions
    --generate): per topic, leaders round-robin over the sorted brokers and followers on the
    next ones, keeping each partition's replication factor."""
    ids = sorted(set(brokers))
    out: dict[tuple[str, int], list[int]] = {}
    for t in sorted({t for t, _ in current}):
        parts = sorted(p for tt, p in current if tt == t)
        for k, p in enumerate(parts):
            rf = len(current[(t, p)])
            if rf > len(ids):
                raise ToolError(
                    f"{t}-{p} has {rf} replicas but --broker-list names only {len(ids)} brokers"
                )
            shift = k // len(ids)  # a new round shifts followers so pairs vary
            reps = [ids[k % len(ids)]]
            reps += [ids[(k + shift + j) % len(ids)] for j in range(1, rf)]
            if len(set(reps)) < rf:
                reps = [ids[(k + j) % len(ids)] for j in range(rf)]
            out[(t, p)] = reps
    return out


@partitions.command()
@click.option(
    "--topic", "-t", "topics", multiple=True, required=True, help="Topic to move (repeatable)."
)
@click.option("--broker-list", required=True, help="Brokers to spread them over: 1,2,3,4.")
@common
def generate(
    topics: tuple[str, ...], broker_list: str, bootstrap_server: str, timeout: float
) -> None:
    """Propose a plan that spreads topics over a list of brokers (prints JSON; nothing moves)."""
    brokers = _replicas(broker_list)
    admin = Admin(bootstrap_server, timeout)
    known = {b.id for b in admin.metadata.brokers.values()}
    unknown = sorted(set(brokers) - known)
    if unknown:
        raise ToolError(f"--broker-list names brokers that are not alive: {unknown}")
    keys = [(t, p) for t in topics for p in sorted(admin.topic(t).partitions)]
    current = _current(admin, keys)
    click.echo("Current partition replica assignment")
    click.echo(_as_json(current))
    click.echo("Proposed partition reassignment configuration")
    click.echo(_as_json(propose(current, brokers)))


def _by_topic(plan: dict[tuple[str, int], Any]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for t, p in plan:
        out.setdefault(t, []).append(p)
    return out


def _report(errors: dict[tuple[str, int], str]) -> None:
    if errors:
        raise ToolError("; ".join(f"{t}-{p}: {err}" for (t, p), err in sorted(errors.items())))


@partitions.command("list-reassignments")
@click.option("--topic", "-t", "topics", multiple=True, help="Only this topic (repeatable).")
@common
def list_reassignments(topics: tuple[str, ...], bootstrap_server: str, timeout: float) -> None:
    """List the reassignments in flight."""
    wanted = None
    admin = Admin(bootstrap_server, timeout)  # fails fast, in one line, when unreachable
    if topics:
        wanted = {t: sorted(admin.topic(t).partitions) for t in topics}
    ra = ReassignAdmin(bootstrap_server, timeout)
    try:
        ongoing = ra.ongoing(wanted)
    finally:
        ra.close()
    if not ongoing:
        click.echo("No partition reassignments in progress.")
        return
    for (t, p), v in sorted(ongoing.items()):
        click.echo(
            f"{t}-{p}: replicas {_ids(v['replicas'])} adding {_ids(v['adding_replicas'])} "
            f"removing {_ids(v['removing_replicas'])}"
        )


def _ids(values: list[int]) -> str:
    return ",".join(str(v) for v in values) or "-"


@partitions.command("elect-leaders")
@click.option("--topic", "-t", help="Topic (all partitions unless --partition).")
@click.option("--partition", "-p", type=click.IntRange(min=0), help="One partition of --topic.")
@click.option("--all-topic-partitions", "everything", is_flag=True, help="Every partition.")
@click.option(
    "--type",
    "--election-type",
    "election",
    type=click.Choice(["preferred", "unclean"], case_sensitive=False),
    default="preferred",
    show_default=True,
    help="preferred: the first replica leads; unclean: elect a leader for a partition "
    "whose leader is gone, even outside the ISR.",
)
@common
def elect_leaders(
    topic: str | None,
    partition: int | None,
    everything: bool,
    election: str,
    bootstrap_server: str,
    timeout: float,
) -> None:
    """Run preferred or unclean leader elections."""
    from confluent_kafka import ElectionType, KafkaException, TopicPartition

    if everything == bool(topic):
        raise BadUsage("give --topic or --all-topic-partitions")
    if partition is not None and not topic:
        raise BadUsage("--partition needs --topic")
    admin = Admin(bootstrap_server, timeout)
    tps = None
    if topic:
        meta = admin.topic(topic)
        indexes = [partition] if partition is not None else sorted(meta.partitions)
        if partition is not None and partition not in meta.partitions:
            raise ToolError(f"partition {topic}-{partition} does not exist")
        tps = [TopicPartition(topic, p) for p in indexes]
    kind = ElectionType.PREFERRED if election.lower() == "preferred" else ElectionType.UNCLEAN
    try:
        fut = admin.client.elect_leaders(kind, tps)  # (its timeout kwargs fail in 2.16)
        result = fut.result(timeout=timeout + 10)
    except KafkaException as exc:
        raise ToolError(f"election failed: {_kafka_message(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - timeouts and the like
        raise ToolError(f"election failed: {exc}") from None
    done, failed = [], []
    for tp, err in sorted(result.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
        name = f"{tp.topic}-{tp.partition}"
        if err is None:
            done.append(name)
            continue
        text = _kafka_message(err) if isinstance(err, KafkaException) else str(err)
        if "ELECTION_NOT_NEEDED" in text:
            click.echo(f"Valid replica already elected for partition {name}")
        else:
            failed.append(f"{name}: {text}")
    if done:
        click.echo(
            f"Successfully completed leader election ({election}) for partitions " + ", ".join(done)
        )
    if failed:
        raise ToolError("election failed for " + "; ".join(failed))
