#!/usr/bin/env bash
# End-to-end benchmark scenarios against a fresh Weir, with the ceilings that
# bound them measured in the same run (loopback TCP, O_DIRECT disk, and the
# generator's own produce and consume ceilings against its null broker).
# Each scenario is a workload file in loadgen/workloads/ (`weir-loadgen run`).
# Writes JSON/HTML per scenario under $OUT_DIR and a markdown section to $OUT_MD.
#
# usage: loadgen/scripts/bench.sh WEIR_BIN LOADGEN_BIN
# env:   DURATION (10s) WARMUP (2s) CATCHUP_BYTES (5000000000) PORT (29092)
#        DATA_ROOT (target/bench/data: must be on the real disk, not tmpfs)
#        OUT_DIR (target/bench) OUT_MD (docs/benchmarks.md) SAME_RATE (50000)
#        TXN_ROUNDS (2) TXN_CATCHUP_BYTES (2000000000) ONLY (all; e.g. "7 8 9")
#        WORKLOADS (loadgen/workloads)
# Whole run: about 5-8 minutes with the defaults (< 10 min).
set -euo pipefail

WEIR=${1:?usage: bench.sh WEIR_BIN LOADGEN_BIN}
LOADGEN=${2:?usage: bench.sh WEIR_BIN LOADGEN_BIN}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CATCHUP_BYTES=${CATCHUP_BYTES:-5000000000}
PORT=${PORT:-29092}
OUT_DIR=${OUT_DIR:-target/bench}
OUT_MD=${OUT_MD:-docs/benchmarks.md}
DATA_ROOT=${DATA_ROOT:-$OUT_DIR/data}
SAME_RATE=${SAME_RATE:-50000}
TXN_ROUNDS=${TXN_ROUNDS:-2}
TXN_CATCHUP_BYTES=${TXN_CATCHUP_BYTES:-2000000000}
ONLY=${ONLY:-}
RECORD=1024  # the record size of the workload files
WORKLOADS=${WORKLOADS:-loadgen/workloads}
BOOT=127.0.0.1:$PORT
mkdir -p "$OUT_DIR" "$DATA_ROOT"
WEIR_PID=""
MD=$(mktemp)

cleanup() { stop_weir; rm -f "$MD"; }
trap cleanup EXIT

start_weir() { # extra flags for weir serve
  stop_weir
  DATA_DIR=$(mktemp -d "$DATA_ROOT/weir.XXXXXX")
  "$WEIR" serve --listen "$BOOT" --data-dir "$DATA_DIR" "$@" >"$OUT_DIR/weir.log" 2>&1 &
  WEIR_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "weir did not start listening on $BOOT; log:" >&2; cat "$OUT_DIR/weir.log" >&2; exit 1
}

stop_weir() {
  if [[ -n "$WEIR_PID" ]]; then
    kill "$WEIR_PID" 2>/dev/null || true
    wait "$WEIR_PID" 2>/dev/null || true
    WEIR_PID=""
    rm -rf "${DATA_DIR:?}"
  fi
}

# CPU seconds (user+system) of the broker so far, from /proc/PID/stat.
broker_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$WEIR_PID/stat"
}

# json FILE EXPR: print a value from a loadgen report (python: no jq needed).
json() {
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"r": r}))' "$1" "$2"
}

