"""``fastlog perf produce`` / ``fastlog perf consume``: options, one-line errors, and runs against
a live broker whose results are checked with confluent-kafka directly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, TopicPartition
from support import BrokerProcess, default_sigint, free_port

from broker.cli import cli
from broker.tools.perf import LatencyStats, Summary


def fastlog(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["fastlog", *args], capture_output=True, timeout=timeout, text=True)


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, needle: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("Error: "), proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- offline


def test_help_has_examples() -> None:
    for sub in ("produce", "consume"):
        result = CliRunner().invoke(cli, ["perf", sub, "--help"])
        assert result.exit_code == 0
        assert "Examples:" in result.output and f"fastlog perf {sub} -t bench" in result.output
        assert "--bootstrap-server" in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["perf", "produce", "-t", "x", "-n", "10"],
            "give exactly one of --record-size and --payload-file",
        ),
        (["perf", "produce", "-t", "x", "-s", "10"], "Missing option '-n' / '--num-records'"),
        (["perf", "produce", "-t", "x", "-n", "0", "-s", "1"], "'-n' / '--num-records'"),
        (
            ["perf", "produce", "-t", "x", "-n", "5", "-s", "1", "--producer-props", "acks"],
            "producer property 'acks' is not of the form key=value",
        ),
        (["perf", "consume", "-t", "x"], "Missing option '-m' / '--messages'"),
        (["perf", "consume", "-t", "x", "-m", "5", "--wat"], "No such option '--wat'"),
        (["perf", "frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], needle: str) -> None:
    assert_one_line_error(
        fastlog(*args, "-b", "127.0.0.1:1") if args[1] != "frobnicate" else fastlog(*args),
        2,
        needle,
    )


@pytest.mark.parametrize("sub", [["produce", "-n", "10", "-s", "10"], ["consume", "-m", "10"]])
def test_unreachable_broker(sub: list[str]) -> None:
    port = free_port()
    proc = fastlog("perf", sub[0], "-t", "x", *sub[1:], "-b", f"127.0.0.1:{port}")
    assert_one_line_error(proc, 1, f"cannot reach broker at 127.0.0.1:{port}")


def test_latency_stats_percentiles_and_sampling() -> None:
    stats = LatencyStats(1000)
    for i in range(1000):
        stats.record(i / 1000, 10)
    p = stats.percentiles()
    assert (
        p["p50"] == pytest.approx(0.5)
        and p["p99"] == pytest.approx(0.99)
        and p["p99.9"] == pytest.approx(0.999)
    )
    assert stats.bytes == 10_000 and stats.max_latency == pytest.approx(0.999)
    big = LatencyStats(2_000_000)  # keeps every 4th sample only
    for _ in range(2_000_000):
        big.record(0.001, 1)
    assert len(big.samples) == 500_000 and big.count == 2_000_000


def test_summary_kafka_line() -> None:
    s = Summary(
        "produce",
        1000,
        1024 * 1024,
        2.0,
        3.5,
        10.0,
        {"p50": 1.0, "p95": 2.0, "p99": 3.0, "p99.9": 4.0},
    )
    assert s.kafka_line() == (
        "1000 records sent, 500.0 records/sec (0.50 MB/sec), 3.50 ms avg latency, 10.00 ms max "
        "latency, 1.00 ms 50th, 2.00 ms 95th, 3.00 ms 99th, 4.00 ms 99.9th."
    )


# --------------------------------------------------------------------------- live broker


def count_records(bootstrap: str, topic: str) -> tuple[int, set[int]]:
    """Sum of (high watermark - low watermark) over the topic's partitions, and value sizes seen."""
    c = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "verify", "enable.auto.commit": False}
    )
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        total = 0
        for p in md.partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += hi - lo
        c.assign([TopicPartition(topic, p, -2) for p in md.partitions])
        sizes = {len(m.value()) for m in c.consume(50, 5) if m.error() is None}
        return total, sizes
    finally:
        c.close()


