"""OffsetIndex / TimeIndex against a linear scan of the segment, and their file formats."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastlog import Log, OffsetIndex, TimeIndex


def _batches(log: Log):
    """(segment, position, base_offset, last_offset, max_timestamp) by a linear walk."""
    out = []
    for seg in log.segments:
        for b in seg.walk(0):
            out.append((seg, b.position, b.base_offset, b.last_offset, b.max_timestamp))
    return out


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=60),
    interval=st.sampled_from([0, 50, 300, 4096]),
    value_len=st.integers(min_value=0, max_value=200),
)
def test_offset_lookup_matches_linear_scan(tmp_path_factory, sizes, interval, value_len):
    d = tmp_path_factory.mktemp("idx")
    with Log(d, index_interval_bytes=interval, segment_bytes=5000, retention_ms=-1) as log:
        for n in sizes:
            log.append_batch([b"v" * value_len] * n)
        batches = _batches(log)
        for offset in range(log.end_offset):
            # linear: the batch holding the offset
            seg, pos, base, last, _ = next(b for b in batches if b[2] <= offset <= b[3])
            b = seg.translate_offset(offset)
            assert (b.position, b.base_offset, b.last_offset) == (pos, base, last)
            # the index entry never points past the batch
            idx_off, idx_pos = seg.offset_index.lookup(offset)
            assert idx_off <= offset and idx_pos <= pos
            # read(offset) starts exactly there
            assert next(iter(log.read(offset, max_records=1))).offset == offset


def test_index_entries_sparse_per_interval(tmp_path: Path):
    with Log(tmp_path, index_interval_bytes=4096) as log:
        for _ in range(500):
            log.append_batch([b"x" * 100] * 3)
        seg = log.segments[0]
        entries = [seg.offset_index.entry(i) for i in range(seg.offset_index.entries)]
        assert len(entries) > 10
        positions = [p for _, p in entries]
        gaps = [b - a for a, b in zip(positions, positions[1:], strict=False)]
        batch = seg.size // 500
        # one entry after each index.interval.bytes (at batch granularity)
        assert all(4096 < g <= 4096 + 2 * batch for g in gaps)
    raw = (tmp_path / f"{0:020d}.index").read_bytes()
    assert len(raw) == 8 * len(entries)
    for i, (off, pos) in enumerate(entries):
        assert struct.unpack_from(">ii", raw, 8 * i) == (off, pos)


def test_time_index_lookup_matches_linear_scan(tmp_path: Path):
    rng = random.Random(3)
    ts_list = []
    with Log(tmp_path, index_interval_bytes=100, segment_bytes=3000, retention_ms=-1) as log:
        t = 1_000_000
        for _ in range(300):
            t += rng.randrange(-50, 200)  # CreateTime need not be monotonic
            ts_list.append(t)
            log.append(b"r", timestamp=t)
        for target in sorted(rng.sample(range(min(ts_list) - 10, max(ts_list) + 10), 200)):
            # Kafka's semantics: the first segment whose max timestamp reaches the target,
            # then the first record in it at or after the target
            want = None
            for seg in log.segments:
                if seg.max_timestamp_so_far >= target:
                    offs = [
                        o for o in range(seg.base_offset, seg.next_offset) if ts_list[o] >= target
                    ]
                    want = offs[0]
                    break
            assert log.offset_for_timestamp(target) == want, target


def test_time_index_file_format(tmp_path: Path):
    with Log(tmp_path, index_interval_bytes=0, retention_ms=-1) as log:
        for i in range(10):
            log.append(b"x", timestamp=1000 + i * 10)
    raw = (tmp_path / f"{0:020d}.timeindex").read_bytes()
    entries = [struct.unpack_from(">qi", raw, 12 * i) for i in range(len(raw) // 12)]
    assert entries == [(1000 + i * 10, i) for i in range(1, 10)]


def test_index_classes_directly(tmp_path: Path):
    idx = OffsetIndex(tmp_path / "a.index", 100, 8 * 10)
    idx.make_active(8 * 10)
    for i in range(10):
        idx.append(100 + i * 5, i * 1000)
    assert idx.is_full
    assert idx.lookup(99) == (100, 0)
    assert idx.lookup(112) == (110, 2000)
    assert idx.lookup(10**9) == (145, 9000)
    assert idx.lookup_position(2500) == (110, 2000)
    idx.truncate_to(110)
    assert idx.entries == 2 and idx.last_entry() == (105, 1000)
    idx.trim()
    assert (tmp_path / "a.index").stat().st_size == 16
    idx.close()
    tix = TimeIndex(tmp_path / "a.timeindex", 100, 12 * 10)
    tix.make_active(120)
    tix.maybe_append(50, 101)
    tix.maybe_append(50, 102)  # not increasing: skipped
    tix.maybe_append(70, 103)
    assert tix.entries == 2
    assert tix.start_offset_for(60) == 101
    assert tix.start_offset_for(10) == 100
    assert tix.start_offset_for(99) == 103
    tix.close()


def test_active_index_grows_in_fallocated_steps(tmp_path: Path):
    from fastlog.index import INDEX_GROWTH_BYTES

    with Log(tmp_path, index_interval_bytes=0, segment_index_bytes=10 << 20) as log:
        for _ in range(20_000):  # an entry per batch from the second on
            log.append(b"x")
        idx = log.active_segment.offset_index
        size = idx.path.stat().st_size
        assert idx.entries == 19_999
        assert idx.entries * 8 <= size <= idx.entries * 8 + INDEX_GROWTH_BYTES
        assert os.stat(idx.path).st_blocks * 512 >= size  # allocated, not sparse
        assert log.offset_for_timestamp(0) == 0
        assert [r.offset for r in log.read(12_345, max_records=1)] == [12_345]
    assert (tmp_path / f"{0:020d}.index").stat().st_size == 19_999 * 8
