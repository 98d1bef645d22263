"""What every client wrote survives a clean restart (SIGTERM) and a kill -9 of the broker, and
every client reads it back, then keeps writing after the offsets it had."""

from __future__ import annotations

from .drivers import BY_NAME, DRIVERS
from .helpers import now_ms, unique_topic
from .ondisk import assert_contiguous, read_batches

REFERENCE = BY_NAME["confluent-kafka"]


def test_every_client_reads_its_records_after_restart_and_kill9(make_broker):
    b = make_broker({"num.partitions": "1"})
    ts0 = now_ms() - 60_000
    written = {}
    for client in DRIVERS:
        topic = unique_topic(f"restart-{client.name}")
        sent = client.sample_records(ts0)
        client.produce(b.bootstrap, topic, sent, compression=client.codecs[-1])
        written[client.name] = (topic, sent)

    for bounce in (b.restart, b.kill):
        bounce()
        if b.proc is None or b.proc.poll() is not None:
            b.start()
        for client in DRIVERS:
            topic, sent = written[client.name]
            got = client.consume(b.bootstrap, topic, 0, 0, len(sent) + 5)
            assert [r.offset for r in got] == list(range(len(sent))), (bounce, client.name)
            assert [r.content() for r in got] == [r.content() for r in sent], client.name
            assert client.watermarks(b.bootstrap, topic, 0) == (0, len(sent)), client.name

    # Appends continue right after the recovered end, with no gap and no overlap.
    for client in DRIVERS:
        topic, sent = written[client.name]
        more = client.sample_records(ts0)[:3]
        offsets = client.produce(b.bootstrap, topic, more)
        if client.reports_offsets:
            assert offsets == [len(sent), len(sent) + 1, len(sent) + 2], client.name
        assert assert_contiguous(read_batches(b.data_dir, topic, 0)) == len(sent) + 3
        got = REFERENCE.consume(b.bootstrap, topic, 0, len(sent), 10)
        assert [r.content() for r in got] == [r.content() for r in more], client.name
