#!/usr/bin/env bash
# Serving after a restart with a large backlog on disk, builds alternating on ONE
# data directory (the backlog row of targets.sh writes 20 GB per build; this writes
# it once). Per round and build: clean restart -> first acknowledged produce
# (clean_s), kill -9 right after that, restart -> first ack (kill9_s), SIGTERM.
# The kill -9 comes right after a clean restart, as in targets.sh. HOT=1 adds a
# harder case per round and build (hot_s): start, produce HOT_GB more into the
# partitions' active segments (hot_produce_s: how long that took), kill -9 at
# once, restart -> first ack. The data directory grows by HOT_GB each time.
#
# usage: loadgen/scripts/restart_bench.sh WEIR LOADGEN [BASELINE_WEIR]
# env:   GB (20) ROUNDS (3) PORT (19210) DATA_ROOT (target/bench/restart) HOT (0) HOT_GB (1)
#        KEEP (0; 1 keeps the data directory) PY (.venv/bin/python)
set -euo pipefail
WEIR=${1:?usage: restart_bench.sh WEIR LOADGEN [BASELINE_WEIR]}
LOADGEN=${2:?usage}
BASE=${3:-}
GB=${GB:-20}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-19210}
DATA_ROOT=${DATA_ROOT:-target/bench/restart}
PY=${PY:-.venv/bin/python}
HERE=$(dirname "$0")
BOOT=127.0.0.1:$PORT
mkdir -p "$DATA_ROOT"
DATA_DIR="$DATA_ROOT/data"
LOG="$DATA_ROOT/weir.log"
PID=""
stop() { [[ -n "$PID" ]] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }; PID=""; }
kill9() { [[ -n "$PID" ]] && { kill -9 "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }; PID=""; }
trap 'stop; [[ ${KEEP:-0} == 1 ]] || rm -rf "$DATA_DIR"' EXIT
spawn() { # BIN
  AT=$(date +%s.%N)
  "$1" serve --listen "$BOOT" --data-dir "$DATA_DIR" >>"$LOG" 2>&1 &
  PID=$!
}
# serving BIN: sets S = seconds from spawn to the first acknowledged produce. Not in
# a $(...) subshell: the broker's PID must reach this shell.
serving() {
  "$PY" "$HERE/many_topics.py" probe --bootstrap "$BOOT" --topic backlog --partition 0 \
    --timeout 120 >"$DATA_ROOT/probe.out" 2>"$DATA_ROOT/probe.err" &
  local probe=$!
  sleep 1
  spawn "$1"
  if wait "$probe"; then S=$(python3 -c "print(round($(cat "$DATA_ROOT/probe.out") - $AT, 3))"); else S=nan; fi
}
if [[ ! -d "$DATA_DIR" ]]; then
  spawn "$WEIR"
  for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.05; done
  for _ in $(seq 1 "$GB"); do
    "$LOADGEN" produce --bootstrap "$BOOT" --topic backlog --create --partitions 8 --producers 8 \
      --record-size 1024 --records $(( 1000000000 / 1024 )) --quiet >/dev/null
  done
  stop
fi
echo "data: $(du -sh "$DATA_DIR" | cut -f1), $(find "$DATA_DIR" -name '*.log' | wc -l) segment files"
builds=(cur); [[ -n "$BASE" ]] && builds=(base cur)
HOT=${HOT:-0}
HOT_GB=${HOT_GB:-1}
produce_gb() { # N: N GB more, as the data was written
  for _ in $(seq 1 "$1"); do
    "$LOADGEN" produce --bootstrap "$BOOT" --topic backlog --partitions 8 --producers 8 \
      --record-size 1024 --records $(( 1000000000 / 1024 )) --quiet >/dev/null
  done
}
listening() { for _ in $(seq 1 400); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
printf 'round\tbuild\tclean_s\tkill9_s\tfds\thot_s\thot_produce_s\n'
for r in $(seq 1 "$ROUNDS"); do
  for b in "${builds[@]}"; do
    bin=$WEIR; [[ $b == base ]] && bin=$BASE
    serving "$bin"; c=$S; fds=$(ls "/proc/$PID/fd" | wc -l); kill9
    serving "$bin"; k=$S; stop
    h=-; pt=-
    if [[ $HOT == 1 ]]; then
      spawn "$bin"; listening
      t0=$(date +%s.%N); produce_gb "$HOT_GB"; pt=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))"); kill9
      serving "$bin"; h=$S; stop
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$b" "$c" "$k" "$fds" "$h" "$pt"
  done
done
