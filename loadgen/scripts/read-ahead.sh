#!/bin/bash
# Catch-up consume from the segment files with read-ahead off and on, same
# binary, same data, alternating (issue 13: Direct I/O has no kernel
# readahead and a Kafka consumer keeps one fetch in flight).
# usage: read-ahead.sh WEIR_BIN LOADGEN_BIN [GB] [ROUNDS]
# Prints, per run: MB/s of weir-loadgen (1 consumer) and of kcat (librdkafka,
# default consumer settings) reading everything, and the broker's CPU seconds
# per GB. The broker restarts before each read, so nothing is in its tail cache.
set -euo pipefail
BIN=$1; L=$2; GB=${3:-2}; ROUNDS=${4:-3}
PORT=${PORT:-19392}
D=$(mktemp -d /tmp/readahead.XXXX)
TCK=$(getconf CLK_TCK)
BOOT=127.0.0.1:$PORT
WB=

start() {
  $BIN serve --shards 1 --listen $BOOT --data-dir $D/data "$@" > $D/log 2>&1 &
  WB=$!
  for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
    sleep 0.1
  done
  echo "broker did not start" >&2; exit 1
}
stop() { kill $WB; wait $WB 2>/dev/null || true; }
cpu() { awk '{print $14+$15}' /proc/$WB/stat; }
trap 'kill $WB 2>/dev/null || true; rm -rf $D' EXIT

start
RECORDS=$(( GB * 1000 * 1000 * 1000 / 1024 ))
$L produce --bootstrap $BOOT --create --topic ra --partitions 1 --record-size 1024 \
  --records $RECORDS --quiet > $D/fill 2>&1
stop
BYTES=$(du -sb $D/data/ra-0 | cut -f1)

run() { # label, flags...
  local label=$1; shift
  start "$@"
  local c0 t0 c1 t1
  c0=$(cpu); t0=$(date +%s.%N)
  $L consume --bootstrap $BOOT --topic ra --consumers 1 --from earliest --to-end --quiet > $D/cons 2>&1
  t1=$(date +%s.%N); c1=$(cpu)
  local lg kc
  lg=$(echo "scale=0; $BYTES / ($t1 - $t0) / 1000000" | bc)
  local lgcpu; lgcpu=$(echo "scale=3; ($c1 - $c0) / $TCK / ($BYTES / 1000000000)" | bc)
  stop; start "$@"
  c0=$(cpu); t0=$(date +%s.%N)
  kcat -C -b $BOOT -t ra -o beginning -e -q -f '' > /dev/null
  t1=$(date +%s.%N); c1=$(cpu)
  kc=$(echo "scale=0; $BYTES / ($t1 - $t0) / 1000000" | bc)
  local kccpu; kccpu=$(echo "scale=3; ($c1 - $c0) / $TCK / ($BYTES / 1000000000)" | bc)
  stop
  echo "$label loadgen ${lg} MB/s broker ${lgcpu} cpu-s/GB | kcat ${kc} MB/s broker ${kccpu} cpu-s/GB"
}

echo "catch-up of $(( BYTES / 1000000 )) MB, 1 partition, 1 shard; load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq $ROUNDS); do
  run "round $r off" --read-ahead-bytes 0
  run "round $r on " 
done
