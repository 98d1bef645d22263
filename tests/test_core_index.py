"""Offset and time index binary searches, checked against a linear scan (hypothesis)."""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastlog import _core


def offset_index(rel_offsets: list[int], spare_slots: int = 0) -> bytes:
    # Kafka preallocates index files: unused slots after the entries are zeros
    return b"".join(struct.pack(">ii", r, i * 4096) for i, r in enumerate(rel_offsets)) + bytes(
        8 * spare_slots
    )


def time_index(stamps: list[int], spare_slots: int = 0) -> bytes:
    return b"".join(struct.pack(">qi", t, i) for i, t in enumerate(stamps)) + bytes(
        12 * spare_slots
    )


def linear_offset(rel_offsets: list[int], target: int) -> int:
    found = -1
    for i, r in enumerate(rel_offsets):
        if r <= target:
            found = i
    return found


def linear_time(stamps: list[int], target: int) -> int:
    for i, t in enumerate(stamps):
        if t >= target:
            return i
    return -1


sorted_offsets = st.lists(st.integers(0, 2**31 - 1), max_size=300, unique=True).map(sorted)
sorted_stamps = st.lists(st.integers(-1, 2**63 - 1), max_size=300).map(sorted)


@settings(max_examples=300, deadline=None)
@given(
    sorted_offsets,
    st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=30),
    st.integers(0, 5),
)
def test_offset_lookup_matches_linear_scan(rel_offsets, targets, spare) -> None:
    index = offset_index(rel_offsets, spare)
    for target in targets + [r for r in rel_offsets[:5]] + [r + 1 for r in rel_offsets[-5:]]:
        assert _core.offset_index_lookup(index, len(rel_offsets), target) == linear_offset(
            rel_offsets, target
        )


@settings(max_examples=300, deadline=None)
@given(
    sorted_stamps,
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=30),
    st.integers(0, 5),
)
def test_time_lookup_matches_linear_scan(stamps, targets, spare) -> None:
    index = time_index(stamps, spare)
    for target in targets + stamps[:5] + [t - 1 for t in stamps[-5:]]:
        assert _core.time_index_lookup(index, len(stamps), target) == linear_time(stamps, target)


def test_lookups_on_an_mmapped_index_file(tmp_path: Path) -> None:
    rel = list(range(0, 30000, 3))
    path = tmp_path / "00000000000000000000.index"
    path.write_bytes(offset_index(rel, spare_slots=1000))
    tpath = tmp_path / "00000000000000000000.timeindex"
    stamps = [1_700_000_000_000 + 7 * i for i in range(len(rel))]
    tpath.write_bytes(time_index(stamps, spare_slots=1000))
    with open(path, "rb") as f, open(tpath, "r+b") as tf:
        with (
            mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m,
            mmap.mmap(tf.fileno(), 0) as tm,
        ):
            assert _core.offset_index_lookup(m, len(rel), 0) == 0
            assert _core.offset_index_lookup(m, len(rel), 1) == 0
            assert _core.offset_index_lookup(m, len(rel), 3) == 1
            assert _core.offset_index_lookup(m, len(rel), 10**9) == len(rel) - 1
            assert _core.offset_index_lookup(m, len(rel), -1) == -1
            assert _core.time_index_lookup(tm, len(stamps), 0) == 0
            assert _core.time_index_lookup(tm, len(stamps), stamps[100] + 1) == 101
            assert _core.time_index_lookup(tm, len(stamps), stamps[-1] + 1) == -1


def test_lookups_accept_numpy_and_memoryview() -> None:
    rel = [0, 5, 9]
    raw = offset_index(rel)
    arr = np.frombuffer(raw, dtype=">i4")
    assert _core.offset_index_lookup(arr, 3, 6) == 1
    assert _core.offset_index_lookup(memoryview(raw), 3, 9) == 2
    assert _core.offset_index_lookup(bytearray(raw), 0, 9) == -1


