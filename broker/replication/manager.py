"""ReplicationManager: leader/follower transitions, ISR maintenance, acks=all and the
replica Fetch checks of one broker.

Every hosted partition gets a LeaderEpochFileCache (leader-epoch-checkpoint). In cluster
mode (a metadata store other than the embedded single-node one) each partition also gets a
``PartitionReplication`` (broker.replication.state) and follows the metadata store's
``on_partition_state_changed`` events: this broker becomes the leader of a new epoch (the
epoch starts at its log end offset) or a follower (handed to the ReplicaFetcherManager,
which truncates by OffsetForLeaderEpoch and then fetches). The leader changes the ISR
through ``MetadataStore.alter_partition_isr`` (a conditional write; a fenced epoch means a
new leader exists).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broker.replication.state import PartitionReplication, now_ms
from fastlog.checkpoint import OffsetCheckpointFile
from fastlog.leader_epoch import LeaderEpochCheckpointError, LeaderEpochFileCache

if TYPE_CHECKING:
    from broker.metadata import TopicInfo
    from broker.server import Broker

log = logging.getLogger(__name__)

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
NOT_ENOUGH_REPLICAS = 19
NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
TOPIC_AUTHORIZATION_FAILED = 29

REPLICATION_OFFSET_CHECKPOINT = "replication-offset-checkpoint"
DEFAULT_LAG_TIME_MAX_MS = 30_000


@functools.lru_cache(maxsize=256)
def _addresses(host: str) -> frozenset[str]:
    try:
        return frozenset(ai[4][0] for ai in socket.getaddrinfo(host, None))
    except OSError:
        return frozenset({host})


def _config(broker: Any, name: str, default: Any) -> Any:
    try:
        value = broker.config.get(name)
    except Exception:  # noqa: BLE001 - a key the config module does not know yet
        return default
    return default if value is None else value


class ReplicationManager:
    def __init__(self, broker: Broker) -> None:
        from broker.metadata import EmbeddedMetadataStore

        self.broker = broker
        self.node_id = broker.node_id
        self.cluster_mode = not isinstance(broker.metadata, EmbeddedMetadataStore)
        self.lag_time_max_ms = float(
            _config(broker, "replica.lag.time.max.ms", DEFAULT_LAG_TIME_MAX_MS)
        )
        # One replication-offset-checkpoint per log dir (Kafka's), for the partitions there.
        self._hw_checkpoints: dict[Path, OffsetCheckpointFile] = {}
        self._saved_hw_by_dir: dict[Path, dict[tuple[str, int], int]] = {}
        self._saved_hw: dict[tuple[str, int], int] = {}
        for d in getattr(broker, "log_dirs", None) or [broker]:
            path = Path(getattr(d, "path", None) or broker.data_dir)
            ckpt = OffsetCheckpointFile(path / REPLICATION_OFFSET_CHECKPOINT)
            self._hw_checkpoints[path] = ckpt
            try:
                saved = ckpt.read()
            except Exception:  # noqa: BLE001 - a damaged file only costs the saved HWs
                log.warning("cannot read %s; high watermarks start at 0", ckpt.path)
                saved = {}
            self._saved_hw_by_dir[path] = saved
            self._saved_hw.update(saved)
        self.fetchers: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        broker.metadata.add_listener(self)

    # -- partitions ----------------------------------------------------------------------
    def partition_opened(self, p: Any) -> None:
        """ReplicaManager hook: a partition's log was opened on this broker."""
        cache = self._open_cache(p)
        p.leader_epoch_cache = cache
        if not self.cluster_mode:
            if cache.latest_epoch < p.leader_epoch:
                cache.assign(max(p.leader_epoch, 0), p.log.end_offset)
            return
        state = PartitionReplication(p, self.node_id, cache)
        state.hw = min(self._saved_hw.get((p.topic, p.index), 0), p.log.end_offset)
        p.replication = state
        if self._started:
            self._apply_state(p)

    def _open_cache(self, p: Any) -> LeaderEpochFileCache:
        try:
            cache = LeaderEpochFileCache(p.path)
        except LeaderEpochCheckpointError as exc:
            log.warning("%s; rebuilding it from the log", exc)
            cache = None
        if cache is None or (not cache.entries() and p.log.end_offset > p.log.start_offset):
            if cache is None:
                (Path(p.path) / "leader-epoch-checkpoint").unlink(missing_ok=True)
                cache = LeaderEpochFileCache(p.path)
            cache.rebuild(p.read_batches(p.log.start_offset))
        # Recovery may have cut a torn tail; retention may have moved the start (as Kafka
        # does when it loads a log). An epoch starting right at the end stays: it is the
        # current one with nothing written yet.
        cache.truncate_from_end(p.log.end_offset + 1)
        cache.truncate_from_start(p.log.start_offset)
        return cache

    def _partitions(self) -> list[Any]:
        return list(self.broker.replica_manager.partitions.values())

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """After the ReplicaManager opened the logs (inside the running event loop)."""
        rm = self.broker.replica_manager
        for p in self._partitions():
            if getattr(p, "leader_epoch_cache", None) is None:
                self.partition_opened(p)
        if not self.cluster_mode:
            return
        from broker.replication.fetcher import ReplicaFetcherManager

        self.fetchers = ReplicaFetcherManager(self)
        self._started = True
        # Partitions the metadata assigns here but the ReplicaManager has not opened yet.
        for topic in self.broker.metadata.topics():
            for index, info in topic.partitions.items():
                if self.node_id in info.replicas:
                    rm.get_partition(topic.name, index)
        for p in self._partitions():
            self._apply_state(p)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._isr_loop()))

    def close(self) -> None:
        """Before the logs close: stop fetching and ISR work (appends are synchronous, so
        a cancelled task never leaves half an append), save the high watermarks."""
        for t in self._tasks:
            t.cancel()
        self._tasks.clear()
        if self.fetchers is not None:
            self.fetchers.close()
        self._started = False
        if self.cluster_mode:
            self.checkpoint_high_watermarks()

    def checkpoint_high_watermarks(self) -> None:
        """Save every partition's high watermark (replication-offset-checkpoint), if any
        changed since the last save."""
        by_dir: dict[Path, dict[tuple[str, int], int]] = {d: {} for d in self._hw_checkpoints}
        # A failed dir is not written again (broker/log_dirs.py).
        offline = {Path(d.path) for d in getattr(self.broker, "log_dirs", ()) if d.offline}
        for p in self._partitions():
            r = getattr(p, "replication", None)
            log_dir = getattr(p, "log_dir", None)
            d = Path(log_dir.path) if log_dir is not None else Path(p.path).parent
            if r is not None and d in by_dir:
                by_dir[d][(p.topic, p.index)] = r.hw
        for d, hws in by_dir.items():
            if d in offline or hws == self._saved_hw_by_dir.get(d):
                continue
            ckpt = self._hw_checkpoints[d]
            try:
                ckpt.write(hws)
                self._saved_hw_by_dir[d] = hws
            except OSError as exc:
                log.warning("cannot write %s: %s", ckpt.path, exc)

    def _trim_epoch_caches(self) -> None:
        """Retention moved log start offsets: the epochs before them go (Kafka trims the
        cache with the log start)."""
        for p in self._partitions():
            cache = getattr(p, "leader_epoch_cache", None)
            if cache is None:
                continue
            try:
                cache.truncate_from_start(p.log.start_offset)
            except Exception as exc:  # noqa: BLE001 - a closed log (deleted topic) or disk error
                log.debug("cannot trim the epoch cache of %s: %s", p, exc)

    # -- metadata events -----------------------------------------------------------------
    def on_topic_created(self, topic: TopicInfo) -> None:
        pass  # the ReplicaManager opens the logs (partition_opened); states follow

    def on_partitions_added(self, topic: TopicInfo, old_count: int) -> None:
        pass

    def on_topic_configs_changed(self, topic: TopicInfo) -> None:
        pass

    def on_topic_deleted(self, topic: TopicInfo) -> None:
        if self.fetchers is not None:
            for index in topic.partitions:
                self.fetchers.remove_partition(topic.name, index)

    def on_brokers_changed(self) -> None:
        if self.fetchers is not None:
            self.fetchers.brokers_changed()

    def on_partition_state_changed(self, topic: TopicInfo, index: int) -> None:
        if not self._started:
            return
        info = topic.partitions.get(index)
        if info is None:
            return
        p = self.broker.replica_manager.partitions.get((topic.name, index))
        if p is None:
            if self.node_id not in info.replicas:
                return
            p = self.broker.replica_manager.get_partition(topic.name, index)
            if p is None:
                return
        self._apply_state(p, info)

    def _apply_state(self, p: Any, info: Any = None) -> None:
        """Bring one partition in line with its metadata (leader, epoch, ISR)."""
        r: PartitionReplication | None = getattr(p, "replication", None)
        if r is None or getattr(p, "offline", False):  # its log dir failed (broker/log_dirs.py)
            return
        if info is None:
            topic = self.broker.metadata.topic(p.topic)
            if topic is None or p.index not in topic.partitions:
                return
            info = topic.partitions[p.index]
        new_epoch = info.leader_epoch
        if new_epoch < p.leader_epoch and (r.is_leader or r.leader_id >= 0):
            return  # a stale event
        leader_changed = new_epoch != p.leader_epoch or info.leader != r.leader_id
        p.replicas = list(info.replicas)
        p.isr = list(info.isr)
        if self.node_id not in info.replicas:
            # Reassigned away: stop replicating (the log is removed by whoever owns that).
            if self.fetchers is not None:
                self.fetchers.remove_partition(p.topic, p.index)
            r.become_follower(-1)
            p.leader_epoch, p.leader = new_epoch, info.leader
            p.notify_append()
            return
        if not leader_changed:
            if r.is_leader:
                r.isr_pending = False
                p.notify_append()  # the HW may move with the new ISR
            return
        p.leader_epoch = new_epoch
        p.leader = info.leader
        if info.leader == self.node_id:
            if self.fetchers is not None:
                self.fetchers.remove_partition(p.topic, p.index)
            r.become_leader(new_epoch, p.replicas)
            log.info(
                "%s: leader at epoch %d from offset %d (ISR %s)",
                p,
                new_epoch,
                r.epoch_start_offset,
                p.isr,
            )
        else:
            r.become_follower(info.leader)
            if self.fetchers is not None:
                self.fetchers.remove_partition(p.topic, p.index)
                if info.leader >= 0:
                    self.fetchers.add_partition(p, info.leader)
            log.info("%s: follower of %d at epoch %d", p, info.leader, new_epoch)
        p.notify_append()  # waiting produce/fetch requests re-check leadership

    # -- ISR -----------------------------------------------------------------------------
    async def _isr_loop(self) -> None:
        period = max(self.lag_time_max_ms / 2000, 0.05)
        next_checkpoint = time.monotonic() + 5.0
        while True:
            await asyncio.sleep(period)
            try:
                now = now_ms()
                for p in self._partitions():
                    r = getattr(p, "replication", None)
                    if r is None:
                        continue
                    new_isr = r.isr_to_shrink(self.lag_time_max_ms, now)
                    if new_isr is not None:
                        log.info(
                            "%s: shrinking ISR %s -> %s (replica.lag.time.max.ms=%d)",
                            p,
                            p.isr,
                            new_isr,
                            self.lag_time_max_ms,
                        )
                        self.alter_isr(p, new_isr)
                if time.monotonic() >= next_checkpoint:
                    next_checkpoint = time.monotonic() + 5.0
                    self.checkpoint_high_watermarks()
                    self._trim_epoch_caches()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ISR maintenance failed; retrying")

    def alter_isr(self, p: Any, new_isr: list[int]) -> None:
        """Write the new ISR (off the event loop: the store may talk to ZooKeeper)."""
        r: PartitionReplication = p.replication
        r.isr_pending = True
        epoch = p.leader_epoch
        loop = asyncio.get_running_loop()

        def write() -> Any:
            return self.broker.metadata.alter_partition_isr(p.topic, p.index, epoch, new_isr)

        fut = loop.run_in_executor(None, write)

        def done(f: asyncio.Future[Any]) -> None:
            from broker.metadata.store import FencedLeaderEpochError

            r.isr_pending = False
            exc = f.exception()
            if exc is None:
                info = f.result()
                if p.leader_epoch == epoch and r.is_leader:
                    p.isr = list(info.isr)
                    p.notify_append()
                return
            if isinstance(exc, FencedLeaderEpochError):
                log.info("%s: ISR change fenced (%s); waiting for the new leader", p, exc)
                r.fenced = True
                p.notify_append()
            else:
                log.warning("%s: ISR change to %s failed: %s", p, new_isr, exc)

        fut.add_done_callback(done)

    # -- hooks for handlers ---------------------------------------------------------------
    def check_produce(self, p: Any) -> int:
        """Error code refusing a produce to ``p`` on this broker, or 0."""
        r = getattr(p, "replication", None)
        if r is not None and (not r.is_leader or r.fenced):
            return NOT_LEADER_OR_FOLLOWER
        return NONE

    def replica_fetch(self, ctx: Any, p: Any, replica_id: int, fetch_offset: int) -> int:
        """A Fetch with ``replica_id`` >= 0: allowed only from a live registered broker,
        at its registered address, that is a replica of ``p`` (CVE-2018-1288). Updates the
        follower's state on the leader. Returns an error code or 0."""
        r: PartitionReplication | None = getattr(p, "replication", None)
        if r is None:
            return TOPIC_AUTHORIZATION_FAILED
        if not self._is_broker_peer(ctx, replica_id):
            return TOPIC_AUTHORIZATION_FAILED
        if replica_id not in p.replicas or replica_id == self.node_id:
            return NOT_LEADER_OR_FOLLOWER
        if not r.is_leader:
            return NOT_LEADER_OR_FOLLOWER
        if fetch_offset > p.log.end_offset:
            return NONE  # a diverged follower: OFFSET_OUT_OF_RANGE makes it truncate first
        if r.update_follower(replica_id, fetch_offset):
            p.notify_append()  # HW moved: acks=all produces and consumers
        new_isr = r.isr_to_expand(replica_id)
        if new_isr is not None:
            log.info("%s: expanding ISR %s -> %s", p, p.isr, new_isr)
            self.alter_isr(p, new_isr)
        return NONE

    def _is_broker_peer(self, ctx: Any, replica_id: int) -> bool:
        info = self.broker.metadata.broker(replica_id)
        if info is None:
            return False
        conn = getattr(ctx, "connection", None)
        peer = getattr(conn, "peer", None)
        if not peer or peer == "?":
            return True  # no socket address (in-process calls)
        host = peer.rsplit(":", 1)[0].strip("[]")
        return host in _addresses(info.host)

    async def wait_for_acks(self, pending: list[tuple[Any, Any, int]], timeout_s: float) -> None:
        """acks=all: each (partition, AppendResult, required offset) completes when the
        high watermark reaches the required offset (NOT_ENOUGH_REPLICAS_AFTER_APPEND if
        the ISR is then below min.insync.replicas), fails if leadership moves, and times
        out with REQUEST_TIMED_OUT."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout_s, 0)
        rm = self.broker.replica_manager
        waiting = list(pending)
        while waiting:
            still = []
            for p, result, required in waiting:
                r = p.replication
                if p.deleted:
                    result.error_code = UNKNOWN_TOPIC_OR_PARTITION
                elif not r.is_leader or r.fenced:
                    result.error_code = NOT_LEADER_OR_FOLLOWER
                elif r.high_watermark >= required:
                    if len(p.isr) < p.limits.min_insync_replicas:
                        result.error_code = NOT_ENOUGH_REPLICAS_AFTER_APPEND
                else:
                    still.append((p, result, required))
            waiting = still
            if not waiting:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                for _, result, _ in waiting:
                    result.error_code = REQUEST_TIMED_OUT
                return
            await rm.wait_for_append([p for p, _, _ in waiting], remaining)
