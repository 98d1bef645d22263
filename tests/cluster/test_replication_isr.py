"""ISR maintenance, min.insync.replicas, high watermark visibility and the replica Fetch
checks (CVE-2018-1288) on three real brokers and a real ZooKeeper."""

from __future__ import annotations

import dataclasses
import datetime
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from test_broker_network import RawClient
from test_broker_produce import batch, partition_response, produce_request

from broker.protocol import make, nested
from cluster.conftest import Cluster, ZooKeeperServer, dump_logs, wait_until

LAG_MS = 2000  # replica.lag.time.max.ms, well below the 6 s ZooKeeper session


@pytest.fixture
def fast_lag_cluster(
    zookeeper: ZooKeeperServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Cluster]:
    c = Cluster(zookeeper, tmp_path, overrides={"replica.lag.time.max.ms": str(LAG_MS)})
    try:
        c.start()
    except BaseException:
        dump_logs(c)
        c.stop()
        raise
    yield c
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        dump_logs(c)
    c.stop()


def create(c: Cluster, topic: str, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 3, config=config)])[topic].result(15)
    wait_until(lambda: len(c.state(topic, 0)["isr"]) == 3, 20, f"{topic}-0 ISR of 3")


def produce(c: Cluster, topic: str, n: int, timeout_ms: int = 20000) -> list:
    p = Producer(
        {
            "bootstrap.servers": c.bootstrap,
            "acks": "all",
            "message.timeout.ms": timeout_ms,
            "retries": 1000000,
        }
    )
    results: list = []
    for i in range(n):
        p.produce(
            topic,
            f"m{i}".encode(),
            partition=0,
            on_delivery=lambda e, m: results.append(e if e else m.offset()),
        )
    p.flush(timeout_ms / 1000 + 10)
    return results


def test_isr_shrinks_after_lag_time_and_expands_when_caught_up(fast_lag_cluster: Cluster) -> None:
    c = fast_lag_cluster
    create(c, "lag", **{"min.insync.replicas": "2"})
    leader = c.leader("lag", 0)
    follower = next(n for n in c.brokers if n != leader)
    assert produce(c, "lag", 10) == list(range(10))
    os.kill(c.brokers[follower].proc.pid, signal.SIGSTOP)
    try:
        # acks=all keeps working: the leader drops the silent follower from the ISR after
        # replica.lag.time.max.ms (its ZooKeeper session is still alive)
        assert produce(c, "lag", 10) == list(range(10, 20))
        state = c.state("lag", 0)
        assert follower not in state["isr"] and len(state["isr"]) == 2, state
        assert c.live() == set(c.brokers)
    finally:
        os.kill(c.brokers[follower].proc.pid, signal.SIGCONT)
    wait_until(lambda: follower in c.state("lag", 0)["isr"], 20, "the follower back in ISR")
    assert "shrinking ISR" in c.output(leader) and "expanding ISR" in c.output(leader)


def test_min_insync_replicas_refuses_acks_all(cluster: Cluster) -> None:
    create(cluster, "minisr", **{"min.insync.replicas": "2"})
    leader = cluster.leader("minisr", 0)
    others = [n for n in cluster.brokers if n != leader]
    for n in others:
        cluster.brokers[n].kill()
    wait_until(lambda: cluster.state("minisr", 0)["isr"] == [leader], 40, "ISR of the leader")
    # librdkafka retries NOT_ENOUGH_REPLICAS until its timeout: look at the broker's answer
    client = RawClient(cluster.brokers[leader].bootstrap)
    try:
        r = client.call(produce_request(9, "minisr", 0, batch([b"x"]), acks=-1))
        assert partition_response(r).error_code.value == 19  # NOT_ENOUGH_REPLICAS
        r = client.call(produce_request(9, "minisr", 0, batch([b"y"]), acks=1))
        assert partition_response(r).error_code.value == 0  # acks=1 still goes through
    finally:
        client.close()


def fetch_request(topic: str, replica_id: int, offset: int = 0):
    from kio.index import load_request_schema

    cls = load_request_schema(1, 12)
    tcls, pcls = nested(cls, "FetchTopic"), nested(cls, "FetchPartition")
    return make(
        cls,
        cluster_id=None,
        replica_id=replica_id,
        max_wait=datetime.timedelta(milliseconds=0),
        min_bytes=0,
        max_bytes=1 << 20,
        isolation_level=0,
        session_id=0,
        session_epoch=-1,
        topics=(
            make(
                tcls,
                topic=topic,
                partitions=(
                    make(
                        pcls,
                        partition=0,
                        current_leader_epoch=-1,
                        fetch_offset=offset,
                        last_fetched_epoch=-1,
                        log_start_offset=-1,
                        partition_max_bytes=1 << 20,
                    ),
                ),
            ),
        ),
        forgotten_topics_data=(),
        rack_id="",
    )


