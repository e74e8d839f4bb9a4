#!/usr/bin/env python3
"""The flash-sale scenario, measured (`make bench-peak`; docs/peak-shaving.md).

One run, three stages against one throwaway PostgreSQL:
  shave   a burst of orders at FACTOR x the drain cap R for BURST seconds into a
          Weir topic (weir-loadgen, open loop); weir-drain moves them into
          PostgreSQL at R rows/s; every order's row is inserted by a trigger that
          also takes one unit of stock in the same transaction.
  direct  the baseline: the same burst straight to PostgreSQL by the same number
          of clients (pgbench, open loop with -R), same per-order work.
  bound   (--bound N) the shave stage with backlog.records.max=N and
          backlog.policy=reject on the topic: rejections past the watermark.

Writes OUT/peak.json, OUT/peak.html (inline SVG, no scripts) and prints a
summary. Standard library only; PostgreSQL is reached through psql.
Runs as root (the CI does): initdb and postgres then run as user postgres.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402  (the HTML/summary half)

ITEMS = 100


def free_port(span=1):
    """A port p with p..p+span-1 free (Weir's zero-hop shard ports follow the listen port)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p + span >= 65535:
            continue
        ok = True
        for q in range(p + 1, p + span):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", q))
                except OSError:
                    ok = False
        if ok:
            return p
    raise RuntimeError("no free port range")


def pg_bindir():
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        d = Path(out.stdout.strip())
        if (d / "initdb").exists():
            return d
    except (OSError, subprocess.CalledProcessError):
        pass
    versions = sorted(
        (int(p.name), p / "bin") for p in Path("/usr/lib/postgresql").glob("*") if p.name.isdigit()
    )
    if not versions:
        sys.exit("PostgreSQL not found: run `make test-deps`")
    return versions[-1][1]


class Postgres:
    """initdb into a temp directory, listen on 127.0.0.1:port, stop on close()."""

    def __init__(self, root):
        self.bin = pg_bindir()
        self.dir = Path(root) / "pg"
        self.dir.mkdir()
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            subprocess.run(["chown", "-R", "postgres:postgres", str(self.dir)], check=True)
        data = str(self.dir / "data")
        self.tool("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=100"
        self.tool("pg_ctl", "-D", data, "-l", str(self.dir / "server.log"), "-o", opts, "-w", "start")

    def tool(self, name, *args):
        cmd = [str(self.bin / name), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def dsn(self, db):
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={db}"

    def sql(self, db, text):
        out = subprocess.run(
            [str(self.bin / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db],
            input=text, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"psql: {out.stderr.strip()}")
        return out.stdout.strip()

    def close(self):
        try:
            self.tool("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass


# One order takes one unit of its item's stock, or is recorded sold out: stock
# never goes negative (the CHECK would refuse it), whatever the concurrency.
ORDER_SCHEMA = """
CREATE TABLE stock (item text PRIMARY KEY, qty int NOT NULL CHECK (qty >= 0));
CREATE TABLE orders (order_id text PRIMARY KEY, item text NOT NULL, qty int NOT NULL,
    status text NOT NULL, placed_at timestamptz,
    inserted_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION take_stock(p_item text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    UPDATE stock SET qty = qty - 1 WHERE item = p_item AND qty > 0;
    RETURN CASE WHEN FOUND THEN 'reserved' ELSE 'sold_out' END;
END $$;
"""

# weir-drain's raw-mode table (its columns; docs/peak-shaving.md), and the
# trigger that turns each drained record into an order. The order id is the
# record's partition and loadgen order stamp (producer id, sequence: value
# bytes 9..20), so a record stored twice by the broker would collide on the
# primary key (and land in weir_drain_dead_letters), not pass as a new order.
DRAIN_SCHEMA = """
CREATE TABLE orders_raw (id bigserial PRIMARY KEY, topic text NOT NULL, partition int NOT NULL,
    "offset" bigint NOT NULL, ts timestamptz, key bytea, value bytea, headers jsonb,
    inserted_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION order_from_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO orders (order_id, item, qty, status, placed_at)
    VALUES (NEW.partition || '-' || encode(substring(NEW.value from 9 for 12), 'hex'),
            encode(NEW.key, 'hex'), 1, take_stock(encode(NEW.key, 'hex')), NEW.ts);
    RETURN NULL;
END $$;
CREATE TRIGGER order_from_record AFTER INSERT ON orders_raw
    FOR EACH ROW EXECUTE FUNCTION order_from_record();
"""

# pgbench's transaction: the same order and stock work, one order per
# transaction, as a web handler writing straight to the database would.
DIRECT_SCHEMA = """
CREATE SEQUENCE order_seq;
CREATE FUNCTION place_order(p_key bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE k text := lpad(to_hex(p_key), 16, '0');
BEGIN
    INSERT INTO orders (order_id, item, qty, status, placed_at)
    VALUES ('direct-' || nextval('order_seq'), k, 1, take_stock(k), clock_timestamp());
END $$;
"""


def make_db(pg, db, stock_per_item, extra):
    pg.sql("postgres", f"CREATE DATABASE {db}")
    pg.sql(db, ORDER_SCHEMA + extra)
    # loadgen's keys are big-endian u64 in 0..ITEMS: the hex of 8 bytes.
    pg.sql(db, f"INSERT INTO stock SELECT lpad(to_hex(i), 16, '0'), {stock_per_item} "
               f"FROM generate_series(0, {ITEMS - 1}) i")


class Weir:
    def __init__(self, exe, root, shards):
        self.exe = exe
        self.port = free_port(shards + 1)
        self.boot = f"127.0.0.1:{self.port}"
        data = Path(root) / "weir-data"
        self.log = open(Path(root) / "weir.log", "w")
        self.proc = subprocess.Popen(
            [exe, "serve", "--listen", self.boot, "--data-dir", str(data), "--shards", str(shards),
             "--auto-create-topics", "false"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def topic(self, name, partitions, configs):
        args = [self.exe, "topic", "create", name, "--bootstrap", self.boot,
                "--partitions", str(partitions)]
        for c in configs:
            args += ["--config", c]
        deadline = time.time() + 60
        while True:
            out = subprocess.run(args, capture_output=True, text=True)
            if out.returncode == 0:
                return
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"topic create {name}: {out.stderr.strip()}")
            time.sleep(0.5)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Sampler(threading.Thread):
    """Once a second: the drain's status (lag = backlog, transaction p99) and
    the orders count, stamped with wall time."""

    def __init__(self, pg, db, status_file, boot, topic, partitions):
        super().__init__(daemon=True)
        self.pg, self.db, self.status_file = pg, db, status_file
        self.samples = []
        self.stop = threading.Event()
        self.log_end = log_end_reader(boot, topic, partitions)

    def run(self):
        while not self.stop.wait(1.0 - (time.time() % 1.0)):
            now = time.time()
            end = self.log_end()
            try:
                st = json.loads(Path(self.status_file).read_text())
            except (OSError, ValueError):
                st = {}
            try:
                rows = int(self.pg.sql(self.db, "SELECT count(*) FROM orders"))
            except RuntimeError:
                rows = None
            # Backlog: records in the log not yet in the database (the drain's
            # own `lag` uses the high watermark of its last fetch, which is
            # stale while its cap holds it back from fetching).
            backlog = end - rows if end is not None and rows is not None else st.get("lag")
            self.samples.append({
                "t_unix": now, "db_rows": rows, "backlog": backlog, "log_end": end,
                "drain_lag": st.get("lag"),
                "drain_rows": st.get("rows"), "drain_state": st.get("state"),
                "txn_p99_ms": (st.get("txn_latency_ms") or {}).get("p99"),
                "txn_p50_ms": (st.get("txn_latency_ms") or {}).get("p50"),
                "dead_letters": st.get("dead_letters"),
            })


def log_end_reader(boot, topic, partitions):
    """A function returning the sum of the topic's log end offsets (ListOffsets
    through confluent-kafka, the venv's), or None without it."""
    try:
        from confluent_kafka import Consumer, TopicPartition
    except ImportError:
        return lambda: None
    c = Consumer({"bootstrap.servers": boot, "group.id": "bench-peak-sampler"})

    def read():
        try:
            return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=2, cached=False)[1]
                       for p in range(partitions))
        except Exception:  # noqa: BLE001  (a sample is skipped, not the run)
            return None
    return read


def loadgen_cmd(a, weir, topic, out_dir, name, keep_going):
    cmd = [a.loadgen, "produce", "--bootstrap", weir.boot, "--topic", topic,
           "--producers", str(a.clients), "--record-size", "100", "--keys", f"uniform:{ITEMS}",
           "--acks", "all", "--rate", str(a.cap * a.factor), "--duration", f"{a.burst}s",
           "--warmup", "0s", "--report-json", str(out_dir / f"{name}-loadgen.json"),
           "--report-html", str(out_dir / f"{name}-loadgen.html")]
    if keep_going:
        cmd.append("--keep-going")
    return cmd


def stage_shave(a, pg, weir, out_dir, name, topic_configs):
    """Burst into Weir, drain into PostgreSQL at the cap, sample until drained."""
    db, topic = name, name
    offered = a.cap * a.factor * a.burst
    make_db(pg, db, stock_per_item(a), DRAIN_SCHEMA)
    weir.topic(topic, a.partitions, topic_configs)
    status_file = out_dir / f"{name}-drain-status.json"
    drain_log = open(out_dir / f"{name}-drain.log", "w")
    drain = subprocess.Popen(
        [a.drain, "--bootstrap", weir.boot, "--topic", topic, "--group", f"{name}-drain",
         "--dsn", pg.dsn(db), "--table", "orders_raw", "--rows-per-sec", str(a.cap),
         "--status", "quiet", "--status-file", str(status_file), "--start", "earliest"],
        stdout=drain_log, stderr=subprocess.STDOUT)
    sampler = Sampler(pg, db, status_file, weir.boot, topic, a.partitions)
    sampler.start()
    # The burst starts once the drain has joined its group and the previous
    # stage's dirty pages are flushed, so stages do not pay for each other.
    pg.sql("postgres", "CHECKPOINT")
    joined_by = time.time() + 30
    while time.time() < joined_by:
        if sampler.samples and sampler.samples[-1].get("drain_state") == "running":
            break
        time.sleep(0.2)
    print(f"[{name}] burst: {a.cap * a.factor} orders/s for {a.burst} s ({offered} orders), "
          f"drain cap {a.cap} rows/s", flush=True)
    lg = subprocess.run(loadgen_cmd(a, weir, topic, out_dir, name, bool(topic_configs)),
                        capture_output=True, text=True)
    (out_dir / f"{name}-loadgen.txt").write_text(lg.stdout + lg.stderr)
    lreport = json.loads((out_dir / f"{name}-loadgen.json").read_text())
    acked = lreport["totals"]["all"]["acked_records"]
    if lg.returncode != 0 and not topic_configs:
        print(lg.stderr[-2000:], file=sys.stderr)
    deadline = time.time() + acked / a.cap * 2 + 120
    while time.time() < deadline:
        s = sampler.samples[-1] if sampler.samples else {}
        if s.get("db_rows") == acked and s.get("backlog") == 0:
            break
        if drain.poll() is not None:
            break
        time.sleep(1)
    time.sleep(2)  # two flat samples after the end
    sampler.stop.set()
    sampler.join()
    drain.send_signal(signal.SIGTERM)
    try:
        drain.wait(30)
    except subprocess.TimeoutExpired:
        drain.kill()
    return {
        "name": name, "topic_configs": topic_configs, "offered": offered,
        "loadgen": lreport, "loadgen_exit": lg.returncode, "samples": sampler.samples,
        "db_per_second": per_second(pg, db),
        "verify": verify(pg, db, acked, raw=True),
    }


def stock_per_item(a):
    # Half the burst's orders can be served: a flash sale sells out.
    return max(1, a.cap * a.factor * a.burst // ITEMS // 2)


def per_second(pg, db):
    """Rows committed per wall-clock second (exact, from inserted_at)."""
    out = pg.sql(db, "SELECT floor(extract(epoch FROM inserted_at))::bigint, count(*) "
                     "FROM orders GROUP BY 1 ORDER BY 1")
    return [[int(x) for x in line.split("|")] for line in out.splitlines() if line]


def verify(pg, db, acked, raw):
    q = lambda s: int(pg.sql(db, s) or 0)  # noqa: E731
    v = {
        "acked_orders": acked,
        "orders": q("SELECT count(*) FROM orders"),
        "distinct_order_ids": q("SELECT count(DISTINCT order_id) FROM orders"),
        "reserved": q("SELECT count(*) FROM orders WHERE status = 'reserved'"),
        "sold_out": q("SELECT count(*) FROM orders WHERE status = 'sold_out'"),
        "stock_left": q("SELECT sum(qty) FROM stock"),
        "stock_min": q("SELECT min(qty) FROM stock"),
    }
    if raw:
        v["raw_rows"] = q("SELECT count(*) FROM orders_raw")
        v["raw_duplicate_offsets"] = q(
            'SELECT count(*) - count(DISTINCT (partition, "offset")) FROM orders_raw')
        v["dead_letters"] = q("SELECT count(*) FROM weir_drain_dead_letters")
    return v


def stage_direct(a, pg, out_dir):
    """The baseline: pgbench at the burst's rate with the same number of clients."""
    db = "direct"
    make_db(pg, db, stock_per_item(a), DIRECT_SCHEMA)
    script = out_dir / "order.sql"
    script.write_text(f"\\set key random(0, {ITEMS - 1})\nSELECT place_order(:key);\n")
    logdir = out_dir / "pgbench"
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir()
    rate = a.cap * a.factor
    cmd = [str(pg.bin / "pgbench"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres",
           "-n", "-c", str(a.clients), "-j", str(min(a.clients, 2)), "-R", str(rate),
           "-L", str(a.late_ms), "-T", str(a.burst), "-f", str(script),
           "--log", f"--log-prefix={logdir}/pgbench", db]
    print(f"[direct] pgbench -c {a.clients} -R {rate} -L {a.late_ms} -T {a.burst}", flush=True)
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    (out_dir / "direct-pgbench.txt").write_text(out.stdout + out.stderr)
    txns = []
    for f in sorted(logdir.glob("pgbench*")):
        for line in f.read_text().splitlines():
            p = line.split()
            # client_id transaction_no time script_no time_epoch time_us [schedule_lag]
            txns.append((p[2], int(p[4]) + int(p[5]) / 1e6))
    lat = sorted(int(t) for t, _ in txns if t.isdigit())
    counts = {k: sum(1 for t, _ in txns if t == k) for k in ("skipped", "failed")}
    committed = len(lat)
    late = sum(1 for x in lat if x > a.late_ms * 1000)
    by_sec = {}
    for t, at in txns:
        if t.isdigit():
            by_sec[int(at)] = by_sec.get(int(at), 0) + 1
    return {
        "name": db, "offered": rate * a.burst, "started_unix": t0, "exit": out.returncode,
        "committed": committed, "late": late, "skipped": counts["skipped"],
        "failed": counts["failed"],
        "never_sent": rate * a.burst - committed - counts["skipped"] - counts["failed"],
        "latency_ms": pcts(lat),
        "db_per_second": sorted(by_sec.items()),
        "pgbench_summary": out.stdout,
        "verify": verify(pg, db, committed, raw=False),
    }


def pcts(us_sorted):
    if not us_sorted:
        return {}
    pick = lambda q: us_sorted[min(len(us_sorted) - 1, int(q * len(us_sorted)))] / 1000  # noqa: E731
    return {"p50": pick(0.5), "p99": pick(0.99), "p999": pick(0.999), "max": us_sorted[-1] / 1000}


def load_average():
    return [round(x, 2) for x in os.getloadavg()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--weir", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--drain", required=True)
    ap.add_argument("--out", default="target/bench-peak")
    ap.add_argument("--cap", type=int, default=1000, help="drain cap R, rows/s")
    ap.add_argument("--factor", type=int, default=10, help="burst rate = factor x cap")
    ap.add_argument("--burst", type=int, default=30, help="burst seconds")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--clients", type=int, default=4, help="loadgen producers = pgbench clients")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--late-ms", type=int, default=2000,
                    help="pgbench -L: an order later than this is late; one that would start "
                         "later than this is skipped (not sent)")
    ap.add_argument("--bound", type=int, default=None,
                    help="the bound stage's backlog.records.max per partition, policy reject "
                         "(default: the cap, one second of drain per partition)")
    ap.add_argument("--unpaid", type=int, default=10, metavar="SECONDS",
                    help="after the shave stage: payment deadlines delayed by SECONDS "
                         "(delayed delivery); unpaid orders return their stock (0: off)")
    ap.add_argument("--stages", default="shave,direct,bound")
    a = ap.parse_args()
    if a.bound is None:
        a.bound = a.cap
    out_dir = Path(a.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    root = tempfile.mkdtemp(prefix="weir-peak-")
    os.chmod(root, 0o755)
    result = {"parameters": vars(a), "load_average_start": load_average(),
              "started_unix": time.time(), "stages": {}}
    pg = weir = None
    try:
        pg = Postgres(root)
        weir = Weir(a.weir, root, a.shards)
        stages = a.stages.split(",")
        if "shave" in stages:
            result["stages"]["shave"] = stage_shave(a, pg, weir, out_dir, "shave", [])
            if a.unpaid > 0:
                import unpaid
                print(f"[unpaid] payment deadlines after {a.unpaid} s", flush=True)
                result["stages"]["unpaid"] = unpaid.run(pg, weir, "shave", a.unpaid,
                                                        stock_per_item(a) * ITEMS)
        if "direct" in stages:
            result["stages"]["direct"] = stage_direct(a, pg, out_dir)
        if "bound" in stages and a.bound > 0:
            cfg = [f"backlog.records.max={a.bound}", "backlog.policy=reject"]
            result["stages"]["bound"] = stage_shave(a, pg, weir, out_dir, "bound", cfg)
    finally:
        if weir:
            weir.close()
        if pg:
            pg.close()
        shutil.rmtree(root, ignore_errors=True)
    result["load_average_end"] = load_average()
    result["initial_stock"] = stock_per_item(a) * ITEMS
    summary, ok = report.summarize(result)
    (out_dir / "peak.json").write_text(json.dumps(result, indent=1))
    (out_dir / "peak.html").write_text(report.html(result, summary))
    (out_dir / "summary.md").write_text(summary)
    print(summary)
    print(f"reports: {out_dir}/peak.html, {out_dir}/peak.json")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
