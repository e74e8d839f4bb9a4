#!/usr/bin/env python3
"""Start and stop cycles of a broker holding 1,000 topics x 10 partitions on one data dir
(docs/benchmarks.md, "A clean stop of 10,000 partitions").

  stop_cycles.py WEIR DATA_DIR CYCLES PORT

A missing DATA_DIR is created first (topics created, then a clean stop). Each cycle
starts `WEIR serve --shards 2`, times the first acknowledged produce to scale-998/9
("serving"), produces 4 s at 20,000 rec/s to every partition (or idles 2 s with
IDLE=1), sends SIGTERM and prints one JSON line: serving_s, stop_s and the broker's CPU
seconds during the stop. Run it with the Python that has confluent-kafka (the venv).
"""
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MANY_TOPICS = os.path.join(HERE, "many_topics.py")
CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def main():
    weir, data, cycles, port = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    boot = f"127.0.0.1:{port}"
    py = sys.executable

    def start(probe=True):
        log = open(f"{data}.log", "a")
        t0 = time.time()
        p = subprocess.Popen([weir, "serve", "--listen", boot, "--data-dir", data, "--shards", "2"],
                             stdout=log, stderr=log)
        if not probe:
            time.sleep(3)
            return p, None
        out = subprocess.run([py, MANY_TOPICS, "probe", "--bootstrap", boot, "--topic", "scale-998",
                              "--partition", "9", "--timeout", "120"], capture_output=True, text=True)
        if out.returncode != 0:
            print("probe failed:", out.stderr[-500:], file=sys.stderr, flush=True)
            return p, None
        return p, float(out.stdout.strip()) - t0

    def stop(p):
        c0 = cpu_seconds(p.pid)
        t0 = time.time()
        p.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = status
        return time.time() - t0, usage.ru_utime + usage.ru_stime - c0, status

    if not os.path.exists(data):
        p, _ = start(probe=False)
        t = time.time()
        subprocess.run([py, MANY_TOPICS, "create", "--bootstrap", boot, "--topics", "1000",
                        "--partitions", "10"], check=True, capture_output=True)
        s, c, st = stop(p)
        print(json.dumps({"cycle": "create", "create_s": round(time.time() - t, 2), "stop_s": round(s, 2),
                          "stop_cpu_s": round(c, 2), "status": st}), flush=True)
    for i in range(cycles):
        p, serving = start()
        if os.environ.get("IDLE"):
            time.sleep(2)
        else:
            subprocess.run([py, MANY_TOPICS, "produce", "--bootstrap", boot, "--topics", "1000",
                            "--partitions", "10", "--rate", "20000", "--seconds", "4"], capture_output=True)
        s, c, st = stop(p)
        print(json.dumps({"cycle": i, "serving_s": serving and round(serving, 2), "stop_s": round(s, 2),
                          "stop_cpu_s": round(c, 2), "status": st}), flush=True)


if __name__ == "__main__":
    main()
