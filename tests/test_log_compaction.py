"""LogCleaner: latest record per key, tombstones, dirty ratio, offsets preserved, swaps."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastlog
from fastlog import Log
from fastlog.log import CLEAN_SHUTDOWN_FILE

NOW = time.time_ns() // 1_000_000


def _expected_after_compaction(history, cleaned_below, drop_tombstones=True):
    """Linear model: below `cleaned_below`, keep a record iff it is its key's latest there."""
    latest = {}
    for off, k, _v in history:
        if off < cleaned_below:
            latest[k] = off
    out = []
    for off, k, v in history:
        if off >= cleaned_below:
            out.append((off, k, v))
        elif latest[k] == off and not (v is None and drop_tombstones):
            out.append((off, k, v))
    return out


def test_latest_per_key_offsets_preserved(tmp_path: Path):
    rng = random.Random(7)
    history = []
    with Log(tmp_path, cleanup_policy="compact", segment_bytes=2000, delete_retention_ms=0) as log:
        for _ in range(100):
            batch = [(b"k%d" % rng.randrange(15), b"v%d" % rng.randrange(10**6)) for _ in range(5)]
            first = log.append_batch(batch)
            history += [(first + i, k, v) for i, (k, v) in enumerate(batch)]
        active_base = log.active_segment.base_offset
        size_before = log.size_bytes
        stats = log.compact()
        assert stats is not None and stats.end_offset == active_base
        got = [(r.offset, r.key, r.value) for r in log.read()]
        assert got == _expected_after_compaction(history, active_base)
        assert log.size_bytes < size_before
        assert log.end_offset == 500
        # the active segment was not touched: everything from its base is still there
        assert [o for o, _, _ in got if o >= active_base] == list(range(active_base, 500))
        # reading from an offset removed by compaction starts at the next surviving one
        gap = next(o for o in range(active_base) if o not in {g[0] for g in got})
        assert next(iter(log.read(gap))).offset > gap
    with Log(tmp_path, cleanup_policy="compact", segment_bytes=2000) as log:
        assert [(r.offset, r.key, r.value) for r in log.read()] == got


def test_tombstones_removed_after_delete_retention(tmp_path: Path):
    with Log(
        tmp_path, cleanup_policy="compact", segment_bytes=300, delete_retention_ms=3_600_000
    ) as log:
        log.append(b"v1", key=b"a")
        log.append(b"v1", key=b"b")
        log.append(None, key=b"a")  # tombstone
        for i in range(10):
            log.append(b"filler", key=b"f%d" % i)
        log.compact()
        kv = {r.key: r.value for r in log.read()}
        assert b"a" in kv and kv[b"a"] is None  # still within delete.retention.ms
        assert kv[b"b"] == b"v1"
        # segments last written more than delete.retention.ms ago lose their tombstones
        old = time.time() - 7200
        for seg in log.segments[:-1]:
            os.utime(seg.log.path, (old, old))
        log.compact()
        keys = [r.key for r in log.read()]
        assert b"a" not in keys and b"b" in keys


def test_tombstones_kept_in_active_segment(tmp_path: Path):
    with Log(tmp_path, cleanup_policy="compact", delete_retention_ms=0) as log:
        log.append(b"x", key=b"a")
        log.append(None, key=b"a")
        assert log.compact() is None  # only the active segment: nothing cleanable
        assert [r.value for r in log.read()] == [b"x", None]


def test_dirty_ratio_and_maybe_compact(tmp_path: Path):
    with Log(
        tmp_path, cleanup_policy="compact", segment_bytes=500, min_cleanable_dirty_ratio=0.5
    ) as log:
        for i in range(40):
            log.append(b"v%d" % i, key=b"k%d" % (i % 4))
        cleaner = fastlog.LogCleaner(log)
        assert cleaner.dirty_ratio() == 1.0
        assert log.maybe_compact() is True
        assert cleaner.dirty_ratio() == 0.0
        assert log.maybe_compact() is False  # nothing dirty
        log.append(b"one more", key=b"k1")
        assert log.maybe_compact() is False  # only the active segment changed
        log.update_config(min_cleanable_dirty_ratio=1.0)
        for i in range(40):
            log.append(b"w%d" % i, key=b"k%d" % (i % 4))
        ratio = cleaner.dirty_ratio()
        assert 0 < ratio < 1.0
        assert log.maybe_compact() is False  # below min.cleanable.dirty.ratio
        log.update_config(min_cleanable_dirty_ratio=ratio)
        assert log.maybe_compact() is True


def test_compact_requires_policy(tmp_path: Path):
    with Log(tmp_path) as log:
        log.append(b"x")
        with pytest.raises(fastlog.InvalidConfigurationError, match="compact"):
            log.compact()
        assert log.maybe_compact() is False


