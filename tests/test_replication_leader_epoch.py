"""LeaderEpochFileCache: Kafka's file format, assignment, lookups, truncation, reload."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastlog import _core
from fastlog.leader_epoch import (
    LEADER_EPOCH_CHECKPOINT,
    LeaderEpochCheckpointError,
    LeaderEpochFileCache,
)
from fastlog.log import Log


def test_file_format_is_kafkas(tmp_path: Path) -> None:
    cache = LeaderEpochFileCache(tmp_path)
    assert cache.assign(0, 0)
    assert cache.assign(3, 10)
    assert (tmp_path / LEADER_EPOCH_CHECKPOINT).read_text() == "0\n2\n0 0\n3 10\n"
    assert LeaderEpochFileCache(tmp_path).entries() == [(0, 0), (3, 10)]


def test_assign_repeated_epoch_is_noop_and_conflicts_are_dropped(tmp_path: Path) -> None:
    cache = LeaderEpochFileCache(tmp_path)
    cache.assign(1, 0)
    cache.assign(2, 5)
    assert not cache.assign(2, 7)
    assert cache.entries() == [(1, 0), (2, 5)]
    # an epoch 2 that starts earlier replaces the old one
    assert cache.assign(2, 4)
    assert cache.entries() == [(1, 0), (2, 4)]
    # a lower epoch at a later offset removes the newer history
    cache.assign(5, 9)
    cache.assign(4, 12)
    assert cache.entries() == [(1, 0), (2, 4), (4, 12)]
    with pytest.raises(ValueError):
        cache.assign(-1, 0)


def test_end_offset_for(tmp_path: Path) -> None:
    cache = LeaderEpochFileCache(tmp_path)
    assert cache.end_offset_for(0, 10) == (-1, -1)
    cache.assign(1, 5)
    cache.assign(3, 20)
    cache.assign(4, 30)
    log_end = 42
    assert cache.end_offset_for(4, log_end) == (4, 42)  # latest: the log end
    assert cache.end_offset_for(3, log_end) == (3, 30)
    assert cache.end_offset_for(1, log_end) == (1, 20)
    # epoch 2 never led here: the largest epoch below it (1) and where 3 began
    assert cache.end_offset_for(2, log_end) == (1, 20)
    # older than anything known: it ended where the first known epoch began
    assert cache.end_offset_for(0, log_end) == (0, 5)
    assert cache.end_offset_for(9, log_end) == (-1, -1)
    assert cache.end_offset_for(-1, log_end) == (-1, -1)
    assert cache.epoch_for_offset(4) == -1
    assert cache.epoch_for_offset(25) == 3
    assert cache.epoch_for_offset(1000) == 4


def test_truncation(tmp_path: Path) -> None:
    cache = LeaderEpochFileCache(tmp_path)
    for epoch, start in [(0, 0), (1, 10), (2, 20), (3, 30)]:
        cache.assign(epoch, start)
    assert cache.truncate_from_end(20)
    assert cache.entries() == [(0, 0), (1, 10)]
    assert not cache.truncate_from_end(11)
    assert cache.truncate_from_start(15)
    assert cache.entries() == [(1, 15)]
    assert not cache.truncate_from_start(3)
    assert LeaderEpochFileCache(tmp_path).entries() == [(1, 15)]


def test_malformed_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / LEADER_EPOCH_CHECKPOINT).write_text("0\n3\n0 0\n")
    with pytest.raises(LeaderEpochCheckpointError, match="3 entries announced"):
        LeaderEpochFileCache(tmp_path)
    (tmp_path / LEADER_EPOCH_CHECKPOINT).write_text("0\n2\n4 10\n2 12\n")
    with pytest.raises(LeaderEpochCheckpointError, match="out of order"):
        LeaderEpochFileCache(tmp_path)
    (tmp_path / LEADER_EPOCH_CHECKPOINT).write_text("7\n0\n")
    with pytest.raises(LeaderEpochCheckpointError, match="version"):
        LeaderEpochFileCache(tmp_path)


def _batch(values: list[bytes]) -> bytearray:
    return bytearray(_core.build_batch(list(values), base_offset=0))


def test_rebuild_and_assign_batches_from_a_real_log(tmp_path: Path) -> None:
    log = Log(tmp_path / "t-0")
    try:
        for epoch, n in [(0, 3), (0, 2), (2, 4), (5, 1)]:
            log.append_batches(_batch([b"x"] * n), leader_epoch=epoch)
        batches = _core.scan_batches(log.read_bytes(0, 1 << 20))
        cache = LeaderEpochFileCache(log.dir)
        cache.rebuild(batches)
        assert cache.entries() == [(0, 0), (2, 5), (5, 9)]
        (tmp_path / "copy").mkdir()
        other = LeaderEpochFileCache(tmp_path / "copy")
        assert other.assign_batches(batches[:2]) is True
        assert other.assign_batches(batches) is True
        assert other.entries() == cache.entries()
    finally:
        log.close()


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.integers(1, 5), st.integers(0, 3)),
            st.tuples(st.just("truncate"), st.integers(0, 40), st.just(0)),
        ),
        max_size=30,
    )
)
def test_cache_matches_the_epochs_of_the_log(tmp_path: Path, ops) -> None:
    """A log's records carry epochs; maintaining the cache as leaders and followers do
    (assign at each new epoch's first offset, truncate with the log) keeps it answering
    which epoch wrote each offset and where each epoch ends."""
    d = Path(tempfile.mkdtemp(dir=tmp_path))
    cache = LeaderEpochFileCache(d, sync=False)
    epochs: list[int] = []  # epoch of each offset, the model
    current = 0
    for op, a, b in ops:
        if op == "append":
            current += b  # epochs never go back while appending
            if not epochs or current > epochs[-1]:
                cache.assign(current, len(epochs))
            epochs += [current] * a
        else:
            end = min(a, len(epochs))
            del epochs[end:]
            cache.truncate_from_end(end)
            current = max(current, epochs[-1] if epochs else 0)
    leo = len(epochs)
    for offset, epoch in enumerate(epochs):
        assert cache.epoch_for_offset(offset) == epoch
    for epoch in set(epochs):
        later = [o for o, e in enumerate(epochs) if e > epoch]
        expected_end = later[0] if later else leo
        assert cache.end_offset_for(epoch, leo) == (epoch, expected_end)
    assert LeaderEpochFileCache(d).entries() == cache.entries()
