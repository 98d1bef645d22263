"""Fetch (every version, limits, long poll, errors, order behind a long poll) and
ListOffsets (every version: earliest, latest, by timestamp, max timestamp)."""

from __future__ import annotations

import datetime
import threading
import time

import pytest
from kio.index import load_request_schema
from test_broker_network import RawClient, request
from test_broker_produce import batch, fetch_request, partition_response, produce_request

from broker.protocol import decode_response, make, nested
from fastlog import _core


@pytest.fixture
def client(broker):
    c = RawClient(broker.bootstrap)
    yield c
    c.close()


def produce(
    client: RawClient, topic: str, values: list[bytes], partition: int = 0, ts: int | None = None
) -> int:
    r = partition_response(client.call(produce_request(9, topic, partition, batch(values, ts=ts))))
    assert r.error_code.value == 0
    return r.base_offset


@pytest.mark.parametrize("version", range(4, 13))
def test_fetch_every_version(client: RawClient, version: int) -> None:
    topic = f"fetch-v{version}"
    produce(client, topic, [b"a", b"b"])
    produce(client, topic, [b"c"])
    r = client.call(fetch_request(version, topic, 0, 1))
    p = r.responses[0].partitions[0]
    assert p.error_code.value == 0 and p.high_watermark == 3
    if version >= 5:
        assert p.log_start_offset == 0
    # whole batches: the first batch holds offset 1, the client skips offset 0
    recs = _core.iter_records(p.records, 1)
    assert [(o, v) for o, _t, _k, v, _h in recs] == [(1, b"b"), (2, b"c")]
    assert p.aborted_transactions is None
    # an empty partition: zero-length records, not null
    r = client.call(fetch_request(version, topic, 0, 3))
    p = r.responses[0].partitions[0]
    assert p.error_code.value == 0 and p.records == b""
    r = client.call(fetch_request(version, topic, 1, 0))
    assert r.responses[0].partitions[0].records == b""


def test_read_committed_has_empty_aborted_list(client: RawClient) -> None:
    produce(client, "rc", [b"a"])
    p = client.call(fetch_request(11, "rc", 0, 0, isolation=1)).responses[0].partitions[0]
    assert p.aborted_transactions == () and p.last_stable_offset == 1
    assert len(_core.iter_records(p.records, 0)) == 1


def test_fetch_errors(client: RawClient) -> None:
    produce(client, "fe", [b"a"])
    p = client.call(fetch_request(12, "fe", 0, 5)).responses[0].partitions[0]
    assert p.error_code.value == 1  # OFFSET_OUT_OF_RANGE
    p = client.call(fetch_request(12, "fe", 0, -1)).responses[0].partitions[0]
    assert p.error_code.value == 1
    p = client.call(fetch_request(12, "fe", 7, 0)).responses[0].partitions[0]
    assert p.error_code.value == 3
    p = client.call(fetch_request(12, "no-such-topic-f", 0, 0)).responses[0].partitions[0]
    assert p.error_code.value == 3


def test_partition_max_bytes_returns_one_batch_at_least(client: RawClient) -> None:
    for i in range(5):
        produce(client, "limits", [b"x" * 500, b"y%d" % i])
    # smaller than one batch: still one whole batch (KIP-74)
    p = (
        client.call(fetch_request(12, "limits", 0, 0, partition_max_bytes=10))
        .responses[0]
        .partitions[0]
    )
    assert len(_core.scan_batches(p.records)) == 1
    one = len(p.records)
    p = (
        client.call(fetch_request(12, "limits", 0, 0, partition_max_bytes=one * 3))
        .responses[0]
        .partitions[0]
    )
    assert len(_core.scan_batches(p.records)) == 3
    p = client.call(fetch_request(12, "limits", 0, 0, max_bytes=one * 2)).responses[0].partitions[0]
    assert len(_core.scan_batches(p.records)) == 2
    p = client.call(fetch_request(12, "limits", 0, 0)).responses[0].partitions[0]
    assert len(_core.scan_batches(p.records)) == 5


