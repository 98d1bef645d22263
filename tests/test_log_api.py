"""Embedded Log API: round trips, reads, offsets, bad input, concurrency, lock file."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastlog
from fastlog import Log, Record
from fastlog.segment import LOG_SUFFIX

KEYS = st.none() | st.binary(max_size=20)
VALUES = st.none() | st.binary(max_size=300)
HEADERS = st.lists(st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=10)), max_size=3)
RECORD = st.tuples(KEYS, VALUES, HEADERS, st.integers(min_value=0, max_value=2**41))


def test_public_names():
    assert fastlog.Log is Log and fastlog.Record is Record
    assert issubclass(fastlog.LogLockedError, fastlog.FastlogError)
    assert issubclass(fastlog.CorruptRecordError, fastlog.FastlogError)
    assert fastlog.CorruptRecordError is fastlog._core.CorruptRecordError
    assert fastlog.InvalidRecordError is fastlog._core.InvalidRecordError


def test_issue_example(tmp_path: Path):
    with Log(tmp_path / "events", segment_bytes=1 << 20, cleanup_policy="delete") as log:
        off = log.append(b"value", key=b"k", headers=[("h", b"v")], timestamp=None)
        first = log.append_batch([b"a", b"b", (b"key", b"c")])
        assert (off, first) == (0, 1)
        recs = list(log.read(0))
        assert [r.offset for r in recs] == [0, 1, 2, 3]
        assert recs[0].key == b"k" and recs[0].value == b"value"
        assert recs[0].headers == [("h", b"v")]
        assert [(r.key, r.value) for r in recs[1:]] == [(None, b"a"), (None, b"b"), (b"key", b"c")]
        assert (log.start_offset, log.end_offset) == (0, 4)
        assert [r.value for r in log.read(2, max_records=1)] == [b"b"]
        assert list(log.read(4)) == []


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(st.lists(RECORD, min_size=1, max_size=20), min_size=1, max_size=12),
    segment_bytes=st.sampled_from([200, 1000, 1 << 20]),
    interval=st.sampled_from([0, 100, 4096]),
)
def test_round_trip_hypothesis(tmp_path_factory, batches, segment_bytes, interval):
    d = tmp_path_factory.mktemp("rt")
    expected = []
    with Log(d, segment_bytes=segment_bytes, index_interval_bytes=interval, retention_ms=-1) as log:
        for batch in batches:
            first = log.append_batch(batch)
            for i, (k, v, h, ts) in enumerate(batch):
                expected.append(Record(first + i, ts, k, v, [(n, x) for n, x in h]))
        assert list(log.read()) == expected
        # every starting offset reads the right suffix
        for start in range(0, len(expected), max(1, len(expected) // 7)):
            assert list(log.read(start, max_records=3)) == expected[start : start + 3]
    with Log(d, segment_bytes=segment_bytes, index_interval_bytes=interval, retention_ms=-1) as log:
        assert list(log.read()) == expected
        assert log.end_offset == len(expected)


def test_reopen_continues_offsets(tmp_path: Path):
    with Log(tmp_path, segment_bytes=300) as log:
        for i in range(50):
            assert log.append(b"v%d" % i) == i
    with Log(tmp_path, segment_bytes=300) as log:
        assert log.end_offset == 50
        assert log.append(b"more") == 50
        assert [r.value for r in log.read(48)] == [b"v48", b"v49", b"more"]
        assert len(log.segments) > 3


def test_segments_named_by_base_offset(tmp_path: Path):
    with Log(tmp_path, segment_bytes=500) as log:
        for i in range(40):
            log.append(b"x" * 40, key=b"%d" % i)
        bases = [s.base_offset for s in log.segments]
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(LOG_SUFFIX))
    assert names == [f"{b:020d}.log" for b in bases]
    for b in bases:
        assert (tmp_path / f"{b:020d}.index").exists()
        assert (tmp_path / f"{b:020d}.timeindex").exists()
    # trimmed on close: whole entries only
    for p in tmp_path.glob("*.index"):
        assert p.stat().st_size % 8 == 0
    for p in tmp_path.glob("*.timeindex"):
        assert p.stat().st_size % 12 == 0


def test_log_file_holds_v2_batches_byte_for_byte(tmp_path: Path):
    with Log(tmp_path) as log:
        log.append_batch([b"a", b"b"])
        log.append(b"c", key=b"k")
    data = (tmp_path / f"{0:020d}.log").read_bytes()
    infos = fastlog._core.scan_batches(data)
    assert [(i.base_offset, i.last_offset, i.record_count) for i in infos] == [(0, 1, 2), (2, 2, 1)]
    recs = fastlog._core.iter_records(data)
    assert [(r[0], r[2], r[3]) for r in recs] == [(0, None, b"a"), (1, None, b"b"), (2, b"k", b"c")]


def test_roll_on_segment_ms(tmp_path: Path):
    with Log(tmp_path, segment_ms=1000, retention_ms=-1) as log:
        log.append(b"a", timestamp=10_000)
        log.append(b"b", timestamp=10_500)
        assert len(log.segments) == 1
        log.append(b"c", timestamp=11_001)  # 1001 ms after the segment's first batch
        assert len(log.segments) == 2
        assert log.segments[1].base_offset == 2


def test_offset_for_timestamp(tmp_path: Path):
    ts = [100, 200, 200, 300, 1000, 1000, 5000]
    with Log(tmp_path, segment_bytes=150, index_interval_bytes=0, retention_ms=-1) as log:
        for t in ts:
            log.append(b"v", timestamp=t)
        assert len(log.segments) > 2
        for target in [0, 100, 101, 200, 250, 300, 301, 999, 1000, 4999, 5000]:
            want = next((i for i, t in enumerate(ts) if t >= target), None)
            assert log.offset_for_timestamp(target) == want, target
        assert log.offset_for_timestamp(5001) is None
        assert log.max_timestamp_and_offset() == (5000, 6)


def test_empty_log(tmp_path: Path):
    with Log(tmp_path) as log:
        assert (log.start_offset, log.end_offset) == (0, 0)
        assert list(log.read()) == []
        assert log.offset_for_timestamp(0) is None
        assert log.max_timestamp_and_offset() is None
        assert log.read_slice(0, 100) is None
        assert log.read_bytes(0, 100) == b""


def test_read_out_of_range(tmp_path: Path):
    with Log(tmp_path) as log:
        log.append_batch([b"a", b"b"])
        with pytest.raises(fastlog.OffsetOutOfRangeError):
            log.read(3)
        with pytest.raises(fastlog.OffsetOutOfRangeError):
            log.read(-1)


@pytest.mark.parametrize(
    "bad, match",
    [
        ("text", "bytes"),
        (123, "int"),
        ((b"k", "str value"), "value must be bytes"),
        (("str key", b"v"), "key must be bytes"),
        ((b"k", b"v", [(1, b"x")]), "header names"),
        ((b"k", b"v", "notheaders"), "headers"),
        ((b"k", b"v", None, "soon"), "timestamp"),
        ((b"k",), "tuple"),
    ],
)
def test_bad_input_clear_error(tmp_path: Path, bad, match):
    with Log(tmp_path) as log:
        with pytest.raises(fastlog.InvalidRecordError, match=match):
            log.append_batch([b"ok", bad])
        assert log.end_offset == 0  # nothing half-written
        log.append(b"fine")
        assert [r.value for r in log.read()] == [b"fine"]


def test_bad_append_calls(tmp_path: Path):
    with Log(tmp_path) as log:
        with pytest.raises(fastlog.InvalidRecordError):
            log.append("a string")  # type: ignore[arg-type]
        with pytest.raises(fastlog.InvalidRecordError):
            log.append_batch([])
        with pytest.raises(fastlog.InvalidRecordError):
            log.append_batch(b"not a list")
        with pytest.raises(fastlog.InvalidRecordError):
            log.append(b"v", headers=[("h", "not bytes")])  # type: ignore[list-item]
        with pytest.raises(fastlog.RecordTooLargeError):
            Log.append(log, b"x" * (2 << 20))
        assert log.end_offset == 0


def test_bad_config(tmp_path: Path):
    with pytest.raises(fastlog.InvalidConfigurationError):
        Log(tmp_path, segment_bytez=5)
    with pytest.raises(fastlog.InvalidConfigurationError):
        Log(tmp_path, cleanup_policy="shred")
    with pytest.raises(fastlog.InvalidConfigurationError):
        Log(tmp_path, min_cleanable_dirty_ratio=2)
    # Kafka's dotted names and Long.MAX_VALUE "never flush" are accepted
    cfg = fastlog.LogConfig.from_dict({"segment.bytes": "2048", "flush.messages": 2**63 - 1})
    assert cfg.segment_bytes == 2048 and cfg.flush_messages is None


def test_compacted_log_needs_keys(tmp_path: Path):
    with Log(tmp_path, cleanup_policy="compact") as log:
        with pytest.raises(fastlog.InvalidRecordError, match="key"):
            log.append(b"no key")


def test_closed_log(tmp_path: Path):
    log = Log(tmp_path)
    log.append(b"a")
    it = log.read()
    log.close()
    log.close()  # idempotent
    with pytest.raises(fastlog.LogClosedError):
        log.append(b"b")
    with pytest.raises(fastlog.LogClosedError):
        next(it)


def test_reader_sees_appends_while_iterating(tmp_path: Path):
    with Log(tmp_path, segment_bytes=2000) as log:
        log.append_batch([b"0", b"1"])
        it = log.read(0)
        assert next(it).value == b"0"
        log.append_batch([b"%d" % i for i in range(2, 200)])  # rolls several segments
        rest = [r.value for r in it]
        assert rest == [b"%d" % i for i in range(1, 200)]


def test_reader_thread_during_appends(tmp_path: Path):
    total = 20_000
    seen: list[int] = []
    errors: list[BaseException] = []
    with Log(tmp_path, segment_bytes=64 * 1024, index_interval_bytes=512) as log:
        done = threading.Event()

        def reader() -> None:
            try:
                nxt = 0
                while nxt < total:
                    for r in log.read(nxt):
                        assert r.offset == nxt and r.value == b"v%d" % nxt
                        seen.append(r.offset)
                        nxt += 1
                    if done.is_set() and nxt >= log.end_offset:
                        break
            except BaseException as e:  # surfaced below
                errors.append(e)

        t = threading.Thread(target=reader)
        t.start()
        for i in range(0, total, 100):
            log.append_batch([b"v%d" % j for j in range(i, i + 100)])
        done.set()
        t.join(60)
    assert not errors, errors
    assert seen == list(range(total))


def test_lock_file_same_process(tmp_path: Path):
    with Log(tmp_path):
        with pytest.raises(fastlog.LogLockedError, match="already open"):
            Log(tmp_path)
    with Log(tmp_path):  # released on close
        pass


def test_lock_file_other_process(tmp_path: Path):
    code = (
        "import sys, fastlog\n"
        "try:\n"
        f"    fastlog.Log({str(tmp_path)!r})\n"
        "except fastlog.LogLockedError as e:\n"
        "    print('LOCKED', e); sys.exit(3)\n"
    )
    with Log(tmp_path):
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert p.returncode == 3, p.stderr
        assert f"process {os.getpid()}" in p.stdout
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_log_append_time(tmp_path: Path):
    with Log(tmp_path, message_timestamp_type="LogAppendTime") as log:
        log.append_batch([(b"k", b"v", None, 5)])
        (r,) = list(log.read())
        assert r.timestamp > 1_600_000_000_000


def test_update_config_live(tmp_path: Path):
    with Log(tmp_path) as log:
        log.append(b"x" * 100)
        log.update_config(segment_bytes=150)
        log.append(b"y" * 100)
        assert len(log.segments) == 2
        with pytest.raises(fastlog.InvalidConfigurationError):
            log.update_config(nope=1)


def test_segment_files_decode_with_kafka_python(tmp_path: Path):
    """An independent reader (kafka-python) decodes what the embedded API wrote."""
    from kafka.record.memory_records import MemoryRecords

    with Log(tmp_path, segment_bytes=700) as log:
        log.append(b"v0", key=b"k0", headers=[("h", b"x")], timestamp=1234)
        log.append_batch([b"a", None, (b"k", b"b", [("n", None)], 99)])
        for i in range(20):
            log.append(b"r%d" % i)
        expected = [(r.offset, r.timestamp, r.key, r.value) for r in log.read()]
    got = []
    for p in sorted(tmp_path.glob("*.log")):
        mr = MemoryRecords(p.read_bytes())
        while mr.has_next():
            batch = mr.next_batch()
            batch.validate_crc()
            got += [(r.offset, r.timestamp, r.key, r.value) for r in batch]
    assert got == expected


def test_append_batch_takes_any_iterable(tmp_path: Path):
    with Log(tmp_path) as log:
        assert log.append_batch(v for v in [b"a", b"b"]) == 0
        with pytest.raises(fastlog.InvalidRecordError, match="expected bytes.*got str"):
            log.append_batch(v for v in [b"ok", "text"])
        with pytest.raises(fastlog.InvalidRecordError, match="not int"):
            log.append_batch(5)  # type: ignore[arg-type]
        assert [r.value for r in log.read()] == [b"a", b"b"]


def test_unclosed_log_releases_its_lock(tmp_path: Path):
    import gc

    log = Log(tmp_path)
    log.append(b"a")
    with pytest.warns(ResourceWarning, match="unclosed Log"):
        del log
        gc.collect()
    with Log(tmp_path) as log:  # no LogLockedError; recovered (no clean-shutdown marker)
        assert [r.value for r in log.read()] == [b"a"]


FOLLOWED_WRITER = r"""
import sys, time, fastlog
log = fastlog.Log(sys.argv[1], segment_bytes=3000, index_interval_bytes=200)
sys.stdout.write("open\n"); sys.stdout.flush()
for i in range(0, 3000, 10):
    log.append_batch([b"r%d" % j for j in range(i, i + 10)])
    if i % 200 == 0:
        time.sleep(0.01)
