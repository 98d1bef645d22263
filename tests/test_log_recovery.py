"""Crash recovery: torn and corrupt tails, lost or corrupt indexes, kill -9 of a writer."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fastlog
from fastlog import Log
from fastlog.log import CLEAN_SHUTDOWN_FILE, RECOVERY_POINT_CHECKPOINT

T0 = time.time_ns() // 1_000_000 - 3_600_000  # recent: inside the default retention


def _fill(path: Path, n_batches: int = 30, per: int = 10, **cfg) -> list[bytes]:
    values = []
    with Log(path, **cfg) as log:
        for b in range(n_batches):
            vals = [b"b%d-r%d" % (b, i) for i in range(per)]
            log.append_batch([(None, v, None, T0 + 1000 * b + i) for i, v in enumerate(vals)])
            values += vals
    return values


def _crash(path: Path) -> None:
    """Make the last close look like a crash: no clean-shutdown marker."""
    (path / CLEAN_SHUTDOWN_FILE).unlink()


def _last_log(path: Path) -> Path:
    return sorted(path.glob("*.log"))[-1]


def test_clean_shutdown_marker(tmp_path: Path):
    _fill(tmp_path)
    assert (tmp_path / CLEAN_SHUTDOWN_FILE).exists()
    log = Log(tmp_path)
    assert not (tmp_path / CLEAN_SHUTDOWN_FILE).exists()  # removed while open
    assert log.recovery_point == log.end_offset
    log.close()
    assert (tmp_path / CLEAN_SHUTDOWN_FILE).exists()


@pytest.mark.parametrize("cut", [1, 11, 30, 60])
def test_torn_tail_truncated(tmp_path: Path, cut: int, caplog):
    values = _fill(tmp_path, segment_bytes=1500)
    seg = _last_log(tmp_path)
    size = seg.stat().st_size
    with open(seg, "r+b") as f:
        f.truncate(size - cut)  # mid-batch
    _crash(tmp_path)
    with caplog.at_level(logging.WARNING, logger="fastlog"):
        with Log(tmp_path, segment_bytes=1500) as log:
            got = [r.value for r in log.read()]
            # exactly the last batch is lost, everything before it is intact
            assert got == values[:-10]
            assert log.end_offset == len(values) - 10
            assert log.append(b"after") == len(values) - 10
    assert "truncated" in caplog.text


def test_garbage_tail_truncated(tmp_path: Path, caplog):
    values = _fill(tmp_path)
    with open(_last_log(tmp_path), "ab") as f:
        f.write(os.urandom(500))
    _crash(tmp_path)
    with caplog.at_level(logging.WARNING, logger="fastlog"):
        with Log(tmp_path) as log:
            assert [r.value for r in log.read()] == values
    assert "truncated 500 bytes" in caplog.text


def test_flipped_byte_in_last_batch_truncates_from_it(tmp_path: Path):
    values = _fill(tmp_path)
    seg = _last_log(tmp_path)
    data = bytearray(seg.read_bytes())
    infos = fastlog._core.scan_batches(data)
    data[infos[-3].position + 70] ^= 0xFF  # inside the third batch from the end, under the CRC
    seg.write_bytes(data)
    _crash(tmp_path)
    with Log(tmp_path) as log:
        assert [r.value for r in log.read()] == values[:-30]


def test_corruption_below_recovery_point_found_by_readers(tmp_path: Path):
    """Clean shutdown: nothing is re-validated on open, but reads check CRCs."""
    _fill(tmp_path)
    seg = _last_log(tmp_path)
    data = bytearray(seg.read_bytes())
    data[200] ^= 0xFF
    seg.write_bytes(data)
    with Log(tmp_path) as log:
        with pytest.raises(fastlog.CorruptRecordError):
            list(log.read())


def test_only_past_recovery_point_revalidated(tmp_path: Path):
    _fill(tmp_path, segment_bytes=1000)
    with Log(tmp_path, segment_bytes=1000) as log:
        rp = log.recovery_point
        first_seg = log.segments[0]
        assert rp == log.end_offset
        first_path = first_seg.log.path
    # corrupt an old, flushed segment and pretend a crash with the recovery point at the end
    data = bytearray(first_path.read_bytes())
    data[100] ^= 0xFF
    first_path.write_bytes(data)
    _crash(tmp_path)
    with Log(tmp_path, segment_bytes=1000) as log:
        # the old segment was trusted, not truncated
        assert first_path.stat().st_size == len(data)
        assert log.end_offset == rp


def test_stale_recovery_point_revalidates_more(tmp_path: Path):
    values = _fill(tmp_path, segment_bytes=1000)
    (tmp_path / RECOVERY_POINT_CHECKPOINT).write_text("0\n1\nx 0 0\n")
    _crash(tmp_path)
    with Log(tmp_path, segment_bytes=1000) as log:
        assert [r.value for r in log.read()] == values


@pytest.mark.parametrize("suffix", [".index", ".timeindex"])
def test_deleted_index_rebuilt(tmp_path: Path, suffix: str, caplog):
    values = _fill(tmp_path, n_batches=200, index_interval_bytes=64)
    idx = tmp_path / f"{0:020d}{suffix}"
    before = idx.read_bytes()
    assert len(before) > 100
    idx.unlink()
    with caplog.at_level(logging.WARNING, logger="fastlog"):
        with Log(tmp_path, index_interval_bytes=64) as log:
            assert [r.value for r in log.read(1234, max_records=2)] == values[1234:1236]
            assert log.offset_for_timestamp(0) == 0
            assert log.offset_for_timestamp(T0 + 150_005) == 1505
    assert "rebuilding" in caplog.text
    assert idx.read_bytes() == before


@pytest.mark.parametrize("damage", ["garbage", "partial", "zeros"])
def test_corrupt_index_rebuilt(tmp_path: Path, damage: str, caplog):
    values = _fill(tmp_path, n_batches=200, index_interval_bytes=64)
    idx = tmp_path / f"{0:020d}.index"
    good = idx.read_bytes()
    if damage == "garbage":
        idx.write_bytes(os.urandom(len(good)))
    elif damage == "partial":
        idx.write_bytes(good[:-3])
    else:
        idx.write_bytes(good + bytes(800))  # a preallocated index that was never trimmed
    with caplog.at_level(logging.WARNING, logger="fastlog"):
        with Log(tmp_path, index_interval_bytes=64) as log:
            for start in (0, 555, 1999):
                assert [r.value for r in log.read(start, max_records=1)] == [values[start]]
    assert "rebuilding" in caplog.text
    assert idx.read_bytes() == good


def test_leftover_cleaner_files_removed(tmp_path: Path):
    _fill(tmp_path)
    (tmp_path / f"{0:020d}.log.cleaned").write_bytes(b"junk")
    (tmp_path / f"{0:020d}.index.cleaned").write_bytes(b"junk")
    (tmp_path / f"{999:020d}.index").write_bytes(b"")  # index without a segment
    (tmp_path / f"{0:020d}.timeindex.swap").write_bytes(b"")  # swap index without its log
    with Log(tmp_path):
        pass
    names = {p.name for p in tmp_path.iterdir()}
    assert not any(n.endswith((".cleaned", ".swap")) for n in names)
    assert f"{999:020d}.index" not in names


WRITER = r"""
import sys, fastlog
path, mode = sys.argv[1], sys.argv[2]
log = fastlog.Log(path, segment_bytes=50_000, **({"flush_messages": 1} if mode == "flush" else {}))
i = log.end_offset
while True:
    off = log.append_batch([b"r%d" % (i + j) for j in range(7)])
    assert off == i
    i += 7
    # acknowledged: the append returned
    sys.stdout.write("%d\n" % i)
    sys.stdout.flush()