def test_max_bytes_across_partitions(client: RawClient) -> None:
    for part in range(3):
        produce(client, "multi", [b"z" * 1000], partition=part)
    cls = load_request_schema(1, 12)
    pcls, tcls = nested(cls, "FetchPartition"), nested(cls, "FetchTopic")
    req = make(
        cls,
        replica_id=-1,
        max_wait=datetime.timedelta(0),
        min_bytes=0,
        max_bytes=10,
        isolation_level=0,
        session_id=0,
        session_epoch=-1,
        forgotten_topics_data=(),
        rack_id="",
        topics=(
            make(
                tcls,
                topic="multi",
                partitions=tuple(
                    make(pcls, partition=i, fetch_offset=0, partition_max_bytes=1 << 20)
                    for i in range(3)
                ),
            ),
        ),
    )
    parts = client.call(req).responses[0].partitions
    # only the first partition with data returns its batch; the response limit is used up
    assert [len(p.records) > 0 for p in parts] == [True, False, False]


def test_long_poll_woken_by_append(broker) -> None:
    c = RawClient(broker.bootstrap)
    produce(c, "lp", [b"first"])
    waiter = RawClient(broker.bootstrap)
    cid = waiter.send(fetch_request(12, "lp", 0, 1, max_wait_ms=20000, min_bytes=1))
    # the fetch is parked: a later request on the same connection waits behind it
    cid2 = waiter.send(request(18, 0))
    timer = threading.Timer(0.5, lambda: produce(c, "lp", [b"second"]))
    timer.start()
    started = time.monotonic()
    got, r = decode_response(waiter.read_frame(), 1, 12)
    woke_after = time.monotonic() - started
    timer.join()
    assert got == cid
    p = r.responses[0].partitions[0]
    assert [v for _o, _t, _k, v, _h in _core.iter_records(p.records, 1)] == [b"second"]
    assert woke_after < 15  # woken by the append, well before max_wait
    assert decode_response(waiter.read_frame(), 18, 0)[0] == cid2
    c.close()
    waiter.close()


def test_long_poll_times_out_empty(client: RawClient) -> None:
    produce(client, "lp-empty", [b"a"])
    started = time.monotonic()
    r = client.call(fetch_request(12, "lp-empty", 0, 1, max_wait_ms=300, min_bytes=1))
    assert time.monotonic() - started >= 0.25  # it did wait for max_wait
    p = r.responses[0].partitions[0]
    assert p.error_code.value == 0 and p.records == b""


def test_min_bytes_not_reached_waits_then_returns_what_there_is(client: RawClient) -> None:
    produce(client, "minb", [b"a"])
    r = client.call(fetch_request(12, "minb", 0, 0, max_wait_ms=200, min_bytes=10 << 20))
    assert len(_core.iter_records(r.responses[0].partitions[0].records, 0)) == 1


def test_large_fetch_through_sendfile(client: RawClient) -> None:
    values = [bytes([i % 251]) * 20000 for i in range(100)]
    for i in range(0, 100, 10):
        produce(client, "large", values[i : i + 10])
    p = client.call(fetch_request(12, "large", 0, 0)).responses[0].partitions[0]
    assert [v for _o, _t, _k, v, _h in _core.iter_records(p.records, 0)] == values


# -- ListOffsets -----------------------------------------------------------------------


def list_offsets_request(
    version: int, topic: str, timestamp: int, partition: int = 0, isolation: int = 0
):
    cls = load_request_schema(2, version)
    pcls, tcls = nested(cls, "ListOffsetsPartition"), nested(cls, "ListOffsetsTopic")
    return make(
        cls,
        replica_id=-1,
        isolation_level=isolation,
        topics=(
            make(
                tcls,
                name=topic,
                partitions=(
                    make(
                        pcls,
                        partition_index=partition,
                        current_leader_epoch=-1,
                        timestamp=timestamp,
                        max_num_offsets=1,
                    ),
                ),
            ),
        ),
    )


