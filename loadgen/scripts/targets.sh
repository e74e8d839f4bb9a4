#!/usr/bin/env bash
# Issue 13's targets in one table: each workload against the ceiling or baseline
# measured in the same run, the ratio, the target, met or not, and (with a
# baseline build) the previous build's figure from the same run, builds
# alternating per round. Measurements go to $OUT_DIR/results.tsv, one line each
# (build, key, value); loadgen/scripts/targets_table.py turns them into the table.
#
# usage: loadgen/scripts/targets.sh WEIR_BIN LOADGEN_BIN [BASELINE_WEIR_BIN]
# env:   QUICK (0; 1: short runs, small sizes: a few minutes)
#        ROUNDS (3; QUICK 1)        rounds of the throughput rows (each build per round)
#        DURATION (10s; QUICK 4s)   WARMUP (2s; QUICK 1s)
#        CATCHUP_BYTES (4e9; QUICK 1e9)   E2E_RUNS (10; QUICK 3)
#        SCALE_TOPICS (1000) SCALE_PARTITIONS (10 per topic) SCALE_RATE (20000 rec/s)
#        SCALE_SECONDS (20; QUICK 8)  SCALE_ROUNDS (3; QUICK 2: weir-loadgen scale runs)
#        BACKLOG_GB (20; QUICK 2)
#        PORT (18100: below the ephemeral range, 32768-60999 here, so no client socket holds it) OUT_DIR (target/bench/targets) OUT_MD (docs/benchmarks.md)
#        DATA_ROOT ($OUT_DIR/data: on the real disk, not tmpfs) ONLY (all; e.g. "produce e2e")
#        PY (.venv/bin/python: confluent-kafka)  BASELINE_REV (label of the baseline)
set -euo pipefail

WEIR=${1:?usage: targets.sh WEIR_BIN LOADGEN_BIN [BASELINE_WEIR_BIN]}
LOADGEN=${2:?usage}
BASE_WEIR=${3:-}
QUICK=${QUICK:-0}
q() { if [[ $QUICK == 1 ]]; then echo "$2"; else echo "$1"; fi; }
ROUNDS=${ROUNDS:-$(q 3 1)}
DURATION=${DURATION:-$(q 10s 4s)}
WARMUP=${WARMUP:-$(q 2s 1s)}
CATCHUP_BYTES=${CATCHUP_BYTES:-$(q 4000000000 1000000000)}
E2E_RUNS=${E2E_RUNS:-$(q 10 3)}
SCALE_TOPICS=${SCALE_TOPICS:-1000}
SCALE_PARTITIONS=${SCALE_PARTITIONS:-10}
SCALE_RATE=${SCALE_RATE:-20000}
SCALE_SECONDS=${SCALE_SECONDS:-$(q 20 8)}
SCALE_ROUNDS=${SCALE_ROUNDS:-$(q 3 2)}
BACKLOG_GB=${BACKLOG_GB:-$(q 20 2)}
PORT=${PORT:-18100}
OUT_DIR=${OUT_DIR:-target/bench/targets}
OUT_MD=${OUT_MD-docs/benchmarks.md}
DATA_ROOT=${DATA_ROOT:-$OUT_DIR/data}
ONLY=${ONLY:-}
PY=${PY:-.venv/bin/python}
HERE=$(dirname "$0")
BOOT=127.0.0.1:$PORT
mkdir -p "$OUT_DIR" "$DATA_ROOT"
RES=$OUT_DIR/results.tsv
: >"$RES"
WEIR_PID=""
DATA_DIR=""

BUILDS=(cur)
[[ -n "$BASE_WEIR" ]] && BUILDS+=(base)
bin_of() { if [[ $1 == base ]]; then echo "$BASE_WEIR"; else echo "$WEIR"; fi; }
want() { [[ -z "$ONLY" || " $ONLY " == *" $1 "* ]]; }
note() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
put() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RES"; } # build key value

NULL_PID=""
cleanup() { stop_weir; [[ -n "$NULL_PID" ]] && kill "$NULL_PID" 2>/dev/null; [[ -n "$DATA_DIR" ]] && rm -rf "$DATA_DIR"; true; }
trap cleanup EXIT

