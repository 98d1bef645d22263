"""GroupCoordinator state machine with a controlled clock (no broker, records kept in memory).

The end-to-end behaviour with real clients and real time is in test_groups_e2e_*.py.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
from kio.schema.errors import ErrorCode as E

from broker.coordinator import GroupCoordinator, GroupState
from broker.coordinator import records as rec
from broker.coordinator.store import MemoryOffsetsStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def subscription(*topics: str) -> bytes:
    out = struct.pack(">hi", 0, len(topics))
    for t in topics:
        out += struct.pack(">h", len(t)) + t.encode()
    return out + struct.pack(">i", -1)


CONFIG = {"group.initial.rebalance.delay.ms": 100, "offsets.retention.minutes": 1}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryOffsetsStore:
    return MemoryOffsetsStore()


@pytest.fixture
async def coord(clock: Clock, store: MemoryOffsetsStore) -> AsyncIterator[GroupCoordinator]:
    c = GroupCoordinator(None, store=store, time_ms=clock, config=CONFIG, tick_interval=3600)
    await c.start()
    yield c
    await c.stop()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def join(c: GroupCoordinator, member_id: str = "", instance: str | None = None, **kw):
    args = dict(
        group_id="g",
        member_id=member_id,
        group_instance_id=instance,
        client_id="c",
        client_host="/127.0.0.1",
        session_timeout_ms=6000,
        rebalance_timeout_ms=10000,
        protocol_type="consumer",
        protocols=[("range", subscription("t")), ("roundrobin", subscription("t"))],
        require_known_member_id=True,
    )
    args.update(kw)
    return asyncio.ensure_future(c.join_group(**args))


async def advance(c: GroupCoordinator, clock: Clock, ms: int) -> None:
    clock.now += ms
    c.tick()
    await settle()


async def form_group(c: GroupCoordinator, clock: Clock, n: int, instances: list[str] | None = None):
    """n members join (KIP-394 handshake unless static), sync; returns their JoinResults."""
    tasks = []
    for i in range(n):
        inst = instances[i] if instances else None
        if inst is None:
            first = await join(c)
            assert first.error == E.member_id_required
            tasks.append(join(c, first.member_id))
        else:
            tasks.append(join(c, instance=inst))
    await settle()
    # past the initial rebalance delay, which each newcomer extends once
    await advance(c, clock, 200)
    await advance(c, clock, 200)
    results = [await t for t in tasks]
    assert all(r.error == E.none for r in results)
    gen = results[0].generation_id
    leader = results[0].leader
    plan = {r.member_id: f"assignment-{r.member_id}".encode() for r in results}
    syncs = [
        asyncio.ensure_future(
            c.sync_group(
                group_id="g",
                generation_id=gen,
                member_id=r.member_id,
                group_instance_id=instances[i] if instances else None,
                protocol_type="consumer",
                protocol_name=r.protocol_name,
                assignments=plan if r.member_id == leader else {},
            )
        )
        for i, r in enumerate(results)
    ]
    for r, s in zip(results, syncs, strict=True):
        sr = await s
        assert sr.error == E.none
        assert sr.assignment == plan[r.member_id]
    assert c.groups["g"].state == GroupState.STABLE
    return results


async def test_member_id_required_then_join_and_sync(coord: GroupCoordinator, clock: Clock) -> None:
    results = await form_group(coord, clock, 3)
    gen = {r.generation_id for r in results}
    assert gen == {1}
    leaders = {r.leader for r in results}
    assert len(leaders) == 1
    leader = leaders.pop()
    for r in results:
        assert r.protocol_name == "range"
        if r.member_id == leader:
            assert sorted(m[0] for m in r.members) == sorted(x.member_id for x in results)
        else:
            assert r.members == []


async def test_protocol_selection_by_vote(coord: GroupCoordinator, clock: Clock) -> None:
    a = await join(coord, protocols=[("range", b"x"), ("roundrobin", b"x")])
    b = await join(coord, protocols=[("roundrobin", b"x"), ("range", b"x")])
    c = await join(coord, protocols=[("roundrobin", b"x"), ("cooperative-sticky", b"x")])
    ta = join(coord, a.member_id, protocols=[("range", b"x"), ("roundrobin", b"x")])
    tb = join(coord, b.member_id, protocols=[("roundrobin", b"x"), ("range", b"x")])
    tc = join(coord, c.member_id, protocols=[("roundrobin", b"x"), ("cooperative-sticky", b"x")])
    await settle()
    await advance(coord, clock, 200)
    await advance(coord, clock, 200)
    assert {(await t).protocol_name for t in (ta, tb, tc)} == {"roundrobin"}
    # A joiner sharing no protocol with the group is refused.
    bad = await join(coord, protocols=[("cooperative-sticky", b"x")])
    assert bad.error == E.inconsistent_group_protocol


async def test_session_timeout_evicts_and_rebalances(coord: GroupCoordinator, clock: Clock) -> None:
    r1, r2 = await form_group(coord, clock, 2)
    gen = r1.generation_id
    # r1 keeps heartbeating, r2 is silent
    for _ in range(4):
        await advance(coord, clock, 2000)
        hb = coord.heartbeat(
            group_id="g", generation_id=gen, member_id=r1.member_id, group_instance_id=None
        )
        if hb != E.none:
            break
    assert hb == E.rebalance_in_progress
    assert r2.member_id not in coord.groups["g"].members
    t = join(coord, r1.member_id)
    await settle()
    res = await t
    assert res.error == E.none and res.generation_id == gen + 1
    assert [m[0] for m in res.members] == [r1.member_id]
    # The evicted member is fenced out.
    assert (
        coord.heartbeat(
            group_id="g", generation_id=gen, member_id=r2.member_id, group_instance_id=None
        )
        == E.unknown_member_id
    )


async def test_generation_fencing(coord: GroupCoordinator, clock: Clock) -> None:
    (r1,) = await form_group(coord, clock, 1)
    hb = coord.heartbeat(
        group_id="g",
        generation_id=r1.generation_id + 5,
        member_id=r1.member_id,
        group_instance_id=None,
    )
    assert hb == E.illegal_generation
    assert (
        coord.heartbeat(
            group_id="g", generation_id=r1.generation_id, member_id="nobody", group_instance_id=None
        )
        == E.unknown_member_id
    )
    res = await coord.commit_offsets(
        group_id="g",
        member_id=r1.member_id,
        generation_id=r1.generation_id - 1,
        group_instance_id=None,
        offsets={("t", 0): (5, -1, "")},
    )
    assert res == {("t", 0): E.illegal_generation}
    # A new member joining moves the group to PreparingRebalance: heartbeats say so.
    first = await join(coord)
    t2 = join(coord, first.member_id)
    await settle()
    assert coord.groups["g"].state == GroupState.PREPARING_REBALANCE
    assert (
        coord.heartbeat(
            group_id="g",
            generation_id=r1.generation_id,
            member_id=r1.member_id,
            group_instance_id=None,
        )
        == E.rebalance_in_progress
    )
    sr = await coord.sync_group(
        group_id="g",
        generation_id=r1.generation_id,
        member_id=r1.member_id,
        group_instance_id=None,
        protocol_type=None,
        protocol_name=None,
        assignments={},
    )
    assert sr.error == E.rebalance_in_progress
    # Commits of the current generation are still allowed while preparing (eager revoke).
    res = await coord.commit_offsets(
        group_id="g",
        member_id=r1.member_id,
        generation_id=r1.generation_id,
        group_instance_id=None,
        offsets={("t", 0): (5, -1, "")},
    )
    assert res == {("t", 0): E.none}
    t1 = join(coord, r1.member_id)
    await settle()
    a, b = await t1, await t2
    assert a.generation_id == b.generation_id == r1.generation_id + 1


async def test_rebalance_timeout_drops_members_that_do_not_rejoin(
    coord: GroupCoordinator, clock: Clock
) -> None:
    r1, r2 = await form_group(coord, clock, 2)
    t1 = join(coord, r1.member_id)  # r1 rejoins (e.g. subscription change); r2 never does
    await settle()
    assert not t1.done()
    await advance(coord, clock, 5000)
    coord.heartbeat(
        group_id="g", generation_id=r1.generation_id, member_id=r2.member_id, group_instance_id=None
    )
    await advance(coord, clock, 5001)
    res = await t1
    assert res.error == E.none and [m[0] for m in res.members] == [r1.member_id]
    assert set(coord.groups["g"].members) == {r1.member_id}


async def test_static_member_restart_keeps_generation(
    coord: GroupCoordinator, clock: Clock
) -> None:
    r1, r2 = await form_group(coord, clock, 2, instances=["i1", "i2"])
    group = coord.groups["g"]
    gen = group.generation_id
    assignment_before = group.members[r2.member_id].assignment
    # i2 restarts: joins with no member id but its instance id.
    res = await join(coord, instance="i2")
    assert res.error == E.none
    assert res.generation_id == gen and res.member_id != r2.member_id
    assert res.leader == r1.leader and res.members == []
    assert group.state == GroupState.STABLE and group.generation_id == gen
    sr = await coord.sync_group(
        group_id="g",
        generation_id=gen,
        member_id=res.member_id,
        group_instance_id="i2",
        protocol_type="consumer",
        protocol_name=res.protocol_name,
        assignments={},
    )
    assert sr.error == E.none and sr.assignment == assignment_before
    # The old incarnation is fenced.
    assert (
        coord.heartbeat(
            group_id="g", generation_id=gen, member_id=r2.member_id, group_instance_id="i2"
        )
        == E.fenced_instance_id
    )
    # The other member never noticed.
    assert (
        coord.heartbeat(
            group_id="g", generation_id=gen, member_id=r1.member_id, group_instance_id="i1"
        )
        == E.none
    )
    # A static member with a stale member id is fenced on join too.
    stale = await join(coord, r2.member_id, instance="i2")
    assert stale.error == E.fenced_instance_id


async def test_commit_fetch_and_reload(
    coord: GroupCoordinator, clock: Clock, store: MemoryOffsetsStore
) -> None:
    r1, r2 = await form_group(coord, clock, 2)
    res = await coord.commit_offsets(
        group_id="g",
        member_id=r1.member_id,
        generation_id=r1.generation_id,
        group_instance_id=None,
        offsets={("t", 0): (10, 3, "hello ☃"), ("t", 1): (20, -1, None)},
    )
    assert res == {("t", 0): E.none, ("t", 1): E.none}
    err, got = coord.fetch_offsets("g", [("t", 0), ("t", 1), ("t", 2)])
    assert err == E.none
    assert got[("t", 0)].offset == 10 and got[("t", 0)].metadata == "hello ☃"
    assert got[("t", 0)].leader_epoch == 3
    assert got[("t", 1)].offset == 20 and got[("t", 1)].metadata == ""
    assert got[("t", 2)] is None
    big = await coord.commit_offsets(
        group_id="g",
        member_id=r1.member_id,
        generation_id=r1.generation_id,
        group_instance_id=None,
        offsets={("t", 0): (11, -1, "x" * 5000)},
    )
    assert big == {("t", 0): E.offset_metadata_too_large}

    # A second coordinator replays the same records: offsets and members come back.
    c2 = GroupCoordinator(None, store=store, time_ms=clock, config=CONFIG, tick_interval=3600)
    await c2.start()
    try:
        err, got2 = c2.fetch_offsets("g", None)
        assert {tp: o.offset for tp, o in got2.items()} == {("t", 0): 10, ("t", 1): 20}
        g2 = c2.groups["g"]
        assert g2.state == GroupState.STABLE
        assert g2.generation_id == r1.generation_id
        assert set(g2.members) == {r1.member_id, r2.member_id}
        assert g2.members[r2.member_id].assignment == f"assignment-{r2.member_id}".encode()
        # Members that keep heartbeating after the restart keep their generation.
        assert (
            c2.heartbeat(
                group_id="g",
                generation_id=r1.generation_id,
                member_id=r1.member_id,
                group_instance_id=None,
            )
            == E.none
        )
    finally:
        await c2.stop()


async def test_simple_consumer_commit_and_expiry(
    coord: GroupCoordinator, clock: Clock, store: MemoryOffsetsStore
) -> None:
    res = await coord.commit_offsets(
        group_id="standalone",
        member_id="",
        generation_id=-1,
        group_instance_id=None,
        offsets={("t", 0): (7, -1, "m")},
    )
    assert res == {("t", 0): E.none}
    assert coord.list_groups() == [("standalone", "", "Empty")]
    # A group generation on an unknown group is refused.
    res = await coord.commit_offsets(
        group_id="other",
        member_id="m",
        generation_id=3,
        group_instance_id=None,
        offsets={("t", 0): (7, -1, "")},
    )
    assert res == {("t", 0): E.illegal_generation}
    clock.now += 30_000
    assert await coord.expire_offsets() == 0
    clock.now += 31_000
    assert await coord.expire_offsets() == 1
    assert "standalone" not in coord.groups
    p = rec.partition_for("standalone", 50)
    assert store.partitions[p][-1] == (rec.encode_offset_key("standalone", "t", 0), None)


async def test_empty_consumer_group_offsets_expire_from_when_it_emptied(
    coord: GroupCoordinator, clock: Clock
) -> None:
    (r1,) = await form_group(coord, clock, 1)
    await coord.commit_offsets(
        group_id="g",
        member_id=r1.member_id,
        generation_id=r1.generation_id,
        group_instance_id=None,
        offsets={("t", 0): (1, -1, "")},
    )
    clock.now += 120_000  # older than retention, but the group is not empty
    assert await coord.expire_offsets() == 0
    _, results = coord.leave_group(group_id="g", members=[(r1.member_id, None)])
    assert results == [(r1.member_id, None, E.none)]
    await settle()
    assert coord.groups["g"].state == GroupState.EMPTY
    clock.now += 59_000
    assert await coord.expire_offsets() == 0
    clock.now += 2_000
    assert await coord.expire_offsets() == 1
    assert "g" not in coord.groups


async def test_describe_list_delete(coord: GroupCoordinator, clock: Clock) -> None:
    r1, r2 = await form_group(coord, clock, 2)
    d = coord.describe_group("g")
    assert d.state == "Stable" and d.protocol == "range" and d.protocol_type == "consumer"
    assert {m["member_id"] for m in d.members} == {r1.member_id, r2.member_id}
    assert all(m["member_assignment"] for m in d.members)
    assert coord.describe_group("nope").state == "Dead"
    assert coord.list_groups(["stable"]) == [("g", "consumer", "Stable")]
    assert coord.list_groups(["empty"]) == []
    await coord.commit_offsets(
        group_id="g",
        member_id=r1.member_id,
        generation_id=r1.generation_id,
        group_instance_id=None,
        offsets={("t", 0): (1, -1, ""), ("u", 0): (2, -1, "")},
    )
    assert await coord.delete_groups(["g", "nope"]) == {
        "g": E.non_empty_group,
        "nope": E.group_id_not_found,
    }
    err, per = await coord.delete_offsets("g", [("t", 0), ("u", 0)])
    assert err == E.none and per == {("t", 0): E.group_subscribed_to_topic, ("u", 0): E.none}
    assert coord.fetch_offsets("g", [("u", 0)])[1][("u", 0)] is None
    coord.leave_group(group_id="g", members=[(r1.member_id, None), (r2.member_id, None)])
    await settle()
    assert coord.groups["g"].state == GroupState.EMPTY
    assert await coord.delete_groups(["g"]) == {"g": E.none}
    assert coord.list_groups() == []
    assert coord.fetch_offsets("g", [("t", 0)])[1][("t", 0)] is None


async def test_invalid_requests(coord: GroupCoordinator) -> None:
    assert (await join(coord, session_timeout_ms=10)).error == E.invalid_session_timeout
    assert (await join(coord, group_id="")).error == E.invalid_group_id
    assert (await join(coord, "made-up-id")).error == E.unknown_member_id


async def test_store_failure_fails_the_sync(
    coord: GroupCoordinator, clock: Clock, store: MemoryOffsetsStore
) -> None:
    first = await join(coord)
    t = join(coord, first.member_id)
    await settle()
    await advance(coord, clock, 200)
    r = await t
    store.fail_with = E.not_coordinator
    sr = await coord.sync_group(
        group_id="g",
        generation_id=r.generation_id,
        member_id=r.member_id,
        group_instance_id=None,
        protocol_type=None,
        protocol_name=None,
        assignments={r.member_id: b"a"},
    )
    assert sr.error == E.not_coordinator
    assert coord.groups["g"].state == GroupState.PREPARING_REBALANCE


async def test_pending_member_that_never_returns_expires(
    coord: GroupCoordinator, clock: Clock
) -> None:
    (r1,) = await form_group(coord, clock, 1)
    ghost = await join(coord)  # gets an id with MEMBER_ID_REQUIRED, then vanishes
    assert ghost.error == E.member_id_required
    t = join(coord, r1.member_id)  # the leader rejoins: the rebalance waits for the ghost
    await settle()
    await advance(coord, clock, 3000)
    assert not t.done()
    await advance(coord, clock, 3001)  # the ghost's session timeout (6 s), not the 10 s rebalance
    res = await t
    assert res.error == E.none and [m[0] for m in res.members] == [r1.member_id]
    assert ghost.member_id not in coord.groups["g"].pending_members


async def test_members_that_never_sync_are_removed(coord: GroupCoordinator, clock: Clock) -> None:
    first = await join(coord)
    t = join(coord, first.member_id)
    await settle()
    await advance(coord, clock, 200)
    r = await t
    assert coord.groups["g"].state == GroupState.COMPLETING_REBALANCE
    # The leader never sends SyncGroup: after the rebalance timeout it is out.
    await advance(coord, clock, 10_001)
    assert coord.groups["g"].members == {}
    assert coord.groups["g"].state == GroupState.EMPTY
    sr = await coord.sync_group(
        group_id="g",
        generation_id=r.generation_id,
        member_id=r.member_id,
        group_instance_id=None,
        protocol_type=None,
        protocol_name=None,
        assignments={},
    )
    assert sr.error == E.unknown_member_id


async def test_initial_delay_waits_for_late_joiners(coord: GroupCoordinator, clock: Clock) -> None:
    a = await join(coord)
    ta = join(coord, a.member_id)
    await settle()
    await advance(coord, clock, 50)  # within the 100 ms initial delay a second member arrives
    b = await join(coord)
    tb = join(coord, b.member_id)
    await settle()
    await advance(coord, clock, 60)  # the first delay ends; a newcomer extends it once
    assert not ta.done()
    await advance(coord, clock, 110)
    ra, rb = await ta, await tb
    assert ra.generation_id == rb.generation_id == 1  # one generation for both


async def test_deleted_topic_offsets_are_tombstoned(
    coord: GroupCoordinator, clock: Clock, store: MemoryOffsetsStore
) -> None:
    await coord.commit_offsets(
        group_id="s",
        member_id="",
        generation_id=-1,
        group_instance_id=None,
        offsets={("gone", 0): (1, -1, ""), ("kept", 0): (2, -1, "")},
    )
    coord.on_topic_deleted("gone")
    await settle()
    assert set(coord.groups["s"].offsets) == {("kept", 0)}
    c2 = GroupCoordinator(None, store=store, time_ms=clock, config=CONFIG, tick_interval=3600)
    await c2.start()
    try:
        assert set(c2.groups["s"].offsets) == {("kept", 0)}
    finally:
        await c2.stop()


async def test_leadership_moves_load_and_unload_groups(
    clock: Clock, store: MemoryOffsetsStore
) -> None:
    p = rec.partition_for("g", 50)
    store.partitions[p] = [
        (
            rec.encode_offset_key("g", "t", 0),
            rec.encode_offset_value(rec.OffsetValue(5, -1, "x", 1)),
        )
    ]
    store.remote.add(p)
    c = GroupCoordinator(None, store=store, time_ms=clock, config=CONFIG, tick_interval=3600)
    await c.start()
    try:
        assert (await join(c)).error == E.not_coordinator
        assert c.fetch_offsets("g", None)[0] == E.not_coordinator
        store.remote.discard(p)  # this broker became the leader; even without the event ...
        clock.now += 1000
        c.tick()  # ... the periodic reconciliation loads the partition
        await settle()
        err, got = c.fetch_offsets("g", None)
        assert err == E.none and got[("t", 0)].offset == 5
        first = await join(c)
        parked = join(c, first.member_id)
        await settle()
        store.remote.add(p)  # and lost it again: parked requests learn it at once
        c.on_offsets_partition_changed(p)
        assert (await parked).error == E.not_coordinator
        assert "g" not in c.groups
    finally:
        await c.stop()


async def test_first_member_sets_the_protocol_type_of_an_emptied_group(
    coord: GroupCoordinator, clock: Clock
) -> None:
    (r1,) = await form_group(coord, clock, 1)
    coord.leave_group(group_id="g", members=[(r1.member_id, None)])
    await settle()
    assert coord.groups["g"].state == GroupState.EMPTY
    t = join(
        coord,
        protocol_type="connect",
        protocols=[("sessioned", b"")],
        require_known_member_id=False,
    )
    await settle()
    await advance(coord, clock, 200)
    r = await t
    assert r.error == E.none and r.protocol_type == "connect" and r.protocol_name == "sessioned"
