"""Network namespaces for partition faults: each broker in its own namespace, joined to a
bridge in the root namespace by a veth pair (needs root and iproute2).

Addresses on a private /24: the bridge has .1 (the test's clients) and .2 (ZooKeeper binds
there); broker N has .(10+N). ``isolate(N)`` adds blackhole routes inside broker N's namespace
to ZooKeeper and the other brokers, so it is cut off from the cluster while clients still
reach it (its replies to them take the normal route); ``heal(N)`` removes them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from support import BrokerProcess


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def available() -> str | None:
    """None when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    name = f"flchk{os.getpid() % 100000}"
    r = _ip("netns", "add", name, check=False)
    if r.returncode != 0:
        return f"ip netns add failed: {r.stderr.strip()}"
    _ip("netns", "del", name, check=False)
    return None


class Network:
    def __init__(self, nodes: list[int]) -> None:
        tag = os.getpid() % 10000
        self.prefix = f"fl{tag}"
        self.subnet = f"10.{200 + tag % 50}.{tag % 250}"
        self.bridge = f"{self.prefix}br"
        self.nodes = nodes
        self.client_ip = f"{self.subnet}.1"
        self.zk_ip = f"{self.subnet}.2"

    def ns(self, node: int) -> str:
        return f"{self.prefix}n{node}"

    def ip_of(self, node: int) -> str:
        return f"{self.subnet}.{10 + node}"

    def up(self) -> Network:
        self.down()
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.client_ip}/24", "dev", self.bridge)
        _ip("addr", "add", f"{self.zk_ip}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for n in self.nodes:
            ns, host_if, ns_if = self.ns(n), f"{self.prefix}h{n}", f"{self.prefix}c{n}"
            _ip("netns", "add", ns)
            _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
            _ip("link", "set", ns_if, "netns", ns)
            _ip("link", "set", host_if, "master", self.bridge)
            _ip("link", "set", host_if, "up")
            _ip("-n", ns, "addr", "add", f"{self.ip_of(n)}/24", "dev", ns_if)
            _ip("-n", ns, "link", "set", ns_if, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        return self

    def down(self) -> None:
        for n in self.nodes:
            _ip("netns", "del", self.ns(n), check=False)
            _ip("link", "del", f"{self.prefix}h{n}", check=False)
        _ip("link", "del", self.bridge, check=False)

    def isolate(self, node: int) -> None:
        for target in [self.zk_ip] + [self.ip_of(o) for o in self.nodes if o != node]:
            _ip("-n", self.ns(node), "route", "add", "blackhole", f"{target}/32")

    def cut_zookeeper(self, node: int) -> None:
        """Broker ``node`` loses ZooKeeper only: its session expires while it still talks
        to the other brokers and to clients."""
        _ip("-n", self.ns(node), "route", "add", "blackhole", f"{self.zk_ip}/32")

    def heal(self, node: int) -> None:
        for target in [self.zk_ip] + [self.ip_of(o) for o in self.nodes if o != node]:
            _ip("-n", self.ns(node), "route", "del", "blackhole", f"{target}/32", check=False)


class NetnsBroker(BrokerProcess):
    """A BrokerProcess run with ``ip netns exec`` on its namespace's address."""

    net: Network | None = None
    node: int = 0

    @property
    def host(self) -> str:
        assert self.net is not None
        return self.net.ip_of(self.node)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> NetnsBroker:
        assert self.net is not None
        cmd = [
            "ip", "netns", "exec", self.net.ns(self.node),
            sys.executable, "-m", "broker",
            "--host", self.host, "--port", str(self.port),
            "--data-dir", str(self.data_dir),
        ]  # fmt: skip
        for k, v in self.overrides.items():
            cmd += ["--override", f"{k}={v}"]
        cmd += self.extra_args
        self.log_path = self.data_dir.parent / f"broker-{self.port}.log"
        log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"broker {self.node} not listening after {timeout}s")