def test_duplicate_timestamps_find_the_first() -> None:
    stamps = [5, 7, 7, 7, 9]
    assert _core.time_index_lookup(time_index(stamps), 5, 7) == 1
    assert _core.time_index_lookup(time_index(stamps), 5, 6) == 1
    assert _core.time_index_lookup(time_index(stamps), 5, 8) == 4


def test_entries_are_checked_against_the_buffer() -> None:
    raw = offset_index([0, 1, 2])
    with pytest.raises(ValueError, match="do not fit"):
        _core.offset_index_lookup(raw, 4, 1)
    with pytest.raises(ValueError):
        _core.offset_index_lookup(raw, -1, 1)
    with pytest.raises(ValueError, match="do not fit"):
        _core.time_index_lookup(raw[:23], 2, 1)
    assert _core.time_index_lookup(raw[:24], 2, -5) == 0
    with pytest.raises(TypeError):
        _core.offset_index_lookup("index", 0, 1)


def test_closed_mmap_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "x.index"
    path.write_bytes(offset_index([0, 1]))
    with open(path, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    m.close()
    with pytest.raises(ValueError):
        _core.offset_index_lookup(m, 2, 1)


def _ordered_offsets(entries: list[tuple[int, int]]) -> bool:
    prev_r = prev_p = -1
    for r, p in entries:
        if r <= prev_r or p <= prev_p:
            return False
        prev_r, prev_p = r, p
    return True


def _ordered_times(entries: list[tuple[int, int]]) -> bool:
    prev_t, prev_r = None, 0
    for t, r in entries:
        if (prev_t is not None and t <= prev_t) or r < prev_r:
            return False
        prev_t, prev_r = t, r
    return True


_I32 = st.integers(-(2**31), 2**31 - 1)
_I64 = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=300)
@given(
    st.one_of(
        # mostly well-formed indexes, so both answers are exercised
        st.lists(st.integers(0, 1000), max_size=40, unique=True).map(
            lambda rs: [(r, 100 * r) for r in sorted(rs)]
        ),
        st.lists(st.tuples(_I32, _I32), max_size=40),
    ),
    st.integers(0, 3),
)
def test_offset_index_ordered_matches_a_python_check(entries, spare) -> None:
    buf = b"".join(struct.pack(">ii", r, p) for r, p in entries) + bytes(8 * spare)
    assert _core.offset_index_ordered(buf, len(entries)) is _ordered_offsets(entries)
    if spare:  # the zero slots of a preallocated file are not entries unless counted
        assert _core.offset_index_ordered(buf, len(entries) + 1) is _ordered_offsets(
            [*entries, (0, 0)]
        )


@settings(max_examples=300)
@given(
    st.one_of(
        st.lists(st.integers(-1, 10**13), max_size=40, unique=True).map(
            lambda ts: [(t, i // 2) for i, t in enumerate(sorted(ts))]
        ),
        st.lists(st.tuples(_I64, _I32), max_size=40),
    )
)
def test_time_index_ordered_matches_a_python_check(entries) -> None:
    buf = b"".join(struct.pack(">qi", t, r) for t, r in entries)
    assert _core.time_index_ordered(buf, len(entries)) is _ordered_times(entries)


def test_ordered_checks_bound_entries_by_the_buffer() -> None:
    with pytest.raises(ValueError):
        _core.offset_index_ordered(bytes(16), 3)
    with pytest.raises(ValueError):
        _core.time_index_ordered(bytes(24), 3)
    with pytest.raises(ValueError):
        _core.offset_index_ordered(bytes(16), -1)
    assert _core.offset_index_ordered(b"", 0) and _core.time_index_ordered(b"", 0)


def test_fastlog_does_not_import_numpy() -> None:
    # the index checks run in the core: numpy (45 ms, ~14 MB, an OpenBLAS thread) stays out of
    # the storage engine and the broker
    import subprocess
    import sys

    code = "import sys, fastlog, fastlog.index; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
