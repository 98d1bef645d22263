"""Retention (retention.ms, retention.bytes), delete_before (DeleteRecords), truncate_to."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import fastlog
from fastlog import Log
from fastlog.log import LOG_START_OFFSET_CHECKPOINT

NOW = time.time_ns() // 1_000_000


def _segment_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.glob("*.log"))


def test_retention_ms_deletes_old_segments_oldest_first(tmp_path: Path):
    day = 86_400_000
    with Log(tmp_path, segment_bytes=1000, retention_ms=-1) as log:
        for age_days in (30, 20, 10, 1, 0):
            for _ in range(3):
                log.append_batch([(None, b"x" * 100, None, NOW - age_days * day)] * 3)
        log.roll()
        n_before = len(log.segments)
        assert n_before >= 6
        log.update_config(retention_ms=15 * day)
        deleted = log.enforce_retention()
        assert deleted > 0
        # nothing left whose newest record is older than 15 days
        for seg in log.segments[:-1]:
            assert seg.largest_timestamp >= NOW - 15 * day
        assert log.start_offset == log.segments[0].base_offset
        recs = list(log.read())
        assert recs[0].offset == log.start_offset
        assert all(r.timestamp >= NOW - 20 * day for r in recs)
        assert any(r.timestamp == NOW - 10 * day for r in recs)
        with pytest.raises(fastlog.OffsetOutOfRangeError):
            log.read(0)


def test_retention_ms_everything_expired_keeps_an_empty_active_segment(tmp_path: Path):
    with Log(tmp_path, segment_bytes=1000, retention_ms=-1) as log:
        for _ in range(20):
            log.append(b"x" * 100, timestamp=1000)
        end = log.end_offset
        log.update_config(retention_ms=60_000)
        log.enforce_retention()
        assert (log.start_offset, log.end_offset) == (end, end)
        assert len(log.segments) == 1 and log.segments[0].size == 0
        assert list(log.read()) == []
        assert log.append(b"new") == end
    with Log(tmp_path) as log:
        assert (log.start_offset, log.end_offset) == (end, end + 1)


def test_retention_applied_on_roll(tmp_path: Path):
    with Log(tmp_path, segment_bytes=500, retention_ms=1000) as log:
        for _ in range(10):
            log.append(b"x" * 100, timestamp=5)  # ancient
        for _ in range(10):
            log.append(b"y" * 100)
        assert all(r.value == b"y" * 100 for r in log.read())


def test_retention_bytes(tmp_path: Path):
    with Log(tmp_path, segment_bytes=1000, retention_ms=-1) as log:
        for i in range(60):
            log.append(b"%03d" % i + b"x" * 97)
        sizes = [s.size for s in log.segments]
        total = sum(sizes)
        log.update_config(retention_bytes=total - sizes[0] - sizes[1])
        assert log.enforce_retention() == 2
        assert log.size_bytes == total - sizes[0] - sizes[1]
        # Kafka deletes a segment only while the log stays >= retention.bytes without it
        remaining = total - sizes[0] - sizes[1]
        log.update_config(retention_bytes=remaining - sizes[2] - 1)
        assert log.enforce_retention() == 1  # oldest first, whole segments only
        assert log.size_bytes == remaining - sizes[2]
        assert [r.value[:3] for r in log.read()] == [
            b"%03d" % i for i in range(log.start_offset, 60)
        ]


def test_delete_policy_off_keeps_data(tmp_path: Path):
    with Log(tmp_path, segment_bytes=500, retention_ms=1, cleanup_policy="compact") as log:
        for i in range(20):
            log.append(b"x" * 100, key=b"%d" % i, timestamp=5)
        assert log.enforce_retention() == 0
        assert log.start_offset == 0


def test_delete_before(tmp_path: Path):
    with Log(tmp_path, segment_bytes=600) as log:
        for i in range(50):
            log.append(b"v%d" % i + b"." * 60)
        segs = len(log.segments)
        assert log.delete_before(23) == 23
        assert log.start_offset == 23
        assert len(log.segments) < segs
        assert log.segments[0].base_offset <= 23
        assert [r.offset for r in log.read()][:2] == [23, 24]
        with pytest.raises(fastlog.OffsetOutOfRangeError):
            log.read(22)
        assert log.delete_before(10) == 23  # never moves back
        with pytest.raises(fastlog.OffsetOutOfRangeError):
            log.delete_before(51)
    assert (tmp_path / LOG_START_OFFSET_CHECKPOINT).exists()
    with Log(tmp_path, segment_bytes=600) as log:
        assert log.start_offset == 23
        assert next(iter(log.read())).offset == 23


def test_delete_before_end(tmp_path: Path):
    with Log(tmp_path, segment_bytes=600) as log:
        for i in range(30):
            log.append(b"v%d" % i + b"." * 60)
        log.delete_before(30)
        assert (log.start_offset, log.end_offset) == (30, 30)
        assert list(log.read()) == []


@pytest.mark.parametrize("target", [0, 1, 5, 13, 14, 15, 29, 40])
def test_truncate_to(tmp_path: Path, target: int):
    with Log(tmp_path, segment_bytes=400) as log:
        for b in range(10):
            log.append_batch([b"%d" % (b * 3 + i) for i in range(3)])
        assert log.end_offset == 30
        log.truncate_to(target)
        want = min(target, 30)
        assert log.end_offset == want
        assert [r.value for r in log.read()] == [b"%d" % i for i in range(want)]
        assert log.append(b"next") == want
    with Log(tmp_path, segment_bytes=400) as log:
        assert log.end_offset == want + 1
        assert [r.value for r in log.read()][-1] == b"next"


def test_truncate_below_start_restarts_log(tmp_path: Path):
    with Log(tmp_path, segment_bytes=400) as log:
        for i in range(30):
            log.append(b"v%d" % i)
        log.delete_before(20)
        log.truncate_to(10)
        assert (log.start_offset, log.end_offset) == (10, 10)
        assert log.append(b"x") == 10


def test_reader_overtaken_by_retention_is_told(tmp_path: Path):
    with Log(tmp_path, segment_bytes=500) as log:
        for i in range(100):
            log.append(b"v%03d" % i + b"." * 50)
        it = log.read(0)
        first = [next(it) for _ in range(3)]
        assert [r.offset for r in first] == [0, 1, 2]
        for _ in range(10):
            next(it)
        log.delete_before(60)
        with pytest.raises(fastlog.OffsetOutOfRangeError, match="deleted while being read"):
            list(it)


def test_truncate_fully_and_start_at(tmp_path: Path):
    with Log(tmp_path, segment_bytes=300) as log:
        for i in range(20):
            log.append(b"v%d" % i)
        log.truncate_fully_and_start_at(1000)  # past the end: a follower catching up
        assert (log.start_offset, log.end_offset) == (1000, 1000)
        assert list(log.read()) == []
        assert log.append(b"x") == 1000
    with Log(tmp_path) as log:
        assert (log.start_offset, log.end_offset) == (1000, 1001)
        assert [r.value for r in log.read()] == [b"x"]
