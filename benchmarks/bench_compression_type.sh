#!/bin/bash
# Broker CPU of compression.type: produce N x SIZE B records, sent uncompressed, into a topic
# per compression.type (producer = stored as sent; zstd, gzip = re-encoded by the leader) and
# read the broker's CPU (utime + stime of /proc/<pid>/stat) before and after each run.
#   bash benchmarks/bench_compression_type.sh                  # 1,000,000 x 100 B = 100 MB each
#   N=200000 TYPES="producer lz4" bash benchmarks/bench_compression_type.sh
#   PAYLOADS=1 bash benchmarks/bench_compression_type.sh   # 10,000 different JSON-like values
set -euo pipefail
N=${N:-1000000}
SIZE=${SIZE:-100}
TYPES=${TYPES:-producer zstd gzip}
DIR=$(mktemp -d /tmp/fastlog-compression-XXXXXX)
PORT=$(python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
B=127.0.0.1:$PORT
fastlog broker --host 127.0.0.1 --port "$PORT" --data-dir "$DIR/data" --log-level WARNING \
    --override num.partitions=1 >"$DIR/broker.log" 2>&1 &
BROKER=$!
trap 'kill $BROKER 2>/dev/null; wait $BROKER 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do python -c "import socket; socket.create_connection(('127.0.0.1', $PORT))" 2>/dev/null && break; sleep 0.1; done
VALUES=(-s "$SIZE")
if [ -n "${PAYLOADS:-}" ]; then  # varied values of about SIZE bytes: a realistic ratio
    python - "$DIR/payloads" "$SIZE" <<'PY'
import json, random, sys
rnd = random.Random(7)
words = ["order", "created", "shipped", "eu-west", "us-east", "card", "paypal", "retry", "ok"]
with open(sys.argv[1], "w") as f:
    for i in range(10_000):
        doc = {"id": rnd.randrange(10**9), "user": f"u{rnd.randrange(10**6)}",
               "event": rnd.choice(words), "region": rnd.choice(words),
               "amount": round(rnd.random() * 1000, 2), "ts": 1_790_000_000_000 + i}
        line = json.dumps(doc)
        f.write((line + " " * max(0, int(sys.argv[2]) - len(line)))[: max(int(sys.argv[2]), len(line))] + "\n")
PY
    VALUES=(--payload-file "$DIR/payloads")
fi
TICK=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$BROKER/stat"; }
printf '%-16s %10s %14s %12s %12s\n' compression.type broker_cpu_s records_per_s log_bytes cpu_s_per_GB
for t in $TYPES; do
    fastlog topics create "ct-$t" -b "$B" --config "compression.type=$t" >/dev/null
    before=$(cpu)
    out=$(fastlog perf produce -b "$B" -t "ct-$t" -n "$N" "${VALUES[@]}" --acks 1 --no-progress --json)
    after=$(cpu)
    stored=$(cat "$DIR/data/ct-$t-0/"*.log | wc -c)
    python - "$t" "$before" "$after" "$TICK" "$stored" "$N" "$SIZE" "$out" <<'PY'
import json, sys
t, before, after, tick, stored, n, size, out = sys.argv[1:]
cpu = (int(after) - int(before)) / int(tick)
rate = json.loads(out).get("records_per_sec", 0)
gb = int(n) * int(size) / 1e9
print(f"{t:<16} {cpu:10.2f} {rate:14,.0f} {int(stored):12,} {cpu / gb:12.1f}")
PY
done
