"""Disk full: the leader's data directory (a size-limited tmpfs) runs out of space under the
checked producer/consumer workload. The broker answers KAFKA_STORAGE_ERROR, announces the log
dir failure, and the controller moves leadership of its partitions to the other brokers,
which go on; the broker itself stays up. After space is freed and it restarts, it catches up
and rejoins every ISR."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
from pathlib import Path

import pytest

from cluster.conftest import Cluster, ZooKeeperServer, dump_logs, wait_until
from cluster.test_cluster_faults import DETECT, TOPIC, _full_isr, _run

pytestmark = pytest.mark.timeout(150)
TMPFS_SIZE = "64m"


def _mount_tmpfs(path: Path) -> str | None:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    return None if r.returncode == 0 else (r.stderr.strip() or "mount failed")


def _fill(path: Path) -> Path:
    """Write a filler file until the filesystem is full."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for chunk in (1 << 20, 4096, 1):
            block = b"\0" * chunk
            while True:
                try:
                    os.write(fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def test_leader_log_dir_full(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting tmpfs needs root")
    mounts = [tmp_path / f"broker-{n}" for n in (1, 2, 3)]
    mounted: list[Path] = []
    zk = c = None
    try:
        for m in mounts:
            why = _mount_tmpfs(m)
            if why is not None:
                pytest.skip(f"cannot mount tmpfs: {why}")
            mounted.append(m)
        (tmp_path / "zk").mkdir()
        zk = ZooKeeperServer(tmp_path / "zk").start()
        c = Cluster(zk, tmp_path)
        c.start()

        def fault() -> None:
            victim = c.leader(TOPIC, 0)
            filler = _fill(tmp_path / f"broker-{victim}")
            wait_until(
                lambda: all(
                    c.leader(TOPIC, p) != victim and victim not in c.state(TOPIC, p)["isr"]
                    for p in range(3)
                ),
                DETECT,
                "leadership moved off the full disk",
            )
            assert c.brokers[victim].proc.poll() is None  # still up, serving the rest
            assert "log directory offline" in c.output(victim)
            filler.unlink()
            c.brokers[victim].stop(signal.SIGTERM)
            c.start_broker(victim)
            _full_isr(c)

        try:
            _run(c, fault, "leader's log dir full")
        except BaseException:
            dump_logs(c)
            raise
    finally:
        if c is not None:
            c.stop()
        if zk is not None:
            zk.stop()
        for m in mounted:
            with contextlib.suppress(Exception):
                subprocess.run(["umount", "-l", str(m)], capture_output=True)
