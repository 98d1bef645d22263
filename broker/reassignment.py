"""Partition reassignment and leader elections (preferred, unclean), Kafka's pre-KRaft way.

Owns, on top of the ZooKeeper layout of broker/metadata/zookeeper.py:

- **Reassignment (KIP-455).** A request (AlterPartitionReassignments, or the legacy
  ``/admin/reassign_partitions`` znode that kafka-reassign-partitions --zookeeper wrote)
  rewrites the topic znode: ``partitions[P]`` becomes the full replica set
  RS = target + original (target first, no duplicates), ``adding_replicas[P]`` =
  target - original and ``removing_replicas[P]`` = original - target. Every broker sees the
  new replica set through its watch: added brokers open the log and start following the
  leader. The active controller (``ReassignmentController``, a thread next to
  broker/controller.py's) completes a reassignment once every target replica is in the ISR:
  it moves leadership into the target if the leader is being removed, bumps the leader epoch
  and drops the removed replicas from the ISR (one transaction fenced by the controller
  epoch), then writes ``partitions[P]`` = target. A broker that is no longer a replica
  deletes its log (``ReplicaRemover``). Cancelling (replicas null) reverts to the original
  replicas the same way.
- **Elections.** ``elect`` runs a preferred election (the first replica leads, if alive and
  in the ISR) or an unclean one (a partition without a live leader gets the first live ISR
  member, else any live replica), on request (ElectLeaders). The periodic preferred-leader
  rebalance (``auto.leader.rebalance.enable``) is the controller's
  (``KafkaController.preferred_leader_election`` in broker/controller.py); it leaves
  partitions being reassigned alone.

All ZooKeeper calls here are blocking (kazoo): handlers run them in an executor.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kazoo.exceptions import BadVersionError, KazooException, NoNodeError

if TYPE_CHECKING:
    from broker.metadata.zookeeper import ZooKeeperMetadataStore

log = logging.getLogger(__name__)

REASSIGN_PARTITIONS = "/admin/reassign_partitions"

# Kafka error codes answered per partition.
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_REPLICA_ASSIGNMENT = 39
INVALID_REQUEST = 42
PREFERRED_LEADER_NOT_AVAILABLE = 80
ELIGIBLE_LEADERS_NOT_AVAILABLE = 83
ELECTION_NOT_NEEDED = 84
NO_REASSIGNMENT_IN_PROGRESS = 85
UNKNOWN_SERVER_ERROR = -1

PREFERRED = 0
UNCLEAN = 1

POLL_S = 0.5  # controller: how often in-flight reassignments are re-checked
IDLE_POLL_S = 5.0  # with none in flight (changes of partition state wake it up anyway)


class ReassignmentError(Exception):
    """A refused request for one partition: ``code`` is the Kafka error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class Ongoing:
    """A reassignment in flight (ListPartitionReassignments' OngoingPartitionReassignment)."""

    topic: str
    partition: int
    replicas: list[int]
    adding: list[int]
    removing: list[int]
    saved_original: list[int] | None = None

    @property
    def target(self) -> list[int]:
        return [r for r in self.replicas if r not in self.removing]

    @property
    def original(self) -> list[int]:
        """The replicas before the reassignment, in their order (a cancel restores the
        preferred leader too); Kafka's RS minus adding when the order was not saved."""
        if self.saved_original is not None and sorted(self.saved_original) == sorted(
            r for r in self.replicas if r not in self.adding
        ):
            return list(self.saved_original)
        return [r for r in self.replicas if r not in self.adding]


# -- pure decisions -----------------------------------------------------------------------
def plan(original: list[int], target: list[int]) -> tuple[list[int], list[int], list[int]]:
    """(replica set while moving, adding, removing): target first, as Kafka orders them."""
    rs = list(dict.fromkeys([*target, *original]))
    return rs, [r for r in target if r not in original], [r for r in original if r not in target]


def check_target(target: list[int], live: set[int]) -> None:
    if not target:
        raise ReassignmentError(INVALID_REPLICA_ASSIGNMENT, "The replica list is empty.")
    if len(set(target)) != len(target):
        raise ReassignmentError(
            INVALID_REPLICA_ASSIGNMENT, f"Duplicate brokers in replica assignment: {target}."
        )
    dead = sorted(set(target) - live)
    if dead:
        raise ReassignmentError(
            INVALID_REPLICA_ASSIGNMENT,
            f"Replica assignment has brokers that are not alive: {dead}.",
        )