def test_compact_and_delete(tmp_path: Path):
    with Log(tmp_path, cleanup_policy="compact,delete", segment_bytes=400, retention_ms=-1) as log:
        for i in range(30):
            log.append(b"old%d" % i, key=b"old%d" % (i % 3), timestamp=NOW - 10 * 86_400_000)
        log.roll()
        for i in range(30):
            log.append(b"new%d" % i, key=b"k%d" % (i % 3))
        log.compact()
        values = [r.value for r in log.read()]
        assert values[:3] == [b"old27", b"old28", b"old29"]  # compaction kept the latest
        assert {b"new27", b"new28", b"new29"} <= set(values)
        log.update_config(retention_ms=86_400_000)
        assert log.enforce_retention() >= 1  # and retention removes what is too old
        assert all(r.value.startswith(b"new") for r in log.read())
        assert log.start_offset >= 30


def test_emptied_segments_are_dropped(tmp_path: Path):
    with Log(tmp_path, cleanup_policy="compact", segment_bytes=300) as log:
        for i in range(40):
            log.append(b"v%d" % i, key=b"same")
        n = len(log.segments)
        log.compact()
        # every cleanable segment lost all its records but the one holding the latest
        assert len(log.segments) < n
        assert all(s.size > 0 for s in log.segments[1:-1])
        assert log.start_offset == 0  # the first segment stays, empty if need be
        assert [r.offset for r in log.read()][0] >= 1


def test_compressed_and_partial_batches(tmp_path: Path):
    """Client batches (gzip) that lose some records are re-encoded with their offsets."""
    with Log(tmp_path, cleanup_policy="compact", segment_bytes=1200) as log:
        for b in range(12):
            recs = [(b"k%d" % (i % 3), b"v%d-%d" % (b, i), [("h", b"x")], NOW) for i in range(6)]
            batch = bytearray(
                fastlog._core.build_batch(recs, compression=fastlog._core.COMPRESSION_GZIP)
            )
            log.append_batches(batch)
        before = {r.offset: r for r in log.read()}
        log.compact()
        after = list(log.read())
        for r in after:
            assert before[r.offset] == r  # same key, value, headers, timestamp at the same offset
        active = log.active_segment.base_offset
        assert {r.key for r in after if r.offset < active} == {b"k0", b"k1", b"k2"}
        data = log.segments[0].log.read(0, log.segments[0].size)
        assert all(
            i.compression == fastlog._core.COMPRESSION_GZIP
            for i in fastlog._core.scan_batches(data)
        )


def test_interrupted_swap_is_completed(tmp_path: Path):
    with Log(tmp_path, cleanup_policy="compact", segment_bytes=300) as log:
        for i in range(30):
            log.append(b"v%d" % i, key=b"k%d" % (i % 2))
        expected_end = log.end_offset
    # simulate a crash after the cleaner renamed its output to .swap: make one by hand
    first = sorted(tmp_path.glob("*.log"))[0]
    base = first.name[:20]
    for suffix in (".log", ".index", ".timeindex"):
        src = tmp_path / f"{base}{suffix}"
        (tmp_path / f"{base}{suffix}.swap").write_bytes(src.read_bytes())
    (tmp_path / CLEAN_SHUTDOWN_FILE).unlink()
    with Log(tmp_path, cleanup_policy="compact", segment_bytes=300) as log:
        assert not list(tmp_path.glob("*.swap"))
        assert log.end_offset == expected_end
        assert [r.offset for r in log.read()] == list(range(expected_end))


def test_reader_survives_compaction(tmp_path: Path):
    with Log(tmp_path, cleanup_policy="compact", segment_bytes=300) as log:
        for i in range(60):
            log.append(b"v%d" % i, key=b"k%d" % (i % 5))
        it = log.read(0)
        first = next(it)
        log.compact()
        rest = list(it)
        offsets = [first.offset] + [r.offset for r in rest]
        assert offsets == sorted(set(offsets))
        assert offsets[-1] == 59


OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"),
            st.lists(
                st.tuples(
                    st.sampled_from([b"a", b"b", b"c", b"d"]), st.none() | st.binary(max_size=40)
                ),
                min_size=1,
                max_size=6,
            ),
        ),
        st.tuples(st.just("roll"), st.none()),
        st.tuples(st.just("compact"), st.none()),
        st.tuples(st.just("truncate"), st.integers(min_value=0, max_value=60)),
        st.tuples(st.just("delete_before"), st.integers(min_value=0, max_value=60)),
        st.tuples(st.just("reopen"), st.none()),
        st.tuples(st.just("view"), st.none()),
    ),
    max_size=30,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_operations_against_a_model(tmp_path_factory, ops):
    """Appends, rolls, compaction, truncation, DeleteRecords and reopening vs a dict model."""
    d = tmp_path_factory.mktemp("model")
    cfg = dict(cleanup_policy="compact", segment_bytes=400, delete_retention_ms=0)
    model: dict[int, tuple[bytes, bytes | None]] = {}
    start = end = 0
    log = Log(d, **cfg)
    try:
        for op, arg in ops:
            if op == "append":
                first = log.append_batch(arg)
                assert first == end
                for i, kv in enumerate(arg):
                    model[first + i] = kv
                end += len(arg)
            elif op == "roll":
                log.roll()
            elif op == "compact":
                active = log.active_segment.base_offset
                log.compact()
                latest = {}
                for off in sorted(model):
                    if off < active:
                        latest[model[off][0]] = off
                for off in [o for o in model if o < active]:
                    k, v = model[off]
                    if latest[k] != off or v is None:
                        del model[off]
            elif op == "truncate":
                log.truncate_to(arg)
                if arg < end:
                    model = {o: kv for o, kv in model.items() if o < arg}
                    end = arg
                    start = min(start, arg)
            elif op == "delete_before":
                if arg > end:
                    with pytest.raises(fastlog.OffsetOutOfRangeError):
                        log.delete_before(arg)
                else:
                    start = max(start, log.delete_before(arg))
                    model = {o: kv for o, kv in model.items() if o >= start}
            elif op == "reopen":
                log.close()
                log = Log(d, **cfg)
            elif op == "view":
                # a read-only view opened beside the writer sees the same records
                with Log(d, read_only=True, **cfg) as view:
                    got = [(r.offset, r.key, r.value) for r in view.read()]
                    assert got == [(o, *model[o]) for o in sorted(model)]
                    assert view.end_offset == end
            assert (log.start_offset, log.end_offset) == (start, end)
            got = [(r.offset, r.key, r.value) for r in log.read()]
            assert got == [(o, *model[o]) for o in sorted(model)]
    finally:
        log.close()


CLEANING_WRITER = r"""
import sys, fastlog
log = fastlog.Log(sys.argv[1], cleanup_policy="compact", segment_bytes=2000,
                  delete_retention_ms=0, min_cleanable_dirty_ratio=0.01)
i = log.end_offset
while True:
    recs = [(b"k%d" % ((i + j) % 37), b"v%d" % (i + j)) for j in range(5)]
    assert log.append_batch(recs) == i
    i += 5
    sys.stdout.write("%d\n" % i)
    sys.stdout.flush()
    log.maybe_compact()
"""


def test_kill_9_while_compacting(tmp_path: Path):
    import signal
    import subprocess
    import sys

    script = tmp_path / "w.py"
    script.write_text(CLEANING_WRITER)
    data = tmp_path / "log"
    for round_ in range(3):
        p = subprocess.Popen(
            [sys.executable, str(script), str(data)], stdout=subprocess.PIPE, text=True
        )
        assert p.stdout is not None
        acked = 0
        deadline = time.monotonic() + 60
        target = 1500 * (round_ + 1) + random.randrange(500)
        while acked < target and time.monotonic() < deadline:
            line = p.stdout.readline()
            assert line, "writer died"
            acked = int(line)
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
        with Log(data, cleanup_policy="compact", segment_bytes=2000) as log:
            assert not list(data.glob("*.cleaned")) and not list(data.glob("*.swap"))
            assert log.end_offset >= acked
            latest = {}
            prev = -1
            for r in log.read():
                assert r.offset > prev and r.value == b"v%d" % r.offset  # offsets preserved
                assert r.key == b"k%d" % (r.offset % 37)
                prev = r.offset
                latest[r.key] = r.offset
            assert len(latest) == 37
            assert sum(1 for _ in log.read()) < log.end_offset / 2  # compaction did run
            # the latest acknowledged record of every key survived compaction and the crash
            for k in range(37):
                last = max(o for o in range(acked) if o % 37 == k)
                assert latest[b"k%d" % k] >= last


def test_compaction_in_a_thread_while_appending_and_deleting(tmp_path: Path):
    """The broker runs maybe_compact in a worker thread; appends and DeleteTopics go on."""
    import threading

    log = Log(
        tmp_path / "t-0", cleanup_policy="compact", segment_bytes=500, min_cleanable_dirty_ratio=0.0
    )
    errors: list[BaseException] = []
    stop = threading.Event()

    def clean_loop() -> None:
        while not stop.is_set():
            try:
                log.maybe_compact()
            except fastlog.LogClosedError:
                return
            except BaseException as e:  # surfaced below
                errors.append(e)
                return

    t = threading.Thread(target=clean_loop)
    t.start()
    for i in range(300):
        log.append(b"v%d" % i, key=b"k%d" % (i % 7))
    latest = {r.key: r.value for r in log.read()}
    assert latest == {
        b"k%d" % k: b"v%d" % max(i for i in range(300) if i % 7 == k) for k in range(7)
    }
    log.delete()
    stop.set()
    t.join(30)
    assert not errors, errors
    assert not (tmp_path / "t-0").exists()