@pytest.mark.parametrize("version", range(1, 8))
def test_list_offsets_every_version(client: RawClient, version: int) -> None:
    topic = f"lo-v{version}"
    produce(client, topic, [b"a"], ts=1000)
    produce(client, topic, [b"b", b"c"], ts=5000)
    produce(client, topic, [b"d"], ts=3000)

    def ask(ts: int):
        (t,) = client.call(list_offsets_request(version, topic, ts)).topics
        (p,) = t.partitions
        assert p.error_code.value == 0
        return p.offset, p.timestamp

    assert ask(-2) == (0, -1)
    assert ask(-1) == (4, -1)
    assert ask(0) == (0, 1000)
    assert ask(1001) == (1, 5000)
    assert ask(5000) == (1, 5000)
    assert ask(5001) == (-1, -1)
    if version >= 7:
        offset, ts = ask(-3)
        assert ts == 5000 and offset in (1, 2)  # a record of the batch with the max timestamp


def test_list_offsets_errors(client: RawClient) -> None:
    (t,) = client.call(list_offsets_request(5, "lo-unknown-topic-x", -1)).topics
    assert t.partitions[0].error_code.value == 3
    produce(client, "lo-e", [b"a"])
    (t,) = client.call(list_offsets_request(5, "lo-e", -1, partition=9)).topics
    assert t.partitions[0].error_code.value == 3


def test_slow_reader_pipelined_big_fetches(broker) -> None:
    """Responses bigger than the socket buffers to a client that does not read for a while:
    the sendfile path waits for writability (EAGAIN) without blocking other clients, and
    the pipelined responses arrive whole and in order."""
    c = RawClient(broker.bootstrap)
    values = [bytes([i % 251]) * 100_000 for i in range(40)]  # ~4 MB
    for i in range(0, 40, 4):
        produce(c, "slow-reader", values[i : i + 4])
    ids = [
        c.send(fetch_request(12, "slow-reader", 0, 0, partition_max_bytes=8 << 20))
        for _ in range(3)
    ]
    ids.append(c.send(request(18, 0)))
    other = RawClient(broker.bootstrap)
    time.sleep(1.0)  # the broker's sends hit a full socket buffer meanwhile
    assert other.call(request(18, 0)).error_code.value == 0  # others are still served
    other.close()
    for cid in ids[:3]:
        got, r = decode_response(c.read_frame(), 1, 12)
        assert got == cid
        recs = _core.iter_records(r.responses[0].partitions[0].records, 0)
        assert [v for _o, _t, _k, v, _h in recs] == values
    assert decode_response(c.read_frame(), 18, 0)[0] == ids[3]
    c.close()


# -- fetch sessions (KIP-227) -------------------------------------------------------------


def session_fetch(
    session_id: int,
    epoch: int,
    parts: list[tuple[str, int, int]],
    forgotten: list[tuple[str, list[int]]] = (),
):
    cls = load_request_schema(1, 12)
    pcls, tcls = nested(cls, "FetchPartition"), nested(cls, "FetchTopic")
    fcls = nested(cls, "ForgottenTopic")
    by_topic: dict[str, list] = {}
    for topic, partition, offset in parts:
        by_topic.setdefault(topic, []).append(
            make(pcls, partition=partition, fetch_offset=offset, partition_max_bytes=1 << 20)
        )
    return make(
        cls,
        replica_id=-1,
        max_wait=datetime.timedelta(0),
        min_bytes=0,
        max_bytes=50 << 20,
        isolation_level=0,
        session_id=session_id,
        session_epoch=epoch,
        rack_id="",
        topics=tuple(make(tcls, topic=t, partitions=tuple(ps)) for t, ps in by_topic.items()),
        forgotten_topics_data=tuple(
            make(fcls, topic=t, partitions=tuple(ps)) for t, ps in forgotten
        ),
    )