def completion(
    ongoing: Ongoing, leader: int, leader_epoch: int, isr: list[int], live: set[int]
) -> tuple[int, int, list[int]] | None:
    """The partition state that completes ``ongoing`` (leader, epoch, ISR), or None while
    a target replica has not caught up (is not in the ISR) or no target replica can lead."""
    target = ongoing.target
    if any(r not in isr for r in target):
        return None
    new_isr = [r for r in isr if r in target]
    if leader in target and leader in live:
        return leader, leader_epoch + 1, new_isr
    candidates = [r for r in target if r in live and r in new_isr]
    if not candidates:
        return None
    return candidates[0], leader_epoch + 1, new_isr


def election(
    kind: int, replicas: list[int], leader: int, isr: list[int], live: set[int]
) -> tuple[int, list[int]]:
    """(new leader, new ISR) of a preferred or unclean election; raises ReassignmentError
    with ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE."""
    if kind == PREFERRED:
        preferred = replicas[0] if replicas else -1
        if leader == preferred:
            raise ReassignmentError(ELECTION_NOT_NEEDED, "Leader is already the preferred replica.")
        if preferred not in live or preferred not in isr:
            raise ReassignmentError(
                PREFERRED_LEADER_NOT_AVAILABLE,
                f"Preferred replica {preferred} is not alive or not in the ISR {isr}.",
            )
        return preferred, isr
    if kind == UNCLEAN:
        if leader >= 0 and leader in live:
            raise ReassignmentError(ELECTION_NOT_NEEDED, f"Partition has a live leader {leader}.")
        for r in replicas:
            if r in live and r in isr:
                return r, [x for x in isr if x in live]
        for r in replicas:
            if r in live:
                return r, [r]
        raise ReassignmentError(
            ELIGIBLE_LEADERS_NOT_AVAILABLE, f"No live replica among {replicas}."
        )
    raise ReassignmentError(INVALID_REQUEST, f"Unknown election type {kind}.")


# -- ZooKeeper access ------------------------------------------------------------------------
def _zk(store: Any) -> Any:
    zk = getattr(store, "zk", None)
    if zk is None:
        raise ReassignmentError(
            INVALID_REQUEST, "partition reassignment needs cluster mode (--zookeeper)"
        )
    return zk


def _live(zk: Any) -> set[int]:
    return {int(c) for c in zk.get_children("/brokers/ids")}


def _topic_obj(zk: Any, topic: str) -> tuple[dict[str, Any], Any]:
    from broker.metadata.zookeeper import decode, topic_path

    try:
        data, stat = zk.get(topic_path(topic))
    except NoNodeError:
        raise ReassignmentError(
            UNKNOWN_TOPIC_OR_PARTITION, f"Topic {topic} does not exist."
        ) from None
    obj = decode(data) or {}
    obj.setdefault("partitions", {})
    obj["adding_replicas"] = obj.get("adding_replicas") or {}
    obj["removing_replicas"] = obj.get("removing_replicas") or {}
    obj["original_replicas"] = obj.get("original_replicas") or {}
    return obj, stat


def _ongoing_of(topic: str, obj: Mapping[str, Any]) -> list[Ongoing]:
    out = []
    adding, removing = obj.get("adding_replicas") or {}, obj.get("removing_replicas") or {}
    for p in sorted({*adding, *removing}, key=int):
        add = [int(r) for r in adding.get(p) or []]
        rem = [int(r) for r in removing.get(p) or []]
        if not add and not rem:
            continue
        reps = [int(r) for r in obj["partitions"].get(p, [])]
        saved = (obj.get("original_replicas") or {}).get(p)
        out.append(
            Ongoing(topic, int(p), reps, add, rem, [int(r) for r in saved] if saved else None)
        )
    return out


