#!/bin/bash
# The fetch read path A/B (issue 13, zero-copy to consumers): the same binary
# with `--fetch-read-path copy` (the region copied into a new buffer) and `dma`
# (the Direct-I/O read buffer handed to the socket), same data, alternating
# which goes first each round.
# usage: zero-copy.sh WEIR_BIN LOADGEN_BIN [GB] [ROUNDS]
# Per round: fio's O_DIRECT read ceiling (qd4, 1 MiB; as in `make bench`), then
# per path: catch-up of GB (8 partitions, 2 shards, caches dropped and the
# broker restarted before each read, so nothing is in its tail cache or the
# page cache) by weir-loadgen (1 consumer) and by kcat to the end; and a
# tail-cache read (32 partitions x 12 MB, under the 16 MiB tail cache of each,
# read 3 times by weir-loadgen; includes its start-up). Prints MB/s (10^6 B/s of log bytes, from the wall clock) and the
# broker's CPU seconds (utime+stime from /proc/PID/stat) per GB.
set -euo pipefail
BIN=$1; L=$2; GB=${3:-3}; ROUNDS=${4:-5}
PORT=${PORT:-19140}
D=$(mktemp -d "${DATA_ROOT:-target}/zero-copy.XXXX")
TCK=$(getconf CLK_TCK)
BOOT=127.0.0.1:$PORT
WB=

start() {
  $BIN serve --listen $BOOT --data-dir $D/data "$@" >> $D/log 2>&1 &
  WB=$!
  # The bootstrap port and both shards' own ports (zero-hop: base + 1 + shard id).
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/$((PORT + 1))) 2>/dev/null \
      && (exec 3<>/dev/tcp/127.0.0.1/$((PORT + 2))) 2>/dev/null && return 0
    sleep 0.1
  done
  echo "broker did not start" >&2; tail $D/log >&2; exit 1
}
stop() { kill $WB; wait $WB 2>/dev/null || true; WB=; }
cpu() { awk '{print $14+$15}' /proc/$WB/stat; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
trap '[[ -n $WB ]] && kill $WB && wait $WB; rm -rf $D' EXIT

start
RECORDS=$(( GB * 1000 * 1000 * 1000 / 1024 ))
$L produce --bootstrap $BOOT --create --topic cu --partitions 8 --producers 8 --record-size 1024 \
  --records $RECORDS --quiet > $D/fill 2>&1
stop
BYTES=$(du -scb $D/data/cu-* | tail -1 | cut -f1)

# measure LABEL BYTES CMD...: one timed command against the running broker.
measure() {
  local label=$1 bytes=$2; shift 2
  local c0 t0 c1 t1
  c0=$(cpu); t0=$(date +%s.%N)
  if ! "$@" > $D/out 2>&1; then echo "$label FAILED: $(tail -3 $D/out)"; return; fi
  t1=$(date +%s.%N); c1=$(cpu)
  printf '%s %d MB/s %.3f cpu-s/GB\n' "$label" \
    "$(echo "$bytes / ($t1 - $t0) / 1000000" | bc)" \
    "$(echo "scale=6; ($c1 - $c0) / $TCK / ($bytes / 1000000000)" | bc)"
}
lg_consume() { $L consume --bootstrap $BOOT --topic "$1" --consumers 1 --from earliest --to-end --quiet; }
kcat_all() { kcat -C -b $BOOT -t cu -o beginning -e -q -f ''; }
tail_reads() { for _ in $(seq 3); do lg_consume "$1"; done; }

run() { # path
  local p=$1
  drop; start --fetch-read-path "$p"
  measure "  $p catch-up loadgen" "$BYTES" lg_consume cu
  stop; drop; start --fetch-read-path "$p"
  measure "  $p catch-up kcat   " "$BYTES" kcat_all
  stop
}
tail_run() { # path: a fresh broker on a fresh topic, so reads come from the tail cache
  local p=$1
  start --fetch-read-path "$p"
  $L produce --bootstrap $BOOT --create --topic "t$p$2" --partitions 32 --producers 8 --record-size 1024 \
    --records $(( 32 * 12 * 1000 * 1000 / 1024 )) --quiet > /dev/null 2>&1
  local bytes; bytes=$(du -scb $D/data/t$p$2-* | tail -1 | cut -f1)
  measure "  $p tail-cache x3   " "$(( bytes * 3 ))" tail_reads "t$p$2"
  stop
}

echo "catch-up of $(( BYTES / 1000000 )) MB (8 partitions), tail-cache 32 x 12 MB read 3 times; load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq $ROUNDS); do
  drop
  fio --name=r --filename=$D/fio.bin --rw=read --bs=1M --iodepth=4 --ioengine=io_uring --direct=1 \
    --size=$(( GB * 1000 ))M --output-format=json > $D/fio.json 2>/dev/null || true
  fio_mbps=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["jobs"][0]["read"]["bw_bytes"]/1e6))' $D/fio.json)
  rm -f $D/fio.bin
  echo "round $r: fio O_DIRECT read ceiling $fio_mbps MB/s; load $(cut -d' ' -f1-3 /proc/loadavg)"
  if (( r % 2 )); then order="copy dma"; else order="dma copy"; fi
  for p in $order; do run $p; done
  for p in $order; do tail_run $p $r; done
done
