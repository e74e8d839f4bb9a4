#!/usr/bin/env bash
# End-to-end latency tails (issue 13): `weir-loadgen e2e` at a fixed rate on one
# partition, linger 1 ms, RUNS consecutive runs per broker build, alternating A B A B,
# broker on CPU 0 (--shards 1) and the load generator on CPU 1. One row per run:
# p50, p99, p99.9, p99.99 and max of the record's produce-to-consume latency (ms),
# the broker's CPU seconds over the run and the 1-minute load average after it.
# ENV_A / ENV_B: extra NAME=VALUE words for build A's / B's broker (e.g. WEIR_STALL_MS=5,
# whose stall reports land in DATA_ROOT/weir-A.log and weir-B.log, kept for all runs).
# Targets in the issue: p99 <= 1.5 ms and p99.99 < 5 ms in every run.
#
# usage: loadgen/scripts/e2e-tail.sh WEIR_A WEIR_B LOADGEN [RUNS]
# env: ENV_A ENV_B RATE (100000) PARTITIONS (1) DURATION (10s) WARMUP (2s) PORT (34192) DATA_ROOT (target/bench/e2e-tail)
set -euo pipefail
A=${1:?usage}; B=${2:?usage}; LOADGEN=${3:?usage}; RUNS=${4:-10}
RATE=${RATE:-100000}; PARTITIONS=${PARTITIONS:-1}; DURATION=${DURATION:-10s}; WARMUP=${WARMUP:-2s}; PORT=${PORT:-34192}
DATA_ROOT=${DATA_ROOT:-target/bench/e2e-tail}; BOOT=127.0.0.1:$PORT
mkdir -p "$DATA_ROOT"
PID=""
trap '[[ -n "$PID" ]] && kill "$PID" 2>/dev/null; true' EXIT

one() { # label binary
  local dir; dir=$(mktemp -d "$DATA_ROOT/weir.XXXXXX")
  # shellcheck disable=SC2086 # ENV_A/ENV_B are word lists of NAME=VALUE
  env $3 taskset -c 0 "$2" serve --listen "$BOOT" --shard-port-base $((PORT + 1)) --data-dir "$dir" \
    --shards 1 >>"$DATA_ROOT/weir-$1.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
  taskset -c 1 "$LOADGEN" e2e --bootstrap "$BOOT" --topic lat --partitions "$PARTITIONS" --producers 1 \
    --consumers 1 --threads 1 --record-size 1024 --linger-ms 1 --rate "$RATE" \
    --duration "$DURATION" --warmup "$WARMUP" --create --quiet \
    --report-json "$DATA_ROOT/r.json" >/dev/null
  # Broker CPU seconds (user + system ticks, fields 14-15 of /proc/PID/stat) over
  # the whole run, warm-up and start-up included.
  local ticks; ticks=$(awk '{ print $14 + $15 }' "/proc/$PID/stat")
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; rm -rf "$dir"
  python3 - "$DATA_ROOT/r.json" "$1" "$ticks" "$(getconf CLK_TCK)" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); e = r["latency"]["e2e"]
ms = lambda k: f'{e[k] / 1e3:.2f}' if k in e else "-"
print(sys.argv[2], ms("p50_us"), ms("p99_us"), ms("p999_us"), ms("p9999_us"), ms("max_us"),
      f'{r["throughput"]["consume"]["records_per_s"]:.0f}',
      f'{int(sys.argv[3]) / int(sys.argv[4]):.2f}', sys.argv[5])
PY
}

rows=$(mktemp)
rm -f "$DATA_ROOT/weir-A.log" "$DATA_ROOT/weir-B.log"
for _ in $(seq 1 "$RUNS"); do one A "$A" "${ENV_A:-}" >>"$rows"; one B "$B" "${ENV_B:-}" >>"$rows"; done
echo "e2e at $RATE rec/s, $PARTITIONS partition(s), linger 1 ms, $RUNS runs of $DURATION after $WARMUP; A=$A B=$B; $(date -u +%H:%MZ)"
echo "| build | p50 ms | p99 ms | p99.9 ms | p99.99 ms | max ms | consumed rec/s | broker CPU-s | load avg |"
echo "|---|---|---|---|---|---|---|---|---|"
awk '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$rows"
for side in A B; do
  awk -v s="$side" '$1 == s { n++; if ($3 <= 1.5 && $5 < 5) ok++ } END { printf "%s: %d of %d runs meet p99 <= 1.5 ms and p99.99 < 5 ms\n", s, ok, n }' "$rows"
done
rm -f "$rows"
