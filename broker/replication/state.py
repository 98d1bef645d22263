"""PartitionReplication: the replication state of one partition on this broker.

On the leader: each follower's log end offset (learnt from its Fetch offsets) and when it
last caught up, the high watermark (min log end offset over the ISR, never moving back),
and the ISR changes to propose (shrink after replica.lag.time.max.ms, expand when a
follower reaches the high watermark and the current epoch). On a follower: the high
watermark the leader last sent, capped by the local log end offset.

Pure bookkeeping over a real Partition (its Log and LeaderEpochFileCache): the manager
(broker.replication.manager) does the I/O: metadata writes, fetching, waking waiters.
Times are in milliseconds of ``time.monotonic()``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastlog.leader_epoch import LeaderEpochFileCache


def now_ms() -> float:
    return time.monotonic() * 1000


@dataclass(slots=True)
class FollowerState:
    """What the leader knows of one follower replica (Kafka's Replica on the leader)."""

    node_id: int
    log_end_offset: int = -1  # unknown until its first fetch under this leadership
    last_caught_up_ms: float = 0.0
    last_fetch_ms: float = 0.0
    last_fetch_leader_leo: int = -1


def follower_truncation_offset(
    cache: LeaderEpochFileCache,
    log_end_offset: int,
    requested_epoch: int,
    leader_epoch: int,
    leader_end_offset: int,
    high_watermark: int,
) -> int:
    """Where a follower truncates its log after OffsetForLeaderEpoch (KIP-101, KIP-279).

    ``requested_epoch`` is the follower's latest epoch; (``leader_epoch``,
    ``leader_end_offset``) the leader's answer. If the leader knows that epoch, the
    follower keeps what the leader has of it. If the leader answers an older epoch (the
    follower's newest epochs never made it to the leader), both logs agree only up to the
    end of that epoch on both sides. No answer (-1): fall back to the high watermark.
    """
    if leader_epoch < 0 or leader_end_offset < 0:
        return min(high_watermark, log_end_offset)
    if leader_epoch == requested_epoch:
        return min(leader_end_offset, log_end_offset)
    _, local_end = cache.end_offset_for(leader_epoch, log_end_offset)
    if local_end < 0:
        local_end = log_end_offset
    return min(leader_end_offset, local_end, log_end_offset)


class PartitionReplication:
    """Attached to ``Partition.replication`` in cluster mode (None on a single node)."""

    def __init__(self, partition: Any, node_id: int, cache: LeaderEpochFileCache) -> None:
        self.partition = partition
        self.node_id = node_id
        self.cache = cache
        self.is_leader = False
        self.leader_id = -1
        self.hw = 0
        self.followers: dict[int, FollowerState] = {}
        self.isr_pending = False  # an AlterIsr write is in flight
        self.fenced = False  # the store refused our epoch: wait for the new state
        self.epoch_start_offset = 0

    # -- roles ---------------------------------------------------------------------------
    def become_leader(self, epoch: int, replicas: list[int], now: float | None = None) -> None:
        """This broker leads ``epoch``: the epoch starts at the log end offset."""
        now = now_ms() if now is None else now
        leo = self.partition.log.end_offset
        self.cache.assign(epoch, leo)
        self.epoch_start_offset = leo
        self.is_leader = True
        self.fenced = False
        self.isr_pending = False
        self.leader_id = self.node_id
        # Followers get a full lag period to show up (Kafka resets lastCaughtUpTime too).
        self.followers = {
            n: FollowerState(n, -1, now, now, -1) for n in replicas if n != self.node_id
        }
        self.hw = min(self.hw, leo)

    def become_follower(self, leader_id: int) -> None:
        self.is_leader = False
        self.leader_id = leader_id
        self.followers = {}
        self.isr_pending = False
        self.fenced = False

    # -- high watermark ------------------------------------------------------------------
    @property
    def high_watermark(self) -> int:
        if not self.is_leader:
            return self.hw
        leo = self.partition.log.end_offset
        low = leo
        for n in self.partition.isr:
            if n == self.node_id:
                continue
            f = self.followers.get(n)
            if f is None or f.log_end_offset < 0:
                return self.hw  # an ISR member not heard from yet holds the HW
            if f.log_end_offset < low:
                low = f.log_end_offset
        if low > self.hw:
            self.hw = low
        return self.hw

    def set_follower_high_watermark(self, leader_hw: int) -> None:
        self.hw = max(0, min(leader_hw, self.partition.log.end_offset))

    # -- leader: followers ---------------------------------------------------------------
    def update_follower(self, node_id: int, fetch_offset: int, now: float | None = None) -> bool:
        """A follower fetched from ``fetch_offset`` (so it holds everything below it).
        Returns True if the high watermark moved."""
        now = now_ms() if now is None else now
        f = self.followers.get(node_id)
        if f is None:
            f = self.followers[node_id] = FollowerState(node_id, -1, now, now, -1)
        leo = self.partition.log.end_offset
        # Kafka's rule: caught up now if it asks for our end; caught up as of its previous
        # fetch if it asks for what our end was then.
        if fetch_offset >= leo:
            f.last_caught_up_ms = now
        elif fetch_offset >= f.last_fetch_leader_leo >= 0:
            f.last_caught_up_ms = max(f.last_caught_up_ms, f.last_fetch_ms)
        f.log_end_offset = min(fetch_offset, leo)
        f.last_fetch_leader_leo = leo
        f.last_fetch_ms = now
        before = self.hw
        return self.high_watermark > before

    def isr_to_expand(self, node_id: int) -> list[int] | None:
        """The ISR with ``node_id`` added if that follower is caught up, else None."""
        p = self.partition
        if not self.is_leader or self.fenced or self.isr_pending:
            return None
        if node_id in p.isr or node_id not in p.replicas:
            return None
        f = self.followers.get(node_id)
        if f is None:
            return None
        if f.log_end_offset >= self.high_watermark and f.log_end_offset >= self.epoch_start_offset:
            return sorted([*p.isr, node_id], key=p.replicas.index)
        return None

    def isr_to_shrink(self, lag_max_ms: float, now: float | None = None) -> list[int] | None:
        """The ISR without followers that have not caught up for ``lag_max_ms``."""
        now = now_ms() if now is None else now
        p = self.partition
        if not self.is_leader or self.fenced or self.isr_pending:
            return None
        keep = []
        for n in p.isr:
            f = self.followers.get(n)
            if n != self.node_id and (f is None or now - f.last_caught_up_ms > lag_max_ms):
                continue
            keep.append(n)
        return keep if len(keep) < len(p.isr) else None
