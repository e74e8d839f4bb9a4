#!/bin/bash
# Restart stress (docs/reliability.md, "Start-up hang"): SIGKILL a broker at a random
# moment 0-400 ms after spawn, over and over, with two kcat producers writing the whole
# time. On odd cycles the kill may land during start-up; on even cycles both shards must
# log `shard ready` within 5 s first, else the broker counts as hung: its /proc and gdb
# stacks and its log are saved next to the data directory, and the loop goes on.
#
#   broker/scripts/restart-stress.sh [CYCLES]      (env: WEIR, D, PORT)
#
# It found the start-up hang only beside disk-heavy load (e.g. `make crash-test` running
# at the same time). Kill brokers by PID, never `pkill weir`: that hits test brokers too.
set -u
WEIR=${WEIR:-target/release/weir}
D=${D:-/tmp/weir-restart-stress}
PORT=${PORT:-39092}
N=${1:-300}
LOG=$D.broker.log
ALL=$D.all.log
rm -rf "$D" "$D".*; mkdir -p "$D"
start() {
  RUST_LOG=info,weir_broker::server=debug "$WEIR" serve --listen 127.0.0.1:$PORT --data-dir "$D" \
    --default-partitions 4 --segment-bytes 262144 >"$LOG" 2>&1 &
  PID=$!
}
producers=()
cleanup() { kill -9 "${PID:-0}" 2>/dev/null; for p in "${producers[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT
start; sleep 1
for topic in s1 s2; do
  yes "payload-$topic-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" |
    kcat -P -b 127.0.0.1:$PORT -t $topic -X acks=all -X message.timeout.ms=0 -X retry.backoff.ms=20 \
      -X reconnect.backoff.max.ms=100 >/dev/null 2>&1 &
  producers+=($!)
done
kill -9 $PID; wait $PID 2>/dev/null
hangs=0
for c in $(seq 1 "$N"); do
  start
  if (( c % 2 == 0 )); then
    t0=$(date +%s%N)
    while [ "$(grep -c 'shard ready' "$LOG")" -lt 2 ]; do
      sleep 0.02
      if (( $(date +%s%N) - t0 > 5000000000 )); then
        hangs=$((hangs + 1)); echo "HANG at cycle $c (pid $PID)"
        for t in /proc/$PID/task/*; do
          echo "$t $(cat "$t"/comm) wchan=$(cat "$t"/wchan)"; cat "$t"/stack 2>/dev/null
        done >"$D.hang-$c.txt"
        gdb -p $PID -batch -ex "thread apply all bt 40" 2>&1 | grep -E '^Thread|^#' >>"$D.hang-$c.txt"
        break
      fi
    done
  fi
  sleep "0.$(printf %03d $((RANDOM % 400)))"
  kill -9 $PID; wait $PID 2>/dev/null
  cat "$LOG" >>"$ALL"
done
echo "done: $N cycles, $((N / 2)) waited for ready, $hangs hung; logs in $ALL"
