"""Produce (every version, acks 0/1/-1, validation errors, LogAppendTime) and the idempotent
producer (dedup, sequence and epoch errors, state across restarts), on raw sockets."""

from __future__ import annotations

import datetime
import random
import threading
import time
import warnings

import pytest
from kio.index import load_request_schema
from test_broker_network import RawClient, request

from broker.protocol import decode_response, encode_request, make, nested
from fastlog import _core


def produce_request(
    version: int, topic: str, partition: int, records: bytes | None, acks: int = -1
):
    cls = load_request_schema(0, version)
    pcls = nested(cls, "PartitionProduceData")
    tcls = nested(cls, "TopicProduceData")
    return make(
        cls,
        transactional_id=None,
        acks=acks,
        timeout=datetime.timedelta(seconds=10),
        topic_data=(
            make(tcls, name=topic, partition_data=(make(pcls, index=partition, records=records),)),
        ),
    )


def fetch_request(
    version: int,
    topic: str,
    partition: int,
    offset: int,
    *,
    max_wait_ms: int = 0,
    min_bytes: int = 0,
    max_bytes: int = 50 << 20,
    partition_max_bytes: int = 10 << 20,
    isolation: int = 0,
):
    cls = load_request_schema(1, version)
    pcls = nested(cls, "FetchPartition")
    tcls = nested(cls, "FetchTopic")
    return make(
        cls,
        replica_id=-1,
        max_wait=datetime.timedelta(milliseconds=max_wait_ms),
        min_bytes=min_bytes,
        max_bytes=max_bytes,
        isolation_level=isolation,
        session_id=0,
        session_epoch=-1,
        topics=(
            make(
                tcls,
                topic=topic,
                partitions=(
                    make(
                        pcls,
                        partition=partition,
                        current_leader_epoch=-1,
                        fetch_offset=offset,
                        last_fetched_epoch=-1,
                        log_start_offset=-1,
                        partition_max_bytes=partition_max_bytes,
                    ),
                ),
            ),
        ),
        forgotten_topics_data=(),
        rack_id="",
    )


def batch(
    values: list[bytes | None],
    *,
    pid: int = -1,
    epoch: int = -1,
    seq: int = -1,
    ts: int | None = None,
    compression: int = 0,
) -> bytes:
    now = int(time.time() * 1000) if ts is None else ts
    return _core.build_batch(
        [(b"k%d" % i, v, [("h", b"x")], now) for i, v in enumerate(values)],
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        compression=compression,
    )


def partition_response(response):
    (t,) = response.responses
    (p,) = t.partition_responses
    return p


def fetch_all(client: RawClient, topic: str, partition: int = 0, offset: int = 0):
    r = client.call(fetch_request(12, topic, partition, offset))
    p = r.responses[0].partitions[0]
    assert p.error_code.value == 0
    return p, _core.iter_records(p.records or b"", offset)


@pytest.fixture
def client(broker):
    c = RawClient(broker.bootstrap)
    yield c
    c.close()


@pytest.mark.parametrize("version", range(3, 10))
def test_produce_every_version(client: RawClient, version: int) -> None:
    topic = f"produce-v{version}"
    first = partition_response(client.call(produce_request(version, topic, 0, batch([b"a", b"b"]))))
    assert first.error_code.value == 0 and first.base_offset == 0
    second = partition_response(client.call(produce_request(version, topic, 0, batch([b"c"]))))
    assert second.base_offset == 2
    if version >= 5:
        assert second.log_start_offset == 0
    assert second.log_append_time is None  # CreateTime topic: -1
    _, records = fetch_all(client, topic)
    assert [r[3] for r in records] == [b"a", b"b", b"c"]
    assert [r[0] for r in records] == [0, 1, 2]


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_compressed_batches_stored_as_sent(client: RawClient, codec: int) -> None:
    topic = f"codec-{codec}"
    sent = batch([b"x" * 1000, None, b"y"], compression=codec)
    assert partition_response(client.call(produce_request(9, topic, 0, sent))).error_code.value == 0
    p, records = fetch_all(client, topic)
    assert [r[3] for r in records] == [b"x" * 1000, None, b"y"]
    stored = p.records
    assert _core.scan_batches(stored)[0].compression == codec
    # only the base offset and partition leader epoch (not under the CRC) differ
    assert stored[16:] == sent[16:]


def test_acks(client: RawClient) -> None:
    for acks in (1, -1):
        r = partition_response(client.call(produce_request(7, "acks", 0, batch([b"v"]), acks=acks)))
        assert r.error_code.value == 0
    # acks=0: no response at all; the next response on the connection is the next request's
    client.send(produce_request(7, "acks", 0, batch([b"zero"]), acks=0))
    cid = client.send(request(18, 0))
    got, _ = decode_response(client.read_frame(), 18, 0)
    assert got == cid
    _, records = fetch_all(client, "acks")
    assert [r[3] for r in records] == [b"v", b"v", b"zero"]
    r = partition_response(client.call(produce_request(7, "acks", 0, batch([b"v"]), acks=2)))
    assert r.error_code.value == 21  # INVALID_REQUIRED_ACKS


