"""One confluent-kafka group member, run as its own process by broker/tests/groups_e2e.rs.

Consumes TOPIC in GROUP and appends one line "partition offset key" per record to OUT,
flushed to the OS before the offsets of those records are committed synchronously, so a
SIGKILL never loses a line for a committed record. Events ("assigned 0,1", "revoked ...",
"commit-failed ...") go to stderr. SIGTERM makes it close() the consumer (LeaveGroup) and exit 0.
"""
import argparse
import signal
import sys

from confluent_kafka import Consumer, KafkaException, TopicPartition

stopping = False


def on_sigterm(_signum, _frame):
    global stopping
    stopping = True


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--assignor", default="range")
    ap.add_argument("--session-timeout-ms", type=int, default=6000)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "partition.assignment.strategy": args.assignor,
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": 500,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "topic.metadata.refresh.interval.ms": 1000,
        "reconnect.backoff.max.ms": 500,
    })

    def assigned(c, parts):
        log("assigned", ",".join(str(p.partition) for p in parts))
        if args.assignor == "cooperative-sticky":
            c.incremental_assign(parts)
        else:
            c.assign(parts)

    # Offsets processed but not yet committed: committed before a revoke completes, so the
    # next owner starts where this member stopped (no duplicates without failures).
    pending = {}

    def commit_pending(partitions):
        commit = [TopicPartition(args.topic, p, pending[p]) for p in partitions if p in pending]
        if not commit:
            return
        try:
            consumer.commit(offsets=commit, asynchronous=False)
            for tp in commit:
                if pending.get(tp.partition) == tp.offset:
                    del pending[tp.partition]
        except KafkaException as e:
            log("commit-failed", e)

    def revoked(c, parts):
        log("revoked", ",".join(str(p.partition) for p in parts))
        commit_pending([p.partition for p in parts])
        for p in parts:
            pending.pop(p.partition, None)
        if args.assignor == "cooperative-sticky":
            c.incremental_unassign(parts)
        else:
            c.unassign()

    consumer.subscribe([args.topic], on_assign=assigned, on_revoke=revoked, on_lost=revoked)
    with open(args.out, "a", encoding="utf-8") as out:
        while not stopping:
            msgs = consumer.consume(num_messages=1000, timeout=0.2)
            for m in msgs:
                if m.error():
                    log("error", m.error())
                    continue
                out.write(f"{m.partition()} {m.offset()} {m.key().decode()}\n")
                pending[m.partition()] = m.offset() + 1
            if pending:
                out.flush()
                commit_pending(list(pending))
    consumer.close()
    log("closed")


if __name__ == "__main__":
    main()
