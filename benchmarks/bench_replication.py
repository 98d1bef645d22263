"""Replication cost: `fastlog perf produce` against a 3-broker cluster (real ZooKeeper,
tests/cluster fixtures) to an RF-3 topic with acks=1 and acks=all, and to an RF-1 topic.

    python benchmarks/bench_replication.py [--records 200000] [--size 100]

Prints one line per run (records/s, MB/s, average and p99 latency as perf reports them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent / "tests")]

from cluster.conftest import Cluster, ZooKeeperServer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def perf(bootstrap: str, topic: str, records: int, size: int, acks: str) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from broker.cli import main; main()",
            "perf",
            "produce",
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--record-size",
            str(size),
            "--acks",
            acks,
            "--json",
            "--no-progress",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--size", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "zk").mkdir()
        zk = ZooKeeperServer(work / "zk").start()
        cluster = Cluster(zk, work)
        try:
            cluster.start()
            admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
            for name, rf in (("rf3", 3), ("rf1", 1)):
                admin.create_topics([NewTopic(name, 1, rf)])[name].result(15)
            for topic, acks in (("rf1", "1"), ("rf3", "1"), ("rf3", "all")):
                r = perf(cluster.bootstrap, topic, args.records, args.size, acks)
                print(f"{topic} acks={acks}: {json.dumps(r)}", flush=True)
        finally:
            cluster.stop()
            zk.stop()


if __name__ == "__main__":
    main()