def test_acks_zero_failure_closes_connection(broker) -> None:
    c = RawClient(broker.bootstrap)
    bad = bytearray(batch([b"v"]))
    bad[-1] ^= 0xFF
    c.send(produce_request(7, "acks0-bad", 0, bytes(bad), acks=0))
    assert c.is_closed()
    c.close()


def test_corrupt_message(client: RawClient) -> None:
    bad = bytearray(batch([b"value"]))
    bad[-2] ^= 0x55  # breaks the CRC-32C
    r = partition_response(client.call(produce_request(9, "corrupt", 0, bytes(bad))))
    assert r.error_code.value == 2
    bad = bytearray(batch([b"value"]))
    bad[16] = 1  # magic 1
    assert (
        partition_response(
            client.call(produce_request(9, "corrupt", 0, bytes(bad)))
        ).error_code.value
        == 2
    )
    truncated = batch([b"value"])[:-3]
    assert (
        partition_response(
            client.call(produce_request(9, "corrupt", 0, truncated))
        ).error_code.value
        == 2
    )
    # nothing was appended
    r = partition_response(client.call(produce_request(9, "corrupt", 0, batch([b"ok"]))))
    assert r.error_code.value == 0 and r.base_offset == 0


def test_message_too_large(make_broker) -> None:
    b = make_broker({"message.max.bytes": "2000"})
    c = RawClient(b.bootstrap)
    r = partition_response(c.call(produce_request(9, "big", 0, batch([b"x" * 3000]))))
    assert r.error_code.value == 10
    r = partition_response(c.call(produce_request(9, "big", 0, batch([b"x" * 100]))))
    assert r.error_code.value == 0
    c.close()


def test_log_append_time(make_broker) -> None:
    b = make_broker({"log.message.timestamp.type": "LogAppendTime"})
    c = RawClient(b.bootstrap)
    before = int(time.time() * 1000)
    r = partition_response(c.call(produce_request(9, "lat", 0, batch([b"v"], ts=1000))))
    after = int(time.time() * 1000)
    assert r.error_code.value == 0
    stamp = int(r.log_append_time.timestamp() * 1000)
    assert before - 1 <= stamp <= after + 1
    _, records = fetch_all(c, "lat")
    assert records[0][1] == stamp
    c.close()


def test_unknown_partition_and_invalid_topic(client: RawClient) -> None:
    client.call(produce_request(9, "known", 0, batch([b"v"])))
    r = partition_response(client.call(produce_request(9, "known", 99, batch([b"v"]))))
    assert r.error_code.value == 3
    r = partition_response(client.call(produce_request(9, "bad topic", 0, batch([b"v"]))))
    assert r.error_code.value == 17


def test_auto_create_off_on_produce(make_broker) -> None:
    b = make_broker({"auto.create.topics.enable": "false"})
    c = RawClient(b.bootstrap)
    r = partition_response(c.call(produce_request(9, "nope", 0, batch([b"v"]))))
    assert r.error_code.value == 3
    c.close()


# -- idempotent producer --------------------------------------------------------------------


def init_producer_id(client: RawClient, version: int = 4) -> tuple[int, int]:
    r = client.call(
        make(
            load_request_schema(22, version),
            transactional_id=None,
            transaction_timeout=datetime.timedelta(seconds=60),
            producer_id=-1,
            producer_epoch=-1,
        )
    )
    assert r.error_code.value == 0
    return r.producer_id, r.producer_epoch


@pytest.mark.parametrize("version", range(0, 5))
def test_init_producer_id_versions(client: RawClient, version: int) -> None:
    a = init_producer_id(client, version)
    b = init_producer_id(client, version)
    assert a[0] >= 0 and b[0] != a[0] and a[1] == 0


def test_idempotent_retry_gets_original_offset(client: RawClient) -> None:
    pid, epoch = init_producer_id(client)
    topic = "idem"
    b0 = batch([b"a", b"b"], pid=pid, epoch=epoch, seq=0)
    b1 = batch([b"c"], pid=pid, epoch=epoch, seq=2)
    assert partition_response(client.call(produce_request(9, topic, 0, b0))).base_offset == 0
    assert partition_response(client.call(produce_request(9, topic, 0, b1))).base_offset == 2
    # both retried: acknowledged with their original offsets, not appended again
    r = partition_response(client.call(produce_request(9, topic, 0, b0)))
    assert (r.error_code.value, r.base_offset) == (0, 0)
    r = partition_response(client.call(produce_request(9, topic, 0, b1)))
    assert (r.error_code.value, r.base_offset) == (0, 2)
    p, records = fetch_all(client, topic)
    assert p.high_watermark == 3
    assert [r[3] for r in records] == [b"a", b"b", b"c"]