def _answered(r) -> dict[tuple[str, int], object]:
    return {(t.topic, p.partition_index): p for t in r.responses for p in t.partitions}


def test_fetch_session_full_then_incremental(client: RawClient) -> None:
    for part in range(3):
        produce(client, "sess", [b"p%d" % part], partition=part)
    r = client.call(session_fetch(0, 0, [("sess", 0, 0), ("sess", 1, 0), ("sess", 2, 0)]))
    assert r.error_code.value == 0 and r.session_id > 0
    sid = r.session_id
    assert set(_answered(r)) == {("sess", 0), ("sess", 1), ("sess", 2)}
    # incremental: the client moved its offsets forward; nothing changed -> empty answer
    r = client.call(session_fetch(sid, 1, [("sess", 0, 1), ("sess", 1, 1), ("sess", 2, 1)]))
    assert r.session_id == sid and _answered(r) == {}
    # new data on partition 1 only: only partition 1 is in the answer (not named in the request)
    produce(client, "sess", [b"more"], partition=1)
    r = client.call(session_fetch(sid, 2, []))
    answered = _answered(r)
    assert set(answered) == {("sess", 1)}
    recs = _core.iter_records(answered[("sess", 1)].records, 1)
    assert [v for _o, _t, _k, v, _h in recs] == [b"more"]
    # forget partition 1: new data there is no longer answered
    produce(client, "sess", [b"again"], partition=1)
    r = client.call(session_fetch(sid, 3, [], forgotten=[("sess", [1])]))
    assert _answered(r) == {}
    # wrong epoch, unknown session
    assert client.call(session_fetch(sid, 9, [])).error_code.value == 71
    assert client.call(session_fetch(123, 1, [])).error_code.value == 70
    # close the session: a sessionless full fetch
    r = client.call(session_fetch(sid, -1, [("sess", 0, 0)]))
    assert r.session_id == 0 and set(_answered(r)) == {("sess", 0)}
    assert client.call(session_fetch(sid, 4, [])).error_code.value == 70


def test_kafka_python_consumer_with_sessions(broker) -> None:
    """kafka-python opens incremental fetch sessions: every record of several partitions
    arrives exactly once while more are produced."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    c = RawClient(broker.bootstrap)
    for part in range(3):
        produce(c, "kp-sess", [b"%d-first" % part], partition=part)
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    tps = [KTP("kp-sess", i) for i in range(3)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    produced = 3
    while time.monotonic() < deadline and len(got) < 33:
        for records in consumer.poll(timeout_ms=200).values():
            got += [m.value for m in records]
        if produced < 33:
            part = produced % 3
            produce(c, "kp-sess", [b"%d-%d" % (part, produced)], partition=part)
            produced += 1
    consumer.close()
    c.close()
    assert len(got) == 33 and len(set(got)) == 33


def test_fetch_below_v10_of_a_zstd_topic_is_unsupported_compression_type(make_broker) -> None:
    # KIP-110: a consumer too old for zstd (Fetch < v10) gets UNSUPPORTED_COMPRESSION_TYPE (76)
    # for a topic whose compression.type is zstd, instead of batches it cannot decode
    b = make_broker({"compression.type": "zstd"})
    c = RawClient(b.bootstrap)
    try:
        produce(c, "zt", [b"a", b"b"])
        for version in (4, 9):
            p = c.call(fetch_request(version, "zt", 0, 0)).responses[0].partitions[0]
            assert p.error_code.value == 76 and p.records in (b"", None)
        for version in (10, 12):
            p = c.call(fetch_request(version, "zt", 0, 0)).responses[0].partitions[0]
            assert p.error_code.value == 0
            assert [r[3] for r in _core.iter_records(p.records, 0)] == [b"a", b"b"]
            assert {i.compression for i in _core.scan_batches(p.records)} == {4}
    finally:
        c.close()