# The one-partition rows use issue 13's setup: one shard pinned to CPU 0, the client
# pinned to CPU 1 (PIN=1 makes spawn and the pinned clients do that). Unpinned, with
# the default two shards, the client and the broker's shard share a CPU part of the
# time: one partition's produce measured 555 MB/s that way against 964 pinned
# (2026-12-02, 21:38Z, quiet machine).
PIN=0
# pinned CPU CMD...: CMD, under taskset when PIN=1. Never run it in the background: a
# function behind `&` is a subshell, and $! would not be the command's PID.
pinned() { if [[ $PIN == 1 ]]; then taskset -c "$1" "${@:2}"; else "${@:2}"; fi; }
# The prefix that pins to CPU $1 when PIN=1, for commands started with `&`.
pin_to() { PIN_CMD=(); if [[ $PIN == 1 ]]; then PIN_CMD=(taskset -c "$1"); fi; }
# spawn BUILD [flags]: start weir on DATA_DIR (kept), wait until it listens; sets SPAWNED_AT.
spawn() {
  local build=$1; shift
  local pin=()
  [[ $PIN == 1 ]] && pin=(--shards 1 --shard-port-base $((PORT + 1)))
  SPAWNED_AT=$(date +%s.%N)
  pin_to 0
  "${PIN_CMD[@]}" "$(bin_of "$build")" serve --listen "$BOOT" --data-dir "$DATA_DIR" "${pin[@]}" "$@" \
    >>"$OUT_DIR/weir-$build.log" 2>&1 &
  WEIR_PID=$!
  for _ in $(seq 1 600); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then return 0; fi
    kill -0 "$WEIR_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "weir did not start listening on $BOOT; log:" >&2; tail -20 "$OUT_DIR/weir-$build.log" >&2; exit 1
}
# fresh BUILD [flags]: a new data directory and a broker on it.
fresh() {
  stop_weir
  [[ -n "$DATA_DIR" ]] && rm -rf "$DATA_DIR"
  DATA_DIR=$(mktemp -d "$DATA_ROOT/weir.XXXXXX")
  spawn "$@"
}
stop_weir() { # clean stop (SIGTERM), keeps the data
  if [[ -n "$WEIR_PID" ]]; then
    kill "$WEIR_PID" 2>/dev/null || true
    wait "$WEIR_PID" 2>/dev/null || true
    WEIR_PID=""
  fi
}
kill9_weir() {
  kill -9 "$WEIR_PID" 2>/dev/null || true
  wait "$WEIR_PID" 2>/dev/null || true
  WEIR_PID=""
}
# null_up FLAGS...: the load generator's null broker on BOOT (on CPU 0 when PIN=1), up
# once it listens; sets NULL_PID. Not behind `&`: its PID must reach this shell.
null_up() {
  pin_to 0
  "${PIN_CMD[@]}" "$LOADGEN" null-broker --listen "$BOOT" "$@" >>"$OUT_DIR/null-broker.log" 2>&1 &
  NULL_PID=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.05; done
}
null_down() { kill "$NULL_PID"; wait "$NULL_PID" 2>/dev/null || true; NULL_PID=""; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; } # PID -> CPU seconds
broker_cpu() { cpu_s "$WEIR_PID"; }
rss_mb() { awk '/^VmRSS/ { print $2 / 1024 }' "/proc/$WEIR_PID/status"; }
json() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"r": r}))' "$1" "$2"; }
calc() { python3 -c "print($1)"; }
drop_caches() { sync; if echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then echo yes; else echo no; fi; }

# serving KEY BUILD TOPIC PARTITION [flags]: start weir on the kept DATA_DIR and
# record KEY = seconds from spawn to the first acknowledged produce. The probe
# client starts (and imports) before the broker is spawned, so its start-up is not
# counted. Not in a $(...) subshell: the broker's PID must reach this shell.
serving() {
  local key=$1 build=$2 topic=$3 part=$4; shift 4
  "$PY" "$HERE/many_topics.py" probe --bootstrap "$BOOT" --topic "$topic" --partition "$part" \
    --timeout 120 >"$OUT_DIR/probe.out" 2>"$OUT_DIR/probe.err" &
  local probe=$!
  sleep 1
  spawn "$build" "$@"
  if wait "$probe"; then put "$build" "$key" "$(calc "$(cat "$OUT_DIR/probe.out") - $SPAWNED_AT")"
  else put "$build" "$key" nan; cat "$OUT_DIR/probe.err" >&2; fi
}

