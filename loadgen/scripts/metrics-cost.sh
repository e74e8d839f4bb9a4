#!/usr/bin/env bash
# What the metrics cost: the same produce run against one broker build with the
# endpoint off and on (`--metrics-listen`, scraped every second, 15x Prometheus's
# default rate), in rounds of one run each, in one sitting. Prints one row per
# run (MB/s, p99, broker CPU-s/GB, scrapes) and the ratio of the medians (target:
# on >= 0.98 x off, issue 16).
#
# usage: loadgen/scripts/metrics-cost.sh WEIR LOADGEN_BIN [ROUNDS]
# env: DURATION (8s) WARMUP (2s) PORT (29492) DATA_ROOT (target/bench/metrics-cost)
set -euo pipefail
WEIR=${1:?usage}; LOADGEN=${2:?usage}; ROUNDS=${3:-3}
DURATION=${DURATION:-8s}; WARMUP=${WARMUP:-2s}; PORT=${PORT:-29492}
DATA_ROOT=${DATA_ROOT:-target/bench/metrics-cost}; BOOT=127.0.0.1:$PORT
METRICS=127.0.0.1:$((PORT + 9))
mkdir -p "$DATA_ROOT"
PID=""; SCRAPER=""
trap '[[ -n "$SCRAPER" ]] && kill "$SCRAPER" 2>/dev/null; [[ -n "$PID" ]] && kill "$PID" 2>/dev/null; true' EXIT

one() { # label: off | on
  local dir extra=() scrapes=0; dir=$(mktemp -d "$DATA_ROOT/weir.XXXXXX")
  [[ $1 == on ]] && extra=(--metrics-listen "$METRICS")
  "$WEIR" serve --listen "$BOOT" --shard-port-base $((PORT + 1)) --data-dir "$dir" "${extra[@]}" >"$DATA_ROOT/weir.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
  if [[ $1 == on ]]; then
    ( n=0; while true; do curl -sf "http://$METRICS/metrics" >/dev/null && n=$((n + 1)); echo $n >"$DATA_ROOT/scrapes"; sleep 1; done ) &
    SCRAPER=$!
  fi
  local hz c0 c1; hz=$(getconf CLK_TCK); c0=$(awk '{print $14+$15}' /proc/$PID/stat)
  "$LOADGEN" produce --bootstrap "$BOOT" --topic cost --partitions 8 --producers 8 --record-size 1024 \
    --duration "$DURATION" --warmup "$WARMUP" --create --quiet --report-json "$DATA_ROOT/r.json" >/dev/null
  c1=$(awk '{print $14+$15}' /proc/$PID/stat)
  if [[ -n "$SCRAPER" ]]; then kill "$SCRAPER"; wait "$SCRAPER" 2>/dev/null || true; SCRAPER=""; scrapes=$(cat "$DATA_ROOT/scrapes"); fi
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; rm -rf "$dir"
  python3 - "$DATA_ROOT/r.json" "$1" "$c0" "$c1" "$hz" "$scrapes" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); label = sys.argv[2]
cpu = (int(sys.argv[4]) - int(sys.argv[3])) / int(sys.argv[5])
t = r["throughput"]
mbps = t["produce"]["wire_mb_per_s"]
gb = max(r["cpu"]["gb_moved"], 1e-9)
print(f'{label} {mbps:.1f} {r["latency"]["produce_record"]["p99_us"]/1e3:.1f} {cpu/gb:.2f} {sys.argv[6]}')
PY
}

rows=$(mktemp)
# ABBA order (off, on, then on, off, ...): whatever the second run of a pair inherits
# from the first (freed extents, page cache, a warm CPU) falls on both sides alike.
for i in $(seq 1 "$ROUNDS"); do
  if ((i % 2)); then one off >>"$rows"; one on >>"$rows"; else one on >>"$rows"; one off >>"$rows"; fi
done
echo "metrics cost: 8 partitions, 8 producers, 1 KiB records, $ROUNDS rounds of $DURATION after $WARMUP"
echo "| metrics | MB/s | p99 ms | broker cpu-s/GB | scrapes |"; echo "|---|---|---|---|---|"
awk '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }' "$rows"
median() { awk -v s="$1" '$1 == s { print $2 }' "$rows" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
off=$(median off); on=$(median on)
# Each round's "on" run against its "off" run: drift between rounds cancels.
pairs=$(awk '{ v[$1] = $2 } NR % 2 == 0 { print v["on"] / v["off"] }' "$rows" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
awk -v a="$off" -v b="$on" -v p="$pairs" 'BEGIN { r = b / a; printf "median off %s MB/s, on %s MB/s: on/off %.3f; median of paired on/off %.3f (target >= 0.98: %s)\n", a, b, r, p, (p >= 0.98 ? "met" : "NOT met") }'
rm -f "$rows"
