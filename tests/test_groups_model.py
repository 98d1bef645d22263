"""Random interleavings of JoinGroup/SyncGroup/Heartbeat/LeaveGroup/commit and time (hypothesis)
against the GroupCoordinator, checking the invariants of Kafka's group state machine after
every step, and that no request stays parked once the coordinator stops."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode as E

from broker.coordinator import GroupCoordinator, GroupState
from broker.coordinator.store import MemoryOffsetsStore

SUB = struct.pack(">hih", 0, 1, 1) + b"t" + struct.pack(">i", -1)
SLOTS = 4

ops = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.integers(0, SLOTS - 1)),
        st.tuples(st.just("static"), st.integers(0, SLOTS - 1)),
        st.tuples(st.just("sync"), st.integers(0, SLOTS - 1)),
        st.tuples(st.just("hb"), st.integers(0, SLOTS - 1)),
        st.tuples(st.just("leave"), st.integers(0, SLOTS - 1)),
        st.tuples(st.just("commit"), st.integers(0, SLOTS - 1)),
        st.tuples(st.just("advance"), st.sampled_from([0, 50, 150, 2000, 6500, 11000])),
    ),
    max_size=40,
)


class Slot:
    def __init__(self, index: int) -> None:
        self.index = index
        self.member_id = ""
        self.instance: str | None = None
        self.generation = -1
        self.leader = False
        self.members: list[str] = []
        self.join: asyncio.Task | None = None
        self.sync: asyncio.Task | None = None


def check_invariants(c: GroupCoordinator, last_generation: list[int]) -> None:
    g = c.groups.get("g")
    if g is None:
        return
    assert g.generation_id >= last_generation[0]
    last_generation[0] = g.generation_id
    if g.state == GroupState.EMPTY:
        assert not g.members
    if g.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
        assert g.members and g.leader_id in g.members and g.protocol_name == "range"
    if g.state == GroupState.STABLE:
        assert not any(m.awaiting_join for m in g.members.values())
    for iid, mid in g.static_members.items():
        assert mid in g.members and g.members[mid].group_instance_id == iid
    for mid, m in g.members.items():
        assert m.member_id == mid
        if m.group_instance_id is not None:
            assert g.static_members.get(m.group_instance_id) == mid
    assert not (set(g.pending_members) & set(g.members))


async def scenario(steps: list[tuple[str, int]]) -> None:
    clock = [1_000_000]
    c = GroupCoordinator(
        None,
        store=MemoryOffsetsStore(),
        time_ms=lambda: clock[0],
        config={"group.initial.rebalance.delay.ms": 100},
        tick_interval=3600,
    )
    await c.start()
    slots = [Slot(i) for i in range(SLOTS)]
    tasks: list[asyncio.Task] = []
    last_generation = [0]

    def harvest() -> None:
        for s in slots:
            if s.join is not None and s.join.done():
                r = s.join.result()
                s.join = None
                if r.error in (E.none, E.member_id_required):
                    s.member_id = r.member_id
                if r.error == E.none:
                    s.generation = r.generation_id
                    s.leader = r.leader == r.member_id
                    s.members = [m[0] for m in r.members]
                elif r.error in (E.unknown_member_id, E.fenced_instance_id):
                    s.member_id, s.generation = "", -1
            if s.sync is not None and s.sync.done():
                s.sync.result()
                s.sync = None

    try:
        for op, arg in steps:
            if op == "advance":
                clock[0] += arg
                c.tick()
            else:
                s = slots[arg]
                if op in ("join", "static") and s.join is None:
                    if op == "static":
                        s.instance = f"inst-{arg}"
                    s.join = asyncio.ensure_future(
                        c.join_group(
                            group_id="g",
                            member_id=s.member_id,
                            group_instance_id=s.instance,
                            client_id=f"c{arg}",
                            client_host="/127.0.0.1",
                            session_timeout_ms=6000,
                            rebalance_timeout_ms=10000,
                            protocol_type="consumer",
                            protocols=[("range", SUB)],
                            require_known_member_id=True,
                        )
                    )
                    tasks.append(s.join)
                elif op == "sync" and s.sync is None and s.generation >= 0:
                    plan = {m: b"a-" + m.encode() for m in s.members} if s.leader else {}
                    s.sync = asyncio.ensure_future(
                        c.sync_group(
                            group_id="g",
                            generation_id=s.generation,
                            member_id=s.member_id,
                            group_instance_id=s.instance,
                            protocol_type="consumer",
                            protocol_name="range",
                            assignments=plan,
                        )
                    )
                    tasks.append(s.sync)
                elif op == "hb":
                    c.heartbeat(
                        group_id="g",
                        generation_id=s.generation,
                        member_id=s.member_id,
                        group_instance_id=s.instance,
                    )
                elif op == "leave" and s.member_id:
                    c.leave_group(group_id="g", members=[(s.member_id, s.instance)])
                elif op == "commit":
                    res = await c.commit_offsets(
                        group_id="g",
                        member_id=s.member_id,
                        generation_id=s.generation,
                        group_instance_id=s.instance,
                        offsets={("t", 0): (arg, -1, "")},
                    )
                    assert set(res) == {("t", 0)}
            for _ in range(4):
                await asyncio.sleep(0)
            harvest()
            check_invariants(c, last_generation)
            g = c.groups.get("g")
            if g is not None and g.state == GroupState.STABLE:
                # Every member of a Stable group holds what the leader assigned to it.
                for mid, m in g.members.items():
                    assert m.assignment in (b"a-" + mid.encode(), b"")
    finally:
        await c.stop()
    for _ in range(4):
        await asyncio.sleep(0)
    # No JoinGroup/SyncGroup stays parked once the coordinator stops.
    assert all(t.done() for t in tasks)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_random_interleavings_keep_the_state_machine_consistent(steps: Any) -> None:
    asyncio.run(scenario(steps))
