"""Clients that pose as something they are not, against a live single-node broker: a
consumer claiming to be a follower replica in Fetch (CVE-2018-1288), Produce requests that
dodge the idempotence and transaction checks (CVE-2018-17196), and idempotent sequence and
epoch abuse. The attacker gets Kafka's error, nothing it sent is appended or shown to a
read_committed consumer, and an honest client is unaffected.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator

import pytest
from support import BrokerProcess, free_port
from test_broker_network import request
from test_broker_produce import fetch_request, produce_request
from test_hostile_support import (
    Witness,
    assert_alive,
    cap_address_space,
    connect,
    honest_after,
    read_frame,
)

from broker.protocol import decode_response, encode_request
from fastlog import _core

NOT_LEADER_OR_FOLLOWER = 6
TOPIC_AUTHORIZATION_FAILED = 29
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
UNKNOWN_LEADER_EPOCH = 75
INVALID_RECORD = 87
INVALID_TOPIC_EXCEPTION = 17


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    d = tmp_path_factory.mktemp("hostile-producers") / "data"
    d.mkdir()
    b = BrokerProcess(d, free_port(), {"num.partitions": "1"}).start()
    cap_address_space(b)
    yield b
    b.stop()


@pytest.fixture
def witness(target: BrokerProcess) -> Witness:
    w = Witness(target.bootstrap)
    w.produce(10, tag="before")
    return w


def call(broker: BrokerProcess, req) -> object:
    with connect(broker) as s:
        s.sendall(encode_request(req, 5, "poser"))
        _, response = decode_response(read_frame(s), req.__api_key__, req.__version__)
    return response


def produce(broker: BrokerProcess, topic: str, batch: bytes, transactional_id: str | None = None):
    req = dataclasses.replace(
        produce_request(9, topic, 0, batch), transactional_id=transactional_id
    )
    p = call(broker, req).responses[0].partition_responses[0]
    return p.error_code.value, p.base_offset


def fetch(broker: BrokerProcess, topic: str, *, version: int = 12, isolation: int = 0, **fields):
    req = dataclasses.replace(fetch_request(version, topic, 0, 0, isolation=isolation), **fields)
    return call(broker, req).responses[0].partitions[0]


def one(value: bytes = b"v", **kwargs) -> bytes:
    return _core.build_batch([(b"k", value, None, None)], **kwargs)


def init_producer_id(broker: BrokerProcess) -> int:
    r = call(
        broker,
        request(22, 1, transactional_id=None, transaction_timeout=datetime.timedelta(seconds=60)),
    )
    assert r.error_code.value == 0
    return r.producer_id


# -- CVE-2018-1288: a client posing as a follower ------------------------------------------


@pytest.mark.parametrize("version", [4, 11, 12])
@pytest.mark.parametrize("replica_id", [0, 1, 7, 2**31 - 1])
def test_fetch_as_replica_is_refused(target: BrokerProcess, version: int, replica_id: int) -> None:
    """A single node has no follower: a Fetch with replica_id >= 0 (even this broker's own
    id) gets an error and no records, whatever it asks for."""
    topic = "replica-posing"
    assert produce(target, topic, one(b"secret"))[0] == 0
    fields = {"replica_id": replica_id}
    p = fetch(target, topic, version=version, **fields)
    assert p.error_code.value in (
        TOPIC_AUTHORIZATION_FAILED,
        NOT_LEADER_OR_FOLLOWER,
        UNKNOWN_LEADER_EPOCH,
    ), p.error_code
    assert not p.records
    # a real consumer is served
    p = fetch(target, topic, version=version)
    assert p.error_code.value == 0 and p.records
    assert_alive(target)


def test_fetch_as_replica_does_not_move_anything(target: BrokerProcess, witness: Witness) -> None:
    """Posing as a replica with a fetch offset far ahead must not move the high watermark or
    anything a consumer sees (the point of CVE-2018-1288: a fake follower acknowledging)."""
    topic = "replica-posing-hw"
    assert produce(target, topic, one())[0] == 0
    before = fetch(target, topic)
    for offset in (10**9, 1, 0):
        req = fetch_request(12, topic, 0, offset)
        call(target, dataclasses.replace(req, replica_id=1))
    after = fetch(target, topic)
    assert (after.high_watermark, after.log_start_offset) == (
        before.high_watermark,
        before.log_start_offset,
    )
    honest_after(target, witness)


# -- CVE-2018-17196: idempotence and transactions dodged ----------------------------------


def test_transactional_batch_without_transactional_id(
    target: BrokerProcess, witness: Witness
) -> None:
    """Kafka answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED: a transactional batch needs the
    request's transactional id (the check CVE-2018-17196 was about)."""
    topic = "txn-no-id"
    batch = one(
        b"dodged", producer_id=4242, producer_epoch=0, base_sequence=0, is_transactional=True
    )
    code, _ = produce(target, topic, batch)
    assert code == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    for isolation in (0, 1):
        p = fetch(target, topic, isolation=isolation)
        assert p.error_code.value in (0, 3) and not p.records
    honest_after(target, witness)


