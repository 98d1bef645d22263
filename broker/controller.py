"""KafkaController: the one broker that elects partition leaders, chosen through ZooKeeper.

Every broker runs a KafkaController; the one that creates the ephemeral ``/controller``
znode is active and bumps ``/controller_epoch``. The active controller watches
``/brokers/ids``; whenever the set of live brokers changes it walks every partition and
(``decide``):

- removes dead brokers from the ISR (so acks=all stops waiting for them),
- elects a new leader when the leader died: the first replica, in assignment order, that is
  alive and in the ISR, with leader_epoch + 1; outside the ISR only when
  unclean.leader.election.enable (topic config, else broker default) is true,
- marks the partition offline (leader -1) when nobody can lead, keeping the ISR so that a
  returning member is elected cleanly,
- elects a leader for an offline partition as soon as an ISR member comes back.

A broker whose data directory fails (disk full, I/O error) writes a log dir failure event
(``/log_dir_event_notification``); the controller then treats it as dead for leadership and
ISR membership until it registers again.

Every leader.imbalance.check.interval.seconds (auto.leader.rebalance.enable) it also moves
leadership back to preferred replicas (the first of each assignment) when a broker's share of
preferred partitions led elsewhere passes leader.imbalance.per.broker.percentage, skipping
partitions being reassigned. It is the broker's only periodic rebalancer (reassignment.py
runs preferred elections only on request).

Its writes are ZooKeeper transactions that check the version of ``/controller_epoch`` (a
deposed controller's writes fail) and the version of the partition's state znode (a leader's
concurrent ISR change is never overwritten). Events are processed one at a time on the
controller's own thread, like Kafka's ControllerEventManager.

Controlled shutdown (``controlled_shutdown``): a broker stopping on SIGTERM moves leadership
of what it leads to another ISR member and leaves the ISRs it is in, with versioned writes,
before it closes its session.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from kazoo.exceptions import (
    BadVersionError,
    KazooException,
    NodeExistsError,
    NoNodeError,
    RolledBackError,
)
from kazoo.protocol.states import WatchedEvent

if TYPE_CHECKING:
    from broker.metadata.zookeeper import ZooKeeperMetadataStore

log = logging.getLogger(__name__)

CONTROLLER = "/controller"
CONTROLLER_EPOCH = "/controller_epoch"
CONFIG_CHANGES = "/config/changes"
LOG_DIR_EVENTS = "/log_dir_event_notification"


def decide(
    replicas: list[int],
    leader: int,
    leader_epoch: int,
    isr: list[int],
    live: set[int],
    unclean: bool = False,
) -> tuple[int, int, list[int]] | None:
    """New (leader, leader_epoch, isr) of a partition given the live brokers; None when
    nothing changes."""
    live_isr = [r for r in isr if r in live]
    if leader in live:
        if live_isr != isr:
            return leader, leader_epoch, live_isr
        return None
    candidates = [r for r in replicas if r in live_isr]
    if candidates:
        return candidates[0], leader_epoch + 1, live_isr
    if unclean:
        alive = [r for r in replicas if r in live]
        if alive:
            # Data loss accepted by configuration: the new leader's log is the truth.
            return alive[0], leader_epoch + 1, [alive[0]]
    if leader == -1:
        return None
    return -1, leader_epoch + 1, isr


class KafkaController:
    def __init__(self, store: ZooKeeperMetadataStore) -> None:
        self.store = store
        self.zk = store.zk
        self.node_id = store.node_id
        self.active = False
        self.epoch = 0
        self.epoch_zk_version = -1
        self._events: queue.Queue[str] = queue.Queue()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name=f"controller-{self.node_id}", daemon=True
        )

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self.store.add_state_listener(self._on_session)
        self._thread.start()
        self._events.put("elect")

    def stop(self) -> None:
        self._stopped = True
        self.active = False
        self._events.put("stop")

    def _on_session(self, kind: str) -> None:
        if kind == "lost":
            if self.active:
                log.warning("controller %d resigns: ZooKeeper session lost", self.node_id)
            self.active = False
        elif kind == "connected":
            self._events.put("elect")

    def _watch(self, event: WatchedEvent) -> None:
        if event.path == CONTROLLER:
            self._events.put("elect")
        elif event.path == "/brokers/ids":
            self._events.put("brokers")
        elif event.path == CONFIG_CHANGES:
            self._events.put("configs")
        elif event.path == LOG_DIR_EVENTS:
            self._events.put("brokers")

    def _setting(self, name: str, default: Any) -> Any:
        cfg = self.store.broker_config
        value = cfg.get(name) if cfg is not None else None
        return default if value is None else value

    def _run(self) -> None:
        rebalance = bool(self._setting("auto.leader.rebalance.enable", True))
        every = float(self._setting("leader.imbalance.check.interval.seconds", 300))
        next_check = time.monotonic() + every
        while not self._stopped:
            try:
                timeout = max(0.05, next_check - time.monotonic()) if rebalance else None
                event = self._events.get(timeout=timeout)
            except queue.Empty:
                event = "rebalance"
                next_check = time.monotonic() + every
            if event == "stop":
                return
            # Collapse a burst of identical events into one pass.
            pending = {event}
            while True:
                try:
                    pending.add(self._events.get_nowait())
                except queue.Empty:
                    break
            if "stop" in pending:
                return
            for attempt in range(20):
                if self._stopped:
                    return
                try:
                    if "elect" in pending:
                        self._elect()
                    if "configs" in pending and self.active:
                        self._config_changes()
                    if "brokers" in pending and self.active:
                        self.reconcile()
                    if "rebalance" in pending and self.active:
                        self.preferred_leader_election()
                    break
                except (KazooException, OSError) as exc:
                    log.debug("controller event failed (%s), attempt %d", exc, attempt)
                    time.sleep(0.25)
                except Exception:
                    log.exception("controller event %s failed", pending)
                    break

    # -- election ------------------------------------------------------------------------
    def _elect(self) -> None:
        try:
            data, stat = self.zk.get(CONTROLLER, watch=self._watch)
            owner = int(json.loads(data.decode()).get("brokerid", -1))
            if owner == self.node_id and stat.ephemeralOwner == self.zk.client_id[0]:
                return  # still ours
            if self.active:
                log.warning("controller %d deposed by %d", self.node_id, owner)
            self.active = False
            return
        except NoNodeError:
            pass
        payload = json.dumps(
            {"version": 1, "brokerid": self.node_id, "timestamp": str(int(time.time() * 1000))}
        ).encode()
        if not self._register_and_bump_epoch(payload):
            self.zk.exists(CONTROLLER, watch=self._watch)
            self._events.put("elect")  # re-read who won, with a watch
            return
        self.zk.exists(CONTROLLER, watch=self._watch)
        self.active = True
        log.info("broker %d is the controller (epoch %d)", self.node_id, self.epoch)
        self.reconcile()
        self._config_changes()

    def _register_and_bump_epoch(self, payload: bytes) -> bool:
        """Create /controller and bump /controller_epoch in one transaction, as Kafka does:
        nobody can see a new controller with the old epoch. False if another broker won."""
        while True:
            try:
                data, stat = self.zk.get(CONTROLLER_EPOCH)
            except NoNodeError:
                try:
                    self.zk.create(CONTROLLER_EPOCH, b"0")
                except NodeExistsError:
                    pass
                continue
            new = int(data.decode() or 0) + 1
            tx = self.zk.transaction()
            tx.set_data(CONTROLLER_EPOCH, str(new).encode(), version=stat.version)
            tx.create(CONTROLLER, payload, ephemeral=True)
            results = tx.commit()
            if isinstance(results[1], NodeExistsError):
                return False
            if isinstance(results[0], BadVersionError):
                continue  # another controller bumped it meanwhile: read again
            for r in results:
                if isinstance(r, Exception) and not isinstance(r, RolledBackError):
                    raise r
            self.epoch, self.epoch_zk_version = new, results[0].version
            return True

    def _offline_log_dirs(self) -> set[int]:
        """Brokers whose data directory failed since they registered (Kafka's log dir
        failure events); older events (the broker restarted since) are deleted."""
        self.zk.ensure_path(LOG_DIR_EVENTS)
        offline: set[int] = set()
        for child in self.zk.get_children(LOG_DIR_EVENTS, watch=self._watch):
            path = f"{LOG_DIR_EVENTS}/{child}"
            try:
                data, stat = self.zk.get(path)
                node = int(json.loads(data.decode())["broker"])
                reg = self.zk.exists(f"/brokers/ids/{node}")
            except (NoNodeError, ValueError, KeyError):
                continue
            if reg is not None and stat.czxid > reg.czxid:
                offline.add(node)
            elif reg is not None:
                try:
                    self.zk.delete(path)  # the broker registered again since: stale
                except NoNodeError:
                    pass
        return offline

    def _config_changes(self) -> None:
        """A topic config changed (unclean.leader.election.enable may now allow electing an
        offline partition's leader): consume the notifications and reconcile."""
        self.zk.ensure_path(CONFIG_CHANGES)
        children = self.zk.get_children(CONFIG_CHANGES, watch=self._watch)
        for child in children:
            try:
                self.zk.delete(f"{CONFIG_CHANGES}/{child}")
            except NoNodeError:
                pass
        if children:
            self.reconcile()

    # -- partition state -----------------------------------------------------------------
    def _unclean(self, topic: str) -> bool:
        from broker import topic_config

        configs = self.store._read_configs(topic)
        try:
            return bool(
                topic_config.resolve(
                    "unclean.leader.election.enable", configs, self.store.broker_config
                ).typed
            )
        except Exception:
            return False

    def _partitions(self) -> list[tuple[str, int, list[int]]]:
        from broker.metadata.zookeeper import decode, topic_path

        out = []
        for topic in sorted(self.zk.get_children("/brokers/topics")):
            try:
                data, _ = self.zk.get(topic_path(topic))
            except NoNodeError:
                continue
            obj = decode(data) or {}
            for p, reps in sorted(obj.get("partitions", {}).items(), key=lambda kv: int(kv[0])):
                out.append((topic, int(p), [int(r) for r in reps]))
        return out

    def reconcile(self) -> int:
        """Bring every partition's state in line with the live brokers; returns the number
        of partitions changed."""
        live = {int(c) for c in self.zk.get_children("/brokers/ids", watch=self._watch)}
        live -= self._offline_log_dirs()
        changed = 0
        unclean_cache: dict[str, bool] = {}
        for topic, index, replicas in self._partitions():
            if not self.active:
                break
            if topic not in unclean_cache:
                unclean_cache[topic] = self._unclean(topic)
            if self._update(topic, index, replicas, live, unclean_cache[topic], fenced=True):
                changed += 1
        if changed:
            log.info("controller %d: %d partition(s) changed, live %s", self.node_id, changed, live)
        return changed

    def _update(
        self,
        topic: str,
        index: int,
        replicas: list[int],
        live: set[int],
        unclean: bool,
        *,
        fenced: bool,
        leaving: int | None = None,
    ) -> bool:
        from broker.metadata.zookeeper import decode, state_path

        path = state_path(topic, index)
        for _ in range(20):
            try:
                data, stat = self.zk.get(path)
            except NoNodeError:
                return False
            st = decode(data) or {}
            leader = int(st.get("leader", -1))
            epoch = int(st.get("leader_epoch", 0))
            isr = [int(r) for r in st.get("isr", [])]
            result = decide(replicas, leader, epoch, isr, live, unclean)
            if result is None:
                return False
            new_leader, new_epoch, new_isr = result
            if leaving is not None and new_leader == -1:
                return False  # controlled shutdown never takes a partition offline
            st.update(
                leader=new_leader,
                leader_epoch=new_epoch,
                isr=new_isr,
                controller_epoch=self.epoch if fenced else st.get("controller_epoch", 0),
            )
            payload = json.dumps(st, separators=(",", ":")).encode()
            try:
                if fenced:
                    tx = self.zk.transaction()
                    tx.check(CONTROLLER_EPOCH, self.epoch_zk_version)
                    tx.set_data(path, payload, version=stat.version)
                    results = tx.commit()
                    if isinstance(results[0], Exception):
                        log.warning("controller %d fenced by a newer controller", self.node_id)
                        self.active = False
                        return False
                    if isinstance(results[1], Exception):
                        continue  # state changed under us: re-read and decide again
                else:
                    self.zk.set(path, payload, version=stat.version)
            except BadVersionError:
                continue
            log.info(
                "%s-%d: leader %d -> %d, epoch %d, isr %s",
                topic,
                index,
                leader,
                new_leader,
                new_epoch,
                new_isr,
            )
            return True
        return False

    # -- preferred leaders ---------------------------------------------------------------
    def preferred_leader_election(self, force: bool = False) -> int:
        """Kafka's auto leader rebalance: for each broker whose preferred partitions (it is
        the first replica) are led elsewhere more than leader.imbalance.per.broker.percentage,
        move leadership back where the preferred replica is alive and in the ISR. Returns the
        number of partitions moved. Partitions being reassigned are left alone, as in Kafka:
        their replica list is the transient target + original one (broker/reassignment.py
        moves their leadership when it completes). The only periodic rebalancer."""
        from broker.metadata.zookeeper import decode, state_path

        threshold = int(self._setting("leader.imbalance.per.broker.percentage", 10)) / 100
        live = {int(c) for c in self.zk.get_children("/brokers/ids")}
        moving = self._being_reassigned()
        by_preferred: dict[int, list[tuple[str, int, list[int]]]] = {}
        for topic, index, replicas in self._partitions():
            if replicas and (topic, index) not in moving:
                by_preferred.setdefault(replicas[0], []).append((topic, index, replicas))
        moved = 0
        for broker_id, parts in sorted(by_preferred.items()):
            if broker_id not in live:
                continue
            states = {}
            for topic, index, _ in parts:
                try:
                    data, _stat = self.zk.get(state_path(topic, index))
                except NoNodeError:
                    continue
                states[(topic, index)] = decode(data) or {}
            elsewhere = [k for k, st in states.items() if st.get("leader") != broker_id]
            if not parts or (not force and len(elsewhere) / len(parts) <= threshold):
                continue
            for topic, index in elsewhere:
                if not self.active:
                    return moved
                if self._move_to_preferred(topic, index, broker_id):
                    moved += 1
        if moved:
            log.info("controller %d: %d leader(s) back on preferred replicas", self.node_id, moved)
        return moved

    def _being_reassigned(self) -> set[tuple[str, int]]:
        """Partitions with adding or removing replicas in their topic znode (KIP-455)."""
        from broker.metadata.zookeeper import decode, topic_path

        out: set[tuple[str, int]] = set()
        for topic in self.zk.get_children("/brokers/topics"):
            try:
                obj = decode(self.zk.get(topic_path(topic))[0]) or {}
            except NoNodeError:
                continue
            for key in ("adding_replicas", "removing_replicas"):
                out.update((topic, int(p)) for p, r in (obj.get(key) or {}).items() if r)
        return out

    def _move_to_preferred(self, topic: str, index: int, preferred: int) -> bool:
        from broker.metadata.zookeeper import decode, state_path

        path = state_path(topic, index)
        for _ in range(5):
            try:
                data, stat = self.zk.get(path)
            except NoNodeError:
                return False
            st = decode(data) or {}
            if st.get("leader") == preferred or preferred not in st.get("isr", []):
                return False
            st.update(
                leader=preferred,
                leader_epoch=int(st.get("leader_epoch", 0)) + 1,
                controller_epoch=self.epoch,
            )
            tx = self.zk.transaction()
            tx.check(CONTROLLER_EPOCH, self.epoch_zk_version)
            tx.set_data(path, json.dumps(st, separators=(",", ":")).encode(), version=stat.version)
            results = tx.commit()
            if isinstance(results[0], Exception):
                self.active = False
                return False
            if not isinstance(results[1], Exception):
                log.info("%s-%d: preferred leader %d elected", topic, index, preferred)
                return True
        return False

    # -- controlled shutdown -------------------------------------------------------------
    def controlled_shutdown(
        self, node_id: int, partitions: Collection[tuple[str, int]] | None = None
    ) -> list[tuple[str, int, int]]:
        """Move leadership away from ``node_id`` and drop it from every ISR (or only those of
        ``partitions``: a failed log dir, broker/log_dirs.py); returns (topic, partition, new
        leader epoch) of the partitions whose leadership moved."""
        live = {int(c) for c in self.zk.get_children("/brokers/ids")} - {node_id}
        moved: list[tuple[str, int, int]] = []
        for topic, index, replicas in self._partitions():
            if node_id not in replicas:
                continue
            if partitions is not None and (topic, index) not in partitions:
                continue
            before = self._state_of(topic, index)
            if self._update(topic, index, replicas, live, False, fenced=False, leaving=node_id):
                if before.get("leader") == node_id:
                    moved.append((topic, index, int(before.get("leader_epoch", 0)) + 1))
        return moved

    def _state_of(self, topic: str, index: int) -> dict[str, Any]:
        from broker.metadata.zookeeper import decode, state_path

        try:
            data, _ = self.zk.get(state_path(topic, index))
        except NoNodeError:
            return {}
        return decode(data) or {}


def describe(store: Any) -> dict[str, Any]:
    """Controller facts for tools: id and epoch."""
    return {"controller_id": store.controller_id, "controller_epoch": store.controller_epoch()}
