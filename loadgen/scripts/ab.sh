#!/usr/bin/env bash
# A/B: one weir-loadgen scenario against two broker builds, alternating A, B, A, B...
# in one sitting, so drift of this shared machine hits both alike. Prints one row per
# run (MB/s, p99, broker CPU-s/GB) and the median of each side.
#
# usage: loadgen/scripts/ab.sh WEIR_A WEIR_B LOADGEN_BIN SCENARIO [ROUNDS]
#   SCENARIO: routing-zero-hop | routing-single-address   (make bench scenario 6)
#             one-partition-acks1 | one-partition-acksall  (1 partition, 1 MB batches,
#                                                           8 in flight, --shards 1)
#             one-partition-small                          (1 partition, 64 KiB batches)
# env: DURATION (8s) WARMUP (2s) PORT (29392) DATA_ROOT (target/bench/ab)
set -euo pipefail
A=${1:?usage}; B=${2:?usage}; LOADGEN=${3:?usage}; SCENARIO=${4:?usage}; ROUNDS=${5:-3}
DURATION=${DURATION:-8s}; WARMUP=${WARMUP:-2s}; PORT=${PORT:-29392}
DATA_ROOT=${DATA_ROOT:-target/bench/ab}; BOOT=127.0.0.1:$PORT
mkdir -p "$DATA_ROOT"
PID=""
trap '[[ -n "$PID" ]] && kill "$PID" 2>/dev/null; true' EXIT

case "$SCENARIO" in
  routing-zero-hop) serve=(); lg=(--topic route --partitions 8 --producers 8) ;;
  routing-single-address) serve=(--single-address); lg=(--topic route --partitions 8 --producers 8) ;;
  one-partition-acks1) serve=(--shards 1); lg=(--topic one --partitions 1 --producers 1 --batch-bytes 1000000 --acks 1) ;;
  one-partition-acksall) serve=(--shards 1); lg=(--topic one --partitions 1 --producers 1 --batch-bytes 1000000 --acks all) ;;
  one-partition-small) serve=(--shards 1); lg=(--topic one --partitions 1 --producers 1 --batch-bytes 65536 --acks 1) ;;
  *) echo "unknown scenario $SCENARIO" >&2; exit 2 ;;
esac

one() { # label binary
  local dir; dir=$(mktemp -d "$DATA_ROOT/weir.XXXXXX")
  "$2" serve --listen "$BOOT" --shard-port-base $((PORT + 1)) --data-dir "$dir" "${serve[@]}" >"$DATA_ROOT/weir.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
  local hz c0 c1; hz=$(getconf CLK_TCK); c0=$(awk '{print $14+$15}' /proc/$PID/stat)
  "$LOADGEN" produce --bootstrap "$BOOT" "${lg[@]}" --record-size 1024 --duration "$DURATION" \
    --warmup "$WARMUP" --create --quiet --report-json "$DATA_ROOT/r.json" >/dev/null
  c1=$(awk '{print $14+$15}' /proc/$PID/stat)
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; rm -rf "$dir"
  python3 - "$DATA_ROOT/r.json" "$1" "$c0" "$c1" "$hz" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); label = sys.argv[2]
cpu = (int(sys.argv[4]) - int(sys.argv[3])) / int(sys.argv[5])
gb = max(r["cpu"]["gb_moved"], 1e-9)
print(f'{label} {r["throughput"]["produce"]["payload_mb_per_s"]:.1f} {r["latency"]["produce_record"]["p99_us"]/1e3:.1f} {cpu/gb:.2f} {r["errors"] if "errors" in r else ""}')
PY
}

rows=$(mktemp)
for i in $(seq 1 "$ROUNDS"); do one A "$A" >>"$rows"; one B "$B" >>"$rows"; done
echo "scenario $SCENARIO, $ROUNDS rounds, $DURATION each after $WARMUP; A=$A B=$B"
echo "| build | MB/s | p99 ms | broker cpu-s/GB |"; echo "|---|---|---|---|"
awk '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$rows"
for side in A B; do
  awk -v s="$side" '$1 == s { print $2 }' "$rows" | sort -n | awk -v s="$side" '{ v[NR] = $1 } END { printf "median %s: %s MB/s\n", s, v[int((NR + 1) / 2)] }'
done
rm -f "$rows"