def test_transactional_batch_outside_a_transaction(target: BrokerProcess, witness: Witness) -> None:
    """A transactional id the broker never began a transaction for (no InitProducerId,
    no AddPartitionsToTxn): INVALID_TXN_STATE, nothing appended, and read_committed
    consumers never see records that no one will commit or abort."""
    topic = "txn-no-txn"
    assert produce(target, topic, one(b"plain"))[0] == 0
    batch = one(
        b"uncommitted", producer_id=4343, producer_epoch=0, base_sequence=0, is_transactional=True
    )
    code, _ = produce(target, topic, batch, transactional_id="forged-txn")
    assert code == INVALID_TXN_STATE
    p = fetch(target, topic, isolation=1)
    values = [r[3] for r in _core.iter_records(p.records or b"")]
    assert values == [b"plain"]
    assert p.high_watermark == 1
    honest_after(target, witness)


def test_producer_id_never_allocated(target: BrokerProcess, witness: Witness) -> None:
    """A producer id no InitProducerId gave out. Kafka (without an authorizer) accepts its
    first batch as a new producer; from then on the sequence rules hold for it, and an
    honest idempotent producer is not disturbed."""
    topic = "forged-pid"
    pid = 9_000_000_000
    assert produce(target, topic, one(producer_id=pid, producer_epoch=0, base_sequence=0))[0] == 0
    gap = one(producer_id=pid, producer_epoch=0, base_sequence=7)
    assert produce(target, topic, gap)[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
    honest_after(target, witness)


@pytest.mark.parametrize("sequence", [-1, -2, -(2**31)])
def test_negative_sequence_with_a_producer_id(
    target: BrokerProcess, witness: Witness, sequence: int
) -> None:
    """Kafka's LogValidator: a batch with a producer id needs a sequence >= 0
    (INVALID_RECORD); accepting it would leave producer state that later batches trip on."""
    topic = "negative-seq"
    pid = init_producer_id(target)
    batch = one(producer_id=pid, producer_epoch=0, base_sequence=sequence)
    code, _ = produce(target, topic, batch)
    assert code == INVALID_RECORD
    # the producer's state is untouched: its real first batch still goes in
    assert produce(target, topic, one(producer_id=pid, producer_epoch=0, base_sequence=0))[0] == 0
    honest_after(target, witness)


def test_sequence_and_epoch_abuse(target: BrokerProcess, witness: Witness) -> None:
    topic = "seq-abuse"
    pid = init_producer_id(target)

    def send(epoch: int, seq: int, n: int = 1) -> tuple[int, int]:
        batch = _core.build_batch(
            [(b"k", b"s%d" % (seq + i), None, None) for i in range(n)],
            producer_id=pid,
            producer_epoch=epoch,
            base_sequence=seq,
        )
        return produce(target, topic, batch)

    assert send(0, 0, 3) == (0, 0)
    assert send(0, 3)[0] == 0
    assert send(0, 10)[0] == OUT_OF_ORDER_SEQUENCE_NUMBER  # a gap
    assert send(0, 2)[0] == OUT_OF_ORDER_SEQUENCE_NUMBER  # overlaps, not a known retry
    assert send(0, 0, 3) == (0, 0)  # an exact retry: its original offset, not appended
    assert send(1, 5)[0] == OUT_OF_ORDER_SEQUENCE_NUMBER  # a new epoch starts at 0
    assert send(1, 0)[0] == 0
    assert send(0, 4)[0] == INVALID_PRODUCER_EPOCH  # the old epoch is fenced
    assert send(-1, 4)[0] in (INVALID_PRODUCER_EPOCH, INVALID_RECORD)
    p = fetch(target, topic)
    values = [r[3] for r in _core.iter_records(p.records or b"")]
    assert values == [b"s0", b"s1", b"s2", b"s3", b"s0"]
    honest_after(target, witness)


def test_produce_to_an_internal_topic_is_refused(target: BrokerProcess, witness: Witness) -> None:
    """__consumer_offsets holds every group's committed offsets: a client appending forged
    records there could move any group's position. Kafka answers INVALID_TOPIC_EXCEPTION
    ("Cannot append to internal topic") to every client but its own admin tools."""
    # a committed offset, so that __consumer_offsets exists and has a record
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": target.bootstrap, "group.id": "victim-group"})
    c.commit(offsets=[TopicPartition(witness.topic, 0, 3)], asynchronous=False)
    c.close()
    key = b"\x00\x01\x00\x0cvictim-group" + b"\x00\x01t" + b"\x00\x00\x00\x00"
    forged = _core.build_batch([(key, b"\x00\x03" + b"\x00" * 30, None, None)])
    ends = {}
    for p in range(50):
        req = produce_request(9, "__consumer_offsets", p, forged)
        ends[p] = fetch(target, "__consumer_offsets").high_watermark if p == 0 else None
        r = call(target, req).responses[0].partition_responses[0]
        assert r.error_code.value == INVALID_TOPIC_EXCEPTION, (p, r.error_code)
    assert fetch(target, "__consumer_offsets").high_watermark == ends[0]
    honest_after(target, witness)
