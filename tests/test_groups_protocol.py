"""Every version of the group APIs on the wire, against a live broker, with Kafka's answers.

Requests are kio entities sent over a plain socket (broker.protocol's framing); the client
libraries are exercised in test_groups_e2e.py.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.errors import ErrorCode as E
from kio.schema.index import api_key_map

from broker.coordinator import records as rec
from broker.coordinator.wire import build
from broker.protocol import decode_response, encode_request, request_schema

API_KEYS = {name: key for key, name in api_key_map.items()}

SUB = struct.pack(">hih", 0, 1, 5) + b"topic" + struct.pack(">i", -1)


@pytest.fixture(scope="module")
def broker_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from support import BrokerProcess, free_port

    d = tmp_path_factory.mktemp("groups-proto") / "data"
    d.mkdir()
    b = BrokerProcess(
        d, free_port(), {"group.initial.rebalance.delay.ms": "0", "num.partitions": "2"}
    ).start()
    from confluent_kafka.admin import AdminClient, NewTopic

    a = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in a.create_topics([NewTopic("topic", 2, 1)]).values():
        f.result(10)
    yield b
    b.stop()


class Wire:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.cid = 0

    def call(self, api: str, version: int, **fields: Any) -> Any:
        # broker.protocol's lookup: kio's schemas plus the versions kio dropped
        cls = request_schema(API_KEYS[api], version)
        assert cls is not None, f"no schema for {api} v{version}"
        self.cid += 1
        self.sock.sendall(encode_request(build(cls, **fields), self.cid, "proto-test"))
        size = struct.unpack(">i", self._read(4))[0]
        frame = self._read(size)
        cid, resp = decode_response(frame, cls.__api_key__, version)
        assert cid == self.cid
        return resp

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            assert chunk, "connection closed"
            buf += chunk
        return buf

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def wire(broker_proc: Any) -> Iterator[Wire]:
    w = Wire(broker_proc.port)
    yield w
    w.close()


def join(w: Wire, v: int, group: str, member_id: str = "", **kw: Any) -> Any:
    fields = dict(
        group_id=group,
        session_timeout=6000,
        rebalance_timeout=10000,
        member_id=member_id,
        group_instance_id=None,
        protocol_type="consumer",
        protocols=[{"name": "range", "metadata": SUB}, {"name": "roundrobin", "metadata": SUB}],
        reason=None,
    )
    fields.update(kw)
    return w.call("join_group", v, **fields)


@pytest.mark.parametrize("v", range(8))
def test_join_sync_heartbeat_leave(wire: Wire, broker_proc: Any, v: int) -> None:
    group = f"proto-join-v{v}"
    r = join(wire, v, group)
    if v >= 4:  # KIP-394
        assert r.error_code == E.member_id_required and r.member_id
        r = join(wire, v, group, r.member_id)
    assert r.error_code == E.none
    member = r.member_id
    assert member.startswith("proto-test-")
    assert r.generation_id == 1 and r.leader == member and r.protocol_name == "range"
    assert [(m.member_id, bytes(m.metadata)) for m in r.members] == [(member, SUB)]
    sv = min(v, 5)
    s = wire.call(
        "sync_group",
        sv,
        group_id=group,
        generation_id=1,
        member_id=member,
        group_instance_id=None,
        protocol_type="consumer",
        protocol_name="range",
        assignments=[{"member_id": member, "assignment": b"my-assignment"}],
    )
    assert s.error_code == E.none and bytes(s.assignment) == b"my-assignment"
    hv = min(v, 4)

    def hb(gen: int, mid: str = member) -> E:
        return wire.call(
            "heartbeat",
            hv,
            group_id=group,
            generation_id=gen,
            member_id=mid,
            group_instance_id=None,
        ).error_code

    assert hb(1) == E.none
    assert hb(2) == E.illegal_generation
    assert hb(1, "stranger") == E.unknown_member_id
    lv = min(v, 4)
    if lv >= 3:
        resp = wire.call(
            "leave_group",
            lv,
            group_id=group,
            members=[
                {"member_id": member, "group_instance_id": None, "reason": None},
                {"member_id": "stranger", "group_instance_id": None, "reason": None},
            ],
        )
        assert resp.error_code == E.none
        assert [(m.member_id, m.error_code) for m in resp.members] == [
            (member, E.none),
            ("stranger", E.unknown_member_id),
        ]
    else:
        resp = wire.call("leave_group", lv, group_id=group, member_id=member)
        assert resp.error_code == E.none
    assert hb(1) == E.unknown_member_id
    d = wire.call("describe_groups", 0, groups=[group])
    assert d.groups[0].group_state == "Empty"


def test_join_errors(wire: Wire) -> None:
    assert join(wire, 5, "proto-err", session_timeout=100).error_code == E.invalid_session_timeout
    assert join(wire, 5, "").error_code == E.invalid_group_id
    assert join(wire, 5, "proto-err", "made-up").error_code == E.unknown_member_id
    r = join(wire, 3, "proto-err")  # v3: no KIP-394 round trip
    assert r.error_code == E.none
    other = join(wire, 3, "proto-err", protocols=[{"name": "other", "metadata": b""}])
    assert other.error_code == E.inconsistent_group_protocol
    s = wire.call(
        "sync_group",
        5,
        group_id="proto-err",
        generation_id=r.generation_id,
        member_id=r.member_id,
        group_instance_id=None,
        protocol_type="consumer",
        protocol_name="roundrobin",
        assignments=[],
    )
    assert s.error_code == E.inconsistent_group_protocol


def test_static_member_fencing_on_the_wire(wire: Wire) -> None:
    r = join(wire, 5, "proto-static", group_instance_id="inst")
    assert r.error_code == E.none  # static members skip MEMBER_ID_REQUIRED
    s = wire.call(
        "sync_group",
        5,
        group_id="proto-static",
        generation_id=1,
        member_id=r.member_id,
        group_instance_id="inst",
        protocol_type="consumer",
        protocol_name="range",
        assignments=[{"member_id": r.member_id, "assignment": b"a"}],
    )
    assert s.error_code == E.none
    r2 = join(wire, 5, "proto-static", group_instance_id="inst")  # the restarted process
    assert r2.error_code == E.none and r2.generation_id == 1 and r2.member_id != r.member_id
    assert r2.members == ()  # no rebalance: the leader is not asked to assign again
    hb = wire.call(
        "heartbeat",
        4,
        group_id="proto-static",
        generation_id=1,
        member_id=r.member_id,
        group_instance_id="inst",
    )
    assert hb.error_code == E.fenced_instance_id
    s2 = wire.call(
        "sync_group",
        5,
        group_id="proto-static",
        generation_id=1,
        member_id=r2.member_id,
        group_instance_id="inst",
        protocol_type="consumer",
        protocol_name="range",
        assignments=[],
    )
    assert s2.error_code == E.none and bytes(s2.assignment) == b"a"
    # KIP-345 admin removal: by instance id alone.
    resp = wire.call(
        "leave_group",
        4,
        group_id="proto-static",
        members=[{"member_id": "", "group_instance_id": "inst", "reason": None}],
    )
    assert [(m.group_instance_id, m.error_code) for m in resp.members] == [("inst", E.none)]


def test_rebalance_with_two_members(wire: Wire, broker_proc: Any) -> None:
    first = join(wire, 7, "proto-two")
    r1 = join(wire, 7, "proto-two", first.member_id)
    assert r1.generation_id == 1
    wire.call(
        "sync_group",
        5,
        group_id="proto-two",
        generation_id=1,
        member_id=r1.member_id,
        group_instance_id=None,
        protocol_type="consumer",
        protocol_name="range",
        assignments=[{"member_id": r1.member_id, "assignment": b"all"}],
    )
    # A second member joins on another connection; it waits for the first to rejoin.
    other = Wire(broker_proc.port)
    result: dict[str, Any] = {}
    try:
        pending = join(other, 7, "proto-two")
        t = threading.Thread(
            target=lambda: result.setdefault("r", join(other, 7, "proto-two", pending.member_id))
        )
        t.start()
        hb = wire.call(
            "heartbeat",
            4,
            group_id="proto-two",
            generation_id=1,
            member_id=r1.member_id,
            group_instance_id=None,
        )
        for _ in range(50):
            if hb.error_code == E.rebalance_in_progress:
                break
            hb = wire.call(
                "heartbeat",
                4,
                group_id="proto-two",
                generation_id=1,
                member_id=r1.member_id,
                group_instance_id=None,
            )
        assert hb.error_code == E.rebalance_in_progress
        r1b = join(wire, 7, "proto-two", r1.member_id)
        t.join(15)
        r2 = result["r"]
        assert r1b.generation_id == r2.generation_id == 2
        assert r1b.leader == r2.leader == r1.member_id  # the leader stays
        assert sorted(m.member_id for m in r1b.members) == sorted([r1.member_id, r2.member_id])
        assert r2.members == ()
        # The old generation's commit is fenced.
        c = wire.call(
            "offset_commit",
            8,
            group_id="proto-two",
            generation_id_or_member_epoch=1,
            member_id=r1.member_id,
            group_instance_id=None,
            topics=[
                {
                    "name": "topic",
                    "partitions": [
                        {
                            "partition_index": 0,
                            "committed_offset": 1,
                            "committed_leader_epoch": -1,
                            "committed_metadata": "",
                        }
                    ],
                }
            ],
        )
        assert (
            c.topics[0].partitions[0].error_code == E.rebalance_in_progress
        )  # CompletingRebalance
    finally:
        other.close()


@pytest.mark.parametrize("cv", range(9))
def test_offset_commit_and_fetch_versions(wire: Wire, cv: int) -> None:
    group = f"proto-offsets-{cv}"
    fields: dict[str, Any] = dict(
        group_id=group,
        generation_id_or_member_epoch=-1,
        member_id="",
        group_instance_id=None,
        retention_time=-1,
        topics=[
            {
                "name": "topic",
                "partitions": [
                    {
                        "partition_index": 0,
                        "committed_offset": 42,
                        "committed_leader_epoch": 3,
                        "committed_metadata": f"meta-{cv} ☃",
                    },
                    {
                        "partition_index": 7,
                        "committed_offset": 1,
                        "committed_leader_epoch": -1,
                        "committed_metadata": None,
                    },
                ],
            },
            {
                "name": "no-such-topic",
                "partitions": [
                    {
                        "partition_index": 0,
                        "committed_offset": 1,
                        "committed_leader_epoch": -1,
                        "committed_metadata": None,
                    }
                ],
            },
        ],
    )
    c = wire.call("offset_commit", cv, **fields)
    errs = {(t.name, p.partition_index): p.error_code for t in c.topics for p in t.partitions}
    assert errs == {
        ("topic", 0): E.none,
        ("topic", 7): E.unknown_topic_or_partition,
        ("no-such-topic", 0): E.unknown_topic_or_partition,
    }
    for fv in range(8):
        f = wire.call(
            "offset_fetch",
            fv,
            group_id=group,
            require_stable=False,
            topics=[{"name": "topic", "partition_indexes": [0, 1]}],
        )
        parts = {p.partition_index: p for p in f.topics[0].partitions}
        assert parts[0].committed_offset == 42 and parts[0].metadata == f"meta-{cv} ☃"
        assert parts[1].committed_offset == -1 and parts[1].metadata == ""
        if fv >= 5:
            assert parts[0].committed_leader_epoch == (3 if cv >= 6 else -1)
        if fv >= 2:
            assert f.error_code == E.none
            everything = wire.call(
                "offset_fetch", fv, group_id=group, require_stable=False, topics=None
            )
            assert [
                (t.name, [p.partition_index for p in t.partitions]) for t in everything.topics
            ] == [("topic", [0])]


def test_offset_fetch_v8_several_groups(wire: Wire) -> None:
    for g, off in (("proto-multi-a", 5), ("proto-multi-b", 9)):
        wire.call(
            "offset_commit",
            8,
            group_id=g,
            generation_id_or_member_epoch=-1,
            member_id="",
            group_instance_id=None,
            topics=[
                {
                    "name": "topic",
                    "partitions": [
                        {
                            "partition_index": 1,
                            "committed_offset": off,
                            "committed_leader_epoch": -1,
                            "committed_metadata": "",
                        }
                    ],
                }
            ],
        )
    f = wire.call(
        "offset_fetch",
        8,
        require_stable=False,
        groups=[
            {"group_id": "proto-multi-a", "topics": [{"name": "topic", "partition_indexes": [1]}]},
            {"group_id": "proto-multi-b", "topics": None},
            {"group_id": "", "topics": None},
        ],
    )
    got = {
        g.group_id: (
            g.error_code,
            [(p.partition_index, p.committed_offset) for t in g.topics for p in t.partitions],
        )
        for g in f.groups
    }
    assert got == {
        "proto-multi-a": (E.none, [(1, 5)]),
        "proto-multi-b": (E.none, [(1, 9)]),
        "": (E.invalid_group_id, []),
    }


@pytest.mark.parametrize("v", range(5))
def test_find_coordinator(wire: Wire, broker_proc: Any, v: int) -> None:
    if v >= 4:
        r = wire.call("find_coordinator", v, key_type=0, coordinator_keys=["a", "b", "c"])
        assert [(c.key, c.error_code, c.node_id, c.port) for c in r.coordinators] == [
            (k, E.none, 0, broker_proc.port) for k in "abc"
        ]
    else:
        r = wire.call("find_coordinator", v, key="some-group", key_type=0)
        assert (r.error_code, r.node_id, r.host, r.port) == (
            E.none,
            0,
            "127.0.0.1",
            broker_proc.port,
        )


def test_list_describe_delete_and_offset_delete(wire: Wire) -> None:
    r = join(wire, 3, "proto-admin")
    wire.call(
        "sync_group",
        3,
        group_id="proto-admin",
        generation_id=r.generation_id,
        member_id=r.member_id,
        group_instance_id=None,
        assignments=[{"member_id": r.member_id, "assignment": b"x"}],
    )
    wire.call(
        "offset_commit",
        8,
        group_id="proto-admin",
        generation_id_or_member_epoch=r.generation_id,
        member_id=r.member_id,
        group_instance_id=None,
        topics=[
            {
                "name": "topic",
                "partitions": [
                    {
                        "partition_index": p,
                        "committed_offset": 3,
                        "committed_leader_epoch": -1,
                        "committed_metadata": "",
                    }
                    for p in (0, 1)
                ],
            }
        ],
    )
    for v in range(5):
        lst = wire.call("list_groups", v, states_filter=["Stable"] if v >= 4 else [])
        assert lst.error_code == E.none
        listed = {g.group_id: g for g in lst.groups}
        assert listed["proto-admin"].protocol_type == "consumer"
        if v >= 4:
            assert listed["proto-admin"].group_state == "Stable"
            assert all(g.group_state == "Stable" for g in lst.groups)
    for v in range(6):
        d = wire.call(
            "describe_groups",
            v,
            groups=["proto-admin", "nobody"],
            include_authorized_operations=True,
        )
        g, nobody = d.groups
        assert (g.error_code, g.group_state, g.protocol_type, g.protocol_data) == (
            E.none,
            "Stable",
            "consumer",
            "range",
        )
        (m,) = g.members
        assert m.member_id == r.member_id and m.client_id == "proto-test"
        assert m.client_host == "/127.0.0.1"
        assert bytes(m.member_metadata) == SUB and bytes(m.member_assignment) == b"x"
        assert (nobody.error_code, nobody.group_state) == (E.none, "Dead")
    # The group subscribes to "topic": its offsets cannot be deleted while it is active.
    od = wire.call(
        "offset_delete",
        0,
        group_id="proto-admin",
        topics=[{"name": "topic", "partitions": [{"partition_index": 0}]}],
    )
    assert od.error_code == E.none
    assert od.topics[0].partitions[0].error_code == E.group_subscribed_to_topic
    dg = wire.call("delete_groups", 2, groups_names=["proto-admin", "nobody"])
    assert [(x.group_id, x.error_code) for x in dg.results] == [
        ("proto-admin", E.non_empty_group),
        ("nobody", E.group_id_not_found),
    ]
    wire.call("leave_group", 1, group_id="proto-admin", member_id=r.member_id)
    od = wire.call(
        "offset_delete",
        0,
        group_id="proto-admin",
        topics=[{"name": "topic", "partitions": [{"partition_index": 0}]}],
    )
    assert od.topics[0].partitions[0].error_code == E.none
    f = wire.call("offset_fetch", 7, group_id="proto-admin", topics=None, require_stable=False)
    assert [p.partition_index for t in f.topics for p in t.partitions] == [1]
    for v in range(3):
        dg = wire.call("delete_groups", v, groups_names=["proto-admin"])
        expected = E.none if v == 0 else E.group_id_not_found
        assert dg.results[0].error_code == expected
    assert (
        wire.call("describe_groups", 5, groups=["proto-admin"], include_authorized_operations=False)
        .groups[0]
        .group_state
        == "Dead"
    )


def test_consumer_offsets_topic_holds_kafka_records(wire: Wire, broker_proc: Any) -> None:
    """The internal topic is readable by any consumer and holds Kafka's record formats."""
    from confluent_kafka import Consumer, TopicPartition

    group = "proto-records"
    wire.call(
        "offset_commit",
        8,
        group_id=group,
        generation_id_or_member_epoch=-1,
        member_id="",
        group_instance_id=None,
        topics=[
            {
                "name": "topic",
                "partitions": [
                    {
                        "partition_index": 1,
                        "committed_offset": 77,
                        "committed_leader_epoch": 2,
                        "committed_metadata": "kept",
                    }
                ],
            }
        ],
    )
    p = rec.partition_for(group, 50)
    c = Consumer(
        {
            "bootstrap.servers": broker_proc.bootstrap,
            "group.id": "reader",
            "enable.auto.commit": False,
        }
    )
    c.assign([TopicPartition("__consumer_offsets", p, 0)])
    found = None
    try:
        for _ in range(50):
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            if rec.decode_key(m.key()) == rec.OffsetKey(group, "topic", 1):
                found = rec.decode_offset_value(m.value())
                break
    finally:
        c.close()
    assert found is not None
    assert (found.offset, found.leader_epoch, found.metadata) == (77, 2, "kept")
    assert m.value()[:2] == b"\x00\x03" and m.key()[:2] == b"\x00\x01"