# run NAME WORKLOAD [OVERRIDES...]: one loadgen run of $WORKLOADS/WORKLOAD.toml;
# appends a markdown row.
run() {
  local name=$1 workload=$2; shift 2
  local cpu0 cpu1
  cpu0=$(broker_cpu)
  "$LOADGEN" run "$WORKLOADS/$workload.toml" "$@" --bootstrap "$BOOT" --quiet \
    --report-json "$OUT_DIR/$name.json" --report-html "$OUT_DIR/$name.html" | tee "$OUT_DIR/$name.txt"
  cpu1=$(broker_cpu)
  local f="$OUT_DIR/$name.json"
  local gb; gb=$(json "$f" 'r["cpu"]["gb_moved"]')
  local broker_cpu_per_gb; broker_cpu_per_gb=$(python3 -c "print(f'{($cpu1-$cpu0)/max($gb,1e-9):.2f}')")
  echo "$broker_cpu_per_gb" >"$OUT_DIR/$name.broker-cpu-per-gb"
  printf '| %s | %.1f | %.1f | %.0f | %.1f | %.3f | %.3f | %.3f | %.2f | %s |\n' "$name" \
    "$(json "$f" 'r["throughput"]["produce"]["payload_mb_per_s"] or r["throughput"]["consume"]["payload_mb_per_s"]')" \
    "$(json "$f" 'r["throughput"]["produce"]["wire_mb_per_s"] or r["throughput"]["consume"]["wire_mb_per_s"]')" \
    "$(json "$f" 'r["throughput"]["produce"]["records_per_s"] or r["throughput"]["consume"]["records_per_s"]')" \
    "$(json "$f" 'r["throughput"]["consume"]["payload_mb_per_s"]')" \
    "$(json "$f" 'r["latency"]["produce_record"]["p50_us"]/1e3')" \
    "$(json "$f" 'r["latency"]["produce_record"]["p99_us"]/1e3')" \
    "$(json "$f" 'r["latency"]["e2e"]["p99_us"]/1e3')" \
    "$(json "$f" 'r["cpu"]["cpu_seconds_per_gb"]')" "$broker_cpu_per_gb" >>"$MD"
}

# want N: whether scenario N runs (all unless ONLY lists the ones to run).
want() { [[ -z "$ONLY" || " $ONLY " == *" $1 "* ]]; }

# ratio LABEL METRIC A_RUNS B_RUNS: median of METRIC over B's reports against
# A's (the baseline), as a markdown line; METRIC is a report expression.
ratio() {
  python3 - "$OUT_DIR" "$@" >>"$MD" <<'PY'
import json, statistics, sys
out, label, metric, a, b = sys.argv[1:6]
def values(names):
    return [eval(metric, {"r": json.load(open(f"{out}/{n}.json"))}) for n in names.split()]
va, vb = values(a), values(b)
ma, mb = statistics.median(va), statistics.median(vb)
cpu = lambda names: statistics.median(json.load(open(f"{out}/{n}.json"))["cpu"]["cpu_seconds_per_gb"] for n in names.split())
broker = lambda names: statistics.median(float(open(f"{out}/{n}.broker-cpu-per-gb").read()) for n in names.split())
print(f"\n{label}: median {mb:.1f} vs baseline {ma:.1f} = **{mb / max(ma, 1e-9):.2f}** "
      f"(rounds: {', '.join(f'{x:.1f}' for x in vb)} vs {', '.join(f'{x:.1f}' for x in va)}; "
      f"median cpu-s/GB loadgen {cpu(b):.2f} vs {cpu(a):.2f}, broker {broker(b):.2f} vs {broker(a):.2f})")
PY
}

# txn_lines RUN...: per transactional run, committed/s and EndTxn latency.
txn_lines() {
  python3 - "$OUT_DIR" "$@" >>"$MD" <<'PY'
import json, sys
out = sys.argv[1]
print()
for name in sys.argv[2:]:
    r = json.load(open(f"{out}/{name}.json"))
    c, t = r["latency"]["txn_commit"], r["latency"]["txn"]
    print(f"- {name}: {r['throughput']['txn_committed_per_s']:.1f} committed/s "
          f"({r['totals']['all']['txn_committed']} committed, {r['totals']['all']['txn_aborted']} aborted); "
          f"EndTxn p50 {c['p50_us'] / 1e3:.2f} ms p99 {c['p99_us'] / 1e3:.2f} ms; whole transaction "
          f"p50 {t['p50_us'] / 1e3:.2f} ms p99 {t['p99_us'] / 1e3:.2f} ms; errors {r['errors'] or 'none'}")
PY
}

header() {
  { echo; echo "### $1"; echo
    echo "| run | payload MB/s | wire MB/s | rec/s | consumed payload MB/s | p50 ms | p99 ms | e2e p99 ms | loadgen cpu-s/GB | broker cpu-s/GB |";
    echo "|---|---|---|---|---|---|---|---|---|---|"; } >>"$MD"
}

common=(--duration "$DURATION" --warmup "$WARMUP")

