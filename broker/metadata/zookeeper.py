"""ZooKeeperMetadataStore: cluster metadata kept in Apache ZooKeeper, Kafka's pre-KRaft layout.

Owns the znodes a broker reads and writes (the layout Kafka 2.x/3.x uses with ZooKeeper):

    /cluster/id                                 {"version":"1","id":"<cluster id>"}
    /brokers/ids/<N>                            ephemeral: endpoints, host, port, rack
    /brokers/topics/<T>                         {"version":3,"partitions":{"0":[1,2,3]},"topic_id":..}
    /brokers/topics/<T>/partitions/<P>/state    {"leader":1,"leader_epoch":0,"isr":[..],
                                                 "controller_epoch":1,"version":1}
    /config/topics/<T>                          {"version":1,"config":{...}}
    /config/changes/config_change_<seq>         {"version":2,"entity_path":"topics/<T>"}
    /log_dir_event_notification/log_dir_event_<seq>  {"version":1,"broker":N,"event":1}
    /controller, /controller_epoch              (broker/controller.py)
    /latest_producer_id_block                   producer id blocks, allocated by CAS

Every change of shared state is a conditional write (versioned setData or a multi-op
transaction), so two brokers never overwrite each other's decisions silently.

The store keeps an in-memory copy (read by handlers, cheap and synchronous). ZooKeeper
watches fire on kazoo's thread; a sync thread re-reads what changed and hands the result to
the broker's asyncio loop (``loop.call_soon_threadsafe``), where the copy is updated and
listeners are told (on_topic_created, on_partition_state_changed, on_brokers_changed...).
Unlike Kafka, brokers learn partition state from these watches rather than from the
controller's LeaderAndIsr requests: ZooKeeper is the only channel between controller and
brokers.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import logging
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    KazooException,
    NodeExistsError,
    NoNodeError,
    RolledBackError,
)
from kazoo.protocol.states import EventType, WatchedEvent
from kazoo.retry import KazooRetry

from broker.metadata.store import (
    BrokerInfo,
    FencedLeaderEpochError,
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    MetadataError,
    MetadataStore,
    PartitionInfo,
    TopicAlreadyExistsError,
    TopicInfo,
    UnknownTopicError,
    check_replica_assignment,
    validate_topic_name,
)

log = logging.getLogger(__name__)

MAX_PARTITIONS = 100_000
# A metadata change waits this long for ZooKeeper, then answers REQUEST_TIMED_OUT: callers run
# on the broker's event loop, which must not stall until kazoo declares the connection lost.
OPERATION_TIMEOUT_S = 4.0
PRODUCER_ID_BLOCK = "/latest_producer_id_block"
CONFIG_CHANGES = "/config/changes"
LOG_DIR_EVENTS = "/log_dir_event_notification"


class ZooKeeperUnavailableError(MetadataError):
    """ZooKeeper could not be reached (or the session was lost) while changing metadata."""

    error_code = 7  # REQUEST_TIMED_OUT: retriable, what Kafka answers when ZooKeeper is away


# -- znode paths and payloads (Kafka's formats) ---------------------------------------------
def topic_path(topic: str) -> str:
    return f"/brokers/topics/{topic}"


def partitions_path(topic: str) -> str:
    return f"/brokers/topics/{topic}/partitions"


def state_path(topic: str, index: int) -> str:
    return f"/brokers/topics/{topic}/partitions/{index}/state"


def config_path(topic: str) -> str:
    return f"/config/topics/{topic}"


def broker_path(node_id: int) -> str:
    return f"/brokers/ids/{node_id}"


def encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def decode(data: bytes | None) -> Any:
    if not data:
        return None
    return json.loads(data.decode())


def topic_id_to_zk(topic_id: uuid.UUID) -> str:
    """Kafka stores topic ids as URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(topic_id.bytes).rstrip(b"=").decode()


def topic_id_from_zk(text: str | None) -> uuid.UUID:
    if not text:
        return uuid.UUID(int=0)
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        return uuid.UUID(text)


def state_payload(leader: int, leader_epoch: int, isr: list[int], controller_epoch: int) -> bytes:
    return encode(
        {
            "controller_epoch": controller_epoch,
            "leader": leader,
            "version": 1,
            "leader_epoch": leader_epoch,
            "isr": list(isr),
        }
    )


def broker_payload(info: BrokerInfo) -> bytes:
    return encode(
        {
            "listener_security_protocol_map": {"PLAINTEXT": "PLAINTEXT"},
            "endpoints": [f"PLAINTEXT://{info.host}:{info.port}"],
            "jmx_port": -1,
            "features": {},
            "host": info.host,
            "port": info.port,
            "timestamp": str(int(time.time() * 1000)),
            "version": 5,
            "rack": info.rack,
        }
    )


