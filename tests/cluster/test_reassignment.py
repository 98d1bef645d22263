"""Scale out and partition reassignment on a real cluster (ZooKeeper + brokers on loopback).

- A 4th broker joins a running 3-broker cluster; `fastlog partitions reassign` moves a
  partition onto it (and off its current leader) while an idempotent acks=all producer
  runs: the new replica catches up into the ISR, leadership leaves the removed broker, the
  removed broker deletes its log, no acknowledged record is lost or duplicated; after a
  preferred election (`fastlog partitions elect-leaders`) the new broker leads and serves.
- AlterPartitionReassignments refuses bad plans; ListPartitionReassignments shows one in
  flight (a target broker that is down never catches up) and a cancel reverts it.
- auto.leader.rebalance.enable restores the preferred leader after a failover.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import TopicPartition as KTP
from kafka.admin import KafkaAdminClient
from support import BrokerProcess, free_port

from broker.tools.partitions import partitions
from cluster.conftest import Cluster, wait_until
from cluster.test_replication_e2e import AckedProducer, check_history, read_all

pytestmark = pytest.mark.timeout(120)


def add_broker(c: Cluster, node: int) -> None:
    d = c.workdir / f"broker-{node}" / "data"
    d.mkdir(parents=True, exist_ok=True)
    c.brokers[node] = BrokerProcess(
        d, free_port(), dict(c.overrides), ["--node-id", str(node), "--zookeeper", c.connect]
    )
    c.start_broker(node)
    c.wait_registered(set(c.brokers))


def retry(c: Cluster, call, timeout: float = 20.0):  # noqa: ANN001, ANN201
    """Run ``call(admin)`` with a fresh kafka-python admin client until it stops failing:
    kafka-python fails on the first dead broker it tries (one just stopped is still in its
    metadata) and keeps asking a controller that is gone (UnknownBrokerIdError)."""
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout
    while True:
        live = sorted(n for n in c.live() if c.brokers[n].proc.poll() is None)
        admin = KafkaAdminClient(bootstrap_servers=c.bootstrap_of(live).split(","))
        try:
            return call(admin)
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
        finally:
            admin.close()


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(partitions, list(args))
    return result.exit_code, result.output


def create(c: Cluster, topic: str, partitions_: int = 1, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic(topic, partitions_, 3, config=config)])[topic].result(15)
    for p in range(partitions_):
        wait_until(lambda p=p: len(c.state(topic, p)["isr"]) == 3, 20, f"{topic}-{p} ISR of 3")


def test_scale_out_moves_partitions_under_load(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    # "lead": the leader itself is moved off (leadership must move on completion);
    # "follow": a follower is moved off, then a preferred election makes broker 4 lead.
    for topic in ("lead", "follow"):
        create(c, topic, **{"min.insync.replicas": "2"})
    add_broker(c, 4)
    prods = {t: AckedProducer(c, t).start() for t in ("lead", "follow")}
    for t, prod in prods.items():
        wait_until(lambda prod=prod: len(prod.acked) >= 200, 30, f"200 acks on {t}")

    old = {t: c.assignment(t)[0] for t in prods}
    removed = {
        "lead": c.leader("lead", 0),
        "follow": next(r for r in old["follow"] if r != c.leader("follow", 0)),
    }
    target = {t: [4] + [r for r in old[t] if r != removed[t]] for t in prods}
    plan = tmp_path / "plan.json"
    entries = [{"topic": t, "partition": 0, "replicas": target[t]} for t in sorted(prods)]
    plan.write_text(json.dumps({"version": 1, "partitions": entries}))
    code, out = cli("reassign", "--reassignment-json-file", str(plan), "-b", c.bootstrap)
    assert code == 0, out
    assert "Successfully started partition reassignment(s) for follow-0,lead-0" in out
    rollback = json.loads(out.split("\n\n")[1])["partitions"]
    assert {e["topic"]: e["replicas"] for e in rollback} == old

    for t in prods:
        wait_until(lambda t=t: c.assignment(t)[0] == target[t], 40, f"{t} reassigned")
    # --verify reads the replica sets from a broker's metadata cache, which follows the
    # assignment znode a moment later (a broker may still show the moving set [4, 3, 1, 2])
    verified: list[tuple[int, str]] = []

    def verify() -> bool:
        verified.append(
            cli("reassign", "--reassignment-json-file", str(plan), "--verify", "-b", c.bootstrap)
        )
        return verified[-1][0] == 0

    wait_until(verify, 20, "--verify reports every reassignment complete")
    assert "Reassignment of partition lead-0 is completed." in verified[-1][1], verified[-1]
    for t in prods:
        state = c.state(t, 0)
        assert sorted(state["isr"]) == sorted(target[t])
        wait_until(
            lambda t=t: not (c.brokers[removed[t]].data_dir / f"{t}-0").exists(),
            20,
            f"the removed replica of {t}-0 deleted",
        )
    assert c.leader("lead", 0) == 4  # the first live target replica in the ISR
    leader = c.leader("follow", 0)
    assert leader != 4 and leader in target["follow"]  # leadership stays where it can

    code, out = cli("elect-leaders", "--topic", "follow", "--type", "preferred", "-b", c.bootstrap)
    assert code == 0, out
    assert "Successfully completed leader election (preferred) for partitions follow-0" in out
    assert c.leader("follow", 0) == 4
    code, out = cli("elect-leaders", "--topic", "lead", "-b", c.bootstrap)
    assert code == 0 and "Valid replica already elected for partition lead-0" in out, out

    # The new broker serves as leader: acknowledgements go on after the moves.
    for t, prod in prods.items():
        n = len(prod.acked)
        wait_until(lambda n=n, prod=prod: len(prod.acked) >= n + 200, 30, f"acks on {t}")
    for t, prod in prods.items():
        prod.stop()
        assert not prod.errors, prod.errors[:3]
        end = max(o for _, o, _ in prod.acked) + 1
        records = read_all(c.bootstrap_of([4]), t, 0, end)
        check_history(prod.acked, records)
        print(f"[reassign {t}] acked {len(prod.acked)}, unavailability {prod.longest_gap():.2f}s")


def test_reassignment_api_errors_list_and_cancel(cluster: Cluster) -> None:
    c = cluster
    create(c, "plans", 2)
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap.split(","))
    try:
        errs = admin.alter_partition_reassignments(
            {
                KTP("plans", 0): [1, 2, 9],  # 9 is not a broker
                KTP("plans", 1): [1, 1, 2],  # duplicate
                KTP("plans", 7): [1, 2, 3],  # no such partition
                KTP("nope", 0): [1, 2, 3],
            }
        )
        names = {(tp.topic, tp.partition): e.__name__ for tp, e in errs.items()}
        assert names == {
            ("plans", 0): "InvalidReplicationAssignmentError",
            ("plans", 1): "InvalidReplicationAssignmentError",
            ("plans", 7): "UnknownTopicOrPartitionError",
            ("nope", 0): "UnknownTopicOrPartitionError",
        }
        assert admin.list_partition_reassignments() == {}
        code, out = cli(
            "reassign", "--topic", "plans", "--partition", "0", "--cancel", "-b", c.bootstrap
        )
        assert code == 1 and "NO_REASSIGNMENT_IN_PROGRESS" in out, out

        # A broker that was down while its replica moved away deletes that log at start.
        cadmin = AdminClient({"bootstrap.servers": c.bootstrap})
        cadmin.create_topics([NewTopic("stray", 1, 2)])["stray"].result(15)
        wait_until(lambda: len(c.state("stray", 0)["isr"]) == 2, 20, "stray-0 ISR of 2")
        x, y = c.assignment("stray")[0]
        z = ({1, 2, 3} - {x, y}).pop()
        wait_until(lambda: (c.brokers[x].data_dir / "stray-0").is_dir(), 10, "stray-0 on x")
        c.brokers[x].stop()
        c.wait_registered({1, 2, 3} - {x})
        assert retry(c, lambda a: a.alter_partition_reassignments({KTP("stray", 0): [y, z]})) == {
            KTP("stray", 0): None
        }
        wait_until(lambda: c.assignment("stray")[0] == [y, z], 20, "stray-0 moved")
        assert (c.brokers[x].data_dir / "stray-0").is_dir()
        c.start_broker(x)
        wait_until(
            lambda: not (c.brokers[x].data_dir / "stray-0").exists(), 20, "stray log deleted"
        )
        assert "no longer a replica here" in c.output(x)

        # kafka-reassign-partitions --zookeeper wrote /admin/reassign_partitions: honoured,
        # then deleted. (Moves stray-0 back onto x.)
        c.zk.create(
            "/admin/reassign_partitions",
            json.dumps(
                {
                    "version": 1,
                    "partitions": [{"topic": "stray", "partition": 0, "replicas": [x, y]}],
                }
            ).encode(),
            makepath=True,
        )
        wait_until(lambda: c.assignment("stray")[0] == [x, y], 20, "legacy reassignment done")
        assert c.zk.exists("/admin/reassign_partitions") is None
        wait_until(lambda: not (c.brokers[z].data_dir / "stray-0").exists(), 20, "z's log gone")

        # A target broker killed (kill -9) while still registered never catches up.
        add_broker(c, 4)
        old = c.assignment("plans")[0]
        target = [4, *old[1:]]
        c.brokers[4].kill()  # its registration lives on for the session timeout
        assert retry(c, lambda a: a.alter_partition_reassignments({KTP("plans", 0): target})) == {
            KTP("plans", 0): None
        }
        ongoing = retry(c, lambda a: a.list_partition_reassignments())
        ((tp, v),) = ongoing.items()
        assert (tp.topic, tp.partition) == ("plans", 0)
        assert v["adding_replicas"] == [4]
        assert v["removing_replicas"] == [old[0]]
        assert v["replicas"] == [4, *old[1:], old[0]]
        code, out = cli("list-reassignments", "-b", c.bootstrap_of([1, 2, 3]))
        assert code == 0 and "plans-0: replicas" in out and "adding 4" in out, out
        code, out = cli(
            "reassign",
            "--topic",
            "plans",
            "--partition",
            "0",
            "--replicas",
            ",".join(map(str, target)),
            "--verify",
            "-b",
            c.bootstrap_of([1, 2, 3]),
        )
        assert code == 1 and "still in progress" in out, out
        time.sleep(1.5)  # the controller passes over it a few times: still in flight
        assert c.assignment("plans")[0] == v["replicas"]
        code, out = cli(
            "reassign",
            "--topic",
            "plans",
            "--partition",
            "0",
            "--cancel",
            "-b",
            c.bootstrap_of([1, 2, 3]),
        )
        assert code == 0 and "Successfully cancelled" in out, out
        wait_until(lambda: c.assignment("plans")[0] == old, 20, "cancel reverts")
        assert retry(c, lambda a: a.list_partition_reassignments()) == {}
        assert c.leader("plans", 0) in old
    finally:
        admin.close()


def test_auto_leader_rebalance_restores_the_preferred_leader(
    zookeeper,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    c = Cluster(
        zookeeper,
        tmp_path,
        overrides={
            "auto.leader.rebalance.enable": "true",
            "leader.imbalance.check.interval.seconds": "1",
            "leader.imbalance.per.broker.percentage": "0",
        },
    )
    try:
        c.start()
        create(c, "balanced", 3)
        preferred = c.assignment("balanced")[0][0]
        c.brokers[preferred].stop()  # controlled shutdown moves its leadership away
        wait_until(lambda: c.leader("balanced", 0) != preferred, 20, "leadership moved")
        c.start_broker(preferred)
        t0 = time.monotonic()
        wait_until(lambda: c.leader("balanced", 0) == preferred, 40, "preferred leader back")
        print(f"[rebalance] preferred leader restored after {time.monotonic() - t0:.1f}s")
        for p in range(3):
            assert c.leader("balanced", p) == c.assignment("balanced")[p][0]
    finally:
        c.stop()


def test_unclean_election_of_an_offline_partition(cluster: Cluster) -> None:
    c = cluster
    create(c, "offline")
    a, b, c3 = c.assignment("offline")[0]
    assert c.leader("offline", 0) == a
    for n in (b, c3):
        c.brokers[n].kill()
    wait_until(lambda: c.state("offline", 0)["isr"] == [a], 30, "ISR of the leader alone")
    c.brokers[a].kill()  # no broker left, no controller: nobody changes the state now
    c.start_broker(b)  # the new controller finds no live ISR member: offline
    wait_until(lambda: c.leader("offline", 0) == -1, 30, "partition offline")
    time.sleep(1.0)
    assert c.leader("offline", 0) == -1

    code, out = cli(
        "elect-leaders", "--topic", "offline", "--type", "preferred", "-b", c.bootstrap_of([b])
    )
    assert code == 1 and "PREFERRED_LEADER_NOT_AVAILABLE" in out, out
    epoch = c.state("offline", 0)["leader_epoch"]
    code, out = cli(
        "elect-leaders",
        "--topic",
        "offline",
        "--partition",
        "0",
        "--type",
        "unclean",
        "-b",
        c.bootstrap_of([b]),
    )
    assert code == 0, out
    assert "Successfully completed leader election (unclean) for partitions offline-0" in out
    state = c.state("offline", 0)
    assert (state["leader"], state["isr"], state["leader_epoch"]) == (b, [b], epoch + 1)
    code, out = cli(
        "elect-leaders", "--topic", "offline", "--type", "unclean", "-b", c.bootstrap_of([b])
    )
    assert code == 0 and "Valid replica already elected" in out, out

    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": c.bootstrap_of([b]), "acks": "1"})
    acked = []
    p.produce("offline", b"after", partition=0, on_delivery=lambda e, m: acked.append(e is None))
    assert p.flush(20) == 0 and acked == [True]


def test_a_new_controller_completes_a_reassignment_in_flight(cluster: Cluster) -> None:
    c = cluster
    create(c, "ctl", **{"min.insync.replicas": "2"})
    add_broker(c, 4)
    controller = c.controller()
    target = [4, *sorted({1, 2, 3} - {controller})]
    os.kill(c.brokers[4].proc.pid, signal.SIGSTOP)  # cannot catch up: stays in flight
    try:
        c.zk.create(
            "/admin/reassign_partitions",
            json.dumps(
                {"version": 1, "partitions": [{"topic": "ctl", "partition": 0, "replicas": target}]}
            ).encode(),
            makepath=True,
        )
        wait_until(lambda: c.zk.exists("/admin/reassign_partitions") is None, 10, "picked up")
        data, _ = c.zk.get("/brokers/topics/ctl")
        assert json.loads(data)["adding_replicas"] == {"0": [4]}
        c.brokers[controller].kill()
    finally:
        os.kill(c.brokers[4].proc.pid, signal.SIGCONT)
    wait_until(lambda: c.controller() not in (controller, -1), 30, "a new controller")
    wait_until(lambda: c.assignment("ctl")[0] == target, 40, "reassignment completed")
    state = c.state("ctl", 0)
    assert state["leader"] in target and sorted(state["isr"]) == sorted(target)
    data, _ = c.zk.get("/brokers/topics/ctl")
    assert json.loads(data)["adding_replicas"] == {}
