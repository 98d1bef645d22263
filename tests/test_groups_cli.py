"""``fastlog groups`` against a live broker: list, describe (members, assignment, lag),
reset-offsets, delete, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from broker.tools.groups import groups

pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


@pytest.fixture(scope="module")
def bs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from support import BrokerProcess, free_port

    d = tmp_path_factory.mktemp("groups-cli") / "data"
    d.mkdir()
    b = BrokerProcess(d, free_port(), {"group.initial.rebalance.delay.ms": "100"}).start()
    yield b.bootstrap
    b.stop()


def run(bs: str, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(groups, [*args, "--bootstrap-server", bs, "--timeout", "5"])
    return r.exit_code, r.output


def setup_topic(bs: str, topic: str, n: int = 30) -> None:
    a = AdminClient({"bootstrap.servers": bs})
    for f in a.create_topics([NewTopic(topic, 3, 1)]).values():
        f.result(10)
    p = Producer({"bootstrap.servers": bs})
    for i in range(n):
        p.produce(topic, value=b"v%d" % i, partition=i % 3, timestamp=1_600_000_000_000 + i * 1000)
    assert p.flush(10) == 0


def consume_and_commit(bs: str, group: str, topic: str, n: int) -> Consumer:
    c = Consumer(
        {
            "bootstrap.servers": bs,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "client.id": "cli-test",
        }
    )
    c.subscribe([topic])
    got = 0
    deadline = time.monotonic() + 30
    while got < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        got += 1
        c.commit(message=m, asynchronous=False)
    assert got == n
    return c


def committed(bs: str, group: str, topic: str) -> list[int]:
    c = Consumer({"bootstrap.servers": bs, "group.id": group})
    try:
        return [
            tp.offset
            for tp in c.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
        ]
    finally:
        c.close()


def test_describe_shows_members_assignment_and_lag(bs: str) -> None:
    setup_topic(bs, "cli-lag")
    c = consume_and_commit(bs, "cli-g1", "cli-lag", 12)
    try:
        code, out = run(bs, "describe", "cli-g1", "--json")
        assert code == 0, out
        d = json.loads(out)
        assert d["state"] == "Stable" and d["assignor"] == "range"
        (member,) = d["members"]
        assert member["client_id"] == "cli-test" and member["host"] == "/127.0.0.1"
        assert sorted(map(tuple, member["assignment"])) == [
            ("cli-lag", 0),
            ("cli-lag", 1),
            ("cli-lag", 2),
        ]
        offsets = committed(bs, "cli-g1", "cli-lag")
        by_part = {p["partition"]: p for p in d["partitions"]}
        total_lag = 0
        for i in range(3):
            p = by_part[i]
            assert p["end_offset"] == 10
            assert p["member_id"] == member["member_id"]
            if offsets[i] >= 0:
                assert p["committed_offset"] == offsets[i]
                assert p["lag"] == 10 - offsets[i]
                total_lag += p["lag"]
            else:
                assert p["committed_offset"] is None and p["lag"] is None
                total_lag += 10
        assert total_lag == 30 - 12
        code, text = run(bs, "describe", "cli-g1")
        assert (
            code == 0 and "state Stable" in text and "LAG" in text and member["member_id"] in text
        )
        code, text = run(bs, "describe", "--all-groups", "--json")
        assert code == 0 and "cli-g1" in [g["group"] for g in json.loads(text)]
        code, text = run(bs, "describe")
        assert code == 2 and "--all-groups" in text
        code, text = run(bs, "list")
        assert code == 0 and any(
            line.split()[:2] == ["cli-g1", "Stable"] for line in text.splitlines()
        )
        code, text = run(bs, "list", "--state", "empty")
        assert "cli-g1" not in text
        # An active group's offsets cannot be moved.
        code, text = run(bs, "reset-offsets", "cli-g1", "--topic", "cli-lag", "--to-earliest")
        assert code == 1 and text.startswith("Error: ") and "inactive" in text
    finally:
        c.close()


def test_reset_offsets_and_delete(bs: str) -> None:
    setup_topic(bs, "cli-reset")
    consume_and_commit(bs, "cli-g2", "cli-reset", 6).close()
    code, out = run(bs, "reset-offsets", "cli-g2", "--topic", "cli-reset", "--to-earliest")
    assert code == 0, out
    assert committed(bs, "cli-g2", "cli-reset") == [0, 0, 0]
    code, out = run(bs, "reset-offsets", "cli-g2", "--topic", "cli-reset", "--to-latest")
    assert code == 0 and committed(bs, "cli-g2", "cli-reset") == [10, 10, 10]
    code, out = run(bs, "reset-offsets", "cli-g2", "--topic", "cli-reset:1", "--to-offset", "4")
    assert code == 0 and committed(bs, "cli-g2", "cli-reset") == [10, 4, 10]
    code, out = run(bs, "reset-offsets", "cli-g2", "--topic", "cli-reset:2", "--to-offset", "99")
    assert code == 0 and committed(bs, "cli-g2", "cli-reset")[2] == 10  # clamped to the end
    # Record i (partition i % 3, offset i // 3) has timestamp 2020-09-13T12:26:40Z + i s.
    code, out = run(
        bs,
        "reset-offsets",
        "cli-g2",
        "--topic",
        "cli-reset",
        "--to-datetime",
        "2020-09-13T12:26:45Z",
    )
    assert code == 0, out
    assert committed(bs, "cli-g2", "cli-reset") == [2, 2, 1]
    code, out = run(
        bs, "reset-offsets", "cli-g2", "--topic", "cli-reset", "--to-earliest", "--dry-run"
    )
    assert code == 0 and "dry run" in out and committed(bs, "cli-g2", "cli-reset") == [2, 2, 1]
    code, out = run(bs, "delete", "cli-g2")
    assert code == 0 and "Deleted group cli-g2" in out
    assert committed(bs, "cli-g2", "cli-reset") == [-1001, -1001, -1001]
    code, out = run(bs, "delete", "cli-g2")
    assert code == 1 and "GROUP_ID_NOT_FOUND" in out and out.count("\n") == 1


def test_errors_are_one_line(bs: str) -> None:
    code, out = run(bs, "describe", "no-such-group")
    assert code == 1 and out == "Error: consumer group 'no-such-group' does not exist\n"
    code, out = run(bs, "reset-offsets", "x", "--topic", "no-such-topic", "--to-latest")
    assert code == 1 and "does not exist" in out and out.count("\n") == 1
    code, out = run(bs, "reset-offsets", "x", "--topic", "t")
    assert code == 2 and out.count("\n") == 1
    code, out = run(bs, "reset-offsets", "x", "--topic", "t", "--to-datetime", "yesterday")
    assert code == 2 and "ISO 8601" in out
    # The real entry point, against a port nothing listens on.
    from support import free_port

    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "from broker.cli import main; main()",
            "groups",
            "list",
            "--bootstrap-server",
            f"127.0.0.1:{free_port()}",
            "--timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and r.stderr.startswith("Error: ")
    assert r.stderr.count("\n") == 1
