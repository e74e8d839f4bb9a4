#!/bin/bash
# Broker CPU while 64 consumers long-poll an idle 64-partition topic and one
# producer writes 50 MB/s to another topic on the same shard (issue 13:
# an append should wake only the fetches of its partition).
# usage: idle-fetch-wakeups.sh WEIR_BIN LABEL PORT
BIN=$1; LABEL=$2; PORT=$3
L=${LOADGEN:-target/release/weir-loadgen}
D=$(mktemp -d /tmp/idleb.XXXX)
$BIN serve --shards 1 --listen 127.0.0.1:$PORT --data-dir $D > $D/log 2>&1 &
WB=$!
sleep 2
$L produce --bootstrap 127.0.0.1:$PORT --create --topic idle --partitions 64 --records 1 --quiet > /dev/null 2>&1
$L produce --bootstrap 127.0.0.1:$PORT --create --topic busy --partitions 1 --records 1 --quiet > /dev/null 2>&1
$L consume --bootstrap 127.0.0.1:$PORT --topic idle --consumers 64 --duration 14s --quiet > $D/cons 2>&1 &
CP=$!
sleep 2
t0=$(awk '{print $14+$15}' /proc/$WB/stat)
$L produce --bootstrap 127.0.0.1:$PORT --topic busy --record-size 1000 --rate 50000 --linger-ms 1 --duration 10s --quiet > $D/prod 2>&1
t1=$(awk '{print $14+$15}' /proc/$WB/stat)
wait $CP
kill $WB; wait $WB 2>/dev/null
TCK=$(getconf CLK_TCK)
echo "$LABEL broker cpu $(echo "scale=2; ($t1-$t0)/$TCK" | bc) s over 10 s produce; $(grep '^produce ' $D/prod | head -1)"
rm -rf $D
