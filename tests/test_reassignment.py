"""Partition reassignment and leader elections: the decisions (broker/reassignment.py) and
the three APIs and the CLI on a single embedded-metadata broker. The cluster behaviour is in
tests/cluster/test_reassignment.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka import ElectionType
from confluent_kafka import TopicPartition as CTP
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import TopicPartition as KTP
from kafka.admin import KafkaAdminClient
from support import free_port

from broker import reassignment as ra
from broker.tools.partitions import load_plan, partitions

# -- decisions ------------------------------------------------------------------------------


def test_plan_puts_the_target_first() -> None:
    assert ra.plan([1, 2, 3], [4, 2, 3]) == ([4, 2, 3, 1], [4], [1])
    assert ra.plan([1, 2, 3], [3, 2, 1]) == ([3, 2, 1], [], [])
    assert ra.plan([1, 2], [3, 4]) == ([3, 4, 1, 2], [3, 4], [1, 2])


def test_ongoing_original_keeps_the_saved_order() -> None:
    o = ra.Ongoing("t", 0, [4, 3, 1, 2], [4], [2], saved_original=[2, 3, 1])
    assert o.target == [4, 3, 1]
    assert o.original == [2, 3, 1]
    # a saved order that does not match the replica set is ignored (Kafka's RS - adding)
    assert ra.Ongoing("t", 0, [4, 3, 1, 2], [4], [2], [9, 3, 1]).original == [3, 1, 2]


@pytest.mark.parametrize(
    ("target", "message"),
    [([], "empty"), ([1, 1], "Duplicate"), ([1, 7], "not alive: [7]")],
)
def test_check_target_refuses(target: list[int], message: str) -> None:
    with pytest.raises(ra.ReassignmentError) as exc:
        ra.check_target(target, {1, 2, 3})
    assert exc.value.code == ra.INVALID_REPLICA_ASSIGNMENT
    assert message in str(exc.value)


def test_completion_waits_for_the_target_in_the_isr() -> None:
    o = ra.Ongoing("t", 0, [4, 2, 3, 1], [4], [1])
    live = {1, 2, 3, 4}
    assert ra.completion(o, 1, 5, [1, 2, 3], live) is None  # 4 not caught up
    # the leader is removed: the first live target replica in the ISR leads, epoch + 1
    assert ra.completion(o, 1, 5, [1, 2, 3, 4], live) == (4, 6, [2, 3, 4])
    assert ra.completion(o, 1, 5, [1, 2, 3, 4], {1, 2, 3}) == (2, 6, [2, 3, 4])
    # the leader stays when it is a target replica
    assert ra.completion(o, 2, 5, [1, 2, 3, 4], live) == (2, 6, [2, 3, 4])


def test_elections() -> None:
    live = {1, 2, 3}
    assert ra.election(ra.PREFERRED, [1, 2, 3], 2, [1, 2, 3], live) == (1, [1, 2, 3])
    for args, code in [
        ((ra.PREFERRED, [1, 2, 3], 1, [1, 2, 3], live), ra.ELECTION_NOT_NEEDED),
        ((ra.PREFERRED, [1, 2, 3], 2, [2, 3], live), ra.PREFERRED_LEADER_NOT_AVAILABLE),
        ((ra.PREFERRED, [1, 2, 3], 2, [1, 2, 3], {2, 3}), ra.PREFERRED_LEADER_NOT_AVAILABLE),
        ((ra.UNCLEAN, [1, 2, 3], 2, [2], live), ra.ELECTION_NOT_NEEDED),
        ((ra.UNCLEAN, [1, 2, 3], -1, [1], set()), ra.ELIGIBLE_LEADERS_NOT_AVAILABLE),
        ((7, [1], 1, [1], live), ra.INVALID_REQUEST),
    ]:
        with pytest.raises(ra.ReassignmentError) as exc:
            ra.election(*args)
        assert exc.value.code == code, args
    # unclean: an ISR member first, else any live replica with an ISR of itself
    assert ra.election(ra.UNCLEAN, [1, 2, 3], -1, [1, 3], {2, 3}) == (3, [3])
    assert ra.election(ra.UNCLEAN, [1, 2, 3], -1, [1], {2, 3}) == (2, [2])


def test_load_plan(tmp_path: Path) -> None:
    f = tmp_path / "plan.json"
    f.write_text(
        json.dumps(
            {
                "version": 1,
                "partitions": [
                    {"topic": "a", "partition": 0, "replicas": [1, 2], "log_dirs": ["any", "any"]},
                    {"topic": "b", "partition": 3, "replicas": [3]},
                ],
            }
        )
    )
    assert load_plan(str(f)) == {("a", 0): [1, 2], ("b", 3): [3]}
    for text, message in [
        ("{", "is not JSON"),
        ('{"partitions": [{"topic": "a"}]}', "needs topic, partition and replicas"),
        ('{"partitions": []}', "no partitions"),
        (
            '{"partitions": [{"topic":"a","partition":0,"replicas":[1],"log_dirs":["/d"]}]}',
            "log_dirs",
        ),
    ]:
        f.write_text(text)
        result = CliRunner().invoke(partitions, ["reassign", "--reassignment-json-file", str(f)])
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output


# -- one embedded broker ----------------------------------------------------------------------


def test_apis_on_a_single_node(broker) -> None:  # noqa: ANN001
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("solo", 2, 1)])["solo"].result(15)
    # preferred election: the only replica already leads
    res = admin.elect_leaders(ElectionType.PREFERRED, [CTP("solo", 0), CTP("nope", 0)]).result(15)
    errs = {(tp.topic, tp.partition): e for tp, e in res.items()}
    assert "ELECTION_NOT_NEEDED" in str(errs[("solo", 0)])
    assert "UNKNOWN_TOPIC_OR_PART" in str(errs[("nope", 0)])
    kadmin = KafkaAdminClient(bootstrap_servers=[broker.bootstrap])
    try:
        node = admin.list_topics(timeout=10).topics["solo"].partitions[0].replicas[0]
        errs = kadmin.alter_partition_reassignments(
            {KTP("solo", 0): [node], KTP("solo", 1): [node, 99], KTP("solo", 5): [node]}
        )
        names = {tp.partition: (e.message if e else None) for tp, e in errs.items()}
        assert names == {
            0: None,
            1: "INVALID_REPLICATION_ASSIGNMENT",
            5: "UNKNOWN_TOPIC_OR_PARTITION",
        }
        assert kadmin.list_partition_reassignments() == {}
        errs = kadmin.alter_partition_reassignments({KTP("solo", 0): None})
        assert errs[KTP("solo", 0)].message == "NO_REASSIGNMENT_IN_PROGRESS"
    finally:
        kadmin.close()
    result = CliRunner().invoke(partitions, ["list-reassignments", "-b", broker.bootstrap])
    assert result.exit_code == 0 and "No partition reassignments in progress." in result.output
    result = CliRunner().invoke(
        partitions, ["elect-leaders", "--topic", "solo", "--partition", "1", "-b", broker.bootstrap]
    )
    assert result.exit_code == 0, result.output
    assert "Valid replica already elected for partition solo-1" in result.output


def test_cli_errors_are_one_line() -> None:
    port = free_port()
    cases = [
        (["reassign", "--topic", "t", "--partition", "0"], 2, "give --topic, --partition"),
        (["reassign", "--topic", "t", "--partition", "0", "--replicas", "a,b"], 2, "--replicas"),
        (["elect-leaders"], 2, "give --topic or --all-topic-partitions"),
        (["elect-leaders", "--topic", "t", "--type", "dirty"], 2, "dirty"),
        (
            ["elect-leaders", "--topic", "t", "-b", f"127.0.0.1:{port}", "--timeout", "1"],
            1,
            "cannot reach a broker",
        ),
        (
            ["list-reassignments", "-b", f"127.0.0.1:{port}", "--timeout", "1"],
            1,
            "Error:",
        ),
    ]
    for args, code, text in cases:
        result = CliRunner().invoke(partitions, args)
        assert result.exit_code == code, (args, result.output)
        assert text in result.output, (args, result.output)
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize("version", [0, 1, 2])
def test_elect_leaders_every_version(broker, version: int) -> None:  # noqa: ANN001
    from test_broker_network import RawClient, request

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(f"ev{version}", 1, 1)])[f"ev{version}"].result(15)
    c = RawClient(broker.bootstrap)
    try:
        fields: dict = {"topic_partitions": ({"topic": f"ev{version}", "partitions": (0, 3)},)}
        if version >= 1:
            fields["election_type"] = 0
        schema_req = request(43, version, **_entities(43, version, fields))
        resp = c.call(schema_req)
        (result,) = resp.replica_election_results
        codes = {int(p.partition_id): p.error_code.value for p in result.partition_result}
        assert codes == {0: ra.ELECTION_NOT_NEEDED, 3: ra.UNKNOWN_TOPIC_OR_PARTITION}
        if version >= 1:
            assert resp.error_code.value == 0
    finally:
        c.close()


@pytest.mark.parametrize(("api_key", "version"), [(45, 0), (46, 0)])
def test_reassignment_apis_raw(broker, api_key: int, version: int) -> None:  # noqa: ANN001
    from test_broker_network import RawClient, request

    c = RawClient(broker.bootstrap)
    try:
        if api_key == 46:
            resp = c.call(request(46, 0, **_entities(46, 0, {"topics": None})))
            assert resp.error_code.value == 0 and resp.topics == ()
        else:
            fields = {
                "topics": (
                    {"name": "nope", "partitions": ({"partition_index": 0, "replicas": (1,)},)},
                )
            }
            resp = c.call(request(45, 0, **_entities(45, 0, fields)))
            (t,) = resp.responses
            assert t.partitions[0].error_code.value == ra.UNKNOWN_TOPIC_OR_PARTITION
    finally:
        c.close()


def _entities(api_key: int, version: int, fields: dict) -> dict:
    """Nested dicts -> the kio request's entity classes (by field type)."""
    import dataclasses
    import typing

    from kio.index import load_request_schema

    def build(cls: type, values: dict) -> object:
        hints = typing.get_type_hints(cls)
        out = {}
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            v = values[f.name]
            if isinstance(v, tuple) and v and isinstance(v[0], dict):
                t = hints[f.name]
                if typing.get_origin(t) is not tuple:  # Optional[tuple[...]]
                    t = next(a for a in typing.get_args(t) if a is not type(None))
                item_cls = typing.get_args(t)[0]
                v = tuple(build(item_cls, x) for x in v)
            out[f.name] = v
        return cls(**out)

    cls = load_request_schema(api_key, version)
    return {k: getattr(build(cls, fields), k) for k in fields}