def parse_broker(node_id: int, data: bytes | None) -> BrokerInfo | None:
    obj = decode(data)
    if not isinstance(obj, dict):
        return None
    host, port = obj.get("host"), obj.get("port")
    for ep in obj.get("endpoints") or []:
        # PLAINTEXT://host:port is the listener clients use.
        if isinstance(ep, str) and "://" in ep:
            addr = ep.split("://", 1)[1]
            h, _, p = addr.rpartition(":")
            host, port = h.strip("[]"), int(p)
            break
    if host is None or port is None:
        return None
    return BrokerInfo(node_id, str(host), int(port), obj.get("rack"))


def split_connect(connect: str) -> tuple[str, str]:
    """'h1:2181,h2:2181/chroot' -> ('h1:2181,h2:2181', '/chroot') (chroot '' when absent)."""
    hosts, slash, chroot = connect.partition("/")
    chroot = ("/" + chroot).rstrip("/") if slash else ""
    if not hosts:
        raise MetadataError(f"zookeeper.connect={connect!r}: no host:port")
    return hosts, chroot


def create_topic_znodes(
    zk: KazooClient,
    name: str,
    topic_id: uuid.UUID,
    assignment: Mapping[int, list[int]],
    configs: Mapping[str, str],
    controller_epoch: int = 0,
) -> list[Any]:
    """Write a new topic in one transaction (config, assignment, one state znode per
    partition with the first replica as leader); the results of the transaction's ops."""
    tx = zk.transaction()
    tx.create(config_path(name), encode({"version": 1, "config": dict(configs)}))
    tx.create(
        topic_path(name),
        encode(
            {
                "version": 3,
                "partitions": {str(i): list(r) for i, r in assignment.items()},
                "topic_id": topic_id_to_zk(topic_id),
                "adding_replicas": {},
                "removing_replicas": {},
            }
        ),
    )
    tx.create(partitions_path(name), b"")
    for i, reps in assignment.items():
        tx.create(f"{partitions_path(name)}/{i}", b"")
        tx.create(state_path(name, i), state_payload(reps[0], 0, list(reps), controller_epoch))
    return tx.commit()


# -- replica placement ----------------------------------------------------------------------
def rack_alternated(brokers: list[BrokerInfo]) -> list[int]:
    """Kafka's rack-alternated broker list: one broker per rack in turn, so consecutive
    picks land on different racks."""
    by_rack: dict[str, list[int]] = {}
    for b in sorted(brokers, key=lambda b: b.node_id):
        by_rack.setdefault(b.rack or "", []).append(b.node_id)
    racks = sorted(by_rack)
    out: list[int] = []
    i = 0
    while len(out) < len(brokers):
        for rack in racks:
            if i < len(by_rack[rack]):
                out.append(by_rack[rack][i])
        i += 1
    return out


