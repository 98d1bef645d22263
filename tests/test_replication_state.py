"""Replication bookkeeping on real logs: high watermark math, ISR shrink/expand decisions,
follower truncation offsets by leader epoch (KIP-101 / KIP-279)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from broker.replication.state import PartitionReplication, follower_truncation_offset
from fastlog import _core
from fastlog.leader_epoch import LeaderEpochFileCache
from fastlog.log import Log


@dataclass
class Replica:
    """A real log with the partition fields PartitionReplication reads."""

    log: Any
    replicas: list[int] = field(default_factory=lambda: [1, 2, 3])
    isr: list[int] = field(default_factory=lambda: [1, 2, 3])


@pytest.fixture
def logs(tmp_path: Path):
    opened: list[Log] = []

    def make(name: str) -> Log:
        log = Log(tmp_path / name)
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()


def append(log: Log, n: int, epoch: int) -> None:
    log.append_batches(bytearray(_core.build_batch([b"v"] * n)), leader_epoch=epoch)


def leader_state(log: Log, epoch: int = 0) -> tuple[Replica, PartitionReplication]:
    part = Replica(log)
    state = PartitionReplication(part, 1, LeaderEpochFileCache(log.dir))
    state.become_leader(epoch, part.replicas, now=0.0)
    return part, state


def test_high_watermark_is_min_leo_over_isr_and_never_moves_back(logs) -> None:
    part, state = leader_state(logs("t-0"))
    append(part.log, 10, 0)
    # followers not heard from yet hold the HW
    assert state.high_watermark == 0
    state.update_follower(2, 4, now=1.0)
    assert state.high_watermark == 0
    assert state.update_follower(3, 7, now=1.0)
    assert state.high_watermark == 4
    state.update_follower(2, 10, now=2.0)
    assert state.high_watermark == 7
    # a follower dropped from the ISR no longer holds it back
    part.isr = [1, 2]
    assert state.high_watermark == 10
    # and a lower LEO re-entering cannot move it back
    part.isr = [1, 2, 3]
    assert state.high_watermark == 10


def test_single_replica_isr_hw_follows_the_log_end(logs) -> None:
    part, state = leader_state(logs("t-0"))
    part.isr = [1]
    append(part.log, 3, 0)
    assert state.high_watermark == 3


def test_isr_shrinks_after_lag_time_and_expands_when_caught_up(logs) -> None:
    part, state = leader_state(logs("t-0"))
    lag = 30_000.0
    append(part.log, 5, 0)
    state.update_follower(2, 5, now=1_000.0)  # caught up
    state.update_follower(3, 0, now=1_000.0)  # behind
    assert state.isr_to_shrink(lag, now=20_000.0) is None
    # 3 has not caught up since the leadership began (t=0): out after the lag time
    assert state.isr_to_shrink(lag, now=31_000.0) == [1, 2]
    part.isr = [1, 2]
    assert state.high_watermark == 5
    append(part.log, 5, 0)
    # 3 fetches from 5: below the HW... the HW is 5 (2 is at 5): it may rejoin
    state.update_follower(3, 5, now=32_000.0)
    assert state.isr_to_expand(3) == [1, 2, 3]
    # 2 keeps fetching what the leader's end was at its previous fetch: still caught up
    state.update_follower(2, 10, now=33_000.0)
    assert state.high_watermark == 10
    state.update_follower(3, 6, now=34_000.0)
    assert state.isr_to_expand(3) is None  # 6 < HW 10
    # a pending ISR change blocks another one
    state.isr_pending = True
    assert state.isr_to_shrink(lag, now=99_000.0) is None


def test_follower_caught_up_as_of_its_previous_fetch(logs) -> None:
    part, state = leader_state(logs("t-0"))
    append(part.log, 5, 0)
    state.update_follower(2, 5, now=1_000.0)
    append(part.log, 5, 0)  # leader end 10, follower asked at 5 then
    state.update_follower(2, 5, now=2_000.0)  # asks 5 again: it had the end of t=1000
    assert state.followers[2].last_caught_up_ms == 1_000.0
    state.update_follower(2, 10, now=40_000.0)
    assert state.followers[2].last_caught_up_ms == 40_000.0
    assert state.isr_to_shrink(30_000.0, now=50_000.0) == [1, 2]  # 3 never fetched


def test_expansion_waits_for_the_current_epoch(logs) -> None:
    log = logs("t-0")
    append(log, 4, 0)
    part, state = leader_state(log, epoch=3)
    assert state.epoch_start_offset == 4
    part.isr = [1]
    assert state.high_watermark == 4
    state.update_follower(2, 3, now=1.0)
    assert state.isr_to_expand(2) is None
    state.update_follower(2, 4, now=2.0)
    assert state.isr_to_expand(2) == [1, 2]


def test_kip101_follower_truncates_its_unreplicated_tail_not_by_hw(logs) -> None:
    # Old leader B wrote 0..5 at epoch 0; only 0..3 reached A. A became leader at epoch 1
    # and wrote 4..8. B returns as a follower.
    a, b = logs("a-0"), logs("b-0")
    append(a, 4, 0)
    append(b, 4, 0)
    append(b, 2, 0)  # B's unreplicated tail
    cache_a = LeaderEpochFileCache(a.dir)
    cache_a.assign(0, 0)
    cache_a.assign(1, 4)
    append(a, 5, 1)
    cache_b = LeaderEpochFileCache(b.dir)
    cache_b.assign(0, 0)
    requested = cache_b.latest_epoch
    epoch, end = cache_a.end_offset_for(requested, a.end_offset)
    assert (epoch, end) == (0, 4)
    # a high watermark of 6 (had B learnt one) would keep the divergent tail: epochs win
    target = follower_truncation_offset(cache_b, b.end_offset, requested, epoch, end, 6)
    assert target == 4
    b.truncate_to(target)
    cache_b.truncate_from_end(target)
    assert b.end_offset == 4


def test_kip279_follower_epoch_unknown_to_leader(logs) -> None:
    # B led epoch 2 (offsets 6..9) that nobody copied; A (epochs 0, 1 -> 3) leads now.
    a, b = logs("a-0"), logs("b-0")
    cache_a, cache_b = LeaderEpochFileCache(a.dir), LeaderEpochFileCache(b.dir)
    cache_a.assign(0, 0)
    cache_b.assign(0, 0)
    append(a, 3, 0)
    append(b, 3, 0)
    cache_a.assign(1, 3)
    cache_b.assign(1, 3)
    append(a, 2, 1)  # A: 3, 4
    append(b, 3, 1)  # B: 3, 4, 5 (5 never reached A)
    cache_b.assign(2, 6)
    append(b, 4, 2)
    cache_a.assign(3, 5)
    append(a, 2, 3)
    epoch, end = cache_a.end_offset_for(2, a.end_offset)
    assert (epoch, end) == (1, 5)
    target = follower_truncation_offset(cache_b, b.end_offset, 2, epoch, end, 0)
    assert target == 5


def test_no_epoch_answer_falls_back_to_high_watermark(logs) -> None:
    b = logs("b-0")
    append(b, 6, 0)
    cache = LeaderEpochFileCache(b.dir)
    cache.assign(0, 0)
    assert follower_truncation_offset(cache, 6, 0, -1, -1, 3) == 3
    assert follower_truncation_offset(cache, 6, 0, 0, 9, 3) == 6  # leader has more
