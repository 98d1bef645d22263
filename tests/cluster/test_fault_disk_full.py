"""Fault: a broker's log directory runs out of space (Kafka's log dir failure, KIP-112).

Each broker's data directory is a size-limited tmpfs mount (``mount -t tmpfs -o size=8m``;
needs root, as CI has). Under the checked workload (idempotent acks=all producer, RF 3,
min.insync.replicas 2, a consumer group), the data directory of the leader of partition 0
is filled with a ballast file until writes fail with ENOSPC. The broker must then:

- answer the failed write with an error (never acknowledge what it could not write),
- take its log directory offline: its partitions stop being served there (no more appends,
  no replica fetching into the full directory) and the controller elects other leaders and
  drops it from the ISRs,
- stay up (still registered, still answering requests); the other two brokers go on.

The whole history is then checked (cluster/checker.py): nothing acknowledged lost,
duplicated or reordered; the window without any acknowledgement is printed.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kazoo.exceptions import NoNodeError

from cluster.checker import check, unavailability
from cluster.conftest import SESSION_TIMEOUT_MS, Cluster, ZooKeeperServer, dump_logs, wait_until
from cluster.workload import Workload, create_topic

pytestmark = pytest.mark.timeout(90)

TOPIC = "diskfull"
TMPFS_SIZE = "8m"
DETECT = SESSION_TIMEOUT_MS / 1000 + 15


def _mount_tmpfs(path: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` on ``path``; None when mounted, else why not."""
    if os.geteuid() != 0:
        return "a tmpfs mount needs root"
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        return f"mount -t tmpfs not permitted here: {r.stderr.strip()}"
    return None


def _umount(path: Path) -> None:
    r = subprocess.run(["umount", str(path)], capture_output=True)
    if r.returncode != 0:  # still busy (a broker that would not die): detach it lazily
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path) -> int:
    """Write a ballast file into ``path`` until the filesystem answers ENOSPC; returns the
    bytes written."""
    ballast = path / "ballast.fill"
    written = 0
    chunk = 1 << 20
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while chunk >= 512:
            try:
                written += os.write(fd, b"\0" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk //= 2  # the last few pages
    finally:
        os.close(fd)
    return written


def create_after(c: Cluster, victim: int) -> None:
    """A topic created while the directory is offline: the victim opens nothing there, and
    where the assignment makes it leader or ISR member it leaves (leaders on the others)."""
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("after", 3, 3)])["after"].result(15)

    def settled() -> bool:
        for p in range(3):
            try:
                st = c.state("after", p)
            except NoNodeError:
                return False
            if st["leader"] in (victim, -1) or victim in st["isr"] or len(st["isr"]) != 2:
                return False
        return True

    wait_until(settled, 10, "the new topic led and replicated by the two others")
    assert not list(c.brokers[victim].data_dir.glob("after-*"))
    assert c.brokers[victim].proc.poll() is None


@pytest.fixture
def tmpfs_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Three brokers on ZooKeeper, each broker's data directory its own tmpfs mount."""
    (tmp_path / "zk").mkdir()
    mounted: list[Path] = []
    zk: ZooKeeperServer | None = None
    c: Cluster | None = None
    try:
        zk = ZooKeeperServer(tmp_path / "zk").start()
        c = Cluster(zk, tmp_path)
        for b in c.brokers.values():
            why = _mount_tmpfs(b.data_dir, TMPFS_SIZE)
            if why is not None:
                pytest.skip(why)
            mounted.append(b.data_dir)
        try:
            c.start()
        except BaseException:
            dump_logs(c)
            raise
        yield c
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            dump_logs(c)
    finally:
        if c is not None:
            c.stop()
        if zk is not None:
            zk.stop()
        for path in mounted:
            _umount(path)


def test_log_dir_full(tmpfs_cluster: Cluster) -> None:
    c = tmpfs_cluster
    create_topic(c, TOPIC, 3, **{"min.insync.replicas": "2"})
    w = Workload(c, TOPIC).start()
    time.sleep(2.0)

    victim = c.leader(TOPIC, 0)
    vb = c.brokers[victim]
    t_fault = time.monotonic()
    filled = fill(vb.data_dir)

    def partitions() -> list[tuple[str, int]]:
        offsets = int(c.overrides["offsets.topic.num.partitions"])
        return [(TOPIC, p) for p in range(3)] + [("__consumer_offsets", p) for p in range(offsets)]

    def moved_off() -> bool:
        for topic, p in partitions():
            st = c.state(topic, p)
            if st["leader"] in (victim, -1) or victim in st["isr"]:
                return False
        return True

    try:
        wait_until(moved_off, DETECT, f"leadership and ISR membership off broker {victim}")
        t_moved = time.monotonic() - t_fault
        # Writes go on on the two others. The victim must stay out: it does not fetch into
        # the full directory, so no leader counts it back into an ISR (not even of the idle
        # __consumer_offsets partitions, where it would look caught up).
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            assert moved_off(), [c.state(t, p) for t, p in partitions()]
            time.sleep(0.1)
        create_after(c, victim)
        history = w.stop()
    except BaseException:
        w.stop(catch_up=0)
        raise

    report = check(history)
    window = unavailability(history, t_fault, w.produced_until)
    print(
        f"\n[log dir full: broker {victim}, ballast {filled >> 10} KiB] leadership moved in "
        f"{t_moved:.2f}s, unavailability {window:.2f}s; {report.summary()}"
    )
    assert report.ok, report.details()
    assert report.acked > 0 and not w.fatal, (report.summary(), w.fatal)
    assert any(s.acked and s.answered_at > t_fault + window for s in history.sends.values())

    # The broker with the full disk did not crash and kept its ZooKeeper session.
    assert vb.proc.poll() is None, vb.output()[-3000:]
    assert victim in c.live()
    assert moved_off(), [c.state(t, p) for t, p in partitions()]
    out = vb.output()
    assert "No space left on device" in out, out[-3000:]
    assert "log directory" in out and "offline" in out, out[-3000:]
    # It stopped writing there at the first failure: no replica fetcher kept retrying appends
    # into the full directory (each would log this line, every half second per partition).
    retries = out.count("cannot append from leader")
    assert retries <= 2, out[-3000:]