def test_oversized_input_is_refused_not_fatal(wire: Wire, broker_proc: Any) -> None:
    huge = "g" * 40000  # only flexible versions can carry a string this long
    assert join(wire, 7, huge).error_code == E.invalid_group_id
    c = wire.call(
        "offset_commit",
        8,
        group_id=huge,
        generation_id_or_member_epoch=-1,
        member_id="",
        group_instance_id=None,
        topics=[
            {
                "name": "topic",
                "partitions": [
                    {
                        "partition_index": 0,
                        "committed_offset": 1,
                        "committed_leader_epoch": -1,
                        "committed_metadata": "",
                    }
                ],
            }
        ],
    )
    assert c.topics[0].partitions[0].error_code == E.invalid_group_id
    c = wire.call(
        "offset_commit",
        8,
        group_id="proto-big-meta",
        generation_id_or_member_epoch=-1,
        member_id="",
        group_instance_id=None,
        topics=[
            {
                "name": "topic",
                "partitions": [
                    {
                        "partition_index": 0,
                        "committed_offset": 1,
                        "committed_leader_epoch": -1,
                        "committed_metadata": "m" * 5000,
                    }
                ],
            }
        ],
    )
    assert c.topics[0].partitions[0].error_code == E.offset_metadata_too_large
    r = join(wire, 7, "proto-big", group_instance_id="i" * 40000)
    assert r.error_code == E.invalid_request
    # The broker is fine afterwards.
    assert join(wire, 3, "proto-after-big").error_code == E.none