# lg BUILD KEY LOADGEN-ARGS...: one weir-loadgen run on the running broker; records
# KEY.mbps (payload MB/s), KEY.cpu (broker CPU-s per GB moved) and the report.
lg() {
  local build=$1 key=$2; shift 2
  local c0 c1 f="$OUT_DIR/$key-$build.json"
  c0=$(broker_cpu)
  pinned 1 "$LOADGEN" "$@" --bootstrap "$BOOT" --quiet --report-json "$f" >"$OUT_DIR/$key-$build.txt"
  c1=$(broker_cpu)
  put "$build" "$key.mbps" "$(json "$f" 'r["throughput"]["produce"]["payload_mb_per_s"] or r["throughput"]["consume"]["payload_mb_per_s"]')"
  put "$build" "$key.cpu" "$(calc "($c1 - $c0) / max($(json "$f" 'r["cpu"]["gb_moved"]'), 1e-9)")"
  put "$build" "$key.rps" "$(json "$f" 'r["throughput"]["produce"]["records_per_s"] or r["throughput"]["consume"]["records_per_s"]')"
}

fio_mbps() { # fio JSON -> MB/s of the job's read or write side
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0][sys.argv[2]]; print(j["bw_bytes"]/1e6)' "$1" "$2"
}

# --- ceilings: fio O_DIRECT qd4 1 MiB write and read, raw 64 KiB and 1 MiB pwrite+fdatasync,
# the read-send CPU floor ---
ceilings() {
  local f="$DATA_ROOT/fio.bin" size=$(( CATCHUP_BYTES / 1048576 ))M
  fio --name=w --filename="$f" --rw=write --bs=1M --iodepth=4 --ioengine=io_uring --direct=1 \
    --size="$size" --output-format=json >"$OUT_DIR/fio-w.json" 2>/dev/null
  put cur ceiling.write "$(fio_mbps "$OUT_DIR/fio-w.json" write)"
  drop_caches >/dev/null
  fio --name=r --filename="$f" --rw=read --bs=1M --iodepth=4 --ioengine=io_uring --direct=1 \
    --size="$size" --output-format=json >"$OUT_DIR/fio-r.json" 2>/dev/null
  put cur ceiling.read "$(fio_mbps "$OUT_DIR/fio-r.json" read)"
  # The catch-up row's CPU floor: the same file read O_DIRECT and sent over loopback.
  local rs
  rs=$("$LOADGEN" read-send --file "$f")
  echo "$rs" >>"$OUT_DIR/read-send.txt"
  put cur floor.read_send "$(echo "$rs" | grep -o '^read-send floor: [0-9.]*' | awk '{print $3}')"
  rm -f "$f"
  sync_ceiling ceiling.sync64k 65536
  # acks=all's serial floor: each 1 MiB written, then synced, before the next (a
  # producer's 8 x 256 KiB window answered half at a time).
  sync_ceiling ceiling.sync1m 1048576
}
# sync_ceiling KEY BYTES: a raw pwrite + fdatasync loop of BYTES per sync; its MB/s as KEY.
sync_ceiling() {
  local sw
  sw=$("$LOADGEN" sync-write --file "$DATA_ROOT/sync.bin" --block-bytes "$2" --duration 5s)
  echo "$sw" >>"$OUT_DIR/sync-write.txt"
  put cur "$1" "$(echo "$sw" | grep -o '^sync-write ceiling: [0-9.]*' | awk '{print $3}')"
}

for tool in fio kcat python3; do
  command -v "$tool" >/dev/null || { echo "targets.sh needs $tool (make bench-targets installs it)" >&2; exit 1; }
done

MACHINE="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, kernel $(uname -r)"
START=$(date -u +%Y-%m-%dT%H:%MZ)
note "targets: QUICK=$QUICK ROUNDS=$ROUNDS DURATION=$DURATION builds: ${BUILDS[*]}"

