"""Pure parts of the controller: leader election (decide) and replica placement
(assign_replicas), checked over many random inputs (no ZooKeeper needed)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.controller import decide
from broker.metadata import BrokerInfo, InvalidReplicationFactorError
from broker.metadata.zookeeper import assign_replicas, rack_alternated, split_connect


@st.composite
def partition_states(draw):
    n = draw(st.integers(1, 6))
    replicas = draw(st.permutations(list(range(1, n + 1))))
    isr = [r for r in replicas if draw(st.booleans())] or [replicas[0]]
    leader = draw(st.sampled_from([*isr, -1]))
    live = {r for r in range(1, n + 2) if draw(st.booleans())}
    return replicas, leader, draw(st.integers(0, 100)), isr, live


@settings(max_examples=300, deadline=None)
@given(partition_states(), st.booleans())
def test_decide_elects_only_from_the_live_isr_unless_unclean(state, unclean) -> None:
    replicas, leader, epoch, isr, live = state
    out = decide(replicas, leader, epoch, isr, live, unclean)
    if out is None:
        # Nothing to do: the leader lives and every ISR member lives, or it is already
        # offline with nobody to elect.
        assert (leader in live and all(r in live for r in isr)) or (
            leader == -1
            and not any(r in live for r in isr)
            and not (unclean and any(r in live for r in replicas))
        )
        return
    new_leader, new_epoch, new_isr = out
    if new_leader == leader:
        assert new_epoch == epoch and new_isr == [r for r in isr if r in live]
        return
    assert new_epoch == epoch + 1
    if new_leader == -1:
        assert new_isr == isr  # kept for a clean election later
        assert not any(r in live for r in isr)
    elif new_leader in isr:
        assert new_leader in live
        # Kafka's choice: the first replica (assignment order) alive and in the ISR.
        assert new_leader == next(r for r in replicas if r in live and r in isr)
        assert new_leader in new_isr and all(r in live for r in new_isr)
    else:
        assert unclean and new_leader in live and new_isr == [new_leader]


def test_decide_examples() -> None:
    # Leader 1 dies: 2 (first live ISR member in assignment order) takes over.
    assert decide([1, 2, 3], 1, 4, [1, 3, 2], {2, 3}) == (2, 5, [3, 2])
    # A follower dies: it leaves the ISR, the epoch stays.
    assert decide([1, 2, 3], 1, 4, [1, 2, 3], {1, 2}) == (1, 4, [1, 2])
    # Only an out-of-ISR replica lives: offline unless unclean.
    assert decide([1, 2], 1, 0, [1], {2}) == (-1, 1, [1])
    assert decide([1, 2], 1, 0, [1], {2}, unclean=True) == (2, 1, [2])
    # Offline partition, an ISR member returns: elected.
    assert decide([1, 2], -1, 1, [1], {1}) == (1, 2, [1])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 7), st.integers(1, 40), st.data())
def test_assignment_is_valid_and_balanced(n, partitions, data) -> None:
    rf = data.draw(st.integers(1, n))
    brokers = [BrokerInfo(i, "h", 9000 + i) for i in range(1, n + 1)]
    out = assign_replicas(brokers, 0, partitions, rf)
    assert sorted(out) == list(range(partitions))
    for reps in out.values():
        assert len(reps) == rf and len(set(reps)) == rf
        assert set(reps) <= {b.node_id for b in brokers}
    # Leaders (first replicas) round-robin: counts differ by at most one.
    counts = Counter(reps[0] for reps in out.values())
    lead = [counts.get(b.node_id, 0) for b in brokers]
    assert max(lead) - min(lead) <= 1


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 4), st.integers(1, 3), st.integers(1, 20))
def test_rack_aware_assignment_spreads_racks(racks, per_rack, partitions) -> None:
    brokers = [
        BrokerInfo(r * per_rack + i + 1, "h", 9000, f"rack{r}")
        for r in range(racks)
        for i in range(per_rack)
    ]
    rf = min(racks, len(brokers))
    out = assign_replicas(brokers, 0, partitions, rf)
    rack_of = {b.node_id: b.rack for b in brokers}
    for reps in out.values():
        assert len({rack_of[r] for r in reps}) == rf  # one replica per rack
    alternated = rack_alternated(brokers)
    assert sorted(alternated) == sorted(b.node_id for b in brokers)


def test_assignment_errors() -> None:
    brokers = [BrokerInfo(1, "h", 1), BrokerInfo(2, "h", 2)]
    with pytest.raises(InvalidReplicationFactorError, match="larger than the 2"):
        assign_replicas(brokers, 0, 1, 3)
    with pytest.raises(InvalidReplicationFactorError, match="positive"):
        assign_replicas(brokers, 0, 1, 0)


def test_split_connect() -> None:
    assert split_connect("a:1,b:2/kafka/prod") == ("a:1,b:2", "/kafka/prod")
    assert split_connect("a:1") == ("a:1", "")
    assert split_connect("a:1/") == ("a:1", "")
