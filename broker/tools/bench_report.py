"""Figures, limits, the markdown table and the PNG plots of ``fastlog bench``.

Owns turning raw measurements (records, bytes, CPU seconds, latencies) into the figures the
suite reports, deciding which side limited each figure, and rendering the table and plots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MB = 1e6
GB = 1e9

# A thread that ran or sat runnable this share of the wall time is CPU-bound (what is left
# is its own waits on the other side, and the probes' granularity).
SATURATED = 0.8


@dataclass(frozen=True)
class Config:
    partitions: int
    record_size: int
    acks: int

    @property
    def label(self) -> str:
        size = "1KiB" if self.record_size == 1024 else f"{self.record_size}B"
        return f"{self.partitions}p {size} acks={self.acks}"

    @property
    def slug(self) -> str:
        return f"p{self.partitions}-s{self.record_size}-a{'all' if self.acks == -1 else self.acks}"


@dataclass
class PhaseResult:
    """One phase (produce, consume or latency) against one broker."""

    records: int = 0
    bytes: int = 0
    elapsed: float = 0.0
    broker_cpu: dict[str, float] = field(default_factory=dict)
    client_cpu: list[dict[str, float]] = field(default_factory=list)
    workers: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    raw: list[dict[str, Any]] = field(default_factory=list)  # the workers' own reports

    @property
    def records_per_s(self) -> float:
        return self.records / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / MB / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def cpu_s_per_gb(self) -> float | None:
        if not self.broker_cpu or self.bytes <= 0:
            return None
        return self.broker_cpu["cpu_seconds"] / (self.bytes / GB)

    def limit(self) -> str:
        """Which side limited the figure, from the CPU each side wanted while it ran.

        A thread (the broker's event loop, or a client's Python loop) that was running or
        runnable nearly all the time is CPU-bound: it limits, and if the shared cores kept it
        waiting on a run queue, the machine did too. Otherwise nobody was CPU-bound and the
        figure is set by waits (round trips, fetch waits, disk). The figures follow, in cores:
        busiest thread run + queued / whole process, for the broker (b) and the clients (c),
        and the whole machine's busy cores (m).
        """
        if self.error:
            return "failed"
        if not self.client_cpu:
            return "n/a"
        b = self.broker_cpu
        b_want = b["busiest_thread_cores"] + b.get("busiest_thread_queued", 0.0) if b else None
        c = max(
            self.client_cpu,
            key=lambda u: u["busiest_thread_cores"] + u.get("busiest_thread_queued", 0.0),
        )
        c_want = c["busiest_thread_cores"] + c.get("busiest_thread_queued", 0.0)
        c_total = sum(u["cores"] for u in self.client_cpu)
        machine = b.get("machine_cores") if b else c["machine_cores"]
        bound = []
        if b_want is not None and b_want >= SATURATED:
            bound.append(("broker", b_want, b["busiest_thread_cores"]))
        if c_want >= SATURATED:
            bound.append(("client", c_want, c["busiest_thread_cores"]))
        if bound:
            side, _, ran = max(bound, key=lambda x: x[1])
            side = f"{side} CPU"
            if ran < SATURATED:
                side += " (starved by the shared cores)"
        else:
            side = "neither (waiting)"
        if b:
            broker = (
                f"b {b['busiest_thread_cores']:.2f}+{b.get('busiest_thread_queued', 0.0):.2f}q"
                f"/{b['cores']:.2f}"
            )
        else:
            broker = "b n/a"
        client = (
            f"c {c['busiest_thread_cores']:.2f}+{c.get('busiest_thread_queued', 0.0):.2f}q"
            f"/{c_total:.2f}"
        )
        return f"{side} ({broker}, {client}, m {machine:.1f})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "bytes": self.bytes,
            "elapsed": self.elapsed,
            "records_per_s": self.records_per_s,
            "mb_per_s": self.mb_per_s,
            "cpu_s_per_gb": self.cpu_s_per_gb,
            "broker_cpu": self.broker_cpu,
            "client_cpu": self.client_cpu,
            "workers": self.workers,
            "percentiles_ms": percentiles(self.latencies_ms) if self.latencies_ms else None,
            "limit": self.limit(),
            "error": self.error,
            "notes": self.notes,
        }


@dataclass
class BrokerRun:
    """All phases of one config against one broker."""

    produce: PhaseResult = field(default_factory=PhaseResult)
    consume: PhaseResult = field(default_factory=PhaseResult)
    latency: PhaseResult = field(default_factory=PhaseResult)
    peak_rss: int | None = None


def percentiles(values: list[float]) -> dict[str, float]:
    import numpy as np

    a = np.asarray(values, dtype=float)
    p50, p99, p999 = np.percentile(a, [50, 99, 99.9])
    return {"p50": float(p50), "p99": float(p99), "p99.9": float(p999), "max": float(a.max())}


# ---------------------------------------------------------------------------- table

# (workload, metric, better, getter); better is "higher" or "lower"
Row = tuple[str, str, str, Any]


def _lat(key: str) -> Any:
    def get(run: BrokerRun) -> float | None:
        lat = run.latency
        return percentiles(lat.latencies_ms)[key] if lat.latencies_ms and not lat.error else None

    return get


def _ok(phase: str, attr: str) -> Any:
    def get(run: BrokerRun) -> float | None:
        result: PhaseResult = getattr(run, phase)
        if result.error or result.records == 0:
            return None
        value = getattr(result, attr)
        return value

    return get


ROWS: list[Row] = [
    ("produce", "records/s", "higher", _ok("produce", "records_per_s")),
    ("produce", "MB/s", "higher", _ok("produce", "mb_per_s")),
    ("produce", "broker CPU s/GB", "lower", _ok("produce", "cpu_s_per_gb")),
    ("consume", "records/s", "higher", _ok("consume", "records_per_s")),
    ("consume", "MB/s", "higher", _ok("consume", "mb_per_s")),
    ("consume", "broker CPU s/GB", "lower", _ok("consume", "cpu_s_per_gb")),
    ("e2e latency @ rate", "p50 ms", "lower", _lat("p50")),
    ("e2e latency @ rate", "p99 ms", "lower", _lat("p99")),
    ("e2e latency @ rate", "p99.9 ms", "lower", _lat("p99.9")),
    (
        "e2e latency @ rate",
        "broker CPU cores",
        "lower",
        lambda r: r.latency.broker_cpu.get("cores") if r.latency.broker_cpu else None,
    ),
    ("broker", "peak RSS MB", "lower", lambda r: r.peak_rss / MB if r.peak_rss else None),
]


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _limit_cell(run: BrokerRun, workload: str) -> str:
    r: PhaseResult = getattr(run, workload)
    if r.error or not r.client_cpu:
        return "n/a"
    return f"{r.limit()}, {r.workers} proc"


def markdown_table(
    configs: list[Config], names: tuple[str, str], runs: dict[tuple[Config, str], BrokerRun]
) -> str:
    """One row per config and metric: fastlog, the peer, their ratio, and what limited it."""
    ours, peer = names
    lines = [
        f"| config | workload | metric | {ours} | {peer} | {ours}/{peer} "
        f"| limited by: {ours} / {peer} |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for cfg in configs:
        a = runs.get((cfg, ours), BrokerRun())
        b = runs.get((cfg, peer), BrokerRun())
        for workload, metric, better, get in ROWS:
            va, vb = get(a), get(b)
            ratio = fmt(va / vb) if va is not None and vb else "n/a"
            arrow = "↑" if better == "higher" else "↓"
            limit = ""
            if workload in ("produce", "consume") and metric == "records/s":
                limit = f"{_limit_cell(a, workload)} / {_limit_cell(b, workload)}"
            lines.append(
                f"| {cfg.label} | {workload} | {metric} {arrow} | {fmt(va)} | {fmt(vb)} "
                f"| {ratio} | {limit} |"
            )
    return "\n".join(lines) + "\n"


def targets(
    configs: list[Config], names: tuple[str, str], runs: dict[tuple[Config, str], BrokerRun]
) -> str:
    """How many configs meet the issue's steering targets (not tests): broker CPU per GB at
    most 0.5x the peer's, throughput at least the peer's, p99 end-to-end at most 5 ms."""
    ours, peer = names

    def count(check: Any) -> str:
        met = total = 0
        for cfg in configs:
            a, b = runs.get((cfg, ours)), runs.get((cfg, peer))
            if a is None:
                continue
            verdict = check(a, b)
            if verdict is None:
                continue
            total += 1
            met += bool(verdict)
        return f"{met}/{total}" if total else "n/a"

    def ratio_check(get: Any, limit: float, higher: bool) -> Any:
        def check(a: BrokerRun, b: BrokerRun | None) -> bool | None:
            va, vb = get(a), get(b) if b is not None else None
            if va is None or not vb:
                return None
            return va / vb >= limit if higher else va / vb <= limit

        return check

    def p99(a: BrokerRun, _b: BrokerRun | None) -> bool | None:
        value = _lat("p99")(a)
        return None if value is None else value <= 5.0

    lines = [
        "| target (from the issue, to steer by) | configs meeting it |",
        "|---|---:|",
        f"| produce broker CPU/GB <= 0.5x {peer} "
        f"| {count(ratio_check(_ok('produce', 'cpu_s_per_gb'), 0.5, False))} |",
        f"| consume broker CPU/GB <= 0.5x {peer} "
        f"| {count(ratio_check(_ok('consume', 'cpu_s_per_gb'), 0.5, False))} |",
        f"| produce records/s >= {peer} "
        f"| {count(ratio_check(_ok('produce', 'records_per_s'), 1.0, True))} |",
        f"| consume records/s >= {peer} "
        f"| {count(ratio_check(_ok('consume', 'records_per_s'), 1.0, True))} |",
        f"| {ours} p99 end-to-end <= 5 ms | {count(p99)} |",
    ]
    return "\n".join(lines) + "\n"


def failures(
    configs: list[Config], names: tuple[str, str], runs: dict[tuple[Config, str], BrokerRun]
) -> list[str]:
    out = []
    for cfg in configs:
        for name in names:
            run = runs.get((cfg, name))
            if run is None:
                continue
            for phase in ("produce", "consume", "latency"):
                r: PhaseResult = getattr(run, phase)
                if r.error:
                    out.append(f"{name} {cfg.label} {phase}: {r.error}")
                out.extend(f"{name} {cfg.label} {phase}: {n}" for n in r.notes)
    return out


# ---------------------------------------------------------------------------- plots


def plot_throughput(
    path: Path,
    configs: list[Config],
    names: tuple[str, str],
    runs: dict[tuple[Config, str], BrokerRun],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(configs) * 2), 4.5))
    x = np.arange(len(configs))
    width = 0.38
    for ax, phase in zip(axes, ("produce", "consume"), strict=True):
        for i, name in enumerate(names):
            values = []
            for cfg in configs:
                run = runs.get((cfg, name))
                r = getattr(run, phase) if run else None
                values.append(r.mb_per_s if r and not r.error else 0.0)
            bars = ax.bar(x + (i - 0.5) * width, values, width, label=name)
            ax.bar_label(bars, fmt="%.0f", fontsize=7)
        ax.set_title(f"{phase} throughput")
        ax.set_ylabel("MB/s (record values, 10^6 B)")
        ax.set_xticks(x, [c.label for c in configs], rotation=30, ha="right", fontsize=8)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency(
    path: Path,
    configs: list[Config],
    names: tuple[str, str],
    runs: dict[tuple[Config, str], BrokerRun],
    rate: int,
) -> None:
    """Percentile curves (HdrHistogram style: the x axis stretches the tail)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cols = min(4, len(configs))
    rows = (len(configs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    ticks = [0.5, 0.9, 0.99, 0.999, 0.9999]
    for ax, cfg in zip(axes.flat, configs, strict=False):
        for name in names:
            run = runs.get((cfg, name))
            if run is None or not run.latency.latencies_ms or run.latency.error:
                continue
            lat = np.sort(np.asarray(run.latency.latencies_ms))
            q = (np.arange(1, len(lat) + 1) - 0.5) / len(lat)
            ax.plot(-np.log10(1 - q), lat, label=name)
        ax.set_xticks([-np.log10(1 - t) for t in ticks], [f"{t * 100:g}" for t in ticks])
        ax.set_xlim(left=0)
        ax.set_yscale("log")
        ax.set_xlabel("percentile")
        ax.set_ylabel("end-to-end ms")
        ax.set_title(cfg.label, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(configs) :]:
        ax.set_visible(False)
    fig.suptitle(f"end-to-end latency at {rate:,} records/s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