# The load generator's own ceilings (null broker, produce and consume).
if want selfcheck; then
  "$LOADGEN" self-check --duration "$(q 5s 3s)" --min-ratio 0 | tee "$OUT_DIR/self-check.txt" >&2
  put cur self.produce "$(grep -o '^produce .* vs null broker [0-9.]*' "$OUT_DIR/self-check.txt" | awk '{print $NF}')"
  put cur self.consume "$(grep -o '^consume .* vs null broker [0-9.]*' "$OUT_DIR/self-check.txt" | awk '{print $NF}')"
fi

common=(--duration "$DURATION" --warmup "$WARMUP")
# --- throughput rows, ROUNDS rounds, builds alternating, ceilings each round ---
if want produce; then
  for round in $(seq 1 "$ROUNDS"); do
    note "round $round: ceilings"; ceilings
    for build in "${BUILDS[@]}"; do
      note "round $round $build: produce"
      fresh "$build"; lg "$build" p8 run loadgen/workloads/produce-acks1-p8.toml "${common[@]}"
      PIN=1
      fresh "$build"; lg "$build" p1 run loadgen/workloads/produce-acks1-p1.toml "${common[@]}"
      for kb in 256 64; do
        fresh "$build"
        lg "$build" all$kb produce --topic all$kb --create --partitions 1 --producers 1 --acks all \
          --batch-bytes $(( kb * 1024 )) --record-size 1024 "${common[@]}"
      done
      PIN=0
    done
  done
fi

# --- catch-up consume of CATCHUP_BYTES not in cache: weir-loadgen (one consumer) and kcat ---
if want catchup; then
  for build in "${BUILDS[@]}"; do
    note "$build: catch-up fill $CATCHUP_BYTES"
    fresh "$build"
    "$LOADGEN" run loadgen/workloads/catchup-fill.toml --bootstrap "$BOOT" --records $(( CATCHUP_BYTES / 1024 )) \
      --quiet >"$OUT_DIR/catchup-fill-$build.txt"
    stop_weir; put cur dropped "$(drop_caches)"; spawn "$build"
    lg "$build" catchup consume --topic catchup --consumers 1 --from earliest --to-end
    # kcat reads every record written (-c: it exits on the last one). With -e it would
    # exit only after an empty fetch, which any Kafka broker holds for the consumer's
    # fetch.wait.max.ms (librdkafka: 500 ms) before answering: a fixed half second on
    # top of the read, measured separately below (kcat_e).
    stop_weir; drop_caches >/dev/null; spawn "$build"
    c0=$(broker_cpu); t0=$(date +%s.%N)
    n=$(timeout 600 kcat -C -b "$BOOT" -t catchup -o beginning -c $(( CATCHUP_BYTES / 1024 )) -q -f '%o\n' | wc -l)
    t1=$(date +%s.%N); c1=$(broker_cpu)
    put "$build" kcat.mbps "$(calc "$n * 1024 / ($t1 - $t0) / 1e6")"
    put "$build" kcat.cpu "$(calc "($c1 - $c0) / max($n * 1024 / 1e9, 1e-9)")"
    put "$build" kcat.records "$n"
    stop_weir; drop_caches >/dev/null; spawn "$build"
    t0=$(date +%s.%N)
    n=$(kcat -C -b "$BOOT" -t catchup -o beginning -e -q -f '%o\n' | wc -l)
    t1=$(date +%s.%N)
    put "$build" kcat_e.mbps "$(calc "$n * 1024 / ($t1 - $t0) / 1e6")"
    put "$build" kcat_e.records "$n"
  done
  # The client's own ceiling: the same consumer (one connection, one fetch in flight,
  # 8 MiB per partition) against the null broker answering every Fetch with pre-built
  # records at once: no disk, no log. One loadgen consumer cannot read faster than this
  # from any broker on this machine, whatever the disk does.
  note "catch-up client ceiling: one consumer against the null broker's pre-built answers"
  stop_weir
  null_up --serve-fetch-bytes $(( 8 << 20 ))
  "$LOADGEN" consume --bootstrap "$BOOT" --topic catchup --partitions 8 --consumers 1 --duration "$(q 5s 3s)" \
    --quiet --report-json "$OUT_DIR/catchup-client.json" >/dev/null
  put floor catchup.client "$(json "$OUT_DIR/catchup-client.json" 'r["throughput"]["consume"]["payload_mb_per_s"]')"
  null_down
fi

