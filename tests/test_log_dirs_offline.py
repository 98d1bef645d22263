"""Log directories that are offline on a single broker (broker/log_dirs.py, KIP-112).

At start: a directory that cannot be used because of an I/O failure (a regular file where the
directory should be: mkdir fails with EEXIST / ENOTDIR, as Kafka's createAndValidateLogDirs
fails on a path that is not a directory; a meta.properties that cannot be read, EISDIR) is
offline and the broker starts with the others. Its partitions are not created anew elsewhere:
Produce and Fetch answer KAFKA_STORAGE_ERROR, Metadata lists the replica in offline_replicas
with the partition error KAFKA_STORAGE_ERROR, DescribeLogDirs reports the directory with
KAFKA_STORAGE_ERROR. A restart with the directory back serves what it held. Every directory
unusable, or meta.properties that are not valid text (a configuration error, not an I/O
failure), still refuse the start.

At run time (a full tmpfs, as tests/test_broker_log_dirs.py: root needed): Metadata and Fetch
of the failed directory's partition answer the same.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient, NewTopic
from support import free_port
from test_broker_fetch import list_offsets_request
from test_broker_log_dirs import (
    consume,
    describe_raw,
    fill,
    placement,
    produce,
    small_tmpfs,  # noqa: F401 - a fixture
    start,
)
from test_broker_metadata import metadata_request
from test_broker_network import RawClient
from test_broker_produce import fetch_request

pytestmark = pytest.mark.timeout(120)

STORAGE_ERROR = 56
UNKNOWN_TOPIC_OR_PARTITION = 3


def run_broker(dirs: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "broker", "--port", str(free_port()),
            "--data-dir", ",".join(str(d) for d in dirs),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip


def metadata(bootstrap: str, topic: str) -> dict[int, Any]:
    c = RawClient(bootstrap)
    try:
        resp = c.call(metadata_request(9, [topic], auto=False))
    finally:
        c.sock.close()
    (t,) = resp.topics
    return {p.partition_index: p for p in t.partitions}


def fetch_code(bootstrap: str, topic: str, partition: int) -> int:
    c = RawClient(bootstrap)
    try:
        resp = c.call(fetch_request(12, topic, partition, 0))
    finally:
        c.sock.close()
    return int(resp.responses[0].partitions[0].error_code.value)


def list_offsets_code(bootstrap: str, topic: str, partition: int) -> int:
    c = RawClient(bootstrap)
    try:
        (t,) = c.call(list_offsets_request(7, topic, -1, partition)).topics
    finally:
        c.sock.close()
    return int(t.partitions[0].error_code.value)


def client_metadata(bootstrap: str, topic: str) -> dict[int, Any]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    md = admin.list_topics(topic, timeout=10)
    return dict(md.topics[topic].partitions)


def check_offline_partition(bootstrap: str, topic: str, offline: int, online: list[int]) -> None:
    """What clients see of ``offline`` (in an offline dir) and of the ``online`` ones."""
    parts = metadata(bootstrap, topic)
    assert parts[offline].error_code.value == STORAGE_ERROR
    assert list(parts[offline].offline_replicas) == [0]
    for i in online:
        assert parts[i].error_code.value == 0 and list(parts[i].offline_replicas) == []
    seen = client_metadata(bootstrap, topic)
    assert seen[offline].error is not None
    assert seen[offline].error.code() == KafkaError.KAFKA_STORAGE_ERROR
    assert all(seen[i].error is None for i in online)
    assert fetch_code(bootstrap, topic, offline) == STORAGE_ERROR
    assert list_offsets_code(bootstrap, topic, offline) == STORAGE_ERROR
    for i in online:
        assert fetch_code(bootstrap, topic, i) == 0
        assert list_offsets_code(bootstrap, topic, i) == 0
    errs = produce(bootstrap, topic, {offline: [b"refused"] * 2})
    assert all(e is not None and e.code() == KafkaError.KAFKA_STORAGE_ERROR for e in errs), errs


def test_unusable_dir_at_start_is_offline_the_others_serve(tmp_path: Path) -> None:
    dirs = [tmp_path / "d0", tmp_path / "d1", tmp_path / "d2"]
    b = start(tmp_path, ["d0", "d1", "d2"])
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("jb", 3, 1)])["jb"].result(15)
        assert (dirs[1] / "jb-1").is_dir()
        sent = {p: [f"v{p}-{i}".encode() for i in range(5)] for p in range(3)}
        assert produce(b.bootstrap, "jb", sent) == [None] * 15
    finally:
        assert b.stop() == 0
    # The disk of d1 is gone: a regular file where the directory was (mkdir fails).
    dirs[1].rename(tmp_path / "d1.away")
    dirs[1].write_text("not a directory")

    b.start()
    try:
        out = b.output()
        assert str(dirs[1]) in out and "offline" in out, out[-3000:]
        check_offline_partition(b.bootstrap, "jb", 1, [0, 2])
        # The other directories serve as before, reads and writes.
        assert produce(b.bootstrap, "jb", {0: [b"more-0"], 2: [b"more-2"]}) == [None, None]
        got = consume(b.bootstrap, "jb", [0, 2])
        assert got == {0: sent[0] + [b"more-0"], 2: sent[2] + [b"more-2"]}
        # The offline partition was not created empty elsewhere.
        spread = {d: {n for n in v if n.startswith("jb-")} for d, v in placement(dirs[::2]).items()}
        assert spread == {"d0": {"jb-0"}, "d2": {"jb-2"}}
        # DescribeLogDirs: the directory with KAFKA_STORAGE_ERROR, the others their partitions.
        by_dir = {r.log_dir: r for r in describe_raw(b.bootstrap, 4).results}
        assert by_dir[str(dirs[1])].error_code.value == STORAGE_ERROR
        assert by_dir[str(dirs[1])].topics == ()
        for d, index in ((dirs[0], 0), (dirs[2], 2)):
            r = by_dir[str(d)]
            assert r.error_code.value == 0
            listed = {t.name: [p.partition_index for p in t.partitions] for t in r.topics}
            assert listed["jb"] == [index]
        # A new topic goes to the online directories.
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("fresh", 2, 1)])["fresh"].result(15)
        assert produce(b.bootstrap, "fresh", {0: [b"a"], 1: [b"b"]}) == [None, None]
        assert metadata(b.bootstrap, "fresh")[0].error_code.value == 0
        assert dirs[1].read_text() == "not a directory"
    finally:
        assert b.stop() == 0, b.output()[-3000:]

    # The disk is back: partition 1 serves what it held, nothing was seen twice.
    dirs[1].unlink()
    (tmp_path / "d1.away").rename(dirs[1])
    b.start()
    try:
        assert all(p.error_code.value == 0 for p in metadata(b.bootstrap, "jb").values())
        assert produce(b.bootstrap, "jb", {1: [b"back"]}) == [None]
        assert consume(b.bootstrap, "jb", [1]) == {1: sent[1] + [b"back"]}
    finally:
        b.stop()


def test_unreadable_meta_properties_is_offline_garbage_refuses(tmp_path: Path) -> None:
    """An I/O error reading meta.properties (here EISDIR) is a failure of that directory
    (Kafka takes it offline); meta.properties that are not text are a configuration error
    and refuse the start, as do directories that disagree."""
    dirs = [tmp_path / "d0", tmp_path / "d1"]
    b = start(tmp_path, ["d0", "d1"])
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("mp", 2, 1)])["mp"].result(15)
        assert produce(b.bootstrap, "mp", {0: [b"zero"], 1: [b"one"]}) == [None, None]
    finally:
        assert b.stop() == 0
    meta = dirs[1] / "meta.properties"
    original = meta.read_bytes()

    meta.write_bytes(b"\xff\xfe\x00garbage\x80\x81")
    r = run_broker(dirs)
    assert r.returncode == 1, r.stderr[-2000:]
    assert str(meta) in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]

    meta.unlink()
    meta.mkdir()  # reading it fails with an I/O error (EISDIR)
    b.start()
    try:
        assert "Is a directory" in b.output(), b.output()[-3000:]
        check_offline_partition(b.bootstrap, "mp", 1, [0])
        assert consume(b.bootstrap, "mp", [0]) == {0: [b"zero"]}
    finally:
        assert b.stop() == 0
    meta.rmdir()
    meta.write_bytes(original)
    b.start()
    try:
        assert consume(b.bootstrap, "mp", [0, 1]) == {0: [b"zero"], 1: [b"one"]}
    finally:
        b.stop()


def test_every_dir_unusable_refuses_start(tmp_path: Path) -> None:
    dirs = [tmp_path / "d0", tmp_path / "d1", tmp_path / "d2"]
    dirs[0].mkdir()
    for d in dirs[1:]:
        d.write_text("x")
    # d0 alone is usable: the broker starts with it.
    b = start(tmp_path, ["d0", "d1", "d2"])
    try:
        assert str(dirs[1]) in b.output() and str(dirs[2]) in b.output()
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("one", 2, 1)])["one"].result(15)
        assert produce(b.bootstrap, "one", {0: [b"a"], 1: [b"b"]}) == [None, None]
        assert {"one-0", "one-1"} <= placement([dirs[0]])["d0"]
    finally:
        assert b.stop() == 0
    # None usable: refused (the first holds the single-node metadata; a file there too).
    (dirs[0] / "meta.properties").unlink()
    (dirs[0] / "meta.properties").mkdir()
    r = run_broker(dirs)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "none of the log directories" in r.stderr and "Traceback" not in r.stderr, r.stderr
    for d in dirs:
        assert str(d) in r.stderr
    # The first one is where single-node mode keeps its topics: not usable, not started.
    r = run_broker([tmp_path / "d2", tmp_path / "d0"])
    assert r.returncode == 1 and "cluster metadata" in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr


def test_failed_dir_at_run_time_metadata_and_fetch(tmp_path: Path, small_tmpfs: Path) -> None:  # noqa: F811
    dirs = [tmp_path / "d0", tmp_path / "d1", small_tmpfs]
    b = start(tmp_path, dirs)
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("rt", 3, 1)])["rt"].result(15)
        assert (small_tmpfs / "rt-2").is_dir()
        assert produce(b.bootstrap, "rt", {p: [b"before"] for p in range(3)}) == [None] * 3
        assert fetch_code(b.bootstrap, "rt", 2) == 0
        assert all(p.error_code.value == 0 for p in metadata(b.bootstrap, "rt").values())
        fill(small_tmpfs)
        for i in range(200):
            (err,) = produce(b.bootstrap, "rt", {2: [b"x" * 3000 + str(i).encode()]})
            if err is not None:
                assert err.code() == KafkaError.KAFKA_STORAGE_ERROR, err
                break
        else:
            pytest.fail("the full directory never refused a write")
        check_offline_partition(b.bootstrap, "rt", 2, [0, 1])
        assert fetch_code(b.bootstrap, "rt", 7) == UNKNOWN_TOPIC_OR_PARTITION
        assert consume(b.bootstrap, "rt", [0, 1]) == {0: [b"before"], 1: [b"before"]}
        assert b.proc.poll() is None
    finally:
        b.stop()
