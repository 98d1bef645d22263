"""The idempotent producer with each client: InitProducerId, sequence numbers the broker stores,
every record exactly once."""

from __future__ import annotations

from collections import defaultdict

from .drivers import BY_NAME
from .helpers import by_client, now_ms, unique_topic
from .ondisk import assert_contiguous, read_batches


@by_client()
def test_idempotent_producer(broker, client):
    bs = broker.bootstrap
    topic = unique_topic(f"idem-{client.name}")
    sent = client.sample_records(now_ms() - 10_000)
    # Two producer sessions (two producers, one after the other), each its own producer id.
    first = client.produce(bs, topic, sent, idempotent=True, compression=client.codecs[1])
    second = client.produce(bs, topic, sent, idempotent=True)
    if client.reports_offsets:
        assert first == list(range(len(sent)))
        assert second == list(range(len(sent), 2 * len(sent)))

    got = client.consume(bs, topic, 0, 0, 3 * len(sent))
    assert [r.offset for r in got] == list(range(2 * len(sent)))
    assert [r.content() for r in got] == [r.content() for r in sent + sent]

    batches = read_batches(broker.data_dir, topic, 0)
    assert assert_contiguous(batches) == 2 * len(sent)
    by_pid: dict[int, list] = defaultdict(list)
    for b in batches:
        assert b.producer_id >= 0 and b.producer_epoch >= 0, b
        assert not b.is_transactional, b
        by_pid[b.producer_id].append(b)
    # Each producer's sequences start at 0 and run on without a gap, batch after batch.
    for pid, mine in by_pid.items():
        seq = 0
        for b in mine:
            assert b.base_sequence == seq, (pid, mine)
            seq += b.records_count
    # kcat runs one producer (so one producer id) per invocation; the others one per session.
    sessions = 2 if client.reports_offsets else 2 * len({r.headers for r in sent})
    assert len(by_pid) == sessions, dict(by_pid)
    assert client.watermarks(bs, topic, 0) == (0, 2 * len(sent))


def test_idempotent_producer_ids_are_unique_across_restart(make_broker):
    """Producer ids handed out by InitProducerId are never reused after a broker restart."""
    client = BY_NAME["confluent-kafka"]
    b = make_broker({"num.partitions": "1"})
    topic = unique_topic("idem-restart")
    rec = client.sample_records(now_ms())[:3]
    client.produce(b.bootstrap, topic, rec, idempotent=True)
    b.restart()
    client.produce(b.bootstrap, topic, rec, idempotent=True)
    batches = read_batches(b.data_dir, topic, 0)
    assert assert_contiguous(batches) == 6
    pids = [x.producer_id for x in batches]
    assert len(set(pids)) == 2, batches
    got = client.consume(b.bootstrap, topic, 0, 0, 10)
    assert [r.content() for r in got] == [r.content() for r in rec + rec]
