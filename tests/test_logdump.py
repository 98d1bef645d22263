"""``fastlog log dump`` / ``fastlog log verify`` against segment files built byte for byte with
fastlog._core.build_batch, then damaged in known places."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker.cli import cli
from fastlog import _core

BASE = 100  # the segment's base offset, encoded in the file names


def _write_segment(d: Path, batches: list[bytes], base: int = BASE, index: bool = True) -> Path:
    """Write NNN.log (batches with offsets assigned from ``base``), NNN.index with one entry
    per batch (its last offset, its position) and NNN.timeindex (max timestamp so far)."""
    d.mkdir(parents=True, exist_ok=True)
    name = f"{base:020d}"
    log = bytearray()
    idx = bytearray()
    tidx = bytearray()
    offset = base
    max_ts = -1
    for raw in batches:
        buf = bytearray(raw)
        last, _, _ = _core.assign_offsets(buf, offset)
        info = _core.scan_batches(buf)[0]
        idx += struct.pack(">ii", last - base, len(log))
        if info.max_timestamp > max_ts:
            max_ts = info.max_timestamp
            tidx += struct.pack(">qi", max_ts, last - base)
        log += buf
        offset = last + 1
    (d / f"{name}.log").write_bytes(bytes(log))
    if index:
        (d / f"{name}.index").write_bytes(bytes(idx))
        (d / f"{name}.timeindex").write_bytes(bytes(tidx))
    return d / f"{name}.log"


def _records(n: int, start_ts: int = 1_700_000_000_000, prefix: str = "v") -> list:
    return [
        (f"k{i}".encode(), f"{prefix}{i}".encode(), [("h", b"x")], start_ts + i) for i in range(n)
    ]


@pytest.fixture
def segment(tmp_path: Path) -> Path:
    batches = [
        _core.build_batch(_records(3)),
        _core.build_batch(_records(2, prefix="w"), compression=_core.COMPRESSION_GZIP),
        _core.build_batch(_records(4, prefix="z"), compression=_core.COMPRESSION_ZSTD),
    ]
    return _write_segment(tmp_path / "events-0", batches)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["log", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _positions(log: Path) -> list[int]:
    return [b.position for b in _core.scan_batches(log.read_bytes())]


def test_dump_clean_segment_prints_batches(segment: Path) -> None:
    code, out, err = run("dump", str(segment))
    assert code == 0, err
    lines = [ln for ln in out.splitlines() if ln.startswith("baseOffset:")]
    assert len(lines) == 3
    assert lines[0].startswith("baseOffset: 100 lastOffset: 102 count: 3 ")
    assert (
        "baseOffset: 103 lastOffset: 104 count: 2" in lines[1] and "compresscodec: gzip" in lines[1]
    )
    assert (
        "baseOffset: 105 lastOffset: 108 count: 4" in lines[2] and "compresscodec: zstd" in lines[2]
    )
    assert all("isvalid: true" in ln for ln in lines)
    assert f"position: {_positions(segment)[1]} " in lines[1]
    assert "Log starting offset: 100" in out
    assert "DAMAGE" not in out and "| offset" not in out


def test_deep_iteration_and_print_data_log(segment: Path) -> None:
    code, out, _ = run("dump", "--deep-iteration", str(segment))
    assert code == 0
    recs = [ln for ln in out.splitlines() if ln.startswith("| offset:")]
    assert [int(ln.split()[2]) for ln in recs] == list(range(100, 109))
    assert "keySize: 2 valueSize: 2" in recs[0] and "headerKeys: [h]" in recs[0]
    assert "payload" not in out
    code, out, _ = run("dump", "--print-data-log", str(segment))
    recs = [ln for ln in out.splitlines() if ln.startswith("| offset:")]
    assert recs[0].endswith("key: k0 payload: v0")
    assert recs[4].endswith("key: k1 payload: w1")  # decompressed from gzip
    assert recs[8].endswith("key: k3 payload: z3")  # and from zstd


def test_crc_damage_is_located_and_scan_continues(segment: Path) -> None:
    data = bytearray(segment.read_bytes())
    pos = _positions(segment)[1]
    data[pos + 70] ^= 0xFF  # inside the second batch's (compressed) records
    segment.write_bytes(bytes(data))
    code, out, err = run("dump", "--deep-iteration", str(segment))
    assert code == 1
    damage = [ln for ln in out.splitlines() if ln.startswith("DAMAGE")]
    assert len(damage) == 1
    assert f"at position {pos}: CRC mismatch in batch at offset 103" in damage[0]
    # the third batch is still read: the damaged batch's length is trusted
    assert "baseOffset: 105 lastOffset: 108" in out
    assert "isvalid: false" in out
    assert err.count("\n") == 1 and err.startswith("Error: damage found: 1 problem(s)")


def test_truncated_tail(segment: Path) -> None:
    data = segment.read_bytes()
    pos = _positions(segment)[2]
    segment.write_bytes(data[: pos + 30])
    code, out, _ = run("dump", str(segment))
    assert code == 1
    assert f"at position {pos}: truncated batch: 30 byte(s) left" in out
    segment.write_bytes(data[: pos + 70])
    code, out, _ = run("dump", str(segment))
    assert code == 1
    assert f"at position {pos}: truncated batch: its length says" in out
    assert "baseOffset: 103" in out


def test_broken_length_stops_the_scan(segment: Path) -> None:
    data = bytearray(segment.read_bytes())
    pos = _positions(segment)[1]
    struct.pack_into(">i", data, pos + 8, 7)
    segment.write_bytes(bytes(data))
    code, out, _ = run("dump", str(segment))
    assert code == 1
    assert f"at position {pos}: invalid batch length 7" in out
    assert "baseOffset: 105" not in out


def test_bad_magic(segment: Path) -> None:
    data = bytearray(segment.read_bytes())
    pos = _positions(segment)[2]
    data[pos + 16] = 1
    segment.write_bytes(bytes(data))
    code, out, _ = run("dump", str(segment))
    assert code == 1
    assert f"at position {pos}: unsupported magic 1" in out


def test_offsets_must_increase(tmp_path: Path) -> None:
    log = _write_segment(
        tmp_path / "p",
        [_core.build_batch(_records(2)), _core.build_batch(_records(2))],
        index=False,
    )
    data = bytearray(log.read_bytes())
    second = _positions(log)[1]
    struct.pack_into(">q", data, second, 101)  # baseOffset is not under the CRC
    log.write_bytes(bytes(data))
    code, out, _ = run("dump", str(log))
    assert code == 1
    assert (
        f"at position {second}: offsets do not increase: batch starts at 101, the previous one ended at 101"
        in out
    )


def test_first_batch_below_segment_base(tmp_path: Path) -> None:
    log = _write_segment(tmp_path / "p", [_core.build_batch(_records(2))], base=50, index=False)
    renamed = log.with_name(f"{60:020d}.log")
    log.rename(renamed)
    code, out, _ = run("dump", str(renamed))
    assert code == 1
    assert "first batch starts at offset 50, below the segment's base offset 60" in out


def test_index_dump_and_verification(segment: Path) -> None:
    index = segment.with_suffix(".index")
    code, out, err = run("dump", str(index))
    assert code == 0, out + err
    positions = _positions(segment)
    assert f"offset: 102 position: {positions[0]}" in out
    assert f"offset: 108 position: {positions[2]}" in out
    # a preallocated index (zeroed tail) is not damage
    index.write_bytes(index.read_bytes() + bytes(8 * 10))
    assert run("dump", str(index))[0] == 0


def test_index_entry_pointing_between_batches(segment: Path) -> None:
    index = segment.with_suffix(".index")
    data = bytearray(index.read_bytes())
    struct.pack_into(">ii", data, 8, 4, _positions(segment)[1] + 5)
    index.write_bytes(bytes(data))
    code, out, _ = run("dump", "--verify-index-only", str(index))
    assert code == 1
    assert (
        f"index entry 1 (offset 104, log position {_positions(segment)[1] + 5}): no batch starts at that position"
        in out
    )
    assert "offset: 102 position" not in out  # --verify-index-only prints only damage


def test_index_entry_with_wrong_offset(segment: Path) -> None:
    index = segment.with_suffix(".index")
    data = bytearray(index.read_bytes())
    pos2 = _positions(segment)[2]
    struct.pack_into(">ii", data, 8, 4, pos2)  # offset 104 lives in batch 2, not at batch 3
    index.write_bytes(bytes(data))
    code, out, _ = run("dump", str(index))
    assert code == 1
    assert (
        f"index entry 1 (offset 104, log position {pos2}): the batch there holds offsets 105-108"
        in out
    )
    # entry 2 now shares its position; the lookups those entries mislead are not reported again
    assert "index entry 2 (offset 108, log position" in out and "does not increase" in out
    assert out.count("DAMAGE") == 2


def test_index_not_increasing_and_past_end(segment: Path) -> None:
    index = segment.with_suffix(".index")
    data = bytearray(index.read_bytes())
    struct.pack_into(">ii", data, 16, 1, 10_000)
    index.write_bytes(bytes(data) + b"\x01\x02\x03")
    code, out, _ = run("dump", str(index))
    assert code == 1
    assert "is not a multiple of the 8-byte entry size" in out
    assert "index entry 2 (offset 101, log position 10000): does not increase" in out
    assert "position is past the end of the log" in out


def test_time_index_verification(segment: Path) -> None:
    tindex = segment.with_suffix(".timeindex")
    code, out, _ = run("dump", str(tindex))
    assert code == 0, out
    assert "timestamp: 1700000000003 offset: 108" in out
    data = bytearray(tindex.read_bytes())
    struct.pack_into(">qi", data, 0, 1_800_000_000_000, 2)
    tindex.write_bytes(bytes(data))
    code, out, _ = run("dump", str(tindex))
    assert code == 1
    assert (
        "time index entry 0 (timestamp 1800000000000, offset 102): no record up to that offset has a timestamp that large"
        in out
    )
    assert "time index entry 1 (timestamp 1700000000003, offset 108): goes backwards" in out


def test_control_batch(tmp_path: Path) -> None:
    control = _core.build_batch(
        [(struct.pack(">hh", 0, 1), struct.pack(">hi", 0, 7), None, 1_700_000_000_000)],
        producer_id=42,
        producer_epoch=3,
        is_transactional=True,
        is_control=True,
    )
    log = _write_segment(
        tmp_path / "p",
        [
            _core.build_batch(
                _records(1),
                producer_id=42,
                producer_epoch=3,
                base_sequence=0,
                is_transactional=True,
            ),
            control,
        ],
    )
    code, out, _ = run("dump", "--deep-iteration", str(log))
    assert code == 0, out
    assert "isTransactional: true isControl: true" in out
    assert "endTxnMarker: COMMIT coordinatorEpoch: 7" in out
    assert "producerId: 42 producerEpoch: 3" in out


def test_directory_dump_and_verify(segment: Path) -> None:
    second = _write_segment(segment.parent, [_core.build_batch(_records(2))], base=109)
    code, out, _ = run("dump", str(segment.parent))
    assert code == 0
    dumped = [ln.split()[1] for ln in out.splitlines() if ln.startswith("Dumping ")]
    assert [Path(p).name for p in dumped] == [
        f"{BASE:020d}.log",
        f"{BASE:020d}.index",
        f"{BASE:020d}.timeindex",
        f"{109:020d}.log",
        f"{109:020d}.index",
        f"{109:020d}.timeindex",
    ]
    code, out, _ = run("verify", str(segment.parent))
    assert code == 0
    assert out.strip() == "OK: 6 file(s) verified, no damage found"
    # verify on a .log alone also checks the indexes next to it
    data = bytearray(second.with_suffix(".index").read_bytes())
    struct.pack_into(">ii", data, 0, 1, 3)
    second.with_suffix(".index").write_bytes(bytes(data))
    code, out, err = run("verify", str(second))
    assert code == 1
    assert out.startswith("DAMAGE ") and "no batch starts at that position" in out
    assert err.startswith("Error: damage found: 1 problem(s); first: ")


def test_max_bytes_reads_a_prefix_without_calling_it_damage(segment: Path) -> None:
    pos = _positions(segment)[1]
    code, out, _ = run("dump", "--max-bytes", str(pos + 10), str(segment))
    assert code == 0
    assert "baseOffset: 100" in out and "baseOffset: 103" not in out


def test_empty_segment(tmp_path: Path) -> None:
    log = tmp_path / f"{0:020d}.log"
    log.write_bytes(b"")
    code, out, _ = run("dump", str(log))
    assert code == 0
    assert "Batches: 0" in out


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["fastlog", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["log", "dump", "/no/such/file.log"], 2, "does not exist"),
        (["log", "dump", "--bogus", "x"], 2, "No such option '--bogus'"),
        (["log", "dump"], 2, "Missing argument"),
        (["log", "frobnicate"], 2, "No such command 'frobnicate'"),
    ],
)
def test_errors_are_one_line(args: list[str], code: int, needle: str) -> None:
    proc = _cli(*args)
    assert proc.returncode == code
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr


def test_not_a_segment_and_missing_log(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    proc = _cli("log", "dump", str(other))
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "not a segment file" in proc.stderr
    lonely = tmp_path / f"{0:020d}.index"
    lonely.write_bytes(b"")
    proc = _cli("log", "dump", str(lonely))
    assert proc.returncode == 1 and "is missing" in proc.stderr and proc.stderr.count("\n") == 1


# --------------------------------------------------------------------------- segments written by fastlog.Log


def test_segments_written_by_the_storage_engine(tmp_path: Path) -> None:
    from fastlog.log import Log

    d = tmp_path / "orders-0"
    log = Log(d, segment_bytes=4096, index_interval_bytes=256)
    for i in range(200):
        log.append_batch([(b"key-%d" % i, b"value-%d" % i * 5), (None, b"second-%d" % i)])
    # while open: the active segment's index is preallocated (zero-filled tail)
    code, out, err = run("verify", str(d))
    assert code == 0, out + err
    log.close()
    code, out, err = run("verify", str(d))
    assert code == 0, out + err
    logs = sorted(d.glob("*.log"))
    assert len(logs) > 3
    code, out, _ = run("dump", "--print-data-log", str(logs[1]))
    assert code == 0
    first = int(logs[1].name.split(".")[0])
    assert f"baseOffset: {first} " in out and "key: null payload: second-" in out
    # damage in the middle of a closed segment is located by file and byte position
    data = bytearray(logs[2].read_bytes())
    positions = _positions(logs[2])
    data[positions[3] + 65] ^= 0x01
    logs[2].write_bytes(bytes(data))
    code, out, err = run("verify", str(d))
    assert code == 1
    assert f"DAMAGE {logs[2]} at position {positions[3]}: CRC mismatch" in out
    assert err.startswith(
        f"Error: damage found: 1 problem(s); first: {logs[2]} at position {positions[3]}"
    )


def test_offsets_decoder(tmp_path: Path) -> None:
    from broker.coordinator import records as gr

    group_value = gr.GroupValue(
        "consumer",
        3,
        "range",
        "m-1",
        1_700_000_000_000,
        [gr.MemberValue("m-1", None, "client-a", "/127.0.0.1", 30000, 10000, b"", b"")],
    )
    records = [
        (
            gr.encode_group_key("billing"),
            gr.encode_group_value(group_value),
            None,
            1_700_000_000_000,
        ),
        (
            gr.encode_offset_key("billing", "orders", 2),
            gr.encode_offset_value(gr.OffsetValue(42, 0, "meta", 1_700_000_000_001)),
            None,
            1_700_000_000_001,
        ),
        (gr.encode_offset_key("billing", "orders", 3), None, None, 1_700_000_000_002),  # tombstone
        (b"\x00\x09junk", b"x", None, 1_700_000_000_003),
    ]
    log = _write_segment(
        tmp_path / "__consumer_offsets-7", [_core.build_batch(records)], base=0, index=False
    )
    code, out, _ = run("dump", "--offsets-decoder", str(log))
    assert code == 0, out
    recs = [ln for ln in out.splitlines() if ln.startswith("| offset:")]
    assert (
        'key: {"type": "group_metadata", "group": "billing"} payload: {"protocolType": "consumer", "generation": 3'
        in recs[0]
    )
    assert '"clientId": "client-a"' in recs[0]
    assert recs[1].endswith(
        'key: {"type": "offset_commit", "group": "billing", "topic": "orders", "partition": 2} '
        'payload: {"offset": 42, "leaderEpoch": 0, "metadata": "meta", "commitTimestamp": 1700000000001}'
    )
    assert recs[2].endswith('"partition": 3} payload: null')
    assert "(not a __consumer_offsets record: " in recs[3]


def test_help_has_examples() -> None:
    for args in (["log", "--help"], ["log", "dump", "--help"], ["log", "verify", "--help"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0
        assert "Examples:" in result.output and "fastlog log " in result.output


def test_producer_snapshot(tmp_path: Path) -> None:
    from broker.producer_state import ProducerStateManager

    d = tmp_path / "orders-0"
    _write_segment(
        d,
        [_core.build_batch(_records(3), producer_id=7, producer_epoch=1, base_sequence=0)],
        base=0,
    )
    state = ProducerStateManager(d)
    state.update(7, 1, 0, 2, 0, 2, 1_700_000_000_002)
    state.update(9, 0, 10, 14, 3, 7, 1_700_000_000_009)
    snap = state.take_snapshot(8)
    assert snap is not None and snap.exists()
    code, out, _ = run("dump", str(snap))
    assert code == 0, out
    lines = [ln for ln in out.splitlines() if ln.startswith("producerId:")]
    assert lines == [
        "producerId: 7 producerEpoch: 1 coordinatorEpoch: -1 currentTxnFirstOffset: -1 firstSequence: 0 lastSequence: 2 lastOffset: 2 offsetDelta: 2 timestamp: 1700000000002",
        "producerId: 9 producerEpoch: 0 coordinatorEpoch: -1 currentTxnFirstOffset: -1 firstSequence: 10 lastSequence: 14 lastOffset: 7 offsetDelta: 4 timestamp: 1700000000009",
    ]
    code, out, _ = run("verify", str(d))
    assert code == 0 and out.strip() == "OK: 4 file(s) verified, no damage found"
    data = bytearray(snap.read_bytes())
    data[-1] ^= 0xFF
    snap.write_bytes(bytes(data))
    code, out, err = run("verify", str(d))
    assert code == 1
    assert f"DAMAGE {snap}: producer snapshot cannot be read: snapshot CRC mismatch" in out


def test_whole_log_dir(tmp_path: Path) -> None:
    _write_segment(tmp_path / "a-0", [_core.build_batch(_records(2))], base=0)
    _write_segment(tmp_path / "a-1", [_core.build_batch(_records(3))], base=0)
    (tmp_path / "meta.properties").write_text("version=1\n")
    (tmp_path / "empty-0").mkdir()
    code, out, _ = run("verify", str(tmp_path))
    assert code == 0 and out.strip() == "OK: 6 file(s) verified, no damage found"
    code, out, _ = run("dump", str(tmp_path))
    assert [
        Path(ln.split()[1]).parent.name for ln in out.splitlines() if ln.startswith("Dumping ")
    ] == ["a-0"] * 3 + ["a-1"] * 3
    code, _, err = run("dump", str(tmp_path / "empty-0"))
    assert code == 1 and "no segment files" in err


def test_live_broker_data_dir(make_broker) -> None:
    """A real broker's data dir verifies clean while it runs (preallocated active indexes,
    empty __consumer_offsets segments) and after a clean stop (snapshots, trimmed indexes)."""
    b = make_broker(
        {"num.partitions": "2", "log.segment.bytes": "200000", "log.index.interval.bytes": "4096"}
    )
    produced = _cli(
        "perf",
        "produce",
        "-b",
        b.bootstrap,
        "-t",
        "dumped",
        "-n",
        "5000",
        "-s",
        "200",
        "--no-progress",
        "--producer-props",
        "enable.idempotence=true linger.ms=20 batch.size=16384",
    )
    assert produced.returncode == 0, produced.stderr
    consumed = _cli(
        "consume", "dumped", "-b", b.bootstrap, "--group", "dg", "--from-beginning", "--max", "10"
    )
    assert consumed.returncode == 0, consumed.stderr
    live = _cli("log", "verify", str(b.data_dir))
    assert live.returncode == 0, live.stdout + live.stderr
    b.stop()
    stopped = _cli("log", "verify", str(b.data_dir))
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    # keyless records stick to one partition (librdkafka's sticky partitioner): take the fuller
    part = max(
        (b.data_dir / f"dumped-{i}" for i in (0, 1)), key=lambda d: len(list(d.glob("*.log")))
    )
    assert len(list(part.glob("*.log"))) > 1  # several segments were checked
    dump = _cli("log", "dump", "--deep-iteration", str(part))
    offsets = [int(ln.split()[2]) for ln in dump.stdout.splitlines() if ln.startswith("| offset:")]
    assert offsets == list(range(len(offsets))) and len(offsets) > 1000
    assert "producerId: 0 " in dump.stdout or "producerId: 1 " in dump.stdout  # idempotent batches
    offsets_dump = _cli("log", "dump", "--offsets-decoder", str(b.data_dir))
    assert '"type": "offset_commit", "group": "dg", "topic": "dumped"' in offsets_dump.stdout