def test_propose_spreads_leaders_and_keeps_the_replication_factor() -> None:
    from broker.tools.partitions import propose

    current = {("t", p): [1, 2, 3] for p in range(8)} | {("u", 0): [2]}
    plan = propose(current, [4, 1, 2, 3])
    assert all(len(set(r)) == 3 for k, r in plan.items() if k[0] == "t")
    assert [plan[("t", p)][0] for p in range(8)] == [1, 2, 3, 4, 1, 2, 3, 4]
    assert plan[("u", 0)] == [1]
    # every broker holds the same number of replicas
    counts = {b: sum(b in r for k, r in plan.items() if k[0] == "t") for b in (1, 2, 3, 4)}
    assert set(counts.values()) == {6}


def test_generate_on_a_single_node(broker) -> None:  # noqa: ANN001
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("gen", 2, 1)])["gen"].result(15)
    node = admin.list_topics(timeout=10).topics["gen"].partitions[0].replicas[0]
    result = CliRunner().invoke(
        partitions,
        ["generate", "--topic", "gen", "--broker-list", str(node), "-b", broker.bootstrap],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Current partition replica assignment"
    assert lines[2] == "Proposed partition reassignment configuration"
    proposed = json.loads(lines[3])
    assert [(e["topic"], e["partition"], e["replicas"]) for e in proposed["partitions"]] == [
        ("gen", 0, [node]),
        ("gen", 1, [node]),
    ]
    result = CliRunner().invoke(
        partitions,
        ["generate", "--topic", "gen", "--broker-list", f"{node},77", "-b", broker.bootstrap],
    )
    assert result.exit_code == 1 and "not alive: [77]" in result.output