# Ceilings, in this run. dd files go to DATA_ROOT (the real disk).
TCP=$("$LOADGEN" tcp-ceiling --duration 3s | grep -o '[0-9.]* MB/s')
DD_FILE="$DATA_ROOT/dd.bin"
DD_MB=$(( CATCHUP_BYTES / 1048576 )); (( DD_MB > 4096 )) && DD_MB=4096
DD_W=$(dd if=/dev/zero of="$DD_FILE" bs=1M count="$DD_MB" oflag=direct 2>&1 | tail -1 | awk -F, '{print $NF}')
DD_R=$(dd if="$DD_FILE" of=/dev/null bs=1M iflag=direct 2>&1 | tail -1 | awk -F, '{print $NF}')
rm -f "$DD_FILE"
# The generator's own ceilings (null broker, produce and consume), same run.
SELF=$("$LOADGEN" self-check --duration 5s --min-ratio 0 | sed 's/^/- /')

{
  echo "## weir-loadgen scenarios ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
  echo
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, kernel $(uname -r)."
  echo "Broker and load generator share these cores. Ceilings in the same run: loopback TCP $TCP;"
  echo "O_DIRECT write (dd, 1 MiB blocks, $DD_MB MiB) $DD_W; O_DIRECT read $DD_R. The host may cache the disk."
  echo "Load generator against its null broker (\`weir-loadgen self-check\`, same run):"
  echo
  echo "$SELF"
  echo
  echo "Each run: a workload file of loadgen/workloads/, $DURATION after $WARMUP warmup, $RECORD-byte records,"
  echo "latency from intended send times. Payload: key + value bytes; wire: RecordBatch bytes (after"
  echo "compression); MB = 10^6 bytes."
} >>"$MD"

# 1. Max produce throughput, acks=1; 2. same with acks=all.
if want 1; then
for acks in 1 all; do
  header "Max produce throughput, acks=$acks (1 KiB records)"
  for parts in 1 8; do
    start_weir
    run "produce-acks$acks-p$parts" "produce-acks$acks-p$parts" "${common[@]}"
  done
done
fi

# 3. e2e latency at 50% of the end-to-end max, 8 partitions. The max is an unthrottled
# e2e run (producers and consumers at once), not the produce-only max of (1): half of
# that was more than the load generator could carry end to end on two CPUs.
if want 3; then
header "End-to-end maximum (unthrottled, acks=1, 8 partitions)"
start_weir
run e2e-max e2e-half --rate 0 "${common[@]}"
MAX_RPS=$(json "$OUT_DIR/e2e-max.json" 'int(min(r["throughput"]["produce"]["records_per_s"], r["throughput"]["consume"]["records_per_s"]))')
HALF=$(( MAX_RPS / 2 )); (( HALF < 1 )) && HALF=1
header "End-to-end latency at a fixed $HALF rec/s (50% of the e2e max, acks=1, 8 partitions)"
start_weir
# --check-order: the consumers also check every partition's per-producer sequence numbers
# (e2e parses every record anyway); an inversion fails the run.
run e2e-half e2e-half --rate "$HALF" "${common[@]}"
fi

# 4. Catch-up consume of CATCHUP_BYTES written earlier.
if want 4; then
header "Catch-up consume of $CATCHUP_BYTES bytes written earlier (O_DIRECT read ceiling: $DD_R)"
start_weir
RECORDS=$(( CATCHUP_BYTES / RECORD ))
"$LOADGEN" run "$WORKLOADS/catchup-fill.toml" --bootstrap "$BOOT" --records "$RECORDS" --quiet \
  >"$OUT_DIR/catchup-fill.txt"
run catchup catchup
fi

# 5. 1,000 partitions vs 1 at the same total rate.
if want 5; then
header "1,000 partitions vs 1 at $SAME_RATE rec/s total"
for parts in 1 1000; do
  start_weir
  run "same-rate-p$parts" "same-rate-p$parts" --rate "$SAME_RATE" "${common[@]}"
done
fi

# 6. Zero-hop routing (default) vs single-address routing.
if want 6; then
header "Zero-hop vs single-address routing (acks=1, 8 partitions)"
start_weir
run routing-zero-hop routing "${common[@]}"
start_weir --single-address
run routing-single-address routing "${common[@]}"
fi

