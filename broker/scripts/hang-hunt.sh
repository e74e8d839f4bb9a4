#!/bin/bash
# Hang hunt (docs/reliability.md, "Shard hang"): run a workload over and over, each run
# under a watchdog, and count the runs that hang. A hung run's stacks (gdb, every thread)
# are saved next to its log. Three workloads:
#
#   hang-hunt.sh wakeup  BIN RUNS [LOOPS]   the minimal glommio timer / wake-up program
#                                           (tools/glommio-wakeup); it has its own watchdog
#                                           and exits 2 with stacks when a loop stalls 5 s;
#                                           IO_DIR=dir adds Direct-I/O writes to each loop
#   hang-hunt.sh model   TESTBIN RUNS       the log model test from a weir-broker lib test
#                                           binary (48 executor runs per test run); a run
#                                           over 120 s is a hang (stacks, then killed)
#   hang-hunt.sh restart WEIR CYCLES        broker/scripts/restart-stress.sh with that binary
#
#   hang-hunt.sh parallel N WORKLOAD BIN RUNS
#                                           N copies of one workload at once, RUNS each,
#                                           each in its own $OUT/pN directory (more
#                                           contention per run; the model test is mostly
#                                           waiting on fdatasync, so N runs fit 2 vCPUs)
#
#   hang-hunt.sh build-wakeup               build tools/glommio-wakeup twice:
#                                           target/hunt-old (crates.io glommio 0.9.0) and
#                                           target/hunt-new (third_party/glommio, patched)
#
# Output ends with one line: "HUNT <workload> <bin>: N runs, H hangs, T s". Kill nothing
# by name: the processes here are ours, by PID.
set -u
OUT=${OUT:-/tmp/weir-hang-hunt}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

stacks() { # pid file
  for t in /proc/$1/task/*; do
    echo "$t $(cat "$t"/comm 2>/dev/null) wchan=$(cat "$t"/wchan 2>/dev/null)"
  done >"$2"
  gdb -p "$1" -batch -ex "thread apply all bt 40" 2>&1 | grep -E '^Thread|^#' >>"$2"
}

case "${1:-}" in
build-wakeup)
  cd "$ROOT/tools/glommio-wakeup" || exit 1
  cargo build -q --release --target-dir "$ROOT/target/hunt-old" &&
    cargo build -q --release --target-dir "$ROOT/target/hunt-new" \
      --config "patch.crates-io.glommio.path=\"$ROOT/third_party/glommio\"" &&
    echo "built target/hunt-old/release/glommio-wakeup and target/hunt-new/release/glommio-wakeup"
  ;;
wakeup)
  BIN=$2 RUNS=$3 LOOPS=${4:-10000}
  # IO_DIR set: each loop also writes with Direct I/O there (4 KiB, fdatasync every 8th).
  # NO_PROBE=1 skips the Direct-I/O probe, so glommio wrongly turns on polled I/O.
  io=(); [ -n "${IO_DIR:-}" ] && io=(--io "$IO_DIR")
  [ -n "${IO_DIR:-}" ] && [ -n "${NO_PROBE:-}" ] && io+=(--no-probe)
  hangs=0; slow=0; slowest=0; t0=$(date +%s)
  for r in $(seq 1 "$RUNS"); do
    "$BIN" --loops "$LOOPS" --stall-ms 5000 "${io[@]}" >"$OUT/wakeup.log" 2>&1
    rc=$?
    slow=$((slow + $(sed -n 's/.*, \([0-9]*\) loops over.*/\1/p' "$OUT/wakeup.log" | head -1)0 / 10))
    worst=$(( $(sed -n 's/.*slowest loop \([0-9]*\) us.*/\1/p' "$OUT/wakeup.log" | head -1)0 / 10 ))
    (( worst > slowest )) && slowest=$worst
    if [ $rc -ne 0 ]; then
      hangs=$((hangs + 1)); cp "$OUT/wakeup.log" "$OUT/wakeup-hang-$r.txt"
      echo "HANG (rc $rc) in run $r: $OUT/wakeup-hang-$r.txt"
    fi
  done
  echo "HUNT wakeup${IO_DIR:+ (+direct I/O${NO_PROBE:+, no probe: polled I/O})} $BIN: $RUNS runs x $LOOPS loops = $((RUNS * LOOPS)) loops, $hangs hangs, $slow loops over 100 ms, slowest $slowest us, $(($(date +%s) - t0)) s"
  ;;
model)
  BIN=$2 RUNS=$3
  hangs=0; t0=$(date +%s)
  for r in $(seq 1 "$RUNS"); do
    # The test's own deadline (120 s per executor) prints stacks and exits 124; this
    # outer one catches a hang outside an executor run.
    "$BIN" --exact log::model_tests::given_random_operations_when_applied_should_match_the_model \
      >"$OUT/model.log" 2>&1 &
    pid=$!
    ( sleep 300; if kill -0 $pid 2>/dev/null; then stacks $pid "$OUT/model-outer-$r.txt"; kill -9 $pid; fi ) &
    guard=$!
    wait $pid; rc=$?
    kill $guard 2>/dev/null; wait $guard 2>/dev/null
    if [ $rc -ne 0 ]; then
      hangs=$((hangs + 1)); cp "$OUT/model.log" "$OUT/model-hang-$r.txt"
      echo "FAIL/HANG (rc $rc) in run $r: $OUT/model-hang-$r.txt"
    fi
  done
  echo "HUNT model $BIN: $RUNS runs (x48 executor cases), $hangs hangs or failures, $(($(date +%s) - t0)) s"
  ;;
parallel)
  N=$2 W=$3 BIN=$4 RUNS=$5
  t0=$(date +%s); pids=()
  for k in $(seq 1 "$N"); do
    OUT="$OUT/p$k" bash "$0" "$W" "$BIN" "$RUNS" >"$OUT/parallel-$W-$k.log" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  cat "$OUT"/parallel-"$W"-*.log
  echo "HUNT parallel $N x $W $BIN: $((N * RUNS)) runs, $(cat "$OUT"/parallel-"$W"-*.log | grep -c '^FAIL/HANG\|^HANG') hangs or failures, $(($(date +%s) - t0)) s"
  ;;
restart)
  BIN=$2 CYCLES=$3
  t0=$(date +%s)
  line=$(WEIR="$BIN" D="$OUT/restart" bash "$ROOT/broker/scripts/restart-stress.sh" "$CYCLES" | tail -1)
  echo "$line"
  echo "HUNT restart $BIN: $line, $(($(date +%s) - t0)) s"
  ;;
*)
  sed -n 2,22p "$0"; exit 2
  ;;
esac
