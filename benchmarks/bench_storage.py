"""Storage benchmarks: fastlog.Log vs plain file writes vs sqlite3, side by side.

Workload (issue 2): 1,000,000 records of 100 bytes appended in batches of 1,000; all of them
read back as records; 100,000 random single-offset lookups; CRC-32C of 1 MiB.

Two ways to run it:
  python benchmarks/bench_storage.py [--records N]          # plain script: prints a table
  python -m pytest benchmarks/bench_storage.py --benchmark-enable -p no:randomly \
      --benchmark-group-by=group --benchmark-columns=min,mean,max,rounds
The baselines are the honest ones a Python user would pick: a buffered file with one
write per batch of already-joined values (no framing, so it cannot be read back record by
record), and sqlite3 in WAL mode with synchronous=NORMAL (no fsync per commit, like fastlog's
default of leaving flushing to the OS), one transaction per batch.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import fastlog
from fastlog import Log

RECORDS = 1_000_000
BATCH = 1_000
VALUE_SIZE = 100
LOOKUPS = 100_000

# wall time by default; --cpu measures process CPU time (user + system, our syscalls included),
# which is what to compare on a shared machine where other jobs take turns on the cores
clock = time.perf_counter


def make_values(n: int) -> list[bytes]:
    filler = b"x" * (VALUE_SIZE - 10)
    return [b"%010d" % i + filler for i in range(n)]


def batches(values: list[bytes]) -> list[list[bytes]]:
    return [values[i : i + BATCH] for i in range(0, len(values), BATCH)]


# ---------------------------------------------------------------- fastlog


def fastlog_append(path: Path, bs: list[list[bytes]]) -> float:
    with Log(path, retention_ms=-1) as log:
        t0 = clock()
        for b in bs:
            log.append_batch(b)
        return clock() - t0  # close() fsyncs everything: not part of appending


def fastlog_read(path: Path) -> int:
    n = 0
    with Log(path, retention_ms=-1) as log:
        for r in log.read(0):
            n += r.value is not None
    return n


def fastlog_lookups(path: Path, offsets: list[int]) -> int:
    n = 0
    with Log(path, retention_ms=-1) as log:
        for off in offsets:
            for r in log.read(off, max_records=1):
                n += r.offset == off
    return n


# ---------------------------------------------------------------- plain file


def file_append(path: Path, bs: list[list[bytes]]) -> float:
    with open(path, "wb") as f:
        t0 = clock()
        for b in bs:
            f.write(b"".join(b))
        f.flush()
        return clock() - t0


def file_read(path: Path) -> int:
    # fixed-size values: slicing the file is the best a plain file can do for "records"
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(VALUE_SIZE * BATCH * 10):
            n += len([chunk[i : i + VALUE_SIZE] for i in range(0, len(chunk), VALUE_SIZE)])
    return n


def file_lookups(path: Path, offsets: list[int]) -> int:
    n = 0
    with open(path, "rb") as f:
        for off in offsets:
            f.seek(off * VALUE_SIZE)
            n += len(f.read(VALUE_SIZE)) == VALUE_SIZE
    return n


# ---------------------------------------------------------------- sqlite3


def _sqlite(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def sqlite_append(path: Path, bs: list[list[bytes]]) -> float:
    db = _sqlite(path)
    db.execute(
        "CREATE TABLE records (offset INTEGER PRIMARY KEY, timestamp INTEGER, key BLOB, value BLOB)"
    )
    t0 = clock()
    off = 0
    for b in bs:
        ts = time.time_ns() // 1_000_000
        with db:
            db.executemany(
                "INSERT INTO records VALUES (?, ?, NULL, ?)",
                [(off + i, ts, v) for i, v in enumerate(b)],
            )
        off += len(b)
    elapsed = clock() - t0
    db.close()
    return elapsed


def sqlite_read(path: Path) -> int:
    db = _sqlite(path)
    n = 0
    for row in db.execute("SELECT offset, timestamp, key, value FROM records ORDER BY offset"):
        n += row[3] is not None
    db.close()
    return n


def sqlite_lookups(path: Path, offsets: list[int]) -> int:
    db = _sqlite(path)
    n = 0
    q = "SELECT offset, timestamp, key, value FROM records WHERE offset = ?"
    for off in offsets:
        for _row in db.execute(q, (off,)):
            n += 1
    db.close()
    return n


# ---------------------------------------------------------------- harness

STORES: dict[str, tuple[Callable, Callable, Callable, str]] = {
    "fastlog": (fastlog_append, fastlog_read, fastlog_lookups, "log"),
    "plain file": (file_append, file_read, file_lookups, "values.bin"),
    "sqlite3": (sqlite_append, sqlite_read, sqlite_lookups, "records.db"),
}


def _target(work: Path, store: str) -> Path:
    return work / STORES[store][3]


def _clear(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p)
    for q in (p, p.with_name(p.name + "-wal"), p.with_name(p.name + "-shm")):
        if q.exists():
            q.unlink()


def run_table(records: int, rounds: int) -> dict[str, dict[str, float]]:
    values = make_values(records)
    bs = batches(values)
    rng = random.Random(42)
    offsets = [rng.randrange(records) for _ in range(min(LOOKUPS, records))]
    work = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    results: dict[str, dict[str, float]] = {}
    try:
        for store, (append, read, lookup, _) in STORES.items():
            p = _target(work, store)
            t_app, t_read, t_look = [], [], []
            for _ in range(rounds):
                _clear(p)
                t_app.append(append(p, bs))
            for _ in range(rounds):
                t0 = clock()
                assert read(p) == records
                t_read.append(clock() - t0)
            for _ in range(rounds):
                t0 = clock()
                assert lookup(p, offsets) == len(offsets)
                t_look.append(clock() - t0)
            results[store] = {
                "append": min(t_app),
                "read": min(t_read),
                "lookups": min(t_look),
            }
            _clear(p)
        # fastlog's offset -> file position alone (OffsetIndex + header walk), no decoding
        p = _target(work, "fastlog")
        fastlog_append(p, bs)
        with Log(p, retention_ms=-1) as log:
            seg = log.segments[0]
            t0 = clock()
            for off in offsets:
                seg.translate_offset(off)
            results["fastlog index"] = {"lookups": clock() - t0}
        _clear(p)
        data = os.urandom(1 << 20)
        t = []
        for _ in range(max(rounds, 5)):
            t0 = clock()
            for _ in range(100):
                fastlog._core.crc32c(data)
            t.append((clock() - t0) / 100)
        results["crc32c 1 MiB"] = {"crc": min(t)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def len_lookups(records: int) -> int:
    return min(LOOKUPS, records)


def print_table(results: dict[str, dict[str, float]], records: int) -> None:
    mb = records * VALUE_SIZE / 1e6
    what = "CPU time" if clock is time.process_time else "wall time"
    print(
        f"\n{records:,} records x {VALUE_SIZE} B in batches of {BATCH:,} (best of rounds, {what})\n"
    )
    print(f"| store | append | read as records | {len_lookups(records):,} random lookups |")
    print("|---|---|---|---|")
    for store in STORES:
        r = results[store]
        print(
            f"| {store} | {r['append']:.3f} s ({records / r['append'] / 1e6:.2f} M rec/s, "
            f"{mb / r['append']:.0f} MB/s) | {r['read']:.3f} s ({records / r['read'] / 1e6:.2f} M rec/s) "
            f"| {r['lookups']:.3f} s ({r['lookups'] / len_lookups(records) * 1e6:.1f} us each) |"
        )
    f, p, s = results["fastlog"], results["plain file"], results["sqlite3"]
    print(
        f"\nfastlog vs sqlite3: append {s['append'] / f['append']:.1f}x (target >= 10x), "
        f"read {s['read'] / f['read']:.1f}x (target >= 5x), lookups {s['lookups'] / f['lookups']:.2f}x"
    )
    print(f"fastlog vs plain file writes: append {p['append'] / f['append']:.2f}x (target >= 0.5x)")
    idx = results["fastlog index"]["lookups"]
    print(
        f"fastlog offset -> position only (OffsetIndex + batch header walk): "
        f"{idx / len_lookups(records) * 1e6:.1f} us each"
    )
    crc = results["crc32c 1 MiB"]["crc"]
    print(
        f"CRC-32C of 1 MiB (fastlog._core.crc32c): {crc * 1e6:.1f} us ({(1 << 20) / crc / 1e9:.1f} GB/s)"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=RECORDS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpu", action="store_true", help="measure process CPU time, not wall time")
    args = ap.parse_args(argv)
    global clock
    if args.cpu:
        clock = time.process_time
    print_table(run_table(args.records, args.rounds), args.records)


# ---------------------------------------------------------------- pytest-benchmark


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    values = make_values(RECORDS)
    rng = random.Random(42)
    work = tmp_path_factory.mktemp("bench")
    return {
        "batches": batches(values),
        "offsets": [rng.randrange(RECORDS) for _ in range(LOOKUPS)],
        "work": work,
    }


@pytest.mark.parametrize("store", list(STORES))
def test_append(benchmark, dataset, store):
    benchmark.group = "append 1M x 100 B, batches of 1000"
    append = STORES[store][0]
    p = _target(dataset["work"], store)
    benchmark.pedantic(append, args=(p, dataset["batches"]), setup=lambda: _clear(p), rounds=3)


@pytest.mark.parametrize("store", list(STORES))
def test_read(benchmark, dataset, store):
    benchmark.group = "read 1M records"
    append, read = STORES[store][0], STORES[store][1]
    p = _target(dataset["work"], store)
    _clear(p)
    append(p, dataset["batches"])
    assert benchmark.pedantic(read, args=(p,), rounds=3) == RECORDS


@pytest.mark.parametrize("store", list(STORES))
def test_lookups(benchmark, dataset, store):
    benchmark.group = "100k random offset lookups"
    append, lookup = STORES[store][0], STORES[store][2]
    p = _target(dataset["work"], store)
    _clear(p)
    append(p, dataset["batches"])
    n = benchmark.pedantic(lookup, args=(p, dataset["offsets"]), rounds=3)
    assert n == LOOKUPS
    _clear(p)


def test_crc32c_1mib(benchmark):
    benchmark.group = "crc32c 1 MiB"
    data = os.urandom(1 << 20)
    benchmark(fastlog._core.crc32c, data)


if __name__ == "__main__":
    main(sys.argv[1:])
