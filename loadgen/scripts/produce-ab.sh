#!/usr/bin/env bash
# Produce A/B (issue 13): one producer, one partition, one shard, broker pinned to
# CPU 0 and the load generator to CPU 1, two broker builds alternating A B, B A, ...
# in one sitting, each round beside the O_DIRECT write ceiling measured just before it
# (fio, io_uring, 1 MiB blocks, 4 in flight, on the same file system).
# Prints one row per run: MB/s (payload, 10^6 B/s), ratio to the round's ceiling,
# broker CPU-s per GB moved, produce p50/p99 ms; then the medians.
#
# usage: loadgen/scripts/produce-ab.sh WEIR_A WEIR_B LOADGEN SCENARIO [ROUNDS]
#   SCENARIO: acks1       acks=1, the load generator's defaults (64 KiB batches,
#                         linger 1 ms, 8 in flight)
#             acksall256  acks=all, 256 KiB batches
#             acks1-1m    acks=1, 1 MB batches (the issue's first table)
# env: DURATION (8s) WARMUP (2s) PORT (18092) DATA_ROOT (target/bench/produce-ab)
#      CEILING_MB (2048: fio file size) EXTRA (more loadgen flags)
set -euo pipefail
A=${1:?usage}; B=${2:?usage}; LOADGEN=${3:?usage}; SCENARIO=${4:?usage}; ROUNDS=${5:-3}
DURATION=${DURATION:-8s}; WARMUP=${WARMUP:-2s}; PORT=${PORT:-18092}
DATA_ROOT=${DATA_ROOT:-target/bench/produce-ab}; CEILING_MB=${CEILING_MB:-2048}
BOOT=127.0.0.1:$PORT
mkdir -p "$DATA_ROOT"
PID=""
trap '[[ -n "$PID" ]] && kill "$PID" 2>/dev/null; rm -f "$DATA_ROOT/fio.bin"; true' EXIT

case "$SCENARIO" in
  acks1) lg=(--acks 1) ;;
  acksall256) lg=(--acks all --batch-bytes 262144) ;;
  acks1-1m) lg=(--acks 1 --batch-bytes 1000000) ;;
  *) echo "unknown scenario $SCENARIO" >&2; exit 2 ;;
esac
# shellcheck disable=SC2206
extra=(${EXTRA:-})

ceiling() { # MB/s of fio's sequential O_DIRECT write, qd4, 1 MiB
  fio --name=ceiling --filename="$DATA_ROOT/fio.bin" --ioengine=io_uring --direct=1 \
    --bs=1M --iodepth=4 --rw=write --size="${CEILING_MB}M" --output-format=terse \
    --terse-version=3 2>/dev/null | awk -F';' '{ printf "%.0f", $48 * 1024 / 1e6 }'
  rm -f "$DATA_ROOT/fio.bin"
}

one() { # label binary ceiling
  local dir; dir=$(mktemp -d "$DATA_ROOT/weir.XXXXXX")
  taskset -c 0 "$2" serve --listen "$BOOT" --shard-port-base $((PORT + 1)) --data-dir "$dir" \
    --shards 1 >"$DATA_ROOT/weir-$1.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
  local hz c0 c1; hz=$(getconf CLK_TCK); c0=$(awk '{print $14+$15}' /proc/$PID/stat)
  taskset -c 1 "$LOADGEN" produce --bootstrap "$BOOT" --topic one --partitions 1 --producers 1 \
    --threads 1 --record-size 1024 --duration "$DURATION" --warmup "$WARMUP" --create --quiet \
    "${lg[@]}" "${extra[@]}" --report-json "$DATA_ROOT/r.json" >/dev/null
  c1=$(awk '{print $14+$15}' /proc/$PID/stat)
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; rm -rf "$dir"
  python3 - "$DATA_ROOT/r.json" "$1" "$c0" "$c1" "$hz" "$3" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); label = sys.argv[2]
cpu = (int(sys.argv[4]) - int(sys.argv[3])) / int(sys.argv[5])
gb = max(r["cpu"]["gb_moved"], 1e-9)
mb = r["throughput"]["produce"]["payload_mb_per_s"]; ceil = float(sys.argv[6])
lat = r["latency"]["produce_record"]
print(f'{label} {mb:.0f} {mb / ceil:.2f} {cpu / gb:.2f} {lat["p50_us"] / 1e3:.1f} {lat["p99_us"] / 1e3:.1f} {ceil:.0f} {r.get("errors") or "-"}')
PY
}

rows=$(mktemp)
for i in $(seq 1 "$ROUNDS"); do
  c=$(ceiling)
  if (( i % 2 )); then one A "$A" "$c" >>"$rows"; one B "$B" "$c" >>"$rows"
  else one B "$B" "$c" >>"$rows"; one A "$A" "$c" >>"$rows"; fi
done
echo "scenario $SCENARIO, $ROUNDS rounds, $DURATION each after $WARMUP; A=$A B=$B; $(date -u +%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| build | MB/s | x ceiling | broker cpu-s/GB | p50 ms | p99 ms | fio ceiling MB/s | errors |"
echo "|---|---|---|---|---|---|---|---|"
awk '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8 }' "$rows"
for side in A B; do
  awk -v s="$side" '$1 == s' "$rows" | python3 -c '
import sys, statistics as st
rows = [l.split() for l in sys.stdin]
m = lambda i: st.median(float(r[i]) for r in rows)
print(f"median {sys.argv[1]}: {m(1):.0f} MB/s, {m(2):.2f}x ceiling, {m(3):.2f} broker cpu-s/GB")' "$side"
done
rm -f "$rows"