def test_offsets_of_a_deleted_topic_are_dropped(wire: Wire, broker_proc: Any) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    a = AdminClient({"bootstrap.servers": broker_proc.bootstrap})
    for f in a.create_topics([NewTopic("doomed", 1, 1)]).values():
        f.result(10)

    def commit(topic: str) -> E:
        c = wire.call(
            "offset_commit",
            8,
            group_id="proto-doomed",
            generation_id_or_member_epoch=-1,
            member_id="",
            group_instance_id=None,
            topics=[
                {
                    "name": topic,
                    "partitions": [
                        {
                            "partition_index": 0,
                            "committed_offset": 9,
                            "committed_leader_epoch": -1,
                            "committed_metadata": "",
                        }
                    ],
                }
            ],
        )
        return c.topics[0].partitions[0].error_code

    assert commit("doomed") == E.none and commit("topic") == E.none
    for f in a.delete_topics(["doomed"]).values():
        f.result(10)
    for f in a.create_topics([NewTopic("doomed", 1, 1)]).values():
        f.result(10)
    f = wire.call("offset_fetch", 7, group_id="proto-doomed", topics=None, require_stable=False)
    assert [
        (t.name, [(p.partition_index, p.committed_offset) for p in t.partitions]) for t in f.topics
    ] == [("topic", [(0, 9)])]