def fetch_code(c: Cluster, node: int, topic: str, replica_id: int) -> int:
    client = RawClient(c.brokers[node].bootstrap)
    try:
        r = client.call(fetch_request(topic, replica_id))
        return int(r.responses[0].partitions[0].error_code.value)
    finally:
        client.close()


def test_replica_fetch_checks(cluster: Cluster) -> None:
    create(cluster, "guard")
    assert produce(cluster, "guard", 3) == [0, 1, 2]
    leader = cluster.leader("guard", 0)
    follower = next(n for n in cluster.brokers if n != leader)
    # not a registered broker: refused, and nothing about the partition changes
    assert fetch_code(cluster, leader, "guard", 77) == 29  # TOPIC_AUTHORIZATION_FAILED
    # the leader itself is no follower of its own partition
    assert fetch_code(cluster, leader, "guard", leader) == 6  # NOT_LEADER_OR_FOLLOWER
    # consumers and replicas get NOT_LEADER_OR_FOLLOWER from a follower
    assert fetch_code(cluster, follower, "guard", -1) == 6
    assert fetch_code(cluster, follower, "guard", leader) == 6
    # a consumer on the leader reads what the ISR holds
    assert fetch_code(cluster, leader, "guard", -1) == 0


def list_offsets_code(c: Cluster, node: int, topic: str, timestamp: int = -1) -> tuple[int, int]:
    from kio.index import load_request_schema

    cls = load_request_schema(2, 7)
    tcls, pcls = nested(cls, "ListOffsetsTopic"), nested(cls, "ListOffsetsPartition")
    req = make(
        cls,
        replica_id=-1,
        isolation_level=0,
        topics=(
            make(
                tcls,
                name=topic,
                partitions=(
                    make(pcls, partition_index=0, current_leader_epoch=-1, timestamp=timestamp),
                ),
            ),
        ),
    )
    client = RawClient(c.brokers[node].bootstrap)
    try:
        (p,) = client.call(req).topics[0].partitions
        return int(p.error_code.value), int(p.offset)
    finally:
        client.close()


def test_offsets_and_deletes_come_from_the_leader(cluster: Cluster) -> None:
    create(cluster, "offs")
    assert produce(cluster, "offs", 4) == [0, 1, 2, 3]
    leader = cluster.leader("offs", 0)
    follower = next(n for n in cluster.brokers if n != leader)
    assert list_offsets_code(cluster, leader, "offs") == (0, 4)
    assert list_offsets_code(cluster, follower, "offs")[0] == 6  # NOT_LEADER_OR_FOLLOWER


def test_producer_state_moves_with_leadership(cluster: Cluster) -> None:
    """A retry of an acknowledged idempotent batch, sent to the new leader after the old one
    died, is recognised from the replicated producer state: original offset, no second copy;
    the next sequence continues and a gap is refused."""
    from test_broker_produce import init_producer_id

    create(cluster, "idem", **{"min.insync.replicas": "2"})
    leader = cluster.leader("idem", 0)
    c = RawClient(cluster.brokers[leader].bootstrap)
    try:
        pid, epoch = init_producer_id(c)
        batches = [batch([b"v%d" % i], pid=pid, epoch=epoch, seq=i) for i in range(5)]
        for i, b in enumerate(batches):
            r = partition_response(c.call(produce_request(9, "idem", 0, b, acks=-1)))
            assert (r.error_code.value, r.base_offset) == (0, i)
    finally:
        c.close()
    cluster.brokers[leader].kill()
    wait_until(lambda: cluster.leader("idem", 0) not in (leader, -1), 30, "a new leader")
    new = cluster.leader("idem", 0)
    wait_until(lambda: fetch_code(cluster, new, "idem", -1) == 0, 10, "new leader serving")
    c = RawClient(cluster.brokers[new].bootstrap)
    try:
        r = partition_response(c.call(produce_request(9, "idem", 0, batches[3], acks=-1)))
        assert (r.error_code.value, r.base_offset) == (0, 3)  # duplicate: original offset
        nxt = batch([b"v5"], pid=pid, epoch=epoch, seq=5)
        r = partition_response(c.call(produce_request(9, "idem", 0, nxt, acks=-1)))
        assert (r.error_code.value, r.base_offset) == (0, 5)
        gap = batch([b"gap"], pid=pid, epoch=epoch, seq=9)
        r = partition_response(c.call(produce_request(9, "idem", 0, gap, acks=-1)))
        assert r.error_code.value == 45  # OUT_OF_ORDER_SEQUENCE_NUMBER
    finally:
        c.close()
    assert list_offsets_code(cluster, new, "idem") == (0, 6)


