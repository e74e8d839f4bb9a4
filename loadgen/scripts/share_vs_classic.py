"""Share group vs classic group consume, same client (confluent-kafka / librdkafka 2.16), same
topic, same broker, same run (issue 14). Called by share-vs-classic.sh.

  share_vs_classic.py BOOTSTRAP BROKER_PID RECORDS RECORD_BYTES ROUNDS

Fills a 6-partition topic with RECORDS records, then in ABBA rounds consumes all of it with
three members of a fresh classic group (Consumer, auto.offset.reset=earliest) and of a fresh
share group (ShareConsumer in its default configuration: implicit acknowledgement, every
record ACCEPTed by the next poll; the broker runs with --group-share-auto-offset-reset
earliest). Members are processes sharing one counter; a run's time is from the first record
any member receives to the moment the counter reaches RECORDS (group join excluded). The
broker's CPU (utime + stime from /proc/PID/stat) is taken over the whole run, join included,
for both kinds alike. Prints one JSON line per run and a summary line.
"""

import json
import multiprocessing as mp
import os
import sys
import time

from confluent_kafka import Consumer, Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, NewTopic

TOPIC = "share-bench"
MEMBERS = 3
# A member that goes this long between two non-empty polls is reported as stalled.
STALL_S = 0.3


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fill(bootstrap, records, size):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(TOPIC, 6, 1)]).values():
        f.result(30)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1 << 20})
    value = b"x" * size
    for i in range(records):
        while True:
            try:
                p.produce(TOPIC, value=value, partition=i % 6)
                break
            except BufferError:
                p.poll(0.05)
        if i % 10000 == 0:
            p.poll(0)
    assert p.flush(120) == 0


def member(kind, bootstrap, group, records, count, first, done, gaps):
    if kind == "share":
        conf = {"bootstrap.servers": bootstrap, "group.id": group}
        if os.environ.get("SHARE_DEBUG_DIR"):  # librdkafka's own fetch log, per member
            conf.update({"debug": "fetch,cgrp", "log_level": 7})
            log = open(f"{os.environ['SHARE_DEBUG_DIR']}/{group}-{os.getpid()}.log", "w")
            os.dup2(log.fileno(), 2)
        c = ShareConsumer(conf)
    else:
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                      "auto.offset.reset": "earliest", "enable.auto.commit": True})
    c.subscribe([TOPIC])
    last = None  # time of the last non-empty poll: the stall report (gaps)
    while not done.is_set():
        if kind == "share":
            msgs = c.poll(0.2)
        else:
            msgs = c.consume(500, 0.2)
        n = sum(1 for m in msgs if not m.error())
        if n:
            now = time.time()
            if last is not None and now - last >= STALL_S:
                gaps.put((os.getpid(), round(last, 3), round(now - last, 3)))
            last = now
            with first.get_lock():
                if first.value == 0.0:
                    first.value = time.time()
            with count.get_lock():
                count.value += n
                if count.value >= records:
                    done.set()
    c.close()


def run(kind, bootstrap, pid, records, size, rnd):
    count, first, done, gaps = mp.Value("q", 0), mp.Value("d", 0.0), mp.Event(), mp.Queue()
    group = f"{kind}-{rnd}-{time.time()}"
    c0, t_start = cpu_s(pid), time.time()
    procs = [mp.Process(target=member, args=(kind, bootstrap, group, records, count, first, done, gaps))
             for _ in range(MEMBERS)]
    for p in procs:
        p.start()
    if not done.wait(600):
        raise SystemExit(f"{kind}: only {count.value} of {records} records in 600 s")
    t_end = time.time()
    c1 = cpu_s(pid)
    for p in procs:
        p.join(30)
    secs = t_end - first.value
    stalls = []
    while not gaps.empty():
        pid_, at, gap = gaps.get()
        stalls.append([pid_, round(at - first.value, 2), gap])
    out = {"kind": kind, "round": rnd, "records": count.value, "seconds": round(secs, 3),
           "mb_per_s": round(count.value * size / secs / 1e6, 1),
           "broker_cpu_s_per_m": round((c1 - c0) / (count.value / 1e6), 2),
           "join_s": round(first.value - t_start, 2),
           "stalls": sorted(stalls, key=lambda x: x[1])}
    print(json.dumps(out), flush=True)
    return out


def median(v):
    v = sorted(v)
    return v[len(v) // 2]


def main():
    bootstrap, pid, records, size, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    fill(bootstrap, records, size)
    rows = []
    for r in range(rounds):  # ABBA: whatever a second run inherits falls on both kinds alike
        order = ["classic", "share"] if r % 2 == 0 else ["share", "classic"]
        for kind in order:
            rows.append(run(kind, bootstrap, pid, records, size, r))
    pick = lambda kind, k: median([x[k] for x in rows if x["kind"] == kind])
    c_mb, s_mb = pick("classic", "mb_per_s"), pick("share", "mb_per_s")
    c_cpu, s_cpu = pick("classic", "broker_cpu_s_per_m"), pick("share", "broker_cpu_s_per_m")
    pairs = [s["mb_per_s"] / c["mb_per_s"] for s, c in
             zip([x for x in rows if x["kind"] == "share"], [x for x in rows if x["kind"] == "classic"])]
    print(json.dumps({"summary": True, "classic_mb_per_s": c_mb, "share_mb_per_s": s_mb,
                      "ratio_of_medians": round(s_mb / c_mb, 3), "median_paired_ratio": round(median(pairs), 3),
                      "target_0_6": "met" if median(pairs) >= 0.6 else "NOT met",
                      "classic_broker_cpu_s_per_m": c_cpu, "share_broker_cpu_s_per_m": s_cpu,
                      "share_extra_cpu_s_per_m": round(s_cpu - c_cpu, 2)}))


if __name__ == "__main__":
    main()