# --- end-to-end latency: 1 partition at 100k rec/s (E2E_RUNS runs); 8 at half the max ---
steal_ms() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { print $9 * 1000 / hz }' /proc/stat; }
# e2e1 BUILD FILE: one 1-partition e2e run against whatever listens on BOOT; records its
# p99, p99.99, records/s and the hypervisor's steal time over the run under BUILD.
e2e1() {
  local s0; s0=$(steal_ms)
  pinned 1 "$LOADGEN" e2e --bootstrap "$BOOT" --topic e2e1 --create --partitions 1 --producers 1 --consumers 1 \
    --rate 100000 --linger-ms 1 "${common[@]}" --quiet --report-json "$2" >/dev/null
  put "$1" e2e1.steal "$(calc "$(steal_ms) - $s0")"
  put "$1" e2e1.p99 "$(json "$2" 'r["latency"]["e2e"]["p99_us"]/1e3')"
  put "$1" e2e1.p9999 "$(json "$2" 'r["latency"]["e2e"]["p9999_us"]/1e3')"
  put "$1" e2e1.rps "$(json "$2" 'r["throughput"]["consume"]["records_per_s"]')"
}
if want e2e; then
  PIN=1
  for run in $(seq 1 "$E2E_RUNS"); do
    # The floor: the same run against the load generator's null broker, which keeps the
    # records in memory and answers a waiting Fetch as they arrive (no log, no disk).
    note "e2e run $run floor (null broker)"
    stop_weir
    # The machine's own floor: no broker at all, pinned threads on every CPU sleeping 1 ms
    # at a time; the pauses they see bound any e2e run's tail at this rate.
    "$LOADGEN" hiccup --duration "$DURATION" --rate 100000 >"$OUT_DIR/hiccup-$run.txt"
    read -r h99 h9999 < <(sed -n 's/.*p99 >= \([0-9.]*\) ms, p99.99 >= \([0-9.]*\) ms.*/\1 \2/p' "$OUT_DIR/hiccup-$run.txt")
    put machine e2e1.p99 "$h99"
    put machine e2e1.p9999 "$h9999"
    null_up --store
    e2e1 floor "$OUT_DIR/e2e1-$run-floor.json"
    null_down
    for build in "${BUILDS[@]}"; do
      note "e2e run $run $build"
      fresh "$build"
      e2e1 "$build" "$OUT_DIR/e2e1-$run-$build.json"
    done
  done
  PIN=0
  # "50% of the maximum rate" of an end-to-end run: the maximum is end to end too
  # (producers and consumers at once, unthrottled, on this build). Half of the
  # produce-only maximum, used before, was more than the load generator could carry
  # end to end on two CPUs: at 600,830 rec/s its null broker's p99 was 3,217 ms.
  note "e2e 8 partitions unthrottled: the end-to-end maximum, cur"
  fresh cur
  f="$OUT_DIR/e2e8-max.json"
  "$LOADGEN" run loadgen/workloads/e2e-half.toml --rate 0 --bootstrap "$BOOT" "${common[@]}" --quiet \
    --report-json "$f" >/dev/null
  max=$(json "$f" 'int(min(r["throughput"]["produce"]["records_per_s"], r["throughput"]["consume"]["records_per_s"]))')
  put cur e2e8.max "$max"
  half=$(calc "int(${max:-200000} / 2)")
  note "e2e 8 partitions at $half rec/s, floor (null broker)"
  stop_weir
  null_up --store
  f="$OUT_DIR/e2e8-floor.json"
  "$LOADGEN" run loadgen/workloads/e2e-half.toml --rate "$half" --bootstrap "$BOOT" "${common[@]}" --quiet \
    --report-json "$f" >/dev/null
  put floor e2e8.p99 "$(json "$f" 'r["latency"]["e2e"]["p99_us"]/1e3')"
  # A p50 or p99 far above the target means the null broker fell behind at this rate (it
  # is one thread; Weir's two shards carry more end to end): the table then states no floor.
  put floor e2e8.p50 "$(json "$f" 'r["latency"]["e2e"]["p50_us"]/1e3')"
  null_down
  for build in "${BUILDS[@]}"; do
    note "e2e 8 partitions at $half rec/s, $build"
    fresh "$build"
    f="$OUT_DIR/e2e8-$build.json"
    "$LOADGEN" run loadgen/workloads/e2e-half.toml --rate "$half" --bootstrap "$BOOT" "${common[@]}" --quiet \
      --report-json "$f" >/dev/null
    put "$build" e2e8.p99 "$(json "$f" 'r["latency"]["e2e"]["p99_us"]/1e3')"
    put "$build" e2e8.rate "$half"
  done