def submit(
    store: Any, topic: str, requests: Mapping[int, list[int] | None]
) -> dict[int, tuple[int, str | None]]:
    """Start (replicas) or cancel (None) the reassignment of partitions of one topic; returns
    partition -> (error code, message). One conditional write of the topic znode."""
    zk = _zk(store)
    results: dict[int, tuple[int, str | None]] = {}
    from broker.metadata.zookeeper import encode, topic_path

    for _ in range(20):
        results.clear()
        try:
            obj, stat = _topic_obj(zk, topic)
        except ReassignmentError as exc:
            return {p: (exc.code, str(exc)) for p in requests}
        live = _live(zk)
        ongoing = {o.partition: o for o in _ongoing_of(topic, obj)}
        changed = False
        for p, target in requests.items():
            key = str(p)
            if key not in obj["partitions"]:
                results[p] = (UNKNOWN_TOPIC_OR_PARTITION, f"Partition {topic}-{p} does not exist.")
                continue
            current = ongoing.get(p)
            original = current.original if current else [int(r) for r in obj["partitions"][key]]
            if target is None:
                if current is None:
                    results[p] = (
                        NO_REASSIGNMENT_IN_PROGRESS,
                        f"No reassignment in progress for {topic}-{p}.",
                    )
                    continue
                target = original
            else:
                try:
                    check_target(list(target), live)
                except ReassignmentError as exc:
                    results[p] = (exc.code, str(exc))
                    continue
            rs, adding, removing = plan(original, list(target))
            if current is not None:
                # A new target replaces the old one; replicas already added stay in RS until
                # the controller completes (their logs are deleted then).
                rs = list(dict.fromkeys([*target, *current.replicas]))
                removing = [r for r in rs if r not in target]
                adding = [r for r in target if r not in original]
            obj["partitions"][key] = rs
            if adding or removing:
                obj["original_replicas"][key] = original
            else:
                obj["original_replicas"].pop(key, None)
            for field_, value in (("adding_replicas", adding), ("removing_replicas", removing)):
                if value:
                    obj[field_][key] = value
                else:
                    obj[field_].pop(key, None)
            results[p] = (NONE, None)
            changed = True
        if not changed:
            return results
        try:
            zk.set(topic_path(topic), encode(obj), version=stat.version)
            for p, (code, _) in results.items():
                if code == NONE:
                    log.info("%s-%d: reassignment to %s requested", topic, p, requests[p])
            return results
        except BadVersionError:
            continue
    return {p: (UNKNOWN_SERVER_ERROR, "topic changed concurrently; retry") for p in requests}


def list_ongoing(store: Any, topics: Mapping[str, Iterable[int]] | None = None) -> list[Ongoing]:
    """Reassignments in flight, for every topic (None) or the given partitions."""
    zk = getattr(store, "zk", None)
    if zk is None:
        return []
    names = sorted(zk.get_children("/brokers/topics")) if topics is None else sorted(topics)
    out: list[Ongoing] = []
    for name in names:
        try:
            obj, _ = _topic_obj(zk, name)
        except ReassignmentError:
            continue
        wanted = None if topics is None else set(topics[name])
        out += [o for o in _ongoing_of(name, obj) if wanted is None or o.partition in wanted]
    return out


def _write_state(
    zk: Any,
    topic: str,
    p: int,
    st: dict[str, Any],
    version: int,
    controller: Any = None,
    topic_obj: tuple[bytes, int] | None = None,
) -> bool:
    """Versioned write of a state znode (and the topic znode), fenced by the controller
    epoch when ``controller`` is given; False if anything changed meanwhile."""
    from broker.metadata.zookeeper import encode, state_path, topic_path

    tx = zk.transaction()
    if controller is not None:
        tx.check("/controller_epoch", controller.epoch_zk_version)
        st["controller_epoch"] = controller.epoch
    tx.set_data(state_path(topic, p), encode(st), version=version)
    if topic_obj is not None:
        tx.set_data(topic_path(topic), topic_obj[0], version=topic_obj[1])
    results = tx.commit()
    if controller is not None and isinstance(results[0], Exception):
        controller.active = False  # a newer controller exists
    return not any(isinstance(r, Exception) for r in results)


def elect(store: Any, topic: str, partition: int, kind: int) -> tuple[int, int]:
    """Run one election; returns (new leader, new leader epoch). Raises ReassignmentError."""
    from broker.metadata.zookeeper import decode, state_path

    zk = _zk(store)
    for _ in range(20):
        obj, _stat = _topic_obj(zk, topic)
        reps = obj["partitions"].get(str(partition))
        if reps is None:
            raise ReassignmentError(
                UNKNOWN_TOPIC_OR_PARTITION, f"Partition {topic}-{partition} does not exist."
            )
        try:
            data, stat = zk.get(state_path(topic, partition))
        except NoNodeError:
            raise ReassignmentError(
                UNKNOWN_TOPIC_OR_PARTITION, f"Partition {topic}-{partition} has no state."
            ) from None
        st = decode(data) or {}
        leader, epoch = int(st.get("leader", -1)), int(st.get("leader_epoch", 0))
        isr = [int(r) for r in st.get("isr", [])]
        new_leader, new_isr = election(kind, [int(r) for r in reps], leader, isr, _live(zk))
        st.update(leader=new_leader, leader_epoch=epoch + 1, isr=new_isr)
        try:
            if _write_state(zk, topic, partition, st, stat.version):
                log.info(
                    "%s-%d: %s election: leader %d -> %d, epoch %d",
                    topic,
                    partition,
                    "preferred" if kind == PREFERRED else "unclean",
                    leader,
                    new_leader,
                    epoch + 1,
                )
                return new_leader, epoch + 1
        except BadVersionError:
            pass
    raise ReassignmentError(UNKNOWN_SERVER_ERROR, "partition state changed concurrently; retry")


