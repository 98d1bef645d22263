"""``fastlog topics`` end to end: the real command in a subprocess against a live broker."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support import free_port

CLI = [sys.executable, "-c", "import sys; from broker.cli import main; main(sys.argv[1:])"]


def run(
    *args: str, bootstrap: str | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    cmd = [*CLI, "topics", *args]
    if bootstrap is not None:
        cmd += ["--bootstrap-server", bootstrap]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return proc


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def produce(bootstrap: str, topic: str, n: int, partition: int) -> None:
    import logging

    from confluent_kafka import Producer

    quiet = logging.getLogger("test.cli.librdkafka")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    p = Producer({"bootstrap.servers": bootstrap, "logger": quiet})
    for i in range(n):
        p.produce(topic, b"v%d" % i, key=b"k%d" % i, partition=partition)
    assert p.flush(30) == 0


def test_create_list_describe_alter_grow_delete(broker) -> None:
    b = broker.bootstrap
    out = run(
        "create",
        "cli-orders",
        "--partitions",
        "2",
        "--replication-factor",
        "1",
        "--config",
        "retention.ms=3600000",
        "--config",
        "segment.bytes=1048576",
        bootstrap=b,
    )
    assert "Created topic cli-orders" in out.stdout
    run("create", "cli-orders", "--if-not-exists", bootstrap=b)
    assert "cli-orders" in run("list", bootstrap=b).stdout.split()

    produce(b, "cli-orders", 5, partition=1)
    text = run("describe", "cli-orders", bootstrap=b).stdout
    lines = text.splitlines()
    assert lines[0].startswith("Topic: cli-orders\tTopicId: ")
    assert "\tPartitionCount: 2\tReplicationFactor: 1\t" in lines[0]
    assert "retention.ms=3600000" in lines[0] and "segment.bytes=1048576" in lines[0]
    assert "Partition: 0\tLeader: 0\tReplicas: 0\tIsr: 0\tStartOffset: 0\tEndOffset: 0" in lines[1]
    assert "Partition: 1\tLeader: 0\tReplicas: 0\tIsr: 0\tStartOffset: 0\tEndOffset: 5" in lines[2]

    run(
        "alter",
        "cli-orders",
        "--config",
        "cleanup.policy=compact",
        "--delete-config",
        "retention.ms",
        bootstrap=b,
    )
    desc = json.loads(run("describe", "cli-orders", "--json", "--all-configs", bootstrap=b).stdout)[
        0
    ]
    assert desc["configs"]["cleanup.policy"] == {"value": "compact", "source": "topic"}
    assert desc["configs"]["retention.ms"] == {"value": "604800000", "source": "default"}
    assert desc["partitions"][1]["end_offset"] == 5
    assert len(desc["topic_id"]) == 22 and "/" not in desc["topic_id"]

    every = json.loads(run("describe", "--exclude-internal", "--json", bootstrap=b).stdout)
    assert "cli-orders" in [d["topic"] for d in every]
    assert not [d for d in every if d["topic"].startswith("__")]

    out = run("add-partitions", "cli-orders", "4", bootstrap=b)
    assert "from 2 to 4 partitions" in out.stdout
    desc = json.loads(run("describe", "cli-orders", "--json", bootstrap=b).stdout)[0]
    assert desc["partition_count"] == 4 and [p["partition"] for p in desc["partitions"]] == [
        0,
        1,
        2,
        3,
    ]

    run("delete", "cli-orders", bootstrap=b)
    assert "cli-orders" not in run("list", bootstrap=b).stdout.split()
    run("delete", "cli-orders", "--if-exists", bootstrap=b)


def test_errors_are_one_line(broker) -> None:
    b = broker.bootstrap
    one_line_error(
        run("describe", "no-such-topic", bootstrap=b, check=False),
        "no-such-topic",
        "does not exist",
    )
    one_line_error(run("delete", "no-such-topic", bootstrap=b, check=False), "does not exist")
    run("create", "__consumer_offsets", "--if-not-exists", bootstrap=b)
    one_line_error(run("delete", "__consumer_offsets", bootstrap=b, check=False), "internal")
    one_line_error(
        run("alter", "no-such-topic", "-c", "retention.ms=1", bootstrap=b, check=False),
        "does not exist",
    )
    one_line_error(
        run("create", "cli-bad", "-c", "retention.ms=soon", bootstrap=b, check=False),
        "INVALID_CONFIG",
        "retention.ms",
    )
    one_line_error(
        run("create", "cli-rf", "-r", "3", bootstrap=b, check=False), "INVALID_REPLICATION_FACTOR"
    )
    one_line_error(run("create", "bad name", bootstrap=b, check=False), "illegal")
    run("create", "cli-dup", bootstrap=b)
    one_line_error(run("create", "cli-dup", bootstrap=b, check=False), "already exists")
    one_line_error(run("add-partitions", "cli-dup", "1", bootstrap=b, check=False), "new total")
    one_line_error(
        run("alter", "cli-dup", "-c", "segment.bytes=tiny", bootstrap=b, check=False),
        "INVALID_CONFIG",
        "segment.bytes",
    )
    one_line_error(run("alter", "cli-dup", bootstrap=b, check=False), "nothing to change")
    one_line_error(run("create", "cli-x", "-c", "novalue", bootstrap=b, check=False), "key=value")
    p = run("describe", "--no-such-flag", bootstrap=b, check=False)
    one_line_error(p, "--no-such-flag")
    assert p.returncode == 2
    one_line_error(run("frobnicate", check=False), "frobnicate")
    one_line_error(run("add-partitions", "cli-dup", "many", check=False), "many")


def test_unreachable_broker() -> None:
    dead = f"127.0.0.1:{free_port()}"
    p = run("list", "--timeout", "2", bootstrap=dead, check=False)
    assert p.returncode == 1
    one_line_error(p, "cannot reach a broker at", dead)


@pytest.mark.parametrize("sub", ["create", "list", "describe", "alter", "add-partitions", "delete"])
def test_help_has_examples(sub: str) -> None:
    out = run(sub, "--help").stdout
    assert "Examples:" in out and f"fastlog topics {sub}" in out
    assert "--bootstrap-server" in out and "localhost:9092" in out


def test_replica_assignment_on_create_and_add_partitions(broker) -> None:
    # a single broker is node 0: every replica list can only name it
    b = broker.bootstrap
    out = run("create", "cli-placed", "--replica-assignment", "0,0", bootstrap=b)
    assert "Created topic cli-placed" in out.stdout
    described = json.loads(run("describe", "cli-placed", "--json", bootstrap=b).stdout)
    (topic,) = described if isinstance(described, list) else [described]
    assert [p["replicas"] for p in topic["partitions"]] == [[0], [0]]
    run("add-partitions", "cli-placed", "3", "--replica-assignment", "0,0,0", bootstrap=b)
    described = json.loads(run("describe", "cli-placed", "--json", bootstrap=b).stdout)
    (topic,) = described if isinstance(described, list) else [described]
    assert len(topic["partitions"]) == 3
    # refused by the broker (INVALID_REPLICA_ASSIGNMENT: broker 7 does not exist) ...
    one_line_error(
        run("create", "cli-misplaced", "--replica-assignment", "7", bootstrap=b, check=False),
        "cli-misplaced",
    )
    # ... and by the tool before anything is sent
    for args in (["--replica-assignment", "0,x"], ["--replica-assignment", "0", "-p", "1"]):
        proc = run("create", "cli-bad", *args, bootstrap=b, check=False)
        assert proc.returncode == 2
        one_line_error(proc, "--replica-assignment")
    proc = run(
        "add-partitions", "cli-placed", "5", "--replica-assignment", "0,0", bootstrap=b, check=False
    )
    assert proc.returncode == 2
    one_line_error(proc, "N is 5")