"""


@pytest.mark.parametrize("mode", ["os", "flush"])
def test_kill_9_of_writer_loses_nothing_acknowledged(tmp_path: Path, mode: str):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    data = tmp_path / "log"
    acked = 0
    for _round in range(2):
        p = subprocess.Popen(
            [sys.executable, str(script), str(data), mode], stdout=subprocess.PIPE, text=True
        )
        assert p.stdout is not None
        deadline = time.monotonic() + 60
        while True:
            line = p.stdout.readline()
            assert line, "writer died"
            acked = int(line)
            if acked > 3000 * (_round + 1) or time.monotonic() > deadline:
                break
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
        acked = max(acked, int(line))
        assert not (data / CLEAN_SHUTDOWN_FILE).exists()
        with Log(data, segment_bytes=50_000) as log:
            assert log.end_offset >= acked
            got = [r.value for r in log.read()]
            assert got == [b"r%d" % i for i in range(log.end_offset)]
            assert len(log.segments) > 1


def test_recovered_segments_get_trimmed_indexes(tmp_path: Path):
    _fill(tmp_path, n_batches=60, segment_bytes=1000, index_interval_bytes=100)
    (tmp_path / RECOVERY_POINT_CHECKPOINT).unlink()  # everything counts as unflushed
    _crash(tmp_path)
    with Log(tmp_path, segment_bytes=1000, index_interval_bytes=100) as log:
        segs = log.segments
        assert len(segs) > 3
        for seg in segs[:-1]:
            assert seg.offset_index.path.stat().st_size == 8 * seg.offset_index.entries
            assert seg.time_index.path.stat().st_size == 12 * seg.time_index.entries
    with Log(tmp_path, segment_bytes=1000, index_interval_bytes=100, retention_ms=-1) as log:
        assert log.end_offset == 600


def test_inactive_segments_release_index_descriptors(tmp_path: Path):
    _fill(tmp_path, n_batches=60, segment_bytes=1000)
    before = len(os.listdir("/proc/self/fd"))
    with Log(tmp_path, segment_bytes=1000) as log:
        n = len(log.segments)
        opened = len(os.listdir("/proc/self/fd")) - before
        # an inactive segment: its .log, plus the descriptor Python's mmap keeps per mapped
        # index (its own dup); the index files' own descriptors are closed
        assert opened <= 3 * n + 3


@pytest.mark.parametrize("seed", range(40))
def test_random_damage_never_crashes(tmp_path: Path, seed: int):
    """Flip, cut or overwrite random bytes of random files; opening and reading either works
    or raises the module's own errors, and an unclean open always yields a readable log."""
    import random

    rng = random.Random(seed)
    _fill(tmp_path, n_batches=40, segment_bytes=1500, index_interval_bytes=100)
    files = sorted(p for p in tmp_path.iterdir() if p.suffix in (".log", ".index", ".timeindex"))
    for _ in range(rng.randrange(1, 4)):
        p = rng.choice(files)
        data = bytearray(p.read_bytes())
        what = rng.choice(["flip", "cut", "garbage", "zero"])
        if data and what == "flip":
            for _ in range(rng.randrange(1, 5)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif what == "cut":
            data = data[: rng.randrange(len(data) + 1)]
        elif what == "garbage":
            data += rng.randbytes(rng.randrange(1, 200))
        elif data:
            i = rng.randrange(len(data))
            data[i : i + 64] = bytes(len(data[i : i + 64]))
        p.write_bytes(data)
    if rng.random() < 0.5:
        _crash(tmp_path)
        with Log(tmp_path, segment_bytes=1500, index_interval_bytes=100) as log:
            # unclean: every segment past the recovery point was re-validated; damage in
            # older segments can still surface as CorruptRecordError on read
            try:
                offsets = [r.offset for r in log.read()]
                assert offsets == sorted(set(offsets))
            except fastlog.CorruptRecordError:
                pass
            log.append(b"still writable")
    else:
        try:
            with Log(tmp_path, segment_bytes=1500, index_interval_bytes=100) as log:
                offsets = [r.offset for r in log.read()]
                assert offsets == sorted(set(offsets))
                log.append(b"still writable")
        except fastlog.FastlogError:
            pass