# -- the controller side ------------------------------------------------------------------
class ReassignmentController:
    """Runs on every broker, acts only while this broker is the active controller."""

    def __init__(self, store: ZooKeeperMetadataStore) -> None:
        self.store = store
        self.zk = store.zk
        self._wake = threading.Event()
        self._stopped = False
        self._recent: dict[tuple[str, int], float] = {}  # completed -> watch ISR until
        self._busy = True  # reassignments in flight at the last pass (or not looked yet)
        self._thread = threading.Thread(
            target=self._run, name=f"reassignment-{store.node_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def _controller(self) -> Any:
        c = getattr(self.store, "controller", None)
        return c if c is not None and c.active else None

    def _zk_watch(self, _event: Any) -> None:
        self._wake.set()

    def on_partition_state_changed(self, topic: Any, index: int) -> None:
        """MetadataListener: a replica set or ISR changed (a reassignment was requested on
        some broker, a new replica caught up): look now rather than at the next idle poll."""
        self._wake.set()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)

    def _run(self) -> None:
        while not self._stopped and not getattr(self.store, "_closing", False):
            wait = POLL_S if self._busy or self._recent else IDLE_POLL_S
            self._wake.wait(wait)
            self._wake.clear()
            if self._stopped or self._controller() is None:
                continue
            try:
                self.legacy_requests()
                self.complete_reassignments()
                self.clean_isrs()
            except (KazooException, OSError) as exc:
                log.debug("reassignment pass failed: %s", exc)
            except Exception:
                log.exception("reassignment pass failed")

    def legacy_requests(self) -> None:
        """kafka-reassign-partitions --zookeeper's /admin/reassign_partitions: start each
        reassignment it lists, then delete the znode (Kafka does the same)."""
        try:
            data, _ = self.zk.get(REASSIGN_PARTITIONS)
        except NoNodeError:
            self.zk.exists(REASSIGN_PARTITIONS, watch=self._zk_watch)
            return
        try:
            obj = json.loads(data.decode() or "{}")
            entries = obj.get("partitions") or []
        except (ValueError, AttributeError):
            log.warning("ignoring unparsable %s", REASSIGN_PARTITIONS)
            entries = []
        by_topic: dict[str, dict[int, list[int] | None]] = {}
        for e in entries:
            try:
                by_topic.setdefault(str(e["topic"]), {})[int(e["partition"])] = [
                    int(r) for r in e["replicas"]
                ]
            except (KeyError, TypeError, ValueError):
                log.warning("ignoring bad entry %r in %s", e, REASSIGN_PARTITIONS)
        for topic, reqs in by_topic.items():
            for p, (code, msg) in submit(self.store, topic, reqs).items():
                if code != NONE:
                    log.warning("reassignment of %s-%d refused: %s", topic, p, msg)
        try:
            self.zk.delete(REASSIGN_PARTITIONS)
        except NoNodeError:
            pass

    def complete_reassignments(self) -> int:
        """Finish every reassignment whose target replicas are all in the ISR."""
        from broker.metadata.zookeeper import decode, encode, state_path

        done = 0
        live = _live(self.zk)
        ongoing = list_ongoing(self.store)
        self._busy = bool(ongoing)
        for o in ongoing:
            controller = self._controller()
            if controller is None:
                return done
            obj, stat = _topic_obj(self.zk, o.topic)
            try:
                data, sstat = self.zk.get(state_path(o.topic, o.partition))
            except NoNodeError:
                continue
            st = decode(data) or {}
            leader, epoch = int(st.get("leader", -1)), int(st.get("leader_epoch", 0))
            isr = [int(r) for r in st.get("isr", [])]
            result = completion(o, leader, epoch, isr, live)
            if result is None:
                continue
            key = str(o.partition)
            obj["partitions"][key] = o.target
            obj["adding_replicas"].pop(key, None)
            obj["removing_replicas"].pop(key, None)
            obj["original_replicas"].pop(key, None)
            st.update(leader=result[0], leader_epoch=result[1], isr=result[2])
            if _write_state(
                self.zk,
                o.topic,
                o.partition,
                st,
                sstat.version,
                controller,
                (encode(obj), stat.version),
            ):
                done += 1
                self._recent[(o.topic, o.partition)] = time.monotonic() + 30
                log.info(
                    "%s-%d: reassignment to %s complete (leader %d epoch %d)",
                    o.topic,
                    o.partition,
                    o.target,
                    result[0],
                    result[1],
                )
        return done

    def clean_isrs(self) -> None:
        """A removed replica may still fetch from the leader in the moment before both see
        the new replica set (brokers read the state and topic znodes one after the other)
        and be put back into the ISR, where it would hold the high watermark until
        replica.lag.time.max.ms: take it out again."""
        from broker.metadata.zookeeper import decode, state_path

        now = time.monotonic()
        for (topic, p), until in list(self._recent.items()):
            if now > until:
                del self._recent[(topic, p)]
                continue
            controller = self._controller()
            if controller is None:
                return
            try:
                obj, _ = _topic_obj(self.zk, topic)
                data, sstat = self.zk.get(state_path(topic, p))
            except (ReassignmentError, NoNodeError):
                del self._recent[(topic, p)]
                continue
            replicas = [int(r) for r in obj["partitions"].get(str(p), [])]
            st = decode(data) or {}
            isr = [int(r) for r in st.get("isr", [])]
            keep = [r for r in isr if r in replicas]
            if keep != isr and keep:
                st["isr"] = keep
                if _write_state(self.zk, topic, p, st, sstat.version, controller):
                    log.info(
                        "%s-%d: removed replicas %s left the ISR",
                        topic,
                        p,
                        sorted(set(isr) - set(keep)),
                    )


