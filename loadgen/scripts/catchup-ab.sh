#!/bin/bash
# Catch-up read A/B (issue 13): two brokers (two binaries, or one binary with two
# sets of flags) reading the same data, alternating which goes first each round,
# beside fio's O_DIRECT read ceiling measured in the same round.
# usage: catchup-ab.sh A_WEIR B_WEIR LOADGEN [GB] [ROUNDS]
# env:   PORT (19100; the broker also binds PORT+1 and PORT+2, its shards' ports)
#        A_FLAGS, B_FLAGS (extra `weir serve` flags per side)   KCAT (1: also read with kcat)
#        DATA_ROOT (target: on the real disk, not tmpfs)
# Fill: GB of 1 KiB records in 8 partitions (8 producers), written once by A. Per
# round: fio (io_uring, qd4, 1 MiB, O_DIRECT) reads a GB file written just before,
# caches dropped; then per side, caches dropped and the broker restarted before
# each read (nothing in its tail cache or the page cache): one weir-loadgen
# consumer to the end, then kcat (`-C -o beginning -e`, librdkafka defaults: one
# fetch in flight per broker connection) to the end.
# Prints one line per read: MB/s (10^6 log bytes per wall-clock second), ratio to
# the round's fio ceiling, broker CPU-s per GB (utime+stime from /proc/PID/stat),
# client CPU-s per GB; then the medians per side.
set -euo pipefail
A=$1; B=$2; L=$3; GB=${4:-2}; ROUNDS=${5:-3}
PORT=${PORT:-19100}
KCAT=${KCAT:-1}
D=$(mktemp -d "${DATA_ROOT:-target}/catchup-ab.XXXX")
TCK=$(getconf CLK_TCK)
BOOT=127.0.0.1:$PORT
WB=
RES=$D/results.tsv

start() { # BIN FLAGS...
  local bin=$1; shift
  $bin serve --listen $BOOT --data-dir $D/data "$@" >>$D/log 2>&1 &
  WB=$!
  for _ in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/$((PORT + 1))) 2>/dev/null \
      && (exec 3<>/dev/tcp/127.0.0.1/$((PORT + 2))) 2>/dev/null && return 0
    sleep 0.05
  done
  echo "broker did not start" >&2; tail $D/log >&2; exit 1
}
stop() { kill $WB; wait $WB 2>/dev/null || true; WB=; }
cpu() { awk '{print $14+$15}' /proc/$WB/stat; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
trap '[[ -n $WB ]] && kill $WB && wait $WB; rm -rf $D' EXIT

start "$A" ${A_FLAGS:-}
RECORDS=$(( GB * 1000 * 1000 * 1000 / 1024 ))
$L produce --bootstrap $BOOT --create --topic cu --partitions 8 --producers 8 --record-size 1024 \
  --records $RECORDS --quiet >$D/fill 2>&1
stop
BYTES=$(find $D/data -path '*/cu-*' -name '*.log' -printf '%s\n' | awk '{s+=$1} END {print s}')

# measure SIDE WHAT FIO CMD...: one timed read against the running broker.
measure() {
  local side=$1 what=$2 fio=$3; shift 3
  local c0 t0 c1 t1 tf=$D/time
  c0=$(cpu); t0=$(date +%s.%N)
  if ! /usr/bin/time -f '%U %S' -o $tf "$@" >$D/out 2>&1; then echo "$side $what FAILED: $(tail -3 $D/out)"; return; fi
  t1=$(date +%s.%N); c1=$(cpu)
  python3 - "$side" "$what" "$BYTES" "$t0" "$t1" "$c0" "$c1" "$TCK" "$fio" "$(cat $tf)" <<'EOF' | tee -a $RES
import sys
side, what, b, t0, t1, c0, c1, tck, fio, client = sys.argv[1:]
b, gb = int(b), int(b) / 1e9
mbps = b / (float(t1) - float(t0)) / 1e6
u, s = map(float, client.split())
print(f"{side}\t{what}\t{mbps:.0f}\t{mbps / float(fio):.2f}\t{(float(c1) - float(c0)) / float(tck) / gb:.3f}\t{(u + s) / gb:.3f}")
EOF
}
# Commands, not functions: /usr/bin/time runs them.
LG=("$L" consume --bootstrap $BOOT --topic cu --consumers 1 --from earliest --to-end --quiet)
KC=(kcat -C -b $BOOT -t cu -o beginning -e -q -f '')

side() { # SIDE FIO
  local s=$1 fio=$2 bin flags
  if [[ $s == A ]]; then bin=$A; flags=${A_FLAGS:-}; else bin=$B; flags=${B_FLAGS:-}; fi
  drop; start "$bin" $flags
  measure "$s" loadgen "$fio" "${LG[@]}"
  stop
  if [[ $KCAT == 1 ]]; then
    drop; start "$bin" $flags
    measure "$s" kcat "$fio" "${KC[@]}"
    stop
  fi
}

echo "catch-up of $(( BYTES / 1000000 )) MB of .log files (8 partitions); A=$A ${A_FLAGS:-} B=$B ${B_FLAGS:-}"
echo "columns: side, reader, MB/s, ratio to fio, broker CPU-s/GB, client CPU-s/GB"
for r in $(seq $ROUNDS); do
  fio --name=r --filename=$D/fio.bin --rw=write --bs=1M --iodepth=4 --ioengine=io_uring --direct=1 \
    --size=$(( GB * 1000 ))M --output-format=json >/dev/null 2>&1
  drop
  fio --name=r --filename=$D/fio.bin --rw=read --bs=1M --iodepth=4 --ioengine=io_uring --direct=1 \
    --size=$(( GB * 1000 ))M --output-format=json >$D/fio.json 2>/dev/null
  fio_mbps=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["jobs"][0]["read"]["bw_bytes"]/1e6))' $D/fio.json)
  rm -f $D/fio.bin
  echo "round $r: fio O_DIRECT read ceiling $fio_mbps MB/s; load $(cut -d' ' -f1-3 /proc/loadavg)"
  printf 'fio\t%s\t%s\n' "$r" "$fio_mbps" >>$RES
  if (( r % 2 )); then order="A B"; else order="B A"; fi
  for s in $order; do side $s $fio_mbps; done
done
echo "medians (MB/s, ratio, broker CPU-s/GB, client CPU-s/GB); load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - $RES <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
print("fio", statistics.median(float(r[2]) for r in rows if r[0] == "fio"))
for side in "AB":
    for what in ("loadgen", "kcat"):
        rs = [r for r in rows if r[0] == side and r[1] == what]
        if rs:
            med = [statistics.median(float(r[i]) for r in rs) for i in range(2, 6)]
            print(side, what, " ".join(f"{m:.3g}" for m in med), f"({len(rs)} rounds)")
EOF