# 7. Idempotent producers vs plain ones, otherwise equal: acks=all and 5 requests in
#    flight per connection (the most Kafka's idempotent producer allows), 8 partitions;
#    alternating A/B for TXN_ROUNDS rounds (one pair swung 0.82-1.15 on this machine).
if want 7; then
header "Idempotent vs plain produce (acks=all, 5 in flight, 8 partitions)"
plain_runs=""; idem_runs=""
for round in $(seq 1 "$TXN_ROUNDS"); do
  for mode in plain idempotent; do
    start_weir
    run "produce-$mode-$round" "produce-$mode" "${common[@]}"
    if [[ $mode == idempotent ]]; then idem_runs+=" produce-$mode-$round"; else plain_runs+=" produce-$mode-$round"; fi
  done
done
ratio "Idempotent / plain produce payload MB/s (target >= 0.95)" 'r["throughput"]["produce"]["payload_mb_per_s"]' \
  "$plain_runs" "$idem_runs"
fi

# 8. Transactions of 1,000 records vs plain (non-idempotent) produce, otherwise equal
#    (acks=all, 5 in flight, 8 partitions, 8 producers), alternating A/B for
#    TXN_ROUNDS rounds, each run on a fresh broker.
if want 8; then
header "Transactions of 1,000 records vs plain produce (acks=all, 5 in flight, 8 partitions)"
plain_runs=""; txn_runs=""
for round in $(seq 1 "$TXN_ROUNDS"); do
  for mode in plain txn; do
    start_weir
    run "txn-$mode-$round" "produce-$mode" "${common[@]}"
    if [[ $mode == txn ]]; then txn_runs+=" txn-$mode-$round"; else plain_runs+=" txn-$mode-$round"; fi
  done
done
ratio "Transactions / plain produce payload MB/s (target >= 0.80)" 'r["throughput"]["produce"]["payload_mb_per_s"]' \
  "$plain_runs" "$txn_runs"
ratio "Committed transactions/s (each 1,000 records; baseline: plain records/s / 1,000)" \
  'r["throughput"]["txn_committed_per_s"] or r["throughput"]["produce"]["records_per_s"] / 1000' "$plain_runs" "$txn_runs"
txn_lines $txn_runs
fi

# 9. read_committed vs read_uncommitted catch-up consume of the same data: a topic
#    written by transactional producers, every 10th transaction aborted. Reads
#    alternate (AB, BA, AB, ...) on one broker so page-cache warming favours neither.
if want 9; then
header "read_committed vs read_uncommitted catch-up consume of $TXN_CATCHUP_BYTES bytes (10% of transactions aborted)"
start_weir
"$LOADGEN" run "$WORKLOADS/txn-catchup-fill.toml" --bootstrap "$BOOT" --records $(( TXN_CATCHUP_BYTES / RECORD )) \
  --quiet >"$OUT_DIR/txcatch-fill.txt"
ru_runs=""; rc_runs=""
for round in $(seq 1 "$TXN_ROUNDS"); do
  order="uncommitted committed"; (( round % 2 == 0 )) && order="committed uncommitted"
  for iso in $order; do
    run "catchup-read-$iso-$round" "catchup-read-$iso"
    if [[ $iso == committed ]]; then rc_runs+=" catchup-read-$iso-$round"; else ru_runs+=" catchup-read-$iso-$round"; fi
  done
done
ratio "read_committed / read_uncommitted catch-up wire MB/s fetched (target >= 0.95)" \
  'r["throughput"]["consume"]["wire_mb_per_s"]' "$ru_runs" "$rc_runs"
echo >>"$MD"
echo "Records counted per read (committed only for read_committed; markers never): $(for n in $ru_runs $rc_runs; do printf '%s=%s ' "$n" "$(json "$OUT_DIR/$n.json" 'r["totals"]["all"]["consumed_records"]')"; done)" >>"$MD"
fi

# 10. Peak shaving: a steady rate with a 5-second burst of 5x (workloads/burst.toml);
#     throughput over time in $OUT_DIR/burst.html shows whether the broker absorbs it.
if want 10; then
header "Peak shaving: 20,000 rec/s with a 100,000 rec/s burst from 8 s to 13 s (200-2000 B records, 1,000 keys)"
start_weir
run burst burst
fi

stop_weir
cat "$MD" >>"$OUT_MD"
echo "appended to $OUT_MD; reports in $OUT_DIR"
