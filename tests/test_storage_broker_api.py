"""The storage API the broker uses: append_batches, read_slice (sendfile), read_bytes, ..."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from aiokafka.record.default_records import DefaultRecordBatch
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy as AioBuilder
from aiokafka.record.memory_records import MemoryRecords

import fastlog
from fastlog import AppendInfo, Log, _core

NOW = time.time_ns() // 1_000_000


def client_batch(
    n: int,
    *,
    codec: int = 0,
    ts: int = NOW,
    key: bytes | None = b"k",
    size: int = 20,
    pid: int = -1,
    seq: int = -1,
) -> bytearray:
    """A batch as a Kafka client builds it (aiokafka's pure-Python builder), offsets from 0."""
    b = AioBuilder(2, codec, 0, pid, 0 if pid >= 0 else -1, seq, 10**8)
    for i in range(n):
        b.append(i, ts + i, key, b"%05d" % i + b"x" * size, [("h", b"1")])
    return bytearray(b.build())


def test_append_batches_assigns_offsets_in_place(tmp_path: Path):
    with Log(tmp_path) as log:
        log.append(b"first")
        buf = client_batch(3) + client_batch(4, codec=DefaultRecordBatch.CODEC_GZIP)
        info = log.append_batches(buf, leader_epoch=7)
        assert isinstance(info, AppendInfo)
        assert (info.first_offset, info.last_offset) == (1, 7)
        assert info.max_timestamp == NOW + 3
        assert [b.base_offset for b in info.batches] == [1, 4]
        assert all(b.partition_leader_epoch == 7 for b in info.batches)
        assert log.end_offset == 8
        # the bytes on disk are the (rewritten) client bytes, byte for byte
        on_disk = log.read_bytes(1, 10**6)
        assert on_disk == bytes(buf)
        # and an independent reader decodes them with the right offsets
        mr = MemoryRecords(on_disk)
        offsets = []
        while mr.has_next():
            batch = mr.next_batch()
            offsets += [r.offset for r in batch]
        assert offsets == list(range(1, 8))
        assert [r.offset for r in log.read(1)] == list(range(1, 8))


def test_append_batches_log_append_time(tmp_path: Path):
    with Log(tmp_path, message_timestamp_type="LogAppendTime") as log:
        info = log.append_batches(client_batch(2, ts=5))
        assert info.log_append_time >= NOW
        assert {r.timestamp for r in log.read()} == {info.log_append_time}
        _core.scan_batches(log.read_bytes(0, 10**6))  # CRC rewritten correctly
    with Log(tmp_path) as log:
        info = log.append_batches(client_batch(1, ts=5), log_append_time=123456)
        assert info.log_append_time == 123456 and info.max_timestamp == 123456


def test_append_batches_rejects_bad_input(tmp_path: Path):
    with Log(tmp_path, max_message_bytes=2000) as log:
        bad = client_batch(2)
        bad[30] ^= 1  # under the CRC
        with pytest.raises(fastlog.CorruptRecordError):
            log.append_batches(bad)
        with pytest.raises(fastlog.CorruptRecordError):
            log.append_batches(client_batch(2)[:-3])  # torn
        with pytest.raises(fastlog.InvalidRecordError):
            log.append_batches(bytes(client_batch(2)))  # not writable
        with pytest.raises(fastlog.InvalidRecordError):
            log.append_batches(bytearray())
        with pytest.raises(fastlog.RecordTooLargeError):
            log.append_batches(client_batch(10, size=300))
        assert log.end_offset == 0


def test_replication_append_keeps_offsets(tmp_path: Path):
    with Log(tmp_path / "leader") as leader, Log(tmp_path / "follower") as follower:
        for _ in range(5):
            leader.append_batches(client_batch(3))
        fetched = bytearray(leader.read_bytes(0, 10**6))
        info = follower.append_batches(fetched, assign_offsets=False)
        assert (info.first_offset, info.last_offset) == (0, 14)
        assert follower.read_bytes(0, 10**6) == leader.read_bytes(0, 10**6)
        with pytest.raises(fastlog.InvalidRecordError, match="does not follow"):
            follower.append_batches(bytearray(leader.read_bytes(3, 10**6)), assign_offsets=False)


def _fill(log: Log, batches: int = 50, per: int = 4) -> list[int]:
    sizes = []
    for _ in range(batches):
        buf = client_batch(per)
        sizes.append(len(buf))
        log.append_batches(buf)
    return sizes


def test_read_slice_whole_batches(tmp_path: Path):
    with Log(tmp_path, index_interval_bytes=300) as log:
        sizes = _fill(log)
        size = sizes[0]
        s = log.read_slice(10, 3 * size + 5)
        assert s is not None
        # starts at the batch holding offset 10 (base 8), whole batches only
        assert (s.first_offset, s.position, s.length) == (8, 2 * size, 3 * size)
        infos = _core.scan_batches(s.read())
        assert [i.base_offset for i in infos] == [8, 12, 16]
        # min_one_batch (KIP-74): a batch bigger than max_bytes still comes whole
        s = log.read_slice(10, 1)
        assert s.length == size
        assert log.read_slice(10, 1, min_one_batch=False) is None
        # the high watermark bounds it
        s = log.read_slice(0, 10**6, max_offset=20)
        assert [i.base_offset for i in _core.scan_batches(s.read())] == [0, 4, 8, 12, 16]
        assert log.read_slice(20, 10**6, max_offset=20) is None
        assert log.read_slice(200, 10**6) is None  # the log end offset
        with pytest.raises(fastlog.OffsetOutOfRangeError):
            log.read_slice(201, 100)


def test_read_slice_stays_within_one_segment(tmp_path: Path):
    with Log(tmp_path, segment_bytes=1000) as log:
        _fill(log, batches=30)
        got = []
        offset = 0
        while (s := log.read_slice(offset, 10**6)) is not None:
            infos = _core.scan_batches(s.read())
            assert s.position + s.length <= s.file.size
            got += [i.base_offset for i in infos]
            offset = infos[-1].last_offset + 1
        assert got == list(range(0, 120, 4))


def test_read_slice_sendfile(tmp_path: Path):
    with Log(tmp_path) as log:
        _fill(log, batches=200)
        s = log.read_slice(0, 10**7)
        a, b = socket.socketpair()
        with a, b:
            b.setblocking(False)
            sent = 0
            received = bytearray()
            while sent < s.length:
                n = _core.sendfile_chunk(b.fileno(), s.fd, s.position + sent, s.length - sent)
                sent += n
                while True:
                    try:
                        chunk = a.recv(1 << 20, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        break
                    received += chunk
            while len(received) < s.length:
                received += a.recv(1 << 20)
        assert bytes(received) == log.read_bytes(0, 10**7) == s.read()


def test_slice_survives_segment_deletion(tmp_path: Path):
    with Log(tmp_path, segment_bytes=1000) as log:
        _fill(log, batches=30)
        s = log.read_slice(0, 10**6)
        expected = s.read()
        log.delete_before(log.end_offset)
        assert not s.file.path.exists()
        assert s.read() == expected  # the fd lives as long as the slice


def test_max_timestamp_and_offset(tmp_path: Path):
    with Log(tmp_path, segment_bytes=1000) as log:
        log.append(b"a", timestamp=500)
        log.append(b"b", timestamp=900)
        log.append(b"c", timestamp=700)
        assert log.max_timestamp_and_offset() == (900, 1)


def test_size_recovery_point_lso_delete(tmp_path: Path):
    d = tmp_path / "t-0"
    log = Log(d, segment_bytes=1000)
    _fill(log, batches=20)
    assert log.size_bytes == sum(p.stat().st_size for p in d.glob("*.log"))
    assert log.last_stable_offset == log.end_offset
    assert log.recovery_point == log.segments[-1].base_offset  # rolled segments are flushed
    log.flush()
    assert log.recovery_point == log.end_offset
    assert "t 0 " in (d / "recovery-point-offset-checkpoint").read_text()
    log.delete()
    assert not d.exists()
    with pytest.raises(fastlog.LogClosedError):
        log.append(b"x")


def test_flush_messages(tmp_path: Path):
    with Log(tmp_path, flush_messages=3) as log:
        log.append(b"1")
        log.append(b"2")
        assert log.recovery_point == 0
        log.append(b"3")
        assert log.recovery_point == 3


def test_flush_ms(tmp_path: Path):
    with Log(tmp_path, flush_ms=0) as log:
        log.append(b"1")
        assert log.recovery_point == 1
    with Log(tmp_path / "b", flush_ms=3_600_000) as log:
        log.append(b"1")
        assert log.recovery_point == 0


def test_append_batches_validates_records(tmp_path: Path):
    with Log(tmp_path, cleanup_policy="compact") as log:
        with pytest.raises(fastlog.InvalidRecordError):
            log.append_batches(client_batch(2, key=None))  # compacted: keys required
        log.append_batches(client_batch(2))
        assert log.end_offset == 2
    with Log(tmp_path / "b") as log:
        # a record whose length runs past the batch, with a correct CRC over the lie
        recs = [(b"k", b"v" * 10, None, NOW)]
        buf = bytearray(_core.build_batch(recs))
        buf[61] += 2  # the first record's length varint (zigzag): claim one more byte
        buf[17:21] = _core.crc32c(bytes(buf[21:])).to_bytes(4, "big")
        with pytest.raises(fastlog.CorruptRecordError):
            log.append_batches(buf)
        assert log.end_offset == 0


def test_replication_append_with_a_huge_offset_gap(tmp_path: Path):
    """A compacted leader can have gaps wider than a segment's int32 relative offsets."""
    far = 5 * 2**31
    with Log(tmp_path) as log:
        log.append_batches(client_batch(2))
        buf = bytearray(_core.build_batch([(b"k", b"v", None, NOW)], base_offset=far))
        log.append_batches(buf, assign_offsets=False)
        assert log.end_offset == far + 1
        assert [r.offset for r in log.read()] == [0, 1, far]
        assert log.segments[-1].base_offset == far
    with Log(tmp_path) as log:
        assert [r.offset for r in log.read(far)] == [far]


def test_maybe_flush_for_a_scheduler(tmp_path: Path):
    with Log(tmp_path, flush_ms=50) as log:
        log.append(b"1")  # first append after open: 50 ms have not passed
        assert log.recovery_point == 0
        assert log.maybe_flush() is False
        time.sleep(0.06)
        assert log.maybe_flush() is True
        assert log.recovery_point == 1
        assert log.maybe_flush() is False  # nothing new


def test_segment_jitter(tmp_path: Path):
    with Log(tmp_path, segment_ms=1000, segment_jitter_ms=999, retention_ms=-1) as log:
        jitter = log.active_segment.roll_jitter_ms
        assert 0 <= jitter < 999
        log.append(b"a", timestamp=10_000)
        log.append(b"b", timestamp=10_000 + 1001 - jitter)  # just past segment.ms - jitter
        assert len(log.segments) == 2


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_compressed_client_batches_read_back(tmp_path: Path, codec: str):
    code = getattr(DefaultRecordBatch, f"CODEC_{codec.upper()}")
    with Log(tmp_path, segment_bytes=3000, index_interval_bytes=100) as log:
        for _ in range(20):
            log.append_batches(client_batch(7, codec=code, size=60))
        got = list(log.read())
        assert [r.offset for r in got] == list(range(140))
        assert [r.value for r in got[:7]] == [b"%05d" % i + b"x" * 60 for i in range(7)]
        assert all(r.headers == [("h", b"1")] and r.key == b"k" for r in got)
        assert [r.offset for r in log.read(66, max_records=3)] == [66, 67, 68]
        assert log.offset_for_timestamp(NOW + 3) == 3


def test_read_slice_high_watermark_inside_a_batch(tmp_path: Path):
    """Contract (docs/internals.md): batches whose base offset is >= max_offset are left out;
    a batch that starts below it is whole in the slice."""
    with Log(tmp_path) as log:
        _fill(log, batches=5)  # batches 0-3, 4-7, 8-11, 12-15, 16-19
        s = log.read_slice(0, 10**6, max_offset=10)
        assert [i.base_offset for i in _core.scan_batches(s.read())] == [0, 4, 8]
        s = log.read_slice(9, 10**6, max_offset=10)
        assert [i.base_offset for i in _core.scan_batches(s.read())] == [8]