def test_out_of_order_sequence_and_stale_epoch(client: RawClient) -> None:
    pid, epoch = init_producer_id(client)
    topic = "idem-errors"
    client.call(produce_request(9, topic, 0, batch([b"a"], pid=pid, epoch=epoch, seq=0)))
    r = partition_response(
        client.call(produce_request(9, topic, 0, batch([b"gap"], pid=pid, epoch=epoch, seq=5)))
    )
    assert r.error_code.value == 45  # OUT_OF_ORDER_SEQUENCE_NUMBER
    # a bumped epoch must restart at sequence 0
    r = partition_response(
        client.call(produce_request(9, topic, 0, batch([b"x"], pid=pid, epoch=1, seq=3)))
    )
    assert r.error_code.value == 45
    r = partition_response(
        client.call(produce_request(9, topic, 0, batch([b"x"], pid=pid, epoch=1, seq=0)))
    )
    assert r.error_code.value == 0
    # the old epoch is fenced now
    r = partition_response(
        client.call(produce_request(9, topic, 0, batch([b"old"], pid=pid, epoch=0, seq=1)))
    )
    assert r.error_code.value == 47  # INVALID_PRODUCER_EPOCH
    p, records = fetch_all(client, topic)
    assert [r[3] for r in records] == [b"a", b"x"]


@pytest.mark.parametrize("how", ["clean", "kill"])
def test_producer_state_survives_restart(make_broker, how: str) -> None:
    b = make_broker()
    c = RawClient(b.bootstrap)
    pid, epoch = init_producer_id(c)
    batches = [batch([b"v%d" % i], pid=pid, epoch=epoch, seq=i) for i in range(8)]
    for i, data in enumerate(batches):
        assert (
            partition_response(c.call(produce_request(9, "durable-idem", 0, data))).base_offset == i
        )
    c.close()
    if how == "kill":
        b.kill()
        b.start()
    else:
        b.restart()
    c = RawClient(b.bootstrap)
    # the last five batches are remembered: a retry of each is a duplicate
    for i in range(3, 8):
        r = partition_response(c.call(produce_request(9, "durable-idem", 0, batches[i])))
        assert (r.error_code.value, r.base_offset) == (0, i)
    r = partition_response(
        c.call(produce_request(9, "durable-idem", 0, batch([b"next"], pid=pid, epoch=epoch, seq=8)))
    )
    assert (r.error_code.value, r.base_offset) == (0, 8)
    r = partition_response(
        c.call(produce_request(9, "durable-idem", 0, batch([b"gap"], pid=pid, epoch=epoch, seq=20)))
    )
    assert r.error_code.value == 45
    p, records = fetch_all(c, "durable-idem")
    assert [r[3] for r in records] == [b"v%d" % i for i in range(8)] + [b"next"]
    c.close()
    if how == "clean":
        snapshots = list((b.data_dir / "durable-idem-0").glob("*.snapshot"))
        assert snapshots, "a clean shutdown writes a producer state snapshot"


def test_idempotent_request_with_two_batches_refused(client: RawClient) -> None:
    pid, epoch = init_producer_id(client)
    two = batch([b"a"], pid=pid, epoch=epoch, seq=0) + batch([b"b"], pid=pid, epoch=epoch, seq=1)
    r = partition_response(client.call(produce_request(9, "idem-two", 0, two)))
    assert r.error_code.value == 87  # INVALID_RECORD


def test_multiple_plain_batches_in_one_request(client: RawClient) -> None:
    data = batch([b"a"]) + batch([b"b", b"c"])
    r = partition_response(client.call(produce_request(9, "two-batches", 0, data)))
    assert (r.error_code.value, r.base_offset) == (0, 0)
    _, records = fetch_all(client, "two-batches")
    assert [(r[0], r[3]) for r in records] == [(0, b"a"), (1, b"b"), (2, b"c")]


def test_produce_pipelined_in_order(client: RawClient) -> None:
    ids = [client.send(produce_request(9, "pipelined", 0, batch([b"%d" % i]))) for i in range(200)]
    offsets = []
    for cid in ids:
        got, r = decode_response(client.read_frame(), 0, 9)
        assert got == cid
        offsets.append(partition_response(r).base_offset)
    assert offsets == list(range(200))
    _, records = fetch_all(client, "pipelined")
    assert [int(r[3]) for r in records] == list(range(200))


