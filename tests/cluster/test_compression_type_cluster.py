"""compression.type in a cluster (real ZooKeeper, three brokers): only the leader re-encodes;
followers copy the leader's bytes, so every replica's segment files hold the same zstd
batches, and a consumer reads the records as the producer sent them."""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import Producer

from cluster.conftest import Cluster, wait_until
from cluster.test_replication_e2e import create, read_all
from fastlog import _core


def segment_bytes(data_dir: Path, topic: str, partition: int) -> bytes:
    d = data_dir / f"{topic}-{partition}"
    return b"".join(s.read_bytes() for s in sorted(d.glob("*.log")))


def test_followers_store_the_leaders_re_encoded_batches(cluster: Cluster) -> None:
    create(cluster, "zst", **{"compression.type": "zstd", "min.insync.replicas": "2"})
    p = Producer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "compression.codec": "none",
            "linger.ms": 20,
        }
    )
    acked: list[int] = []
    for i in range(400):
        p.produce(
            "zst",
            b"record %05d " % i * 8,
            key=b"%d" % (i % 5),
            headers=[("i", b"%d" % i)],
            on_delivery=lambda e, m: acked.append(m.offset()) if e is None else None,
        )
    assert p.flush(30) == 0 and sorted(acked) == list(range(400))
    records = read_all(cluster.bootstrap, "zst", 0, 400)
    assert [v for _, v in records] == [b"record %05d " % i * 8 for i in range(400)]
    nodes = sorted(cluster.brokers)

    def replicas_equal() -> bool:
        logs = [segment_bytes(cluster.brokers[n].data_dir, "zst", 0) for n in nodes]
        return len(logs[0]) > 0 and all(x == logs[0] for x in logs)

    wait_until(replicas_equal, 20, "identical segment files on every replica")
    batches = _core.scan_batches(segment_bytes(cluster.brokers[nodes[0]].data_dir, "zst", 0))
    assert {b.compression for b in batches} == {_core.COMPRESSION_ZSTD}
    assert sum(b.record_count for b in batches) == 400