def test_perf_produce_then_consume(broker: BrokerProcess) -> None:
    topic = "perf-roundtrip"
    proc = fastlog(
        "perf", "produce", "-b", broker.bootstrap, "-t", topic, "-n", "20000", "-s", "100", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["records"] == 20000 and result["bytes"] == 20000 * 100 and result["errors"] == 0
    assert result["records_per_sec"] > 0 and result["mb_per_sec"] > 0
    lat = result["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["p99.9"] <= result["max_latency_ms"]
    assert count_records(broker.bootstrap, topic) == (20000, {100})

    proc = fastlog("perf", "consume", "-b", broker.bootstrap, "-t", topic, "-m", "20000", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["records"] == 20000 and result["bytes"] == 20000 * 100
    assert result["first_record_ms"] >= 0 and result["records_per_sec"] > 0

    # the default summary is Kafka's one line when stdout is not a terminal
    proc = fastlog(
        "perf", "consume", "-b", broker.bootstrap, "-t", topic, "-m", "500", "--group", "perf-g"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("500 records consumed, ") and "ms 99.9th." in proc.stdout


def test_perf_consume_short_of_messages(broker: BrokerProcess) -> None:
    topic = "perf-short"
    assert (
        fastlog(
            "perf", "produce", "-b", broker.bootstrap, "-t", topic, "-n", "50", "-s", "10"
        ).returncode
        == 0
    )
    proc = fastlog(
        "perf",
        "consume",
        "-b",
        broker.bootstrap,
        "-t",
        topic,
        "-m",
        "80",
        "--timeout",
        "2",
        "--json",
    )
    assert_one_line_error(proc, 1, "consumed 50 of 80 record(s): none arrived for 2s")
    assert (
        json.loads(proc.stdout)["records"] == 50
    )  # the summary of what did arrive is still printed


def test_perf_produce_throughput_cap_and_progress_lines(broker: BrokerProcess) -> None:
    proc = fastlog(
        "perf",
        "produce",
        "-b",
        broker.bootstrap,
        "-t",
        "perf-capped",
        "-n",
        "600",
        "-s",
        "10",
        "--throughput",
        "400",
        "--acks",
        "1",
        "--reporting-interval",
        "0.3",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["records"] == 600
    assert result["records_per_sec"] <= 400 * 1.15  # the throttle held the rate down
    # not a terminal: Kafka-style interval lines on stderr instead of a progress bar
    lines = [ln for ln in proc.stderr.splitlines() if ln]
    assert lines and all(" records sent, " in ln and "records/sec" in ln for ln in lines)


def test_perf_produce_payload_file_and_props(broker: BrokerProcess, tmp_path) -> None:
    payloads = tmp_path / "payloads.txt"
    payloads.write_text("alpha\nbravo-bravo\ncharlie\n")
    proc = fastlog(
        "perf",
        "produce",
        "-b",
        broker.bootstrap,
        "-t",
        "perf-payloads",
        "-n",
        "300",
        "--payload-file",
        str(payloads),
        "--producer-props",
        "linger.ms=1 batch.num.messages=50",
        "--compression",
        "lz4",
        "--no-progress",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("300 records sent, ") and proc.stderr == ""
    total, sizes = count_records(broker.bootstrap, "perf-payloads")
    assert total == 300 and sizes <= {5, 11, 7}


def test_perf_unknown_topic(make_broker: Callable[..., BrokerProcess]) -> None:
    b = make_broker({"auto.create.topics.enable": "false"})
    assert_one_line_error(
        fastlog("perf", "produce", "-b", b.bootstrap, "-t", "nope", "-n", "5", "-s", "5"),
        1,
        "unknown topic 'nope'",
    )
    assert_one_line_error(
        fastlog("perf", "consume", "-b", b.bootstrap, "-t", "nope", "-m", "5"),
        1,
        "unknown topic 'nope'",
    )


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) for a pty")
def test_perf_on_a_terminal_shows_a_progress_bar_and_a_table(broker: BrokerProcess) -> None:
    cmd = (
        f"fastlog perf produce -b {broker.bootstrap} -t perf-tty -n 20000 -s 50 --throughput 10000"
    )
    proc = subprocess.run(
        ["script", "-qec", cmd, "/dev/null"],
        capture_output=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
    )
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, out
    assert "━" in out and "/20,000 records" in out and "rec/s" in out  # the live bar
    assert "perf produce" in out and "throughput" in out and "p99.9" in out  # the summary table


def test_kafka_style_props_and_config_files(broker: BrokerProcess, tmp_path) -> None:
    # kafka-producer-perf-test's spelling: --producer-props k=v k=v, bootstrap.servers inside
    dead = f"127.0.0.1:{free_port()}"
    proc = fastlog(
        "perf",
        "produce",
        "-b",
        dead,
        "--topic",
        "perf-kafka-style",
        "--num-records",
        "200",
        "--record-size",
        "20",
        "--throughput",
        "-1",
        "--no-progress",
        "--json",
        "--producer-props",
        "acks=1",
        f"bootstrap.servers={broker.bootstrap}",
        "compression.type=gzip",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["records"] == 200
    producer_file = tmp_path / "producer.properties"
    producer_file.write_text(
        f"# a Kafka client config\nbootstrap.servers={broker.bootstrap}\nlinger.ms=1\n"
    )
    proc = fastlog(
        "perf",
        "produce",
        "-b",
        dead,
        "-t",
        "perf-kafka-style",
        "-n",
        "100",
        "-s",
        "20",
        "--producer.config",
        str(producer_file),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    consumer_file = tmp_path / "consumer.properties"
    consumer_file.write_text(f"bootstrap.servers={broker.bootstrap}\nfetch.wait.max.ms=10\n")
    proc = fastlog(
        "perf",
        "consume",
        "-b",
        dead,
        "-t",
        "perf-kafka-style",
        "-m",
        "300",
        "--consumer.config",
        str(consumer_file),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["records"] == 300
    bad = fastlog(
        "perf",
        "produce",
        "-b",
        broker.bootstrap,
        "-t",
        "x",
        "-n",
        "1",
        "-s",
        "1",
        "--producer-props",
        "acks=1",
        "oops",
    )
    assert_one_line_error(bad, 2, "producer property 'oops' is not of the form key=value")


@pytest.mark.parametrize("kind", ["produce", "consume"])
def test_interrupt_prints_the_partial_summary(broker: BrokerProcess, kind: str) -> None:
    import signal
    import time

    topic = f"perf-interrupted-{kind}"
    if kind == "produce":
        args = ["-n", "1000000", "-s", "10", "--throughput", "500"]
    else:
        assert (
            fastlog(
                "perf", "produce", "-b", broker.bootstrap, "-t", topic, "-n", "100", "-s", "10"
            ).returncode
            == 0
        )
        args = ["-m", "1000", "--timeout", "60"]
    proc = subprocess.Popen(
        ["fastlog", "perf", kind, "-b", broker.bootstrap, "-t", topic, *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        time.sleep(4)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    records = json.loads(out)["records"]
    assert 0 < records < 1_000_000 if kind == "produce" else records == 100