fi

# --- SCALE_TOPICS x SCALE_PARTITIONS at SCALE_RATE, beside 1 partition at the same rate ---
# Two clients. weir-loadgen (the target's row): its sticky partitioner fills one
# partition's batch for --linger-ms before moving on, as Kafka's Java producer does, so a
# batch holds the same records at 1 or 10,000 partitions and the ratio is the cost of
# the partitions. confluent-kafka through many_topics.py sends each record to the next
# partition in turn: one-record batches at 10,000 partitions, ~100-record batches at 1,
# so that ratio is mostly the cost of ~40 times the requests; the null broker (no log at
# all) under the same client and rate gives the floor of that ratio.
# scale_lg BUILD KEY TOPICS PARTITIONS: a fresh broker, the topics created, then
# SCALE_ROUNDS weir-loadgen runs at SCALE_RATE (KEY.cpu each).
scale_lg() {
  local build=$1 key=$2 topics=$3 parts=$4
  fresh "$build"
  pinned 1 "$LOADGEN" produce --bootstrap "$BOOT" --topic "$key" --topics "$topics" --partitions "$parts" \
    --create --records 1 --quiet >/dev/null
  for _ in $(seq 1 "$SCALE_ROUNDS"); do
    lg "$build" "$key" produce --topic "$key" --topics "$topics" --partitions "$parts" --record-size 1024 \
      --rate "$SCALE_RATE" --duration "${SCALE_SECONDS}s" --warmup 1s
  done
}
# scale_null KEY PREFIX TOPICS PARTITIONS: many_topics.py against the null broker; KEY.cpu.
scale_null() {
  null_up --no-auto-topics
  "$PY" "$HERE/many_topics.py" create --bootstrap "$BOOT" --prefix "$2" --topics "$3" --partitions "$4" >/dev/null
  local c0 c1; c0=$(cpu_s "$NULL_PID")
  "$PY" "$HERE/many_topics.py" produce --bootstrap "$BOOT" --prefix "$2" --topics "$3" --partitions "$4" \
    --rate "$SCALE_RATE" --seconds "$SCALE_SECONDS" >"$OUT_DIR/$1.json"
  c1=$(cpu_s "$NULL_PID")
  null_down
  put cur "$1.cpu" "$(calc "($c1 - $c0) / ($(json "$OUT_DIR/$1.json" 'r["bytes"]') / 1e9)")"
}
if want scale; then
  total=$(( SCALE_TOPICS * SCALE_PARTITIONS ))
  for build in "${BUILDS[@]}"; do
    note "$build: weir-loadgen, 1 partition, then $total partitions in $SCALE_TOPICS topics, at $SCALE_RATE rec/s"
    scale_lg "$build" scale_lg1 1 1
    scale_lg "$build" scale_lg "$SCALE_TOPICS" "$SCALE_PARTITIONS"
    stop_weir
  done
  note "null broker under many_topics.py: 1 partition, then $total partitions"
  scale_null scale_null1 one 1 1
  scale_null scale_null "scale" "$SCALE_TOPICS" "$SCALE_PARTITIONS"
  for build in "${BUILDS[@]}"; do
    note "$build: 1 partition at $SCALE_RATE rec/s"
    fresh "$build"
    "$PY" "$HERE/many_topics.py" create --bootstrap "$BOOT" --prefix one --topics 1 --partitions 1 >/dev/null
    c0=$(broker_cpu)
    "$PY" "$HERE/many_topics.py" produce --bootstrap "$BOOT" --prefix one --topics 1 --partitions 1 \
      --rate "$SCALE_RATE" --seconds "$SCALE_SECONDS" >"$OUT_DIR/scale1-$build.json"
    c1=$(broker_cpu)
    put "$build" scale1.cpu "$(calc "($c1 - $c0) / ($(json "$OUT_DIR/scale1-$build.json" 'r["bytes"]') / 1e9)")"
    note "$build: $total partitions in $SCALE_TOPICS topics at $SCALE_RATE rec/s"
    fresh "$build"
    t0=$(date +%s.%N)
    "$PY" "$HERE/many_topics.py" create --bootstrap "$BOOT" --topics "$SCALE_TOPICS" \
      --partitions "$SCALE_PARTITIONS" >/dev/null
    put "$build" scale.create_s "$(calc "$(date +%s.%N) - $t0")"
    c0=$(broker_cpu)
    "$PY" "$HERE/many_topics.py" produce --bootstrap "$BOOT" --topics "$SCALE_TOPICS" \
      --partitions "$SCALE_PARTITIONS" --rate "$SCALE_RATE" --seconds "$SCALE_SECONDS" >"$OUT_DIR/scale-$build.json"
    c1=$(broker_cpu)
    put "$build" scale.cpu "$(calc "($c1 - $c0) / ($(json "$OUT_DIR/scale-$build.json" 'r["bytes"]') / 1e9)")"
    put "$build" scale.errors "$(json "$OUT_DIR/scale-$build.json" 'len(r["errors"])')"
    put "$build" scale.fds "$(ls "/proc/$WEIR_PID/fd" | wc -l)"
    put "$build" scale.fdlimit "$(awk '/Max open files/ { print $4 }' "/proc/$WEIR_PID/limits")"
    # The bound docs/operations.md ("Open files") states: partitions (one active segment
    # each) + --max-open-segment-files (1,024 by default) + 16 per shard + connections.
    # Shards: the default, one per available CPU.
    put "$build" scale.fdbound "$(( total + 1024 + 16 * $(nproc) + $(ls -l "/proc/$WEIR_PID/fd" | grep -c socket) ))"
    put "$build" scale.partitions "$total"
    stop_weir
    serving scale.start_s "$build" "scale-$(( SCALE_TOPICS - 1 ))" $(( SCALE_PARTITIONS - 1 ))
    put "$build" scale.fds_restart "$(ls "/proc/$WEIR_PID/fd" | wc -l)"
    stop_weir
  done