def test_invalid_timestamp(make_broker) -> None:
    b = make_broker(
        {
            "log.message.timestamp.after.max.ms": "60000",
            "log.message.timestamp.before.max.ms": "3600000",
        }
    )
    c = RawClient(b.bootstrap)
    now = int(time.time() * 1000)
    r = partition_response(
        c.call(produce_request(9, "ts", 0, batch([b"future"], ts=now + 3_600_000)))
    )
    assert r.error_code.value == 32  # INVALID_TIMESTAMP
    r = partition_response(c.call(produce_request(9, "ts", 0, batch([b"past"], ts=1000))))
    assert r.error_code.value == 32
    r = partition_response(c.call(produce_request(9, "ts", 0, batch([b"now"], ts=now))))
    assert (r.error_code.value, r.base_offset) == (0, 0)
    c.close()


def test_min_insync_replicas_above_isr(make_broker) -> None:
    b = make_broker({"min.insync.replicas": "2"})
    c = RawClient(b.bootstrap)
    r = partition_response(c.call(produce_request(9, "misr", 0, batch([b"v"]), acks=-1)))
    assert r.error_code.value == 19  # NOT_ENOUGH_REPLICAS
    r = partition_response(c.call(produce_request(9, "misr", 0, batch([b"v"]), acks=1)))
    assert r.error_code.value == 0
    c.close()


def test_pipelined_large_requests_are_paced(make_broker) -> None:
    """40 pipelined ~900 KB produce requests (more than the in-flight byte bound): reading
    pauses and resumes, every request is answered in order."""
    b = make_broker({"socket.request.max.bytes": str(1 << 20), "message.max.bytes": str(1 << 20)})
    c = RawClient(b.bootstrap)
    payload = batch([b"p" * 900_000])
    sender = threading.Thread(
        target=lambda: [
            c.send(produce_request(9, "paced", 0, payload), correlation_id=i) for i in range(40)
        ]
    )
    sender.start()
    for i in range(40):
        got, r = decode_response(c.read_frame(), 0, 9)
        assert got == i
        assert partition_response(r).base_offset == i
    sender.join()
    c.close()


def test_topic_config_change_applies_to_appends(broker) -> None:
    """message.timestamp.type and max.message.bytes changed on a live topic (AlterConfigs
    through confluent-kafka's admin client) take effect on the next append."""
    from confluent_kafka.admin import AdminClient, ConfigResource

    c = RawClient(broker.bootstrap)
    r = partition_response(c.call(produce_request(9, "live-config", 0, batch([b"x" * 2000]))))
    assert r.error_code.value == 0 and r.log_append_time is None
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    resource = ConfigResource(
        "topic",
        "live-config",
        set_config={"message.timestamp.type": "LogAppendTime", "max.message.bytes": "1000"},
    )
    with warnings.catch_warnings():
        # deliberately the legacy AlterConfigs API (librdkafka deprecates it client-side)
        warnings.simplefilter("ignore", DeprecationWarning)
        futures = admin.alter_configs([resource])
    for future in futures.values():
        future.result(timeout=10)
    r = partition_response(c.call(produce_request(9, "live-config", 0, batch([b"x" * 2000]))))
    assert r.error_code.value == 10
    r = partition_response(c.call(produce_request(9, "live-config", 0, batch([b"small"], ts=1000))))
    assert r.error_code.value == 0 and r.log_append_time is not None
    c.close()


def test_large_requests_pipelined_and_split(client: RawClient) -> None:
    """Frames larger than the broker's 64 KiB read-ahead buffer are read into buffers of
    their own, reused from request to request: several in a row, split at odd places and
    mixed with small requests, each is appended whole and in order."""
    topic = "large-frames"
    rng = random.Random(6)
    sizes = [70_000, 900_000, 10, 1_000_000, 300_000, 2_500_000, 5, 900_000, 65_530]
    values = [rng.randbytes(n) for n in sizes]
    blob = bytearray()
    for cid, value in enumerate(values, start=1):
        blob += encode_request(produce_request(9, topic, 0, batch([value])), cid, "large")
    cuts = [1, 7, 65_536, 3, 200_000, 13, 1 << 20]
    pos = i = 0
    while pos < len(blob):
        client.send_frame(bytes(blob[pos : pos + cuts[i % len(cuts)]]))
        pos += cuts[i % len(cuts)]
        i += 1
    kept = []
    for cid, value in enumerate(values, start=1):
        got, response = decode_response(client.read_frame(), 0, 9)
        assert got == cid
        code = partition_response(response).error_code.value
        if len(value) > 1_048_588 - 100:  # above max.message.bytes: refused, whole
            assert code == 10  # MESSAGE_TOO_LARGE
        else:
            assert code == 0
            kept.append(value)
    _, records = fetch_all(client, topic)
    assert [r[3] for r in records] == kept