log.close()
sys.stdout.write("done\n"); sys.stdout.flush()
"""


def test_read_only_view_follows_a_writing_process(tmp_path: Path):
    script = tmp_path / "w.py"
    script.write_text(FOLLOWED_WRITER)
    data = tmp_path / "log"
    p = subprocess.Popen(
        [sys.executable, str(script), str(data)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert p.stdout is not None and p.stdout.readline() == "open\n"
        while not list(data.glob("*.log")):
            time.sleep(0.01)
        with Log(data, read_only=True) as view:  # no LogLockedError while the writer runs
            with pytest.raises(fastlog.ReadOnlyLogError):
                view.append(b"x")
            seen: list[bytes] = []
            deadline = time.monotonic() + 60
            while len(seen) < 3000 and time.monotonic() < deadline:
                for r in view.read(len(seen)):
                    assert r.offset == len(seen), (r.offset, len(seen))
                    seen.append(r.value)
                time.sleep(0.005)
            assert seen == [b"r%d" % i for i in range(3000)]
            assert view.end_offset == 3000
            assert len(view.segments) > 5
        assert p.stdout.readline() == "done\n"
    finally:
        p.kill()
        p.wait()
        p.stdout.close()


def test_read_only_view_changes_no_file(tmp_path: Path):
    with Log(tmp_path, segment_bytes=500) as log:
        for i in range(50):
            log.append(b"v%d" % i)
    (tmp_path / f"{0:020d}.index").unlink()  # a writer would rebuild it; a view must not
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    with Log(tmp_path, read_only=True, segment_bytes=500) as view:
        assert [r.value for r in view.read()] == [b"v%d" % i for i in range(50)]
        assert view.offset_for_timestamp(0) == 0
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before
    with pytest.raises(FileNotFoundError):
        Log(tmp_path / "nope", read_only=True)
