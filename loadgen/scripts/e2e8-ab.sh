#!/usr/bin/env bash
# The eight-partition end-to-end row (issue 13) as an A/B: `weir-loadgen run
# loadgen/workloads/e2e-half.toml` (8 partitions, 4 producers, 4 consumers, 1 KiB
# records, acks=1) at a fixed RATE on a fresh broker (default shards, unpinned, as in
# targets.sh), RUNS pairs alternating A B, B A, ... One row per run: the record's
# produce-to-consume p50, p99, p99.9 and max (ms), the broker's CPU seconds over the
# run, and its io_uring requests handed to io-wq worker threads (`perf stat` of the
# tracepoint io_uring:io_uring_queue_async_work; "-" without perf or permission).
# This row swings from run to run (a single second with a stall of 50-90 ms sets a
# run's p99, in any build): compare pairs, not single runs.
#
# usage: loadgen/scripts/e2e8-ab.sh WEIR_A WEIR_B LOADGEN [RUNS]
# env: RATE (383787) ENV_A / ENV_B (NAME=VALUE words for that side's broker, e.g.
#      WEIR_WRITE_HOLD_MS=0) DURATION (10s) WARMUP (2s) PORT (18292)
#      DATA_ROOT (target/bench/e2e8-ab)
set -euo pipefail
A=${1:?usage}; B=${2:?usage}; LOADGEN=${3:?usage}; RUNS=${4:-5}
RATE=${RATE:-383787}; DURATION=${DURATION:-10s}; WARMUP=${WARMUP:-2s}; PORT=${PORT:-18292}
DATA_ROOT=${DATA_ROOT:-target/bench/e2e8-ab}; BOOT=127.0.0.1:$PORT
mkdir -p "$DATA_ROOT"
PID=""
trap '[[ -n "$PID" ]] && kill "$PID" 2>/dev/null; true' EXIT
HERE=$(cd "$(dirname "$0")" && pwd)
WORKLOAD=$HERE/../workloads/e2e-half.toml

one() { # label binary env-words
  local dir; dir=$(mktemp -d "$DATA_ROOT/weir.XXXXXX")
  # shellcheck disable=SC2086
  env $3 "$2" serve --listen "$BOOT" --shard-port-base $((PORT + 1)) --data-dir "$dir" >>"$DATA_ROOT/weir-$1.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
  local c0; c0=$(awk '{ print $14 + $15 }' "/proc/$PID/stat")
  local report=$DATA_ROOT/run-$1.json perf_out=$DATA_ROOT/perf-$1.txt
  local run=("$LOADGEN" run "$WORKLOAD" --rate "$RATE" --bootstrap "$BOOT" --duration "$DURATION" \
    --warmup "$WARMUP" --quiet --report-json "$report")
  rm -f "$perf_out"
  if command -v perf >/dev/null && perf stat -e io_uring:io_uring_queue_async_work -p "$PID" -o "$perf_out" -- true 2>/dev/null; then
    perf stat -e io_uring:io_uring_queue_async_work -p "$PID" -o "$perf_out" -- "${run[@]}" >/dev/null
  else
    rm -f "$perf_out"; "${run[@]}" >/dev/null
  fi
  local c1; c1=$(awk '{ print $14 + $15 }' "/proc/$PID/stat")
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  rm -rf "$dir"
  local iowq=-
  [[ -f "$perf_out" ]] && iowq=$(awk '/io_uring_queue_async_work/ { print $1 }' "$perf_out")
  python3 - "$report" "$1" "$(( c1 - c0 ))" "$(getconf CLK_TCK)" "$iowq" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["latency"]["e2e"]
ms = lambda k: r[k] / 1e3
print(f"| {sys.argv[2]} | {ms('p50_us'):.2f} | {ms('p99_us'):.2f} | {ms('p999_us'):.2f} | {ms('max_us'):.1f} "
      f"| {int(sys.argv[3]) / int(sys.argv[4]):.1f} | {sys.argv[5]} |")
PY
}

echo "e2e-half at $RATE rec/s, $RUNS pairs, $DURATION after $WARMUP; A=$A ${ENV_A:-} B=$B ${ENV_B:-}; $(date -u +%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| build | p50 ms | p99 ms | p99.9 ms | max ms | broker CPU s | io-wq hand-offs |"
echo "|---|---|---|---|---|---|---|"
for i in $(seq 1 "$RUNS"); do
  if (( i % 2 )); then one A "$A" "${ENV_A:-}"; one B "$B" "${ENV_B:-}"
  else one B "$B" "${ENV_B:-}"; one A "$A" "${ENV_A:-}"; fi
done
