"""Batches librdkafka (confluent-kafka) builds, with every codec, read back through the core.

librdkafka writes snappy as one raw block, where the Java client writes xerial framing; this
test covers that path with the real library. A real broker stores the producer's bytes, and the
test then reads the partition's segment files directly with scan_batches, validate_records and
iter_records.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Producer

from fastlog import _core

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@pytest.mark.parametrize("codec", list(CODECS))
def test_librdkafka_batches_read_back(broker, codec: str) -> None:
    topic = f"core-rdk-{codec}"
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 20}
    )
    values = [(b"value %d " % i) * 20 for i in range(500)]
    for i, value in enumerate(values):
        key = None if i % 10 == 0 else b"k%d" % i
        producer.produce(
            topic, partition=0, key=key, value=value, headers=[("h", b"%d" % i), ("n", None)]
        )
    assert producer.flush(30) == 0  # acks=all: every batch is in the log file

    segments = sorted((broker.data_dir / f"{topic}-0").glob("*.log"))
    assert segments, list(broker.data_dir.iterdir())
    data = b"".join(Path(s).read_bytes() for s in segments)
    infos = _core.scan_batches(data)
    assert {i.compression for i in infos} == {CODECS[codec]}
    if codec == "snappy":
        assert not data[infos[0].position + 61 :].startswith(b"\x82SNAPPY\x00")  # raw snappy
    assert _core.validate_records(data) == len(values)
    rows = _core.iter_records(data)
    assert [r[0] for r in rows] == list(range(len(values)))
    assert [r[3] for r in rows] == values
    assert [r[2] for r in rows] == [None if i % 10 == 0 else b"k%d" % i for i in range(len(values))]
    assert [r[4] for r in rows] == [[("h", b"%d" % i), ("n", None)] for i in range(len(values))]