# -- the broker side ------------------------------------------------------------------------
class ReplicaRemover:
    """MetadataListener: a broker that is no longer a replica of a partition deletes its log
    (after the replication manager, a listener registered earlier, stopped fetching it)."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker

    def on_partition_state_changed(self, topic: Any, index: int) -> None:
        info = topic.partitions.get(index)
        if info is None or self.broker.node_id in info.replicas:
            return
        if (topic.name, index) not in self.broker.replica_manager.partitions:
            return
        try:
            asyncio.get_running_loop().call_soon(self._remove, topic.name, index)
        except RuntimeError:
            self._remove(topic.name, index)

    def _remove(self, topic: str, index: int) -> None:
        info = self.broker.metadata.topic(topic)
        if info is not None and index in info.partitions:
            if self.broker.node_id in info.partitions[index].replicas:
                return  # assigned back meanwhile
        rm = self.broker.replica_manager
        p = rm.partitions.pop((topic, index), None)
        if p is None:
            return
        fetchers = getattr(getattr(rm, "replication", None), "fetchers", None)
        if fetchers is not None:
            fetchers.remove_partition(topic, index)
        p.deleted = True
        p.notify_append()  # waiting fetches and produces see it gone
        try:
            p.log.delete()
            log.info("%s-%d: reassigned away; log deleted", topic, index)
        except Exception:
            log.exception("cannot delete the log of %s-%d", topic, index)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def stray_logs(broker: Any) -> list[Path]:
    """Partition directories of existing topics that are no longer assigned to this broker
    (it was down while they were reassigned away): nothing will ever read them."""
    store, rm = broker.metadata, broker.replica_manager
    out = []
    for topic in store.topics():
        for index, info in topic.partitions.items():
            if broker.node_id in info.replicas or (topic.name, index) in rm.partitions:
                continue
            for d in rm.log_dirs:  # every entry of log.dirs
                path = Path(d.path) / f"{topic.name}-{index}"
                if path.is_dir():
                    out.append(path)
    return out


def install(broker: Any) -> None:
    """Called once the broker is registered: the log remover on every broker and, in
    cluster mode, the removal of stray logs and the controller-side reassignment thread."""
    broker.metadata.add_listener(ReplicaRemover(broker))
    store = broker.metadata
    if getattr(store, "zk", None) is None:
        return
    for path in stray_logs(broker):
        log.info("%s: no longer a replica here (reassigned away); deleting it", path.name)
        shutil.rmtree(path, ignore_errors=True)
    rc = ReassignmentController(store)
    store.reassignment = rc
    store.add_listener(rc)
    rc.start()
