#!/usr/bin/env bash
# Delayed delivery benchmark (docs/benchmarks.md, "Delayed delivery"): a fresh
# Weir, then delay-bench: plain vs delayed produce MB/s in the same run, the
# broker's RSS growth with 1,000,000 pending timers, and firing lateness at
# 50,000 timers per second.
# Usage: delay-bench.sh WEIR_BIN DELAY_BENCH_BIN [extra delay-bench flags]
set -euo pipefail
weir=${1:?weir binary}
bench=${2:?delay-bench binary}
shift 2
dir=$(mktemp -d /tmp/weir-delay-bench.XXXXXX)
port=${DELAY_BENCH_PORT:-19492}
"$weir" serve --listen 127.0.0.1:$port --data-dir "$dir/data" --shard-port-base $((port + 1)) \
  > "$dir/broker.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then break; fi
  sleep 0.1
done
"$bench" --bootstrap 127.0.0.1:$port --broker-pid $pid "$@"
