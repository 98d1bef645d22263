"""``fastlog produce`` / ``fastlog consume``: argument handling and one-line errors, then round
trips against a live broker, cross-checked with confluent-kafka and kcat."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from support import BrokerProcess, default_sigint, free_port

from broker.cli import cli
from broker.tools.console import compile_format, parse_time, render_json


def fastlog(
    *args: str, input: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(["fastlog", *args], input=input, capture_output=True, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, needle: str) -> None:
    err = proc.stderr.decode()
    assert proc.returncode == code, (proc.returncode, err)
    assert err.count("\n") == 1 and err.startswith("Error: "), err
    assert needle in err, err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- offline


def test_help_has_examples() -> None:
    for cmd in ("produce", "consume"):
        result = CliRunner().invoke(cli, [cmd, "--help"])
        assert result.exit_code == 0
        assert "Examples:" in result.output and f"fastlog {cmd} events" in result.output
        assert "--bootstrap-server" in result.output and "localhost:9092" in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["consume", "t", "--bogus"], "No such option '--bogus'"),
        (["consume"], "Missing argument 'TOPIC'"),
        (
            ["consume", "t", "--from-beginning", "--offset", "3"],
            "--from-beginning and --offset cannot be combined",
        ),
        (
            ["consume", "t", "--group", "g", "--partition", "1"],
            "--partition cannot be combined with --group",
        ),
        (["consume", "t", "-F", "%q"], "unknown token '%q'"),
        (["consume", "t", "--from-time", "yesterday"], "neither ISO 8601"),
        (["consume", "t", "--max", "0"], "'--max'"),
        (["produce", "t", "--header", "novalue"], "header 'novalue' is not of the form key=value"),
        (["produce", "t", "--acks", "2"], "'--acks'"),
        (["produce", "t", "-f", "/no/such/file"], "No such file or directory"),
        (
            ["produce", "t", "-X", "no.such.property=1"],
            'No such configuration property: "no.such.property"',
        ),
        (["consume", "t", "-X", "novalue"], "property 'novalue' is not of the form key=value"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], needle: str) -> None:
    assert_one_line_error(fastlog(*args, "-b", "127.0.0.1:1"), 2, needle)


@pytest.mark.parametrize("cmd", [["produce", "t"], ["consume", "t"]])
def test_unreachable_broker(cmd: list[str]) -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    proc = fastlog(*cmd, "-b", f"127.0.0.1:{port}", input=b"x\n")
    assert_one_line_error(proc, 1, f"cannot reach broker at 127.0.0.1:{port}")
    assert "Connection refused" in proc.stderr.decode()
    assert (
        time.monotonic() - started < 8
    )  # refused connections are reported at once, not after --timeout


def _msg(**kw: object) -> Message:
    base = dict(
        topic="t",
        partition=2,
        offset=41,
        key=b"k1",
        value=b"v1",
        headers=[("a", b"1"), ("b", b"2")],
        timestamp=(1, 1714564800000),
    )
    base.update(kw)
    return Message(**base)


def test_format_tokens() -> None:
    render = compile_format("%t|%p|%o|%k|%s|%T|%h|%K|%S|%%\\t\\n")
    assert render(_msg()) == b"t|2|41|k1|v1|1714564800000|a=1,b=2|2|2|%\t\n"
    assert (
        render(_msg(key=None, value=None, headers=None)) == b"t|2|41|||1714564800000||-1|-1|%\t\n"
    )
    assert compile_format("%s\\n")(_msg(value=b"\xff\x00")) == b"\xff\x00\n"


def test_json_output() -> None:
    line = render_json(_msg(value=b"caf\xc3\xa9 \xff"))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "topic": "t",
        "partition": 2,
        "offset": 41,
        "timestamp": 1714564800000,
        "key": "k1",
        "value": "caf\u00e9 \\xff",
        "headers": [["a", "1"], ["b", "2"]],
    }
    assert json.loads(render_json(_msg(key=None, headers=None)))["key"] is None


def test_parse_time() -> None:
    assert parse_time("2024-05-01T12:00:00Z") == 1714564800000
    assert parse_time("2024-05-01T14:00:00+02:00") == 1714564800000
    assert parse_time("1714564800123") == 1714564800123


# --------------------------------------------------------------------------- live broker


def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list[Message]:
    """Every record of ``topic`` read with confluent-kafka directly (no fastlog code)."""
    c = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "verify", "enable.auto.commit": False}
    )
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        c.assign([TopicPartition(topic, p, -2) for p in md.partitions])
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            out += [m for m in c.consume(100, 0.5) if m.error() is None]
        return out
    finally:
        c.close()


def produce_direct(bootstrap: str, topic: str, records: list[tuple], **conf: object) -> None:
    p = Producer({"bootstrap.servers": bootstrap, **conf})
    for rec in records:
        key, value, partition, headers, ts = (*rec, None, None, None)[:5]
        kw: dict = {"key": key, "headers": headers}
        if partition is not None:
            kw["partition"] = partition
        if ts is not None:
            kw["timestamp"] = ts
        p.produce(topic, value, **kw)
    assert p.flush(30) == 0


@pytest.fixture
def topic(broker: BrokerProcess, request: pytest.FixtureRequest) -> str:
    return request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:60]


def test_produce_lines_keys_headers(broker: BrokerProcess, topic: str) -> None:
    lines = b"a:1\nb:2\n\nc:3:with:colons\r\nnokey-line-is-fine-without-separator\n"
    proc = fastlog(
        "produce",
        topic,
        "-b",
        broker.bootstrap,
        "--header",
        "src=cli",
        "--header",
        "n=2",
        input=lines,
    )
    assert proc.returncode == 0, proc.stderr
    got = read_all(broker.bootstrap, topic, 5)
    values = sorted(m.value() for m in got)
    assert values == sorted(
        [b"a:1", b"b:2", b"", b"c:3:with:colons", b"nokey-line-is-fine-without-separator"]
    )
    assert all(m.headers() == [("src", b"cli"), ("n", b"2")] for m in got)
    assert all(m.key() is None for m in got)

    keyed = f"{topic}-k"
    proc = fastlog("produce", keyed, "-b", broker.bootstrap, "-K", ":", input=b"a:1\nb:2\nc:3:x\n")
    assert proc.returncode == 0, proc.stderr
    got = read_all(broker.bootstrap, keyed, 3)
    assert sorted((m.key(), m.value()) for m in got) == [(b"a", b"1"), (b"b", b"2"), (b"c", b"3:x")]


def test_produce_key_partitioning_matches_java_client(broker: BrokerProcess, topic: str) -> None:
    # the same key always lands on one partition, and it is murmur2's (the Java client's)
    proc = fastlog(
        "produce",
        topic,
        "-b",
        broker.bootstrap,
        "-K",
        "=",
        input=b"".join(b"user%d=x\n" % (i % 4) for i in range(40)),
    )
    assert proc.returncode == 0, proc.stderr
    produce_direct(
        broker.bootstrap,
        topic,
        [(b"user%d" % i, b"direct") for i in range(4)],
        partitioner="murmur2_random",
    )
    got = read_all(broker.bootstrap, topic, 44)
    parts: dict[bytes, set[int]] = {}
    for m in got:
        parts.setdefault(m.key(), set()).add(m.partition())
    assert all(len(p) == 1 for p in parts.values()), parts


def test_produce_to_partition_and_from_file(broker: BrokerProcess, topic: str, tmp_path) -> None:
    f = tmp_path / "records.txt"
    f.write_bytes(b"".join(b"line-%d\n" % i for i in range(100)))
    proc = fastlog(
        "produce", topic, "-b", broker.bootstrap, "-f", str(f), "-p", "2", "--compression", "zstd"
    )
    assert proc.returncode == 0, proc.stderr
    got = read_all(broker.bootstrap, topic, 100)
    assert [m.value() for m in got] == [b"line-%d" % i for i in range(100)]
    assert {m.partition() for m in got} == {2}
    assert [m.offset() for m in got] == list(range(100))


def test_produce_missing_key_separator(broker: BrokerProcess, topic: str) -> None:
    proc = fastlog(
        "produce", topic, "-b", broker.bootstrap, "-K", ":", input=b"a:1\nb:2\nnope\nc:3\n"
    )
    assert_one_line_error(proc, 1, "line 3 has no key separator ':' (2 record(s) sent before it)")
    assert sorted(m.value() for m in read_all(broker.bootstrap, topic, 2)) == [b"1", b"2"]


def test_bad_partition(broker: BrokerProcess, topic: str) -> None:
    produce_direct(broker.bootstrap, topic, [(None, b"x")])
    proc = fastlog("produce", topic, "-b", broker.bootstrap, "-p", "7", input=b"x\n")
    assert_one_line_error(
        proc, 1, f"topic '{topic}' has 3 partition(s) (0-2); there is no partition 7"
    )
    proc = fastlog("consume", topic, "-b", broker.bootstrap, "-p", "3", "--exit")
    assert_one_line_error(proc, 1, "there is no partition 3")


def test_consume_formats_and_exit(broker: BrokerProcess, topic: str) -> None:
    produce_direct(
        broker.bootstrap,
        topic,
        [(b"k%d" % i, b"v%d" % i, 1, [("h", b"%d" % i)], 1_700_000_000_000 + i) for i in range(5)],
    )
    proc = fastlog(
        "consume",
        topic,
        "-b",
        broker.bootstrap,
        "--from-beginning",
        "--exit",
        "-F",
        "%p %o %k=%s %T %h\\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines() == [
        f"1 {i} k{i}=v{i} {1_700_000_000_000 + i} h={i}" for i in range(5)
    ]
    assert proc.stderr == b""
    proc = fastlog("consume", topic, "-b", broker.bootstrap, "--from-beginning", "--exit", "--json")
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rows[4] == {
        "topic": topic,
        "partition": 1,
        "offset": 4,
        "timestamp": 1_700_000_000_004,
        "key": "k4",
        "value": "v4",
        "headers": [["h", "4"]],
    }


def test_consume_offsets_time_and_max(broker: BrokerProcess, topic: str) -> None:
    records = [(None, b"r%d" % i, 0, None, 1_700_000_000_000 + i * 1000) for i in range(10)]
    produce_direct(broker.bootstrap, topic, records)

    def run(*a) -> list[str]:
        return (
            fastlog("consume", topic, "-b", broker.bootstrap, "-p", "0", "--exit", *a)
            .stdout.decode()
            .split()
        )

    assert run("--offset", "7") == ["r7", "r8", "r9"]
    assert run("--offset", "-2") == ["r8", "r9"]
    assert run("--from-time", "2023-11-14T22:13:25Z") == [
        "r5",
        "r6",
        "r7",
        "r8",
        "r9",
    ]  # 1_700_000_005_000
    assert run("--from-time", "1700000008000") == ["r8", "r9"]
    assert run("--from-beginning", "--max", "3") == ["r0", "r1", "r2"]
    assert run("--from-time", "2030-01-01T00:00:00Z") == []
    assert run() == []  # default: the end of the log, like kafka-console-consumer


def test_consume_max_without_exit_waits_for_new_records(broker: BrokerProcess, topic: str) -> None:
    produce_direct(broker.bootstrap, topic, [(None, b"old", 0)])
    proc = subprocess.Popen(
        ["fastlog", "consume", topic, "-b", broker.bootstrap, "--max", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(3)  # it starts at the end: "old" is not read
        produce_direct(
            broker.bootstrap, topic, [(None, b"new1", 0), (None, b"new2", 1), (None, b"new3", 2)]
        )
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert len(out.split()) == 2 and b"old" not in out


def test_consume_group_commits_offsets(broker: BrokerProcess, topic: str) -> None:
    produce_direct(broker.bootstrap, topic, [(None, b"a%d" % i) for i in range(6)])
    group = f"g-{topic}"
    first = fastlog(
        "consume", topic, "-b", broker.bootstrap, "--group", group, "--from-beginning", "--exit"
    )
    assert first.returncode == 0, first.stderr
    assert sorted(first.stdout.split()) == [b"a%d" % i for i in range(6)]
    produce_direct(broker.bootstrap, topic, [(None, b"b%d" % i) for i in range(3)])
    second = fastlog(
        "consume", topic, "-b", broker.bootstrap, "--group", group, "--from-beginning", "--exit"
    )
    assert second.returncode == 0, second.stderr
    # the group resumes at its committed offsets: only the new records
    assert sorted(second.stdout.split()) == [b"b0", b"b1", b"b2"]
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        committed = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    finally:
        c.close()
    assert sum(tp.offset for tp in committed if tp.offset > 0) == 9


def test_unknown_topic(make_broker: Callable[..., BrokerProcess]) -> None:
    b = make_broker({"auto.create.topics.enable": "false"})
    assert_one_line_error(
        fastlog("consume", "nosuch", "-b", b.bootstrap, "--exit"), 1, "unknown topic 'nosuch'"
    )
    assert_one_line_error(
        fastlog("produce", "nosuch", "-b", b.bootstrap, input=b"x\n"), 1, "unknown topic 'nosuch'"
    )


def test_invalid_topic_name(broker: BrokerProcess) -> None:
    proc = fastlog("produce", "bad topic!", "-b", broker.bootstrap, input=b"x\n")
    assert_one_line_error(proc, 1, "invalid topic name 'bad topic!' (at most 249 of ASCII letters")


def test_unresolvable_host() -> None:
    proc = fastlog("consume", "t", "-b", "nosuchhost.invalid:9092")
    assert_one_line_error(
        proc, 1, "cannot reach broker at nosuchhost.invalid:9092: Failed to resolve"
    )


def test_consume_into_a_closed_pipe(broker: BrokerProcess, topic: str) -> None:
    produce_direct(broker.bootstrap, topic, [(None, b"x" * 100, 0)] * 2000)
    proc = subprocess.run(
        f"fastlog consume {topic} -b {broker.bootstrap} --from-beginning --exit | head -n 1",
        shell=True,
        capture_output=True,
        timeout=60,
    )
    assert proc.stdout == b"x" * 100 + b"\n"
    assert b"Traceback" not in proc.stderr and b"Error" not in proc.stderr


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")
def test_kcat_interop(broker: BrokerProcess, topic: str) -> None:
    # kcat produces, fastlog consumes; fastlog produces, kcat consumes
    subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", "-K", ":"],
        input=b"k1:v1\nk2:v2\n",
        check=True,
        timeout=30,
    )
    proc = fastlog(
        "consume", topic, "-b", broker.bootstrap, "--from-beginning", "--exit", "-F", "%k=%s\\n"
    )
    assert proc.stdout.decode().splitlines() == ["k1=v1", "k2=v2"]
    assert (
        fastlog(
            "produce", topic, "-b", broker.bootstrap, "-p", "1", "-K", ":", input=b"k3:v3\n"
        ).returncode
        == 0
    )
    out = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-C", "-t", topic, "-p", "1", "-e", "-f", "%k=%s\\n"],
        capture_output=True,
        timeout=30,
    )
    assert out.stdout.decode().splitlines() == ["k3=v3"]


def test_consume_interrupted(broker: BrokerProcess, topic: str) -> None:
    import signal

    produce_direct(broker.bootstrap, topic, [(None, b"one", 0)])
    proc = subprocess.Popen(
        ["fastlog", "consume", topic, "-b", broker.bootstrap, "--from-beginning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=default_sigint,
    )
    try:
        time.sleep(4)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert out == b"one\n"
    assert proc.returncode == 130 and b"Traceback" not in err, err


def test_kafka_config_files(broker: BrokerProcess, topic: str, tmp_path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    producer_file = tmp_path / "producer.properties"
    producer_file.write_text(
        f"bootstrap.servers={broker.bootstrap}\n"
        "key.serializer=org.apache.kafka.common.serialization.StringSerializer\nacks=1\n"
    )
    proc = fastlog(
        "produce",
        topic,
        "-b",
        dead,
        "--producer.config",
        str(producer_file),
        "-p",
        "0",
        input=b"a\nb\n",
    )
    assert proc.returncode == 0, proc.stderr
    consumer_file = tmp_path / "consumer.properties"
    consumer_file.write_text(
        "value.deserializer=org.apache.kafka.common.serialization.StringDeserializer\n"
    )
    proc = fastlog(
        "consume",
        topic,
        "-b",
        dead,
        "--consumer.config",
        str(consumer_file),
        "-X",
        f"bootstrap.servers={broker.bootstrap}",
        "--from-beginning",
        "--exit",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"a\nb\n"
