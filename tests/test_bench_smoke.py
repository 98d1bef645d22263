"""Smoke tests of the ``fastlog bench`` harness itself (never the peer broker).

The end-to-end test runs the real command for one tiny config against a real fastlog broker
the harness starts, and checks that it produced the table, results.json and both plots with
figures in them. Speed is never asserted here: that is what the benchmark reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker.tools.bench import bench, parse_config, summarise_profile
from broker.tools.bench_procs import (
    CpuSnapshot,
    CpuUsage,
    peak_rss_bytes,
    process_cpu_seconds,
    thread_times,
)
from broker.tools.bench_report import BrokerRun, Config, PhaseResult, markdown_table, targets

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_bench(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "from broker.cli import main; main()", "bench", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(300)
def test_short_run_against_fastlog(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = run_bench(
        "--only", "fastlog", "--config", "1:100:1", "--duration", "3",
        "--max-bytes", "2000000", "--producers", "1", "--consumers", "1",
        "--rate", "1000", "--output", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (out / "results.md").read_text()
    assert table in proc.stdout  # the same table goes to the terminal
    assert "| config | workload | metric | fastlog | tansu |" in table
    data = json.loads((out / "results.json").read_text())
    (run,) = [r for r in data["runs"] if r["broker"] == "fastlog"]
    for phase in ("produce", "consume", "latency"):
        assert run[phase]["error"] is None, (phase, run[phase], table)
    produced = run["produce"]["records"]
    assert produced > 0
    assert run["produce"]["bytes"] == produced * 100
    # the consume phase reads back exactly what the produce phase left in the log
    assert run["consume"]["records"] == produced, run["consume"]["notes"]
    assert run["produce"]["broker_cpu"]["cpu_seconds"] >= 0
    assert run["peak_rss"] > 0
    pct = run["latency"]["percentiles_ms"]
    assert 0 < pct["p50"] <= pct["p99"] <= pct["p99.9"] <= pct["max"]
    row = next(line for line in table.splitlines() if "| produce | records/s" in line)
    assert row.split("|")[4].strip() not in ("", "n/a"), row
    for png in ("throughput.png", "latency.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC


def test_bad_options_get_clear_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(bench, ["--config", "6:x:1", "--output", str(tmp_path)])
    assert result.exit_code == 2
    assert "PARTITIONS:SIZE:ACKS" in result.output
    result = runner.invoke(bench, ["--config", "6:100:2", "--output", str(tmp_path)])
    assert result.exit_code == 2 and "acks" in result.output
    result = runner.invoke(bench, ["--duration", "0", "--output", str(tmp_path)])
    assert result.exit_code == 2
    result = runner.invoke(bench, ["--producers", "0", "--output", str(tmp_path)])
    assert result.exit_code == 2 and "auto" in result.output
    result = runner.invoke(bench, ["--consumer-config", "novalue", "--only", "fastlog",
                                   "--config", "1:100:1", "--output", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


def test_parse_config() -> None:
    assert parse_config("6:1024:-1") == Config(6, 1024, -1)
    assert Config(6, 1024, -1).label == "6p 1KiB acks=-1"


def test_proc_probes_read_a_real_process() -> None:
    pid = os.getpid()
    assert peak_rss_bytes(pid) > 0
    threads = thread_times(pid)
    assert pid in threads  # the main thread's tid is the pid
    before = CpuSnapshot.take(pid)
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # burn CPU so the counters must move
        pass
    after = CpuSnapshot.take(pid)
    usage = CpuUsage.between(before, after)
    assert usage.cpu_seconds > 0
    assert process_cpu_seconds(pid) >= after.process
    assert usage.busiest_thread_cores > 0  # the main thread did the burning


def test_limit_names_the_cpu_bound_side() -> None:
    def phase(broker: tuple[float, float], client: tuple[float, float]) -> PhaseResult:
        def usage(run: float, queued: float) -> dict[str, float]:
            return {"busiest_thread_cores": run, "busiest_thread_queued": queued,
                    "cores": run, "machine_cores": 2.0, "cpu_seconds": run}  # fmt: skip

        return PhaseResult(records=10, bytes=1000, elapsed=1.0, broker_cpu=usage(*broker),
                           client_cpu=[usage(*client)], workers=1)  # fmt: skip

    assert phase((0.97, 0.0), (0.5, 0.1)).limit().startswith("broker CPU (b 0.97+0.00q")
    assert phase((0.3, 0.1), (0.95, 0.0)).limit().startswith("client CPU (b")
    # runnable but kept off the cores by other load: still CPU-bound, and said so
    assert phase((0.5, 0.45), (0.2, 0.1)).limit().startswith("broker CPU (starved")
    assert phase((0.1, 0.05), (0.1, 0.0)).limit().startswith("neither")


def test_table_has_both_brokers_and_the_ratio() -> None:
    cfg = Config(1, 100, 1)
    ours = BrokerRun(produce=PhaseResult(records=300, bytes=30_000, elapsed=1.0))
    theirs = BrokerRun(produce=PhaseResult(records=100, bytes=10_000, elapsed=1.0))
    table = markdown_table([cfg], ("fastlog", "tansu"), {(cfg, "fastlog"): ours,
                                                         (cfg, "tansu"): theirs})  # fmt: skip
    row = next(line for line in table.splitlines() if "| produce | records/s" in line)
    cells = [c.strip() for c in row.split("|")]
    assert cells[4:7] == ["300", "100", "3.00"]
    summary = targets([cfg], ("fastlog", "tansu"), {(cfg, "fastlog"): ours, (cfg, "tansu"): theirs})
    assert "| produce records/s >= tansu | 1/1 |" in summary
    assert "| consume records/s >= tansu | n/a |" in summary  # nothing consumed: no verdict


def test_profile_summary_counts_self_and_inclusive_time() -> None:
    collapsed = (
        "main (m.py:1);serve (s.py:5);append (a.py:10) 30\n"
        "main (m.py:1);serve (s.py:5);append (a.py:12) 20\n"
        "main (m.py:1);crc (c.py:3) 40\n"
        "main (m.py:1) 10\n"
    )
    summary = summarise_profile(collapsed)
    assert "100 samples" in summary
    assert "| 40.0 | `crc (c.py:3)` |" in summary
    assert "| 30.0 | `append (a.py:10)` |" in summary
    assert "| 50.0 | `append (a.py)` |" in summary  # both lines of the function
