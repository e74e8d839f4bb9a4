"""The backlog bound through confluent-kafka's default producer, run by broker/tests/backlog.rs.

`produce`: one default Producer (only bootstrap.servers, plus a throttle_cb that records the
throttle times librdkafka reports) sends --count values "i:" padded to --size bytes to
partition 0, then flushes. Reports each delivery's outcome: how many were stored (with their
offsets in send order), how many failed, the first errors (name, message, seconds from
produce() to the delivery report), and the throttle events seen.
`consume`: reads partition 0 from the beginning with a default consumer and reports the
sequence numbers in the order read.

One sub-command per call; each prints one JSON object on stdout.
"""
import argparse
import json
import time


def produce(args):
    from confluent_kafka import Producer

    throttles = []
    p = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "throttle_cb": lambda e: throttles.append(int(e.throttle_time * 1000)),
        }
    )
    sent_at = {}
    stored = []
    errors = []

    def report(err, msg):
        seq = int(msg.value().split(b":", 1)[0])
        if err is None:
            stored.append([seq, msg.offset()])
        else:
            errors.append(
                {
                    "seq": seq,
                    "name": err.name(),
                    "code": err.code(),
                    "retriable": err.retriable(),
                    "message": err.str(),
                    "latency_s": time.monotonic() - sent_at[seq],
                }
            )

    start = time.monotonic()
    for i in range(args.count):
        head = f"{i}:".encode()
        value = head + b"x" * max(0, args.size - len(head))
        while True:
            try:
                sent_at[i] = time.monotonic()
                p.produce(args.topic, value=value, partition=0, on_delivery=report)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(120)
    elapsed = time.monotonic() - start
    return {
        "stored": len(stored),
        "stored_seq_offsets": stored,
        "failed": len(errors),
        "errors": errors[:5],
        "max_error_latency_s": max((e["latency_s"] for e in errors), default=0.0),
        "not_flushed": left,
        "elapsed_s": elapsed,
        "throttle_events": len(throttles),
        "max_throttle_ms": max(throttles, default=0),
    }


def consume(args):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
        }
    )
    c.assign([TopicPartition(args.topic, 0, 0)])
    seqs = []
    deadline = time.monotonic() + 30
    while len(seqs) < args.count and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        seqs.append(int(m.value().split(b":", 1)[0]))
    c.close()
    return {"seqs": seqs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["produce", "consume"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--group", default="backlog-reader")
    args = ap.parse_args()
    out = produce(args) if args.command == "produce" else consume(args)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
