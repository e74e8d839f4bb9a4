#!/usr/bin/env bash
# Share group vs classic group consume on one topic, same client (confluent-kafka in the
# venv), same broker, one run (issue 14, docs/benchmarks.md "Share groups"): MB/s of three
# share members against three classic members (target: share >= 0.6 x classic) and the
# broker's CPU-s per million records for each (the difference is the acquisition and
# acknowledgement cost). The driver is share_vs_classic.py.
#
# usage: loadgen/scripts/share-vs-classic.sh WEIR [RECORDS] [ROUNDS]
# env: RECORD_BYTES (1024) PORT (29592) DATA_ROOT (target/bench/share-vs-classic) PYTHON (.venv/bin/python)
set -euo pipefail
WEIR=${1:?usage}; RECORDS=${2:-200000}; ROUNDS=${3:-3}
RECORD_BYTES=${RECORD_BYTES:-1024}; PORT=${PORT:-29592}
DATA_ROOT=${DATA_ROOT:-target/bench/share-vs-classic}; PYTHON=${PYTHON:-.venv/bin/python}
mkdir -p "$DATA_ROOT"
dir=$(mktemp -d "$DATA_ROOT/weir.XXXXXX")
"$WEIR" serve --listen 127.0.0.1:"$PORT" --shard-port-base $((PORT + 1)) --data-dir "$dir" \
  --group-share-auto-offset-reset earliest >"$DATA_ROOT/weir.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
echo "share vs classic: 6 partitions, $RECORDS records of $RECORD_BYTES B, 3 members each, $ROUNDS rounds (ABBA)"
"$PYTHON" "$(dirname "$0")/share_vs_classic.py" 127.0.0.1:"$PORT" "$PID" "$RECORDS" "$RECORD_BYTES" "$ROUNDS"
