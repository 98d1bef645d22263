"""Broker lifecycle: --config file, ready line, clean shutdown on SIGTERM/SIGINT, data dir
lock, and the periodic log maintenance (retention, compaction)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from support import BrokerProcess, free_port
from test_broker_fetch import list_offsets_request, produce
from test_broker_metadata import metadata_request
from test_broker_network import RawClient
from test_broker_produce import fetch_all


def read_to_end(c: RawClient, topic: str) -> list:
    """Every record up to the high watermark (a fetch returns one segment at a time)."""
    out: list = []
    offset = 0
    while True:
        p, records = fetch_all(c, topic, 0, offset)
        out += records
        if not records or offset >= p.high_watermark:
            return out
        offset = records[-1][0] + 1
        if offset >= p.high_watermark:
            return out


def test_config_file_ready_line_and_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    props = tmp_path / "server.properties"
    props.write_text("# test\nnum.partitions=2\nauto.create.topics.enable=true\nnode.id=0\n")
    b = BrokerProcess(
        data, free_port(), {"log.retention.hours": "1"}, ["--config", str(props)]
    ).start()
    c = RawClient(b.bootstrap)
    (t,) = c.call(metadata_request(12, ["from-config"])).topics
    assert len(t.partitions) == 2
    c.close()
    assert b.stop(signal.SIGTERM) == 0
    out = b.output()
    ready = [line for line in out.splitlines() if " ready: listener " in line]
    assert len(ready) == 1 and f":{b.port}" in ready[0] and str(data.resolve()) in ready[0]
    assert (data / ".kafka_cleanshutdown").exists()
    assert (data / "meta.properties").read_text().count("cluster.id=") == 1
    b.start()  # the marker is consumed on start
    assert not (data / ".kafka_cleanshutdown").exists()
    assert b.stop(signal.SIGINT) == 0
    assert (data / ".kafka_cleanshutdown").exists()


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "broker",
            "--data-dir",
            str(tmp_path),
            "--override",
            "num.partitions=lots",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0
    assert "num.partitions" in r.stderr and "Traceback" not in r.stderr


def test_data_dir_locked(make_broker, tmp_path: Path) -> None:
    b = make_broker()
    r = subprocess.run(
        [sys.executable, "-m", "broker", "--data-dir", str(b.data_dir), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert "in use" in r.stderr


def test_retention_runs_periodically(make_broker) -> None:
    b = make_broker(
        {
            "log.segment.bytes": "1024",
            "log.retention.ms": "1",
            "log.retention.check.interval.ms": "200",
            "num.partitions": "1",
        }
    )
    c = RawClient(b.bootstrap)
    for _ in range(20):
        produce(c, "retained", [b"x" * 300])
    deadline = time.monotonic() + 30
    earliest = 0
    while time.monotonic() < deadline:
        (t,) = c.call(list_offsets_request(7, "retained", -2)).topics
        earliest = t.partitions[0].offset
        if earliest > 0:
            break
        time.sleep(0.3)
    assert earliest > 0, "old segments were not deleted by retention"
    (t,) = c.call(list_offsets_request(7, "retained", -1)).topics
    assert t.partitions[0].offset == 20
    c.close()


def test_compaction_runs_periodically(make_broker) -> None:
    b = make_broker(
        {
            "log.segment.bytes": "1024",
            "log.cleanup.policy": "compact",
            "log.cleaner.backoff.ms": "200",
            "log.cleaner.min.cleanable.ratio": "0.01",
            "num.partitions": "1",
        }
    )
    c = RawClient(b.bootstrap)
    from test_broker_produce import partition_response, produce_request

    from fastlog import _core

    for i in range(40):
        data = _core.build_batch(
            [(b"key-%d" % (i % 2), b"v%d" % i + b"." * 100, None, int(time.time() * 1000))]
        )
        assert (
            partition_response(c.call(produce_request(9, "compacted", 0, data))).error_code.value
            == 0
        )
    keyless = _core.build_batch([(None, b"no key", None, 1000)])
    assert (
        partition_response(c.call(produce_request(9, "compacted", 0, keyless))).error_code.value
        == 87
    )
    deadline = time.monotonic() + 30
    count = 40
    while time.monotonic() < deadline:
        count = len(read_to_end(c, "compacted"))
        if count < 40:
            break
        time.sleep(0.3)
    assert count < 40, "the cleaner never compacted the topic"
    records = read_to_end(c, "compacted")
    latest = {}
    for _o, _t, k, v, _h in records:
        latest[k] = v
    assert latest[b"key-0"].startswith(b"v38") and latest[b"key-1"].startswith(b"v39")
    c.close()


def test_stale_partition_dir_of_a_deleted_topic_is_not_reused(make_broker) -> None:
    """A crash between the metadata change of DeleteTopics and the log deletion leaves the
    old directories: a re-created topic of the same name must not show the old records."""
    import json

    b = make_broker({"num.partitions": "1"})
    c = RawClient(b.bootstrap)
    produce(c, "reborn", [b"old-1", b"old-2"])
    c.close()
    b.stop()
    assert "topic_id:" in (b.data_dir / "reborn-0" / "partition.metadata").read_text()
    path = b.data_dir / "cluster-metadata.json"
    state = json.loads(path.read_text())
    del state["topics"]["reborn"]  # the metadata forgot the topic, the directory stayed
    path.write_text(json.dumps(state))
    b.start()
    c = RawClient(b.bootstrap)
    assert produce(c, "reborn", [b"new"]) == 0
    _, records = fetch_all(c, "reborn")
    assert [r[3] for r in records] == [b"new"]
    c.close()


def test_startup_errors_are_one_line(make_broker, tmp_path: Path) -> None:
    b = make_broker()
    # the port is taken by the running broker
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "broker",
            "--data-dir",
            str(tmp_path / "other"),
            "--port",
            str(b.port),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "error:" in r.stderr and "Traceback" not in r.stderr
    # a corrupt metadata file
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "cluster-metadata.json").write_text("{not json")
    r = subprocess.run(
        [sys.executable, "-m", "broker", "--data-dir", str(bad), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "cluster-metadata.json" in r.stderr and "Traceback" not in r.stderr
