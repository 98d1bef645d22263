"""Scale-out cost: how long moving a full partition onto a new broker takes.

Three brokers and a real ZooKeeper (tests/cluster fixtures); a one-partition RF-3 topic is
filled with `fastlog perf produce`, a 4th broker joins, and the partition is reassigned from
[a, b, c] to [4, b, c]. Times the reassignment from the request to its completion in ZooKeeper
(the new replica copied the whole log and joined the ISR, leadership moved, the old replica
was removed).

    python benchmarks/bench_reassignment.py [--records 500000] [--size 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent / "tests")]

from bench_replication import perf  # noqa: E402
from cluster.conftest import Cluster, ZooKeeperServer, wait_until  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from kafka import TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient  # noqa: E402
from support import BrokerProcess, free_port  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=500_000)
    ap.add_argument("--size", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "zk").mkdir()
        zk = ZooKeeperServer(work / "zk").start()
        c = Cluster(zk, work)
        try:
            c.start()
            admin = AdminClient({"bootstrap.servers": c.bootstrap})
            admin.create_topics([NewTopic("big", 1, 3)])["big"].result(15)
            r = perf(c.bootstrap, "big", args.records, args.size, "all")
            print(f"filled: {r.get('records', args.records)} records of {args.size} B", flush=True)
            d = work / "broker-4" / "data"
            d.mkdir(parents=True)
            c.brokers[4] = BrokerProcess(
                d, free_port(), dict(c.overrides), ["--node-id", "4", "--zookeeper", c.connect]
            )
            c.start_broker(4)
            old = c.assignment("big")[0]
            target = [4, *old[1:]]
            kadmin = KafkaAdminClient(bootstrap_servers=c.bootstrap.split(","))
            t0 = time.monotonic()
            kadmin.alter_partition_reassignments({TopicPartition("big", 0): target})
            wait_until(lambda: c.assignment("big")[0] == target, 600, "reassignment")
            took = time.monotonic() - t0
            kadmin.close()
            size = sum(f.stat().st_size for f in (d / "big-0").glob("*.log"))
            print(
                f"moved {size / 1e6:.1f} MB ({args.records} records) to broker 4 in {took:.2f}s "
                f"({size / 1e6 / took:.1f} MB/s)",
                flush=True,
            )
        finally:
            c.stop()
            zk.stop()


if __name__ == "__main__":
    main()
