"""Cluster fixtures: a real ZooKeeper server (Debian's zookeeper package, run with java) and
three fastlog brokers on loopback that join it with --node-id/--zookeeper.

Every test in tests/cluster is marked ``cluster`` (``pytest -m cluster`` runs only them,
``-m 'not cluster'`` skips them); they need java and /usr/share/java/zookeeper.jar, which
scripts/test.sh installs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from support import BrokerProcess, free_port, wait_for_port

ZK_JAR = Path("/usr/share/java/zookeeper.jar")
ZK_CONF_DIR = Path("/etc/zookeeper/conf")
CHROOT = "/fastlog"
SESSION_TIMEOUT_MS = 6000

# Broker settings of the test cluster: short ZooKeeper session so faults are detected fast.
BROKER_OVERRIDES = {
    "zookeeper.session.timeout.ms": str(SESSION_TIMEOUT_MS),
    "num.partitions": "3",
    "default.replication.factor": "3",
    "offsets.topic.replication.factor": "3",
    "offsets.topic.num.partitions": "6",
    "group.initial.rebalance.delay.ms": "0",
    "replica.lag.time.max.ms": "10000",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: needs ZooKeeper and starts several brokers")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def wait_until(cond: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached after {timeout}s")
        time.sleep(0.05)


class ZooKeeperServer:
    """A standalone ZooKeeper on a free loopback port with a temp dataDir."""

    def __init__(self, workdir: Path, host: str = "127.0.0.1") -> None:
        self.workdir = workdir
        self.host = host
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def connect(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> ZooKeeperServer:
        java = shutil.which("java")
        if java is None or not ZK_JAR.exists():
            pytest.fail("ZooKeeper not installed (scripts/test.sh apt-installs zookeeper)")
        data = self.workdir / "zk-data"
        data.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "zoo.cfg"
        cfg.write_text(
            "tickTime=500\n"  # sessions may be 1 s .. 10 s
            f"dataDir={data}\n"
            f"clientPort={self.port}\n"
            f"clientPortAddress={self.host}\n"
            "maxClientCnxns=0\n"
            "admin.enableServer=false\n"
            "forceSync=no\n"
        )
        classpath = f"{ZK_CONF_DIR}:{ZK_JAR}"
        log = open(self.workdir / "zookeeper.log", "ab")
        self.proc = subprocess.Popen(
            [
                java,
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                f"-Dzookeeper.log.dir={self.workdir}",
                "-cp",
                classpath,
                "org.apache.zookeeper.server.ZooKeeperServerMain",
                str(cfg),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if self.host == "127.0.0.1":
            wait_for_port(self.port, 30, self.proc)
        # The port opens before the server serves; a client connecting then backs off for
        # seconds. Wait for the 'srvr' four-letter word to answer instead.
        wait_until(self._serving, 30, "ZooKeeper serving")
        return self

    def _serving(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as s:
                s.sendall(b"srvr")
                return b"Mode:" in s.recv(4096)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Cluster:
    """Three (or more) brokers registered in one ZooKeeper, plus a kazoo client to look."""

    def __init__(
        self,
        zk_server: ZooKeeperServer,
        workdir: Path,
        size: int = 3,
        overrides: dict[str, str] | None = None,
        racks: dict[int, str] | None = None,
        net: Any = None,
    ) -> None:
        self.zk_server = zk_server
        self.workdir = workdir
        self.connect = zk_server.connect + CHROOT
        self.zk = KazooClient(hosts=self.connect, timeout=10)
        self.overrides = {**BROKER_OVERRIDES, **(overrides or {})}
        self.brokers: dict[int, BrokerProcess] = {}
        for node in range(1, size + 1):
            d = workdir / f"broker-{node}" / "data"
            d.mkdir(parents=True, exist_ok=True)
            ov = dict(self.overrides)
            if racks and node in racks:
                ov["broker.rack"] = racks[node]
            args = ["--node-id", str(node), "--zookeeper", self.connect]
            if net is None:
                self.brokers[node] = BrokerProcess(d, free_port(), ov, args)
            else:  # each broker in its own network namespace (cluster/netns.py)
                from cluster.netns import NetnsBroker

                b = NetnsBroker(d, free_port(), ov, args)
                b.net, b.node = net, node
                self.brokers[node] = b

    # -- lifecycle -----------------------------------------------------------------------
    def connect_zookeeper(self) -> None:
        """Create the chroot and connect the test's own kazoo client (start() does it)."""
        root = KazooClient(hosts=self.zk_server.connect, timeout=10)
        root.start(timeout=20)
        root.ensure_path(CHROOT)
        root.stop()
        root.close()
        self.zk.start(timeout=20)

    def start(self, precreate_offsets: bool = True) -> Cluster:
        self.connect_zookeeper()
        if precreate_offsets:
            self.precreate_offsets_topic()
        with ThreadPoolExecutor(len(self.brokers)) as pool:
            list(pool.map(self.start_broker, self.brokers))
        self.wait_registered(set(self.brokers))
        wait_until(lambda: self.controller() in self.brokers, 20, "a controller")
        for node in self.brokers:
            self.wait_view(node)
        return self

    def wait_view(self, node: int, timeout: float = 20.0) -> None:
        """Until broker ``node``'s Metadata lists exactly the brokers registered in
        ZooKeeper (its cache follows ZooKeeper through watches, a few ms behind)."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.brokers[node].bootstrap})

        def same() -> bool:
            try:
                return set(admin.list_topics(timeout=5).brokers) == self.live()
            except Exception:
                return False

        wait_until(same, timeout, f"broker {node} sees every registered broker")

    def start_broker(self, node: int, timeout: float = 60.0) -> BrokerProcess:
        """Start (or restart) broker ``node`` and wait for its registration in ZooKeeper.
        A free port can be taken by another process between free_port() and the bind: then
        the broker exits and is started again on another port."""
        b = self.brokers[node]
        for _ in range(5):
            b.start(timeout)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if b.proc.poll() is not None:
                    break
                try:
                    data, _ = self.zk.get(f"/brokers/ids/{node}")
                    if json.loads(data)["port"] == b.port:
                        self.wait_view(node)
                        return b
                except Exception:
                    pass
                time.sleep(0.05)
            if b.proc.poll() is None:
                raise TimeoutError(f"broker {node} not registered after {timeout}s")
            b.port = free_port()
        raise RuntimeError(f"broker {node} did not start:\n{b.output()[-3000:]}")

    def precreate_offsets_topic(self) -> None:
        """__consumer_offsets with RF 3 before any broker starts, written as kafka-topics
        --zookeeper did. Brokers create it themselves on the first FindCoordinator (once
        offsets.topic.replication.factor brokers are up; test_offsets_topic.py); writing it
        up front lets tests look up a group's coordinator in ZooKeeper before any group
        request."""
        from broker.metadata.zookeeper import create_topic_znodes

        self.zk.ensure_path("/brokers/topics")
        self.zk.ensure_path("/config/topics")
        n = int(self.overrides["offsets.topic.num.partitions"])
        nodes = sorted(self.brokers)
        assignment = {
            i: [nodes[(i + r) % len(nodes)] for r in range(min(3, len(nodes)))] for i in range(n)
        }
        create_topic_znodes(
            self.zk,
            "__consumer_offsets",
            uuid.uuid4(),
            assignment,
            {"cleanup.policy": "compact", "compression.type": "producer"},
        )

    def stop(self) -> None:
        for b in self.brokers.values():
            if b.proc is not None and b.proc.poll() is None:
                try:
                    os.kill(b.proc.pid, signal.SIGCONT)
                except OSError:
                    pass
        with ThreadPoolExecutor(len(self.brokers)) as pool:
            list(pool.map(lambda b: b.stop(signal.SIGTERM, 20), self.brokers.values()))
        try:
            self.zk.stop()
            self.zk.close()
        except Exception:
            pass

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers.values())

    def bootstrap_of(self, nodes: list[int] | set[int]) -> str:
        return ",".join(self.brokers[n].bootstrap for n in nodes)

    # -- looking into ZooKeeper ----------------------------------------------------------
    def live(self) -> set[int]:
        return {int(c) for c in self.zk.get_children("/brokers/ids")}

    def wait_registered(self, nodes: set[int], timeout: float = 30.0) -> None:
        wait_until(lambda: self.live() == nodes, timeout, f"brokers {sorted(nodes)} registered")

    def controller(self) -> int:
        try:
            data, _ = self.zk.get("/controller")
        except Exception:
            return -1
        return int(json.loads(data)["brokerid"])

    def controller_epoch(self) -> int:
        return int(self.zk.get("/controller_epoch")[0])

    def assignment(self, topic: str) -> dict[int, list[int]]:
        data, _ = self.zk.get(f"/brokers/topics/{topic}")
        return {int(p): r for p, r in json.loads(data)["partitions"].items()}

    def state(self, topic: str, partition: int) -> dict[str, Any]:
        data, _ = self.zk.get(f"/brokers/topics/{topic}/partitions/{partition}/state")
        return json.loads(data)

    def leader(self, topic: str, partition: int) -> int:
        return int(self.state(topic, partition)["leader"])

    def output(self, node: int) -> str:
        return self.brokers[node].output()


@pytest.fixture
def zookeeper(tmp_path: Path) -> Iterator[ZooKeeperServer]:
    (tmp_path / "zk").mkdir()
    server = ZooKeeperServer(tmp_path / "zk").start()
    yield server
    server.stop()


def dump_logs(c: Cluster, lines: int = 60) -> None:
    """On failure: the tail of every broker's log (pytest shows captured stdout)."""
    for node, b in c.brokers.items():
        tail = b.output().splitlines()[-lines:]
        print(f"===== broker {node} (port {b.port}) =====")
        print("\n".join(tail))


@pytest.fixture
def cluster(
    zookeeper: ZooKeeperServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Cluster]:
    c = Cluster(zookeeper, tmp_path)
    try:
        c.start()
    except BaseException:
        dump_logs(c)
        c.stop()
        raise
    yield c
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        dump_logs(c)
    c.stop()