def assign_replicas(
    brokers: list[BrokerInfo],
    first: int,
    count: int,
    replication_factor: int,
    start: int | None = None,
) -> dict[int, list[int]]:
    """Replica lists for partitions first..first+count-1: leaders round-robin from a random
    start, followers shifted per round (Kafka's AdminUtils scheme), and across racks when
    every broker has broker.rack set."""
    n = len(brokers)
    if replication_factor < 1:
        raise InvalidReplicationFactorError(
            f"replication factor must be positive, got {replication_factor}"
        )
    if replication_factor > n:
        raise InvalidReplicationFactorError(
            f"replication factor {replication_factor} larger than the {n} available broker(s)"
        )
    racked = all(b.rack for b in brokers)
    ids = rack_alternated(brokers) if racked else sorted(b.node_id for b in brokers)
    start = random.randrange(n) if start is None else start
    shift0 = random.randrange(n) if n > 1 else 0
    out: dict[int, list[int]] = {}
    for k in range(count):
        i = first + k
        lead = (start + i) % n
        shift = 1 + (shift0 + i // n) % (n - 1) if n > 1 else 0
        reps = [ids[lead]]
        if racked:
            # Consecutive entries of the alternated list are on different racks.
            reps += [ids[(lead + j) % n] for j in range(1, replication_factor)]
        else:
            reps += [ids[(lead + j * shift) % n] for j in range(1, replication_factor)]
            if len(set(reps)) < len(reps):  # shift not coprime with n: fall back to adjacent
                reps = [ids[(lead + j) % n] for j in range(replication_factor)]
        out[i] = reps
    return out


class ZooKeeperMetadataStore(MetadataStore):
    """MetadataStore on ZooKeeper; see the module docstring for the layout."""

    def __init__(
        self,
        connect: str,
        node_id: int,
        *,
        session_timeout_ms: int = 18000,
        connection_timeout_ms: int | None = None,
        cluster_id: str | None = None,
        broker_config: Any = None,
    ) -> None:
        super().__init__()
        self.node_id = node_id
        self.broker_config = broker_config
        self.session_timeout = session_timeout_ms / 1000
        hosts, chroot = split_connect(connect)
        self._connect = connect
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._lock = threading.RLock()
        self._topics: dict[str, TopicInfo] = {}
        self._by_id: dict[uuid.UUID, TopicInfo] = {}
        self._brokers: dict[int, BrokerInfo] = {}
        self._controller_id = -1
        self._registration: BrokerInfo | None = None
        self._closing = False
        self._session_lost = False
        self._state_listeners: list[Callable[[str], None]] = []
        conn_timeout = (connection_timeout_ms or session_timeout_ms) / 1000
        if chroot:
            self._ensure_chroot(hosts, chroot, conn_timeout)
        self.zk = KazooClient(
            hosts=hosts + chroot,
            timeout=self.session_timeout,
            connection_retry=KazooRetry(max_tries=-1, max_delay=1.0),
            command_retry=KazooRetry(max_tries=3, delay=0.1, max_delay=1.0, deadline=5.0),
        )
        try:
            self.zk.start(timeout=conn_timeout)
        except Exception as exc:
            self.zk.close()
            raise MetadataError(f"cannot connect to ZooKeeper at {connect}: {exc}") from None
        self.zk.add_listener(self._on_zk_state)
        for path in ("/brokers/ids", "/brokers/topics", "/config/topics", "/admin"):
            self.zk.ensure_path(path)
        self._cluster_id = self._load_cluster_id(cluster_id)
        # Sync thread: re-reads znodes whose watch fired (never on kazoo's own thread).
        self._sync_q: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._pending: set[tuple[Any, ...]] = set()
        self._known_topics: set[str] = set()
        self.controller: Any = None
        self._initial_load()
        self._sync_thread = threading.Thread(
            target=self._sync_loop, name=f"zk-sync-{node_id}", daemon=True
        )
        self._sync_thread.start()

    # -- connection ----------------------------------------------------------------------
    @staticmethod
    def _ensure_chroot(hosts: str, chroot: str, timeout: float) -> None:
        zk = KazooClient(hosts=hosts, timeout=max(timeout, 4.0))
        try:
            zk.start(timeout=timeout)
            zk.ensure_path(chroot)
        except Exception as exc:
            raise MetadataError(f"cannot connect to ZooKeeper at {hosts}: {exc}") from None
        finally:
            zk.stop()
            zk.close()

    def add_state_listener(self, fn: Callable[[str], None]) -> None:
        """``fn('lost'|'connected'|'suspended')`` from kazoo's thread (controller)."""
        self._state_listeners.append(fn)

    def _on_zk_state(self, state: str) -> None:
        # Runs on kazoo's thread: only record and enqueue, never block here.
        if state == KazooState.LOST:
            self._session_lost = True
            log.warning("ZooKeeper session of broker %d expired", self.node_id)
            kind = "lost"
        elif state == KazooState.SUSPENDED:
            log.warning("ZooKeeper connection suspended")
            kind = "suspended"
        else:
            kind = "connected"
            if self._session_lost:
                self._session_lost = False
                self._enqueue(("reregister",))
            self._enqueue(("all",))
        for fn in list(self._state_listeners):
            try:
                fn(kind)
            except Exception:
                log.exception("ZooKeeper state listener failed")

    def _load_cluster_id(self, wanted: str | None) -> str:
        from broker.metadata.embedded import new_cluster_id

        try:
            data, _ = self.zk.get("/cluster/id")
            stored = (decode(data) or {}).get("id")
        except NoNodeError:
            stored = None
        if stored is None:
            cid = wanted or new_cluster_id()
            try:
                self.zk.create("/cluster/id", encode({"version": "1", "id": cid}), makepath=True)
                return cid
            except NodeExistsError:
                stored = (decode(self.zk.get("/cluster/id")[0]) or {}).get("id")
        if wanted and stored != wanted:
            raise MetadataError(
                f"cluster.id {wanted} does not match {stored} stored in ZooKeeper {self._connect}"
            )
        return str(stored)

    # -- watches and the sync thread -----------------------------------------------------
    def _watch(self, event: WatchedEvent) -> None:
        """One watcher for every znode (kazoo keeps a set of watchers per path, so the same
        bound method never piles up). Maps the path to what must be re-read."""
        path = event.path or ""
        parts = path.strip("/").split("/")
        if path == "/brokers/ids" or (len(parts) == 3 and parts[:2] == ["brokers", "ids"]):
            self._enqueue(("brokers",))
        elif path == "/brokers/topics":
            self._enqueue(("topics",))
        elif len(parts) == 3 and parts[:2] == ["brokers", "topics"]:
            if event.type != EventType.DELETED:
                self._enqueue(("topic", parts[2]))
        elif len(parts) == 6 and parts[3] == "partitions" and parts[5] == "state":
            self._enqueue(("state", parts[2], int(parts[4])))
        elif len(parts) == 3 and parts[:2] == ["config", "topics"]:
            self._enqueue(("config", parts[2]))
        elif path == "/controller":
            self._enqueue(("controller",))

    def _enqueue(self, item: tuple[Any, ...]) -> None:
        with self._lock:
            if item in self._pending:
                return
            self._pending.add(item)
        self._sync_q.put(item)

    def _sync_loop(self) -> None:
        while True:
            item = self._sync_q.get()
            if item[0] == "stop":
                return
            with self._lock:
                self._pending.discard(item)
            for attempt in range(50):
                if self._closing:
                    return
                try:
                    self._sync(item)
                    break
                except (KazooException, OSError) as exc:
                    # Connection loss: the reconnect enqueues a full re-read; keep trying
                    # this one a little in case it is a transient error.
                    log.debug("sync %s failed (%s), attempt %d", item, exc, attempt)
                    time.sleep(0.2)
                except Exception:
                    log.exception("metadata sync of %s failed", item)
                    break

    def _sync(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "reregister":
            if self._registration is not None:
                self._create_registration(self._registration)
        elif kind == "all":
            self._sync(("brokers",))
            self._sync(("controller",))
            self._sync(("topics",))
            for name in sorted(self._known_topics):
                self._sync(("topic", name))
        elif kind == "brokers":
            brokers = self._read_brokers(watch=True)
            self._post(self._apply_brokers, brokers)
        elif kind == "controller":
            stat = self.zk.exists("/controller", watch=self._watch)
            cid = -1
            if stat is not None:
                try:
                    data, _ = self.zk.get("/controller", watch=self._watch)
                    cid = int((decode(data) or {}).get("brokerid", -1))
                except NoNodeError:
                    cid = -1
            self._post(self._apply_controller, cid)
        elif kind == "topics":
            names = set(self.zk.get_children("/brokers/topics", watch=self._watch))
            gone = self._known_topics - names
            for name in sorted(names - self._known_topics):
                self._sync(("topic", name))
            for name in gone:
                self._known_topics.discard(name)
                self._post(self._apply_topic_gone, name)
        elif kind == "topic":
            info = self._read_topic(item[1], watch=True)
            if info is None:
                self._known_topics.discard(item[1])
                self._post(self._apply_topic_gone, item[1])
            else:
                self._known_topics.add(item[1])
                self._post(self._apply_topic, info)
        elif kind == "state":
            _, topic, index = item
            try:
                data, _ = self.zk.get(state_path(topic, index), watch=self._watch)
            except NoNodeError:
                return
            st = decode(data) or {}
            self._post(self._apply_state, topic, index, st)
        elif kind == "config":
            configs = self._read_configs(item[1], watch=True)
            self._post(self._apply_configs, item[1], configs)

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn`` where the cache lives: on the broker's loop (or here without one)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._guarded, fn, *args)
                return
            except RuntimeError:  # loop closed meanwhile
                return
        with self._lock:
            self._guarded(fn, *args)

    @staticmethod
    def _guarded(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("applying a metadata change failed")

    # -- reading ZooKeeper ---------------------------------------------------------------
    def _read_brokers(self, watch: bool = False) -> dict[int, BrokerInfo]:
        w = self._watch if watch else None
        out: dict[int, BrokerInfo] = {}
        for child in self.zk.get_children("/brokers/ids", watch=w):
            try:
                data, _ = self.zk.get(broker_path(int(child)), watch=w)
            except (NoNodeError, ValueError):
                continue
            info = parse_broker(int(child), data)
            if info is not None:
                out[info.node_id] = info
        return out

    def _read_configs(self, name: str, watch: bool = False) -> dict[str, str]:
        w = self._watch if watch else None
        try:
            data, _ = self.zk.get(config_path(name), watch=w)
        except NoNodeError:
            if watch:
                self.zk.exists(config_path(name), watch=w)
            return {}
        obj = decode(data) or {}
        return {str(k): str(v) for k, v in (obj.get("config") or {}).items()}

    def _read_topic(self, name: str, watch: bool = False) -> TopicInfo | None:
        w = self._watch if watch else None
        try:
            data, _ = self.zk.get(topic_path(name), watch=w)
        except NoNodeError:
            return None
        obj = decode(data) or {}
        assignment = {int(p): [int(r) for r in reps] for p, reps in obj["partitions"].items()}
        partitions: dict[int, PartitionInfo] = {}
        for index, replicas in sorted(assignment.items()):
            try:
                sdata, _ = self.zk.get(state_path(name, index), watch=w)
                st = decode(sdata) or {}
            except NoNodeError:
                st = {}
                if watch:
                    self.zk.exists(state_path(name, index), watch=w)
            partitions[index] = PartitionInfo(
                index,
                replicas,
                int(st.get("leader", -1)),
                int(st.get("leader_epoch", -1)),
                [int(r) for r in st.get("isr", [])],
            )
        return TopicInfo(
            name=name,
            topic_id=topic_id_from_zk(obj.get("topic_id")),
            partitions=partitions,
            configs=self._read_configs(name, watch=watch),
            is_internal=name.startswith("__"),
        )

    def _initial_load(self) -> None:
        self._brokers = self._read_brokers(watch=True)
        self.zk.exists("/controller", watch=self._watch)
        self._controller_id = self._read_controller_id()
        for name in sorted(self.zk.get_children("/brokers/topics", watch=self._watch)):
            info = self._read_topic(name, watch=True)
            if info is not None:
                self._known_topics.add(name)
                self._topics[name] = info
                self._by_id[info.topic_id] = info

    def _read_controller_id(self) -> int:
        try:
            data, _ = self.zk.get("/controller", watch=self._watch)
            return int((decode(data) or {}).get("brokerid", -1))
        except NoNodeError:
            return -1

    # -- applying changes (on the loop) --------------------------------------------------
    def _hosted(self, p: PartitionInfo) -> bool:
        return self.node_id in p.replicas

    def _apply_brokers(self, brokers: dict[int, BrokerInfo]) -> None:
        if brokers == self._brokers:
            return
        self._brokers = brokers
        self._notify("on_brokers_changed")

    def _apply_controller(self, cid: int) -> None:
        self._controller_id = cid

    def _apply_topic_gone(self, name: str) -> None:
        info = self._topics.pop(name, None)
        if info is None:
            return
        self._by_id.pop(info.topic_id, None)
        log.info("topic %s deleted", name)
        self._notify("on_topic_deleted", info)

    def _apply_topic(self, new: TopicInfo) -> None:
        old = self._topics.get(new.name)
        if old is not None and old.topic_id != new.topic_id:
            self._apply_topic_gone(new.name)  # deleted and created again meanwhile
            old = None
        if old is None:
            self._topics[new.name] = new
            self._by_id[new.topic_id] = new
            self._notify("on_topic_created", new)
            for index, p in sorted(new.partitions.items()):
                if self._hosted(p):
                    self._notify("on_partition_state_changed", new, index)
            return
        old_count = len(old.partitions)
        changed: list[int] = []
        for index, p in new.partitions.items():
            prev = old.partitions.get(index)
            if prev is None or (prev.leader, prev.leader_epoch, prev.isr, prev.replicas) != (
                p.leader,
                p.leader_epoch,
                p.isr,
                p.replicas,
            ):
                old.partitions[index] = p
                changed.append(index)
        if len(new.partitions) > old_count:
            self._notify("on_partitions_added", old, old_count)
        if new.configs != old.configs:
            old.configs = new.configs
            self._notify("on_topic_configs_changed", old)
        for index in sorted(changed):
            self._notify("on_partition_state_changed", old, index)

    def _apply_state(self, topic: str, index: int, st: dict[str, Any]) -> None:
        info = self._topics.get(topic)
        if info is None or index not in info.partitions:
            return
        prev = info.partitions[index]
        p = PartitionInfo(
            index,
            prev.replicas,
            int(st.get("leader", -1)),
            int(st.get("leader_epoch", -1)),
            [int(r) for r in st.get("isr", [])],
        )
        if (p.leader, p.leader_epoch, p.isr) == (prev.leader, prev.leader_epoch, prev.isr):
            return
        info.partitions[index] = p
        log.info(
            "partition %s-%d: leader %d epoch %d isr %s",
            topic,
            index,
            p.leader,
            p.leader_epoch,
            p.isr,
        )
        self._notify("on_partition_state_changed", info, index)

    def _apply_configs(self, topic: str, configs: dict[str, str]) -> None:
        info = self._topics.get(topic)
        if info is None or info.configs == configs:
            return
        info.configs = configs
        self._notify("on_topic_configs_changed", info)

    # -- cluster -------------------------------------------------------------------------
    @property
    def cluster_id(self) -> str:
        return self._cluster_id

    @property
    def controller_id(self) -> int:
        return self._controller_id

    @property
    def connected(self) -> bool:
        return self.zk.connected

    def register_broker(self, info: BrokerInfo) -> None:
        """Create the ephemeral /brokers/ids/N, start the controller elector, and announce
        the state of every partition this broker hosts (listeners act on it)."""
        self._registration = info
        self._create_registration(info, wait=True)
        self._brokers = self._read_brokers()
        from broker.controller import KafkaController

        self.controller = KafkaController(self)
        self.controller.start()
        for topic in list(self._topics.values()):
            for index, p in sorted(topic.partitions.items()):
                if self._hosted(p):
                    self._post(self._notify, "on_partition_state_changed", topic, index)

    def _create_registration(self, info: BrokerInfo, wait: bool = False) -> None:
        path = broker_path(info.node_id)
        # A kill -9'd predecessor's ephemeral node lives until its session times out.
        deadline = time.monotonic() + self.session_timeout * 2 + 5
        while True:
            try:
                self.zk.create(path, broker_payload(info), ephemeral=True, makepath=True)
                log.info("registered broker %d at %s:%d", info.node_id, info.host, info.port)
                return
            except NodeExistsError:
                stat = self.zk.exists(path)
                if stat is not None and stat.ephemeralOwner == self.zk.client_id[0]:
                    return
                if time.monotonic() > deadline:
                    raise MetadataError(
                        f"node.id {info.node_id} is already registered in ZooKeeper by "
                        "another live broker"
                    ) from None
                log.warning(
                    "broker id %d still registered by an earlier session; waiting", info.node_id
                )
                time.sleep(0.5)

    def brokers(self) -> list[BrokerInfo]:
        return sorted(self._brokers.values(), key=lambda b: b.node_id)

    def broker(self, node_id: int) -> BrokerInfo | None:
        return self._brokers.get(node_id)

    def controller_epoch(self) -> int:
        try:
            data, _ = self.zk.get("/controller_epoch")
            return int(data.decode() or 0)
        except NoNodeError:
            return 0

    # -- topics --------------------------------------------------------------------------
    def topics(self) -> list[TopicInfo]:
        return [self._topics[n] for n in sorted(self._topics)]

    def topic(self, name: str) -> TopicInfo | None:
        return self._topics.get(name)

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        return self._by_id.get(topic_id)

    def _require_connected(self) -> None:
        """Fail fast while ZooKeeper is away: a call would otherwise wait for the reconnect
        on the broker's event loop. Cached metadata keeps serving meanwhile."""
        if not self.zk.connected:
            raise ZooKeeperUnavailableError("ZooKeeper is not reachable; retry later")

    _ops: concurrent.futures.ThreadPoolExecutor | None = None

    def _bounded(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a ZooKeeper operation on a worker thread, waiting at most
        OPERATION_TIMEOUT_S (its outcome is then unknown, as with any timed-out request)."""
        if self._ops is None:
            self._ops = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="zk-op")
        fut = self._ops.submit(fn, *args)
        try:
            return fut.result(timeout=OPERATION_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            raise ZooKeeperUnavailableError(
                f"ZooKeeper did not answer within {OPERATION_TIMEOUT_S:.0f} s; retry later"
            ) from None

    def _live_brokers(self) -> list[BrokerInfo]:
        try:
            return list(self._read_brokers().values())
        except KazooException as exc:
            raise ZooKeeperUnavailableError(f"ZooKeeper unavailable: {exc}") from None

    def create_topic(
        self,
        name: str,
        partitions: int,
        replication_factor: int,
        configs: Mapping[str, str] | None = None,
        *,
        is_internal: bool = False,
        validate_only: bool = False,
        replica_assignment: Mapping[int, Sequence[int]] | None = None,
    ) -> TopicInfo:
        validate_topic_name(name)
        self._require_connected()
        if name in self._topics:
            raise TopicAlreadyExistsError(f"topic {name!r} already exists")
        collides = name.replace(".", "_")
        for other in self._topics:
            if other.replace(".", "_") == collides:
                raise MetadataError(f"topic {name!r} collides with existing topic {other!r}")
        if partitions < 1 or partitions > MAX_PARTITIONS:
            raise InvalidPartitionsError(
                f"number of partitions must be between 1 and {MAX_PARTITIONS}, got {partitions}"
            )
        live = self._bounded(self._live_brokers)
        if replica_assignment is not None:
            # Checked against the brokers registered now, so the first replica, which the
            # state znode names leader, is live.
            assignment = check_replica_assignment(
                replica_assignment, 0, partitions, replication_factor, {b.node_id for b in live}
            )
        else:
            assignment = assign_replicas(live, 0, partitions, replication_factor)
        cfg = {k: str(v) for k, v in (configs or {}).items() if v is not None}
        info = TopicInfo(
            name=name,
            topic_id=uuid.uuid4(),
            partitions={
                i: PartitionInfo(i, reps, reps[0], 0, list(reps)) for i, reps in assignment.items()
            },
            configs=cfg,
            is_internal=is_internal or name.startswith("__"),
        )
        if validate_only:
            return info

        def write() -> list[Any]:
            cepoch = self.controller_epoch()
            if self.zk.exists(config_path(name)) is not None:
                self.zk.delete(config_path(name))  # a leftover of an interrupted delete
            return create_topic_znodes(self.zk, name, info.topic_id, assignment, cfg, cepoch)

        try:
            results = self._bounded(write)
        except KazooException as exc:
            raise ZooKeeperUnavailableError(f"ZooKeeper unavailable: {exc}") from None
        for r in results:
            if isinstance(r, NodeExistsError):
                raise TopicAlreadyExistsError(f"topic {name!r} already exists")
            if isinstance(r, Exception) and not isinstance(r, RolledBackError):
                raise MetadataError(f"cannot create topic {name!r}: {r!r}")
        self._known_topics.add(name)
        # Re-read it with watches: the children watch may no longer see it as new, and
        # without a watch on the state znodes this broker would miss leader changes.
        self._enqueue(("topic", name))
        log.info("created topic %s (%d partitions, replicas %s)", name, partitions, assignment)
        self._apply_topic(info)
        return info

    def delete_topic(self, name: str) -> TopicInfo:
        info = self._topics.get(name)
        if info is None:
            raise UnknownTopicError(f"topic {name!r} does not exist")
        self._require_connected()

        def remove() -> None:
            # Kafka queues /admin/delete_topics/T for the controller; the effect (every broker
            # deletes its replicas when the topic's znode goes) is the same done directly.
            for path in (topic_path(name), config_path(name)):
                try:
                    self.zk.delete(path, recursive=True)
                except NoNodeError:
                    pass

        try:
            self._bounded(remove)
        except KazooException as exc:
            raise ZooKeeperUnavailableError(f"ZooKeeper unavailable: {exc}") from None
        self._known_topics.discard(name)
        self._apply_topic_gone(name)
        return info

    def add_partitions(
        self,
        name: str,
        total: int,
        *,
        validate_only: bool = False,
        replica_assignment: Sequence[Sequence[int]] | None = None,
    ) -> TopicInfo:
        info = self._topics.get(name)
        if info is None:
            raise UnknownTopicError(f"topic {name!r} does not exist")
        self._require_connected()
        try:
            data, stat = self._bounded(self.zk.get, topic_path(name))
        except NoNodeError:
            raise UnknownTopicError(f"topic {name!r} does not exist") from None
        except KazooException as exc:
            raise ZooKeeperUnavailableError(f"ZooKeeper unavailable: {exc}") from None
        obj = decode(data) or {}
        old = len(obj.get("partitions", {}))
        if total <= old:
            raise InvalidPartitionsError(
                f"topic {name!r} has {old} partitions; the new total must be larger, got {total}"
            )
        if total > MAX_PARTITIONS:
            raise InvalidPartitionsError(f"at most {MAX_PARTITIONS} partitions")
        rf = len(next(iter(obj["partitions"].values())))
        live = self._bounded(self._live_brokers)
        if replica_assignment is not None:
            given = {old + k: list(reps) for k, reps in enumerate(replica_assignment)}
            added = check_replica_assignment(given, old, total - old, rf, {b.node_id for b in live})
        else:
            added = assign_replicas(live, old, total - old, rf)
        if validate_only:
            return info
        obj["partitions"].update({str(i): r for i, r in added.items()})

        def write() -> list[Any]:
            cepoch = self.controller_epoch()
            tx = self.zk.transaction()
            tx.set_data(topic_path(name), encode(obj), version=stat.version)
            for i, reps in added.items():
                tx.create(f"{partitions_path(name)}/{i}", b"")
                tx.create(state_path(name, i), state_payload(reps[0], 0, reps, cepoch))
            return tx.commit()

        try:
            results = self._bounded(write)
        except KazooException as exc:
            raise ZooKeeperUnavailableError(f"ZooKeeper unavailable: {exc}") from None
        if any(isinstance(r, Exception) for r in results):
            raise InvalidPartitionsError(f"topic {name!r} changed concurrently; retry")
        self._enqueue(("topic", name))  # watches on the new state znodes
        new = TopicInfo(
            name,
            info.topic_id,
            {
                **info.partitions,
                **{i: PartitionInfo(i, r, r[0], 0, list(r)) for i, r in added.items()},
            },
            dict(info.configs),
            info.is_internal,
        )
        self._apply_topic(new)
        return self._topics[name]

    def topic_configs(self, name: str) -> dict[str, str]:
        info = self._topics.get(name)
        if info is None:
            raise UnknownTopicError(f"topic {name!r} does not exist")
        return dict(info.configs)

    def set_topic_configs(self, name: str, configs: Mapping[str, str | None]) -> TopicInfo:
        info = self._topics.get(name)
        if info is None:
            raise UnknownTopicError(f"topic {name!r} does not exist")
        self._require_connected()
        cfg = {k: str(v) for k, v in configs.items() if v is not None}
        payload = encode({"version": 1, "config": cfg})

        def write() -> None:
            try:
                self.zk.set(config_path(name), payload)
            except NoNodeError:
                self.zk.create(config_path(name), payload, makepath=True)
            # Kafka's change notification: the controller re-runs elections that depend on
            # topic configs (unclean.leader.election.enable).
            self.zk.create(
                CONFIG_CHANGES + "/config_change_",
                encode({"version": 2, "entity_path": f"topics/{name}"}),
                sequence=True,
                makepath=True,
            )

        try:
            self._bounded(write)
        except KazooException as exc:
            raise ZooKeeperUnavailableError(f"ZooKeeper unavailable: {exc}") from None
        self._apply_configs(name, cfg)
        return info

    # -- partition state -----------------------------------------------------------------
    def alter_partition_isr(
        self, topic: str, index: int, leader_epoch: int, new_isr: list[int]
    ) -> PartitionInfo:
        """The leader's ISR change, as a versioned setData of the state znode; raises
        FencedLeaderEpochError when another leader was elected meanwhile."""
        self._require_connected()
        self._bounded(self._write_isr, topic, index, leader_epoch, new_isr)
        info = self._topics.get(topic)
        replicas = info.partitions[index].replicas if info and index in info.partitions else []
        result = PartitionInfo(index, list(replicas), self.node_id, leader_epoch, list(new_isr))
        if info is not None and index in info.partitions:
            info.partitions[index] = result
            self._post(self._notify, "on_partition_state_changed", info, index)
        return result

    def _write_isr(self, topic: str, index: int, leader_epoch: int, new_isr: list[int]) -> None:
        path = state_path(topic, index)
        while True:
            try:
                data, stat = self.zk.get(path)
            except NoNodeError:
                raise UnknownTopicError(f"partition {topic}-{index} does not exist") from None
            except KazooException as exc:
                raise ZooKeeperUnavailableError(f"ZooKeeper unavailable: {exc}") from None
            st = decode(data) or {}
            if int(st.get("leader_epoch", -1)) != leader_epoch or st.get("leader") != self.node_id:
                raise FencedLeaderEpochError(
                    f"{topic}-{index}: leader epoch {leader_epoch} is stale "
                    f"(now leader {st.get('leader')} epoch {st.get('leader_epoch')})"
                )
            st["isr"] = list(new_isr)
            try:
                self.zk.set(path, encode(st), version=stat.version)
                break
            except BadVersionError:
                continue  # the controller changed it meanwhile: re-check the epoch
            except KazooException as exc:
                raise ZooKeeperUnavailableError(f"ZooKeeper unavailable: {exc}") from None

    # -- producer ids --------------------------------------------------------------------
    def allocate_producer_ids(self, count: int) -> int:
        self._require_connected()
        return int(self._bounded(self._allocate_producer_ids, count))

    def _allocate_producer_ids(self, count: int) -> int:
        while True:
            try:
                data, stat = self.zk.get(PRODUCER_ID_BLOCK)
                obj = decode(data) or {}
                first = int(obj.get("block_end", -1)) + 1
                version = stat.version
            except NoNodeError:
                first, version = 0, None
            payload = encode(
                {
                    "version": 1,
                    "broker": self.node_id,
                    "block_start": str(first),
                    "block_end": str(first + count - 1),
                }
            )
            try:
                if version is None:
                    self.zk.create(PRODUCER_ID_BLOCK, payload)
                else:
                    self.zk.set(PRODUCER_ID_BLOCK, payload, version=version)
                return first
            except (BadVersionError, NodeExistsError):
                continue
            except KazooException as exc:
                raise ZooKeeperUnavailableError(f"ZooKeeper unavailable: {exc}") from None

    # -- log directory failure ------------------------------------------------------------
    def log_dir_failed(self, reason: str) -> None:
        """The data directory failed (disk full, I/O error): tell the controller, which moves
        leadership of this broker's partitions elsewhere and drops it from their ISRs until
        it registers again (restart). Kafka's log dir failure event; sent once."""
        if self._log_dir_offline:
            return
        self._log_dir_offline = True
        log.error("log directory offline (%s): asking the controller to move leadership", reason)
        try:
            self.zk.create(
                LOG_DIR_EVENTS + "/log_dir_event_",
                encode({"version": 1, "broker": self.node_id, "event": 1}),
                sequence=True,
                makepath=True,
            )
        except KazooException as exc:
            log.error("cannot announce the log directory failure: %s", exc)
            self._log_dir_offline = False

    _log_dir_offline = False

    # -- shutdown ------------------------------------------------------------------------
    def controlled_shutdown(self, timeout: float = 10.0) -> None:
        """Move leadership of every partition this broker leads to another ISR member
        before stopping (Kafka's controlled shutdown), then wait until this broker's own
        view shows it (its replicas then answer NOT_LEADER_OR_FOLLOWER)."""
        if self.controller is None or not self.zk.connected:
            return
        try:
            moved = self.controller.controlled_shutdown(self.node_id)
        except Exception:
            log.exception("controlled shutdown failed; stopping anyway")
            return
        deadline = time.monotonic() + timeout
        while moved and time.monotonic() < deadline:
            # Wait until this broker's own view has the new epochs (its replicas then refuse
            # produce); another broker stopping at the same time may hand some back later.
            if all(
                (p := self._topics.get(t)) is None or p.partitions[i].leader_epoch >= epoch
                for t, i, epoch in moved
            ):
                break
            time.sleep(0.05)
        log.info("controlled shutdown moved leadership of %d partition(s)", len(moved))

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self.controller is not None:
            self.controller.stop()
        self._sync_q.put(("stop",))
        if self._ops is not None:
            self._ops.shutdown(wait=False)
        try:
            self.zk.stop()  # closes the session: ephemeral znodes go at once
            self.zk.close()
        except Exception:
            log.exception("closing the ZooKeeper client failed")