def test_followers_follow_the_leaders_log_start(cluster: Cluster) -> None:
    """DeleteRecords on the leader: followers move their log start too (from the leader's
    log_start_offset in Fetch answers), so a new leader starts where the old one did."""
    from confluent_kafka import TopicPartition

    create(cluster, "trim")
    assert produce(cluster, "trim", 10) == list(range(10))
    leader = cluster.leader("trim", 0)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    fut = admin.delete_records([TopicPartition("trim", 0, 6)])
    (result,) = fut.values()
    assert result.result(15).low_watermark == 6
    assert produce(cluster, "trim", 1) == [10]  # a fetch round carries the new log start
    cluster.brokers[leader].kill()
    wait_until(lambda: cluster.leader("trim", 0) not in (leader, -1), 30, "a new leader")
    new = cluster.leader("trim", 0)
    wait_until(
        lambda: list_offsets_code(cluster, new, "trim", -2) == (0, 6), 15, "log start 6 there"
    )


def test_follower_behind_the_leaders_log_start_restarts_there(cluster: Cluster) -> None:
    """A follower that was away while the leader deleted records past its end gets
    OFFSET_OUT_OF_RANGE and restarts its log at the leader's log start."""
    from confluent_kafka import TopicPartition

    from fastlog.log import Log

    create(cluster, "behind")
    leader = cluster.leader("behind", 0)
    away = next(n for n in cluster.brokers if n != leader)
    cluster.brokers[away].stop()
    wait_until(lambda: away not in cluster.state("behind", 0)["isr"], 30, "away out of ISR")
    assert produce(cluster, "behind", 10) == list(range(10))
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    (fut,) = admin.delete_records([TopicPartition("behind", 0, 8)]).values()
    assert fut.result(15).low_watermark == 8
    cluster.brokers[away].start(60)
    wait_until(lambda: away in cluster.state("behind", 0)["isr"], 30, "away back in ISR")
    assert "resetting the log" in cluster.output(away)
    cluster.stop()
    with Log(cluster.brokers[away].data_dir / "behind-0") as log:
        assert log.start_offset == 8
        assert [(r.offset, r.value) for r in log.read(8)] == [(8, b"m8"), (9, b"m9")]


def test_acks_all_times_out_while_the_isr_lags(cluster: Cluster) -> None:
    """acks=all waits for every ISR member; frozen followers still in the ISR (within
    replica.lag.time.max.ms) make it REQUEST_TIMED_OUT after the request's timeout, while
    acks=1 is answered at once. When they come back the record is committed."""
    import time

    create(cluster, "slow", **{"min.insync.replicas": "2"})
    leader = cluster.leader("slow", 0)
    followers = [n for n in cluster.brokers if n != leader]
    for n in followers:
        os.kill(cluster.brokers[n].proc.pid, signal.SIGSTOP)
    c = RawClient(cluster.brokers[leader].bootstrap)
    try:
        time.sleep(1.5)  # their in-flight long polls expire
        req = produce_request(9, "slow", 0, batch([b"x"]), acks=-1)
        req = dataclasses.replace(req, timeout=datetime.timedelta(milliseconds=1000))
        t0 = time.monotonic()
        r = partition_response(c.call(req))
        assert r.error_code.value == 7  # REQUEST_TIMED_OUT
        assert time.monotonic() - t0 >= 0.9
        r = partition_response(c.call(produce_request(9, "slow", 0, batch([b"y"]), acks=1)))
        assert (r.error_code.value, r.base_offset) == (0, 1)
    finally:
        for n in followers:
            os.kill(cluster.brokers[n].proc.pid, signal.SIGCONT)
        c.close()
    wait_until(lambda: list_offsets_code(cluster, leader, "slow") == (0, 2), 15, "HW 2")