fi

# --- backlog: RSS per GB from 1 to BACKLOG_GB, then restarts (clean, kill -9) ---
if want backlog; then
  for build in "${BUILDS[@]}"; do
    avail_gb=$(df -BG --output=avail "$DATA_ROOT" | tail -1 | tr -dc 0-9)
    gb=$BACKLOG_GB
    if (( avail_gb < gb + 10 )); then gb=$(( avail_gb - 10 )); note "only ${avail_gb} GB free: backlog $gb GB"; fi
    put "$build" backlog.gb "$gb"
    fresh "$build"
    per_gb=$(( 1000000000 / 1024 ))
    for i in $(seq 1 "$gb"); do
      "$LOADGEN" produce --bootstrap "$BOOT" --topic backlog --create --partitions 8 --producers 8 \
        --record-size 1024 --records "$per_gb" --quiet >/dev/null
      put "$build" "backlog.rss" "$i:$(rss_mb)"
    done
    stop_weir
    serving backlog.clean_s "$build" backlog 0
    put "$build" backlog.rss_restart "$(rss_mb)"
    kill9_weir
    serving backlog.kill9_s "$build" backlog 0
    stop_weir
  done
fi
stop_weir
[[ -n "$DATA_DIR" ]] && rm -rf "$DATA_DIR"; DATA_DIR=""

python3 "$HERE/targets_table.py" "$RES" --quick "$QUICK" --baseline "${BASELINE_REV:-}" \
  --header "## Issue 13 targets ($START, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$([[ $QUICK == 1 ]] && echo ', QUICK'))" \
  --machine "$MACHINE" --rounds "$ROUNDS" --duration "$DURATION" --catchup "$CATCHUP_BYTES" \
  --scale "$SCALE_TOPICS x $SCALE_PARTITIONS at $SCALE_RATE rec/s for $SCALE_SECONDS s" >"$OUT_DIR/table.md"
cat "$OUT_DIR/table.md"
if [[ -n "$OUT_MD" ]]; then cat "$OUT_DIR/table.md" >>"$OUT_MD"; echo "appended to $OUT_MD" >&2; fi
