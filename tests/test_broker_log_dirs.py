"""Several log directories (log.dirs, JBOD) on one broker (broker/log_dirs.py).

Real broker processes and real clients: partitions spread over the directories (the one with
the fewest partitions, ties in log.dirs order), produce/consume with confluent-kafka, a
restart finds every partition where it is, a partition found in two directories or
meta.properties that disagree refuse the start, a failed directory (a full tmpfs, as
tests/test_log_dir_failure.py: needs root) takes only its own partitions offline, and
DescribeLogDirs answers sizes that match the files on disk (kafka-python's admin client and
raw kio requests of every version), as does ``fastlog log-dirs describe``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from support import BrokerProcess, fill_disk, free_port, tmpfs

from broker.config import BrokerConfig
from broker.log_dirs import LogDir, LogDirError, configured_paths, pick_log_dir
from broker.protocol import decode_response, encode_request, make, request_schema

pytestmark = pytest.mark.timeout(120)

STORAGE_ERROR = 56


# -- helpers ------------------------------------------------------------------------------
def start(tmp_path: Path, names: list[str] | list[Path], **overrides: str) -> BrokerProcess:
    """A broker over the given log dirs (under tmp_path unless absolute)."""
    dirs = [tmp_path / n for n in names]
    dirs[0].mkdir(parents=True, exist_ok=True)
    b = BrokerProcess(
        dirs[0], free_port(), dict(overrides), ["--data-dir", ",".join(str(d) for d in dirs)]
    )
    return b.start()


def run_broker(dirs: list[Path]) -> subprocess.CompletedProcess[str]:
    """A broker start expected to fail: its exit status and output."""
    return subprocess.run(
        [
            sys.executable, "-m", "broker", "--port", str(free_port()),
            "--data-dir", ",".join(str(d) for d in dirs),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip


def placement(dirs: list[Path]) -> dict[str, set[str]]:
    return {
        d.name: {p.name for p in d.iterdir() if p.is_dir() and p.name[-1].isdigit()} for d in dirs
    }


def produce(bootstrap: str, topic: str, per_partition: dict[int, list[bytes]]) -> list[Any]:
    """acks=all, no retries: the delivery error (or None) of each record, in order."""
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": False,
            "retries": 0,
            "linger.ms": 0,
            "message.timeout.ms": 10000,
        }
    )
    out: list[Any] = []
    for part, values in per_partition.items():
        for v in values:
            p.produce(topic, v, partition=part, on_delivery=lambda e, m: out.append(e))
    assert p.flush(20) == 0
    return out


def consume(bootstrap: str, topic: str, partitions: list[int]) -> dict[int, list[bytes]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "g", "enable.auto.commit": False})
    got: dict[int, list[bytes]] = {p: [] for p in partitions}
    try:
        highs = {}
        for p in partitions:
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            highs[p] = high
        c.assign([TopicPartition(topic, p, 0) for p in partitions])
        while any(len(got[p]) < highs[p] for p in partitions):
            msg = c.poll(5)
            assert msg is not None, {p: len(v) for p, v in got.items()}
            if msg.error():
                continue
            got[msg.partition()].append(msg.value())
    finally:
        c.close()
    return got


class Raw:
    """One connection speaking kio entities."""

    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)

    def call(self, api_key: int, version: int, **fields: Any) -> Any:
        req = make(request_schema(api_key, version), **fields)
        self.sock.sendall(encode_request(req, 7, "log-dirs-test"))
        (size,) = struct.unpack(">i", self._read(4))
        cid, response = decode_response(self._read(size), api_key, version)
        assert cid == 7
        return response

    def _read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            assert chunk, "closed by the broker"
            out += chunk
        return out

    def close(self) -> None:
        self.sock.close()


def describe_raw(bootstrap: str, version: int, topics: Any = None) -> Any:
    raw = Raw(bootstrap)
    try:
        if topics is not None:
            topic_cls = request_schema(35, max(version, 1))
            nested = sys.modules[topic_cls.__module__].DescribableLogDirTopic
            topics = tuple(nested(topic=t, partitions=tuple(p)) for t, p in topics.items())
        return raw.call(35, version, topics=topics)
    finally:
        raw.close()


def disk_size(partition_dir: Path) -> int:
    return sum(f.stat().st_size for f in partition_dir.glob("*.log"))


# -- units --------------------------------------------------------------------------------
def test_configured_paths(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    cfg = BrokerConfig({"log.dirs": f"{a}, {b}"})
    assert configured_paths(cfg) == [a, b]
    assert configured_paths(BrokerConfig({"log.dir": str(a)})) == [a]  # the single-dir fallback
    with pytest.raises(LogDirError, match="twice"):
        configured_paths(BrokerConfig({"log.dirs": f"{a},{a}/"}))


def test_placement_fewest_partitions_then_order(tmp_path: Path) -> None:
    a, b, c = (LogDir(tmp_path / n) for n in "abc")
    assert pick_log_dir([a, b, c], {}) is a
    assert pick_log_dir([a, b, c], {a: 1}) is b
    assert pick_log_dir([a, b, c], {a: 1, b: 1}) is c
    assert pick_log_dir([a, b, c], {a: 2, b: 1, c: 1}) is b
    b.offline = True
    assert pick_log_dir([a, b, c], {a: 2, c: 2}) is a
    a.offline = c.offline = True
    assert pick_log_dir([a, b, c], {}) is None


# -- brokers ------------------------------------------------------------------------------
def test_partitions_spread_produce_consume_restart(tmp_path: Path) -> None:
    names = ["d0", "d1", "d2"]
    dirs = [tmp_path / n for n in names]
    b = start(tmp_path, names)
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("spread", 9, 1)])["spread"].result(15)
        spread = placement(dirs)
        assert [len(v) for v in spread.values()] == [3, 3, 3], spread
        # Round robin in log.dirs order as each new partition takes the emptiest dir.
        assert spread["d0"] == {"spread-0", "spread-3", "spread-6"}
        for d in dirs:
            props = (d / "meta.properties").read_text()
            assert "node.id=0" in props and "cluster.id=" in props
            assert (d / ".lock").exists()
        assert (dirs[0] / "cluster-metadata.json").exists()  # metadata: the first dir only
        assert not (dirs[1] / "cluster-metadata.json").exists()

        sent = {p: [f"{p}-{i}".encode() for i in range(30)] for p in range(9)}
        assert produce(b.bootstrap, "spread", sent) == [None] * 270
        assert consume(b.bootstrap, "spread", list(range(9))) == sent

        # New partitions go where there are fewest (the consumer's __consumer_offsets
        # partitions count too), ties in log.dirs order.
        admin.create_topics([NewTopic("two", 2, 1)])["two"].result(15)
        admin.create_partitions([NewPartitions("two", 3)])["two"].result(15)
        now = placement(dirs)
        counts = {d: len(v - {f"two-{i}" for i in range(3)}) for d, v in now.items()}
        for i in range(3):
            want = min(names, key=lambda n: counts[n])
            assert f"two-{i}" in now[want], (i, counts, now)
            counts[want] += 1
        assert max(map(len, now.values())) - min(map(len, now.values())) <= 1

        before = placement(dirs)
        assert b.stop() == 0
        assert all((d / ".kafka_cleanshutdown").exists() for d in dirs)
        b.start()
        assert placement(dirs) == before  # nothing moved or re-created elsewhere
        assert f"opened {sum(map(len, before.values()))} partition(s) in 3 log dir(s)" in b.output()
        assert consume(b.bootstrap, "spread", list(range(9))) == sent
        more = {p: [b"after"] for p in range(9)}
        assert produce(b.bootstrap, "spread", more) == [None] * 9

        b.kill()  # kill -9: the next start recovers each log where it is
        b.start()
        assert placement(dirs) == before
        got = consume(b.bootstrap, "spread", list(range(9)))
        assert got == {p: sent[p] + [b"after"] for p in range(9)}
    finally:
        b.stop()


def test_duplicate_partition_refuses_start(tmp_path: Path) -> None:
    dirs = [tmp_path / "d0", tmp_path / "d1"]
    b = start(tmp_path, ["d0", "d1"])
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("dup", 2, 1)])["dup"].result(15)
        assert produce(b.bootstrap, "dup", {0: [b"x"]}) == [None]
    finally:
        assert b.stop() == 0
    shutil.copytree(dirs[0] / "dup-0", dirs[1] / "dup-0")
    r = run_broker(dirs)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "Duplicate log directories found" in r.stderr, r.stderr[-2000:]
    assert str(dirs[0] / "dup-0") in r.stderr and str(dirs[1] / "dup-0") in r.stderr
    assert "Traceback" not in r.stderr
    shutil.rmtree(dirs[1] / "dup-0")
    b.start()  # once the stale copy is gone it starts again
    assert consume(b.bootstrap, "dup", [0]) == {0: [b"x"]}
    b.stop()


def test_disagreeing_meta_properties_refuse_start(tmp_path: Path) -> None:
    dirs = [tmp_path / "d0", tmp_path / "d1", tmp_path / "d2"]
    b = start(tmp_path, ["d0", "d1", "d2"])
    assert b.stop() == 0
    original = (dirs[2] / "meta.properties").read_text()

    # A directory of another cluster.
    (dirs[2] / "meta.properties").write_text(
        "version=1\ncluster.id=AnotherClusterIdAAAAA\nnode.id=0\n"
    )
    r = run_broker(dirs)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "disagree" in r.stderr and "cluster.id" in r.stderr, r.stderr[-2000:]
    assert str(dirs[2] / "meta.properties") in r.stderr and "Traceback" not in r.stderr

    # A directory of another broker (Kafka's older broker.id key).
    (dirs[2] / "meta.properties").write_text(original.replace("node.id=0", "broker.id=3"))
    r = run_broker(dirs)
    assert r.returncode == 1 and "disagree" in r.stderr and "node.id" in r.stderr, r.stderr

    # Every directory agrees but not with the configuration.
    (dirs[2] / "meta.properties").write_text(original)
    r = subprocess.run(
        [
            sys.executable, "-m", "broker", "--port", str(free_port()), "--node-id", "5",
            "--data-dir", ",".join(str(d) for d in dirs),
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 1 and "config says 5" in r.stderr, r.stderr[-2000:]

    # A new, empty directory added to log.dirs gets its meta.properties.
    b = BrokerProcess(
        dirs[0], free_port(), {}, ["--data-dir", ",".join(str(d) for d in [*dirs, tmp_path / "d3"])]
    ).start()
    b.stop()
    assert (tmp_path / "d3" / "meta.properties").read_text() == original


def test_describe_log_dirs_sizes(tmp_path: Path) -> None:
    names = ["d0", "d1"]
    dirs = [tmp_path / n for n in names]
    b = start(tmp_path, names)
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("sized", 4, 1)])["sized"].result(15)
        sent = {p: [b"v" * (100 * (p + 1))] * (10 + p) for p in range(4)}
        assert produce(b.bootstrap, "sized", sent) == [None] * sum(map(len, sent.values()))
        expected = {
            str(d): {
                int(pd.name.rsplit("-", 1)[1]): disk_size(pd)
                for pd in d.iterdir()
                if pd.name.startswith("sized-")
            }
            for d in dirs
        }
        assert all(len(v) == 2 for v in expected.values())
        assert all(size > 1000 for v in expected.values() for size in v.values())

        # kafka-python's admin client (negotiates v4).
        from kafka.admin import KafkaAdminClient

        kp = KafkaAdminClient(bootstrap_servers=b.bootstrap)
        try:
            (entry,) = kp.describe_log_dirs()
        finally:
            kp.close()
        assert entry["broker"] == 0
        assert [d["log_dir"] for d in entry["log_dirs"]] == [str(d) for d in dirs]
        for d in entry["log_dirs"]:
            assert d["error_code"] == 0
            (topic,) = d["topics"]
            assert topic["name"] == "sized"
            sizes = {p["partition_index"]: p["partition_size"] for p in topic["partitions"]}
            assert sizes == expected[d["log_dir"]]
            assert all(p["offset_lag"] == 0 and not p["is_future_key"] for p in topic["partitions"])
            st = os.statvfs(d["log_dir"])
            assert d["total_bytes"] == st.f_blocks * st.f_frsize
            assert 0 < d["usable_bytes"] <= d["total_bytes"]

        # Raw kio requests of every version; sizes the same, v4 with the volume sizes.
        for version in range(5):
            resp = describe_raw(b.bootstrap, version)
            assert [r.log_dir for r in resp.results] == [str(d) for d in dirs]
            for r in resp.results:
                assert r.error_code.value == 0
                sizes = {
                    p.partition_index: p.partition_size for t in r.topics for p in t.partitions
                }
                assert sizes == expected[r.log_dir], version
                if version >= 4:
                    assert (
                        r.total_bytes
                        == os.statvfs(r.log_dir).f_blocks * os.statvfs(r.log_dir).f_frsize
                    )
                else:
                    assert not hasattr(r, "total_bytes")
            if version >= 3:
                assert resp.error_code.value == 0

        # Only the partitions asked for; an unknown one is simply absent.
        resp = describe_raw(b.bootstrap, 2, {"sized": [0, 1, 99], "nope": [0]})
        listed = sorted(
            p.partition_index for r in resp.results for t in r.topics for p in t.partitions
        )
        assert listed == [0, 1]
        resp = describe_raw(b.bootstrap, 1, {"sized": []})
        assert all(r.topics == () for r in resp.results)

        # The CLI, table and Kafka's JSON.
        cli = [sys.executable, "-c", "from broker.cli import main; main()"]
        out = subprocess.run(
            [*cli, "log-dirs", "describe", "-b", b.bootstrap, "--json", "--topic-list", "sized"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        (broker_entry,) = doc["brokers"]
        got = {
            d["logDir"]: {int(p["partition"].rsplit("-", 1)[1]): p["size"] for p in d["partitions"]}
            for d in broker_entry["logDirs"]
        }
        assert got == expected
        out = subprocess.run(
            [*cli, "log-dirs", "describe", "-b", b.bootstrap],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        for d in dirs:
            assert f"{d}  online, 2 partition(s)" in out.stdout, out.stdout
        for sizes in expected.values():
            for index, size in sizes.items():
                assert any(
                    line.split()[:2] == [f"sized-{index}", str(size)]
                    for line in out.stdout.splitlines()
                ), out.stdout
    finally:
        b.stop()


# -- a failed directory ---------------------------------------------------------------------
@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "small") as path:
        yield path


fill = fill_disk


def test_failed_dir_takes_only_its_partitions_offline(tmp_path: Path, small_tmpfs: Path) -> None:
    dirs = [tmp_path / "d0", tmp_path / "d1", small_tmpfs]
    b = start(tmp_path, dirs)
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("jbod", 3, 1)])["jbod"].result(15)
        assert (small_tmpfs / "jbod-2").is_dir()  # the third dir holds partition 2
        first = {p: [f"before-{p}".encode()] * 5 for p in range(3)}
        assert produce(b.bootstrap, "jbod", first) == [None] * 15

        ballast = fill(small_tmpfs)
        acked2 = list(first[2])
        for i in range(200):
            v = f"during-{i}-".encode() + b"x" * 3000
            (err,) = produce(b.bootstrap, "jbod", {2: [v]})
            if err is None:
                acked2.append(v)
                continue
            assert err.code() == KafkaError.KAFKA_STORAGE_ERROR, err
            break
        else:
            pytest.fail("the full directory never refused a write")
        # Partition 2 stays offline; 0 and 1 (other dirs) keep accepting writes.
        errs = produce(b.bootstrap, "jbod", {2: [b"small"] * 3})
        assert all(e is not None and e.code() == KafkaError.KAFKA_STORAGE_ERROR for e in errs)
        more = {0: [b"after-0"] * 20, 1: [b"after-1"] * 20}
        assert produce(b.bootstrap, "jbod", more) == [None] * 40
        got = consume(b.bootstrap, "jbod", [0, 1])
        assert got == {0: first[0] + more[0], 1: first[1] + more[1]}

        out = b.output()
        assert f"log directory {small_tmpfs} offline" in out and "1 partition(s)" in out, out[
            -3000:
        ]
        assert b.proc.poll() is None

        # DescribeLogDirs: the failed dir is KAFKA_STORAGE_ERROR, the others list their
        # partitions.
        resp = describe_raw(b.bootstrap, 4)
        by_dir = {r.log_dir: r for r in resp.results}
        assert by_dir[str(small_tmpfs)].error_code.value == STORAGE_ERROR
        assert by_dir[str(small_tmpfs)].topics == ()
        assert by_dir[str(small_tmpfs)].total_bytes == -1
        for d, index in ((dirs[0], 0), (dirs[1], 1)):
            r = by_dir[str(d)]
            assert r.error_code.value == 0
            listed = {t.name: [p.partition_index for p in t.partitions] for t in r.topics}
            assert listed["jbod"] == [index]
        # A topic created now lives in the online dirs only.
        admin.create_topics([NewTopic("later", 4, 1)])["later"].result(15)
        assert not any(p.name.startswith("later-") for p in small_tmpfs.iterdir())
        spread = placement(dirs[:2])
        assert sum(1 for v in spread.values() for n in v if n.startswith("later-")) == 4
        assert produce(b.bootstrap, "later", {p: [b"new"] for p in range(4)}) == [None] * 4

        # Space freed and a restart: the directory is back with what was acknowledged.
        ballast.unlink()
        assert b.stop() == 0, b.output()[-3000:]
        assert not (small_tmpfs / ".kafka_cleanshutdown").exists()  # failed: recovered at start
        b.start()
        assert produce(b.bootstrap, "jbod", {2: [b"back"]}) == [None]
        assert consume(b.bootstrap, "jbod", [2]) == {2: acked2 + [b"back"]}
    finally:
        b.stop()


# -- moving a replica between directories (AlterReplicaLogDirs) ----------------------------
def test_alter_replica_log_dirs_moves_a_live_partition(tmp_path: Path) -> None:
    import threading

    from kafka import TopicPartitionReplica
    from kafka.admin import KafkaAdminClient

    names = ["d0", "d1"]
    dirs = [tmp_path / n for n in names]
    b = start(tmp_path, names)
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("moving", 2, 1)])["moving"].result(15)
        assert (dirs[0] / "moving-0").is_dir() and (dirs[1] / "moving-1").is_dir()
        # An idempotent producer writes to partition 0 before, during and after the move.
        acked: list[bytes] = []
        errors: list[Any] = []
        stop = threading.Event()

        def write() -> None:
            p = Producer(
                {"bootstrap.servers": b.bootstrap, "enable.idempotence": True, "linger.ms": 2}
            )

            def done(err: Any, msg: Any) -> None:
                (errors.append(err) if err else acked.append(msg.value()))

            i = 0
            while (not stop.is_set() or i < 30000) and i < 1_000_000:
                try:
                    p.produce(
                        "moving", f"r{i:06d}".encode() + b"x" * 150, partition=0, on_delivery=done
                    )
                except BufferError:  # librdkafka's queue is full: let deliveries drain
                    p.poll(0.05)
                    continue
                i += 1
                if i % 1000 == 0:
                    p.poll(0)
            assert p.flush(30) == 0

        writer = threading.Thread(target=write)
        writer.start()
        kp = KafkaAdminClient(bootstrap_servers=b.bootstrap)
        try:
            tpr = TopicPartitionReplica("moving", 0, 0)
            bad = {
                TopicPartitionReplica("moving", 1, 0): str(tmp_path / "elsewhere"),
                TopicPartitionReplica("nope", 0, 0): str(dirs[1]),
            }
            result = kp.alter_replica_log_dirs({tpr: str(dirs[1]), **bad})
            assert result[tpr].__name__ == "NoError", result
            assert result[TopicPartitionReplica("moving", 1, 0)].__name__ == "LogDirNotFoundError"
            assert result[TopicPartitionReplica("nope", 0, 0)].__name__ == (
                "UnknownTopicOrPartitionError"
            )

            def moved() -> bool:
                (entry,) = kp.describe_log_dirs()
                by_dir = {d["log_dir"]: d for d in entry["log_dirs"]}
                parts = [
                    (p["partition_index"], p["is_future_key"])
                    for t in by_dir[str(dirs[1])]["topics"]
                    if t["name"] == "moving"
                    for p in t["partitions"]
                ]
                return sorted(parts) == [(0, False), (1, False)]

            deadline = time.monotonic() + 30
            while not moved():
                assert time.monotonic() < deadline, "the move did not finish"
                time.sleep(0.1)
        finally:
            kp.close()
        stop.set()
        writer.join(60)
        assert not errors, errors[:3]
        assert len(acked) >= 30000
        assert not (dirs[0] / "moving-0").exists() and (dirs[1] / "moving-0").is_dir()
        assert f"moved from {dirs[0]} to {dirs[1]}" in b.output()
        # Every acknowledged record once, in order, and appends go on in the new directory.
        got = consume(b.bootstrap, "moving", [0])[0]
        assert got == sorted(acked) == acked
        deadline = time.monotonic() + 15  # the old directory goes a few seconds later
        while any(p.name.endswith("-delete") for p in dirs[0].iterdir()):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        # Raw requests of every version: the partition already there is NONE at once.
        for version in range(3):
            raw = Raw(b.bootstrap)
            try:
                schema = request_schema(34, max(version, 1))
                mod = sys.modules[schema.__module__]
                req_dirs = (
                    mod.AlterReplicaLogDir(
                        path=str(dirs[1]),
                        topics=(mod.AlterReplicaLogDirTopic(name="moving", partitions=(0,)),),
                    ),
                    mod.AlterReplicaLogDir(
                        path="relative/dir",
                        topics=(mod.AlterReplicaLogDirTopic(name="moving", partitions=(1,)),),
                    ),
                    mod.AlterReplicaLogDir(
                        path=str(dirs[0]) + "\x00",
                        topics=(mod.AlterReplicaLogDirTopic(name="nul", partitions=(0,)),),
                    ),
                )
                resp = raw.call(34, version, dirs=req_dirs)
            finally:
                raw.close()
            codes = {
                (t.topic_name, p.partition_index): p.error_code.value
                for t in resp.results
                for p in t.partitions
            }
            assert codes == {("moving", 0): 0, ("moving", 1): 57, ("nul", 0): 57}, (version, codes)
        # The CLI: moving partition 1 back to the first directory; a bad dir is one line.
        cli = [sys.executable, "-c", "from broker.cli import main; main()", "log-dirs", "move"]
        args = ["-b", b.bootstrap, "--topic", "moving", "--partition", "1", "--broker", "0"]
        out = subprocess.run(
            [*cli, *args, "--dir", str(dirs[0])], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0 and "moving moving-1" in out.stdout, out.stderr
        deadline = time.monotonic() + 15
        while not (dirs[0] / "moving-1").is_dir() or (dirs[1] / "moving-1").exists():
            assert time.monotonic() < deadline, "moving-1 did not move"
            time.sleep(0.1)
        out = subprocess.run(
            [*cli, *args, "--dir", str(tmp_path / "nowhere")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 1 and "LogDirNotFound" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr

        assert b.stop() == 0
        b.start()  # found in its new directory
        more = produce(b.bootstrap, "moving", {0: [b"after-restart"]})
        assert more == [None]
        assert consume(b.bootstrap, "moving", [0])[0] == acked + [b"after-restart"]
    finally:
        b.stop()
