#!/usr/bin/env bash
# Where a produce run's broker CPU goes (issue 13): the produce-ab.sh setup (one shard
# on CPU 0, one producer on CPU 1, one partition, 1 KiB records, the load generator's
# defaults unless EXTRA says otherwise), with `perf record -e cpu-clock` on the broker
# for the measured part; prints the top functions by self share, kernel and user.
# (`perf record` with its default event samples nothing in this VM: use cpu-clock.)
#
# usage: loadgen/scripts/produce-profile.sh WEIR LOADGEN [TOP]
# env: DURATION (8s) WARMUP (2s) PORT (18292) DATA_ROOT (target/bench/produce-profile)
#      EXTRA (more loadgen flags, e.g. "--acks all --batch-bytes 262144")
set -euo pipefail
WEIR=${1:?usage}; LOADGEN=${2:?usage}; TOP=${3:-25}
DURATION=${DURATION:-8s}; WARMUP=${WARMUP:-2s}; PORT=${PORT:-18292}
DATA_ROOT=${DATA_ROOT:-target/bench/produce-profile}; BOOT=127.0.0.1:$PORT
mkdir -p "$DATA_ROOT"
PID=""
trap '[[ -n "$PID" ]] && kill "$PID" 2>/dev/null; true' EXIT
# shellcheck disable=SC2206
extra=(${EXTRA:-})
dir=$(mktemp -d "$DATA_ROOT/weir.XXXXXX")
taskset -c 0 "$WEIR" serve --listen "$BOOT" --shard-port-base $((PORT + 1)) --data-dir "$dir" \
  --shards 1 >"$DATA_ROOT/weir.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
taskset -c 1 "$LOADGEN" produce --bootstrap "$BOOT" --topic one --partitions 1 --producers 1 \
  --threads 1 --record-size 1024 --duration "$DURATION" --warmup "$WARMUP" --create --quiet \
  "${extra[@]}" --report-json "$DATA_ROOT/r.json" >/dev/null &
LG=$!
secs=${DURATION%s}
sleep "${WARMUP%s}"
perf record -q -e cpu-clock -F ${FREQ:-2000} ${PERF_EXTRA:-} -p "$PID" -o "$DATA_ROOT/perf.data" -- sleep "$secs" 2>/dev/null
wait "$LG"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; rm -rf "$dir"
python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["throughput"]["produce"]
print("produce %.0f MB/s" % t["payload_mb_per_s"])' "$DATA_ROOT/r.json"
perf report -i "$DATA_ROOT/perf.data" --no-children --sort sym --stdio 2>/dev/null \
  | grep -v '^#' | grep -v '^$' | head -n "$TOP"
