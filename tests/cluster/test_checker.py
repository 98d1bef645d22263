"""The history checker finds each anomaly it claims to (synthetic histories, no cluster)."""

from __future__ import annotations

from cluster.checker import History, check, unavailability


def _history(final: dict[int, list[tuple[int, bytes]]], acked: dict[bytes, tuple[int, int]]):
    h = History()
    for seq, (value, (partition, offset)) in enumerate(acked.items()):
        h.sent(value, partition, seq)
        h.answered(value, offset, None)
    h.final = final
    return h


def test_clean_history_is_ok() -> None:
    h = _history({0: [(0, b"a"), (1, b"b")]}, {b"a": (0, 0), b"b": (0, 1)})
    h.polled(0, 0, b"a")
    r = check(h)
    assert r.ok and r.acked == 2 and r.final_records == 2, r.details()


def test_lost_moved_duplicated_reordered_unexpected() -> None:
    h = _history(
        {0: [(0, b"b"), (1, b"a"), (2, b"b"), (3, b"zz")]},
        {b"a": (0, 0), b"b": (0, 1), b"c": (0, 4)},
    )
    r = check(h)
    assert [s.value for s in r.lost] == [b"c"]
    assert {s.value for s, _ in r.moved} == {b"a", b"b"}  # acked at 0 and 1, found elsewhere
    assert set(r.duplicated) == {b"b"}
    assert r.reordered  # b (sent second) before a (sent first)
    assert r.unexpected == [(0, 3, b"zz")]
    assert r.inconsistent  # offset 0: acked a, final b
    assert not r.ok


def test_read_of_a_truncated_tail_is_inconsistent() -> None:
    h = _history({0: [(0, b"a"), (1, b"c")]}, {b"a": (0, 0)})
    h.sent(b"c", 0, 5)
    h.answered(b"c", -1, "timed out")  # indeterminate: allowed to be present
    h.polled(0, 1, b"x")  # a consumer saw another value at offset 1
    r = check(h)
    assert r.inconsistent == [(0, 1, {b"c", b"x"})]
    assert r.failed == 1 and not r.lost


def test_unavailability_is_the_longest_gap_without_acks() -> None:
    h = History()
    for i, t in enumerate([10.0, 10.5, 14.0, 14.2]):
        v = f"v{i}".encode()
        h.sent(v, 0, i)
        h.answered(v, i, None)
        h.sends[v].answered_at = t
    assert unavailability(h, 10.0, 15.0) == 3.5
    h.sends[b"v1"].partition = 1  # partition 0 acked at 10.0, 14.0, 14.2 only
    assert unavailability(h, 10.0, 15.0, partition=0) == 4.0
    assert unavailability(h, 10.0, 15.0, partition=1) == 4.5
