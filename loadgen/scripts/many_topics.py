#!/usr/bin/env python3
"""Issue 13's scale rows, with a real librdkafka client (confluent-kafka).

  create  --topics N --partitions P          create topics PREFIX-0..N-1 of P partitions
  produce --topics N --partitions P --rate R --seconds S
          1 KiB records round-robin over every (topic, partition) at R records/s
          in total, acks=1, linger 1 ms; prints one JSON line (records, bytes, seconds,
          errors). Used for both the many-partition run and its 1-partition baseline,
          so the client's cost is the same on both sides.
  probe   --topic T --partition P
          produce one record until it is acknowledged; prints the wall-clock time
          (time.time()) of the acknowledgement: the caller subtracts the broker's
          spawn time to get "serving after start".

The weir-loadgen generator drives one topic per run; this script exists for the
rows that need many topics.
"""
import argparse
import json
import sys
import time

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def topic_names(prefix, n):
    return [f"{prefix}-{i}" for i in range(n)]


def create(args):
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    names = topic_names(args.prefix, args.topics)
    # CreateTopics in chunks: one request per chunk keeps each answer small.
    for at in range(0, len(names), 100):
        chunk = [NewTopic(t, num_partitions=args.partitions, replication_factor=1) for t in names[at:at + 100]]
        for topic, fut in admin.create_topics(chunk, request_timeout=60).items():
            try:
                fut.result()
            except KafkaException as e:
                if "TOPIC_ALREADY_EXISTS" not in str(e):
                    raise
    print(json.dumps({"created_topics": len(names), "partitions_each": args.partitions}))


def produce(args):
    names = topic_names(args.prefix, args.topics)
    targets = [(t, p) for t in names for p in range(args.partitions)]
    errors = []
    acked = [0]

    def on_delivery(err, _msg):
        if err is not None:
            if len(errors) < 10:
                errors.append(str(err))
        else:
            acked[0] += 1

    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "1",
        "linger.ms": 1,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "enable.idempotence": False,
    })
    value = b"x" * 1024
    start = time.monotonic()
    sent = 0
    i = 0
    tick = 0.005  # pace in 5 ms steps: fine enough at these rates, cheap in Python
    while True:
        now = time.monotonic() - start
        if now >= args.seconds:
            break
        due = int(now * args.rate)
        while sent < due:
            topic, part = targets[i]
            i = (i + 1) % len(targets)
            try:
                producer.produce(topic, value, partition=part, on_delivery=on_delivery)
            except BufferError:
                producer.poll(0.01)
                continue
            sent += 1
        producer.poll(0)
        time.sleep(tick)
    producer.flush(60)
    elapsed = time.monotonic() - start
    print(json.dumps({"records": acked[0], "sent": sent, "bytes": acked[0] * 1024,
                      "seconds": elapsed, "errors": errors}))
    return 0 if not errors and acked[0] == sent else 1


def probe(args):
    deadline = time.monotonic() + args.timeout
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "1",
        "linger.ms": 0,
        "reconnect.backoff.ms": 10,
        "reconnect.backoff.max.ms": 50,
        "topic.metadata.refresh.interval.ms": 100,
        "retry.backoff.ms": 20,
        "message.timeout.ms": int(args.timeout * 1000),
    })
    done = []
    producer.produce(args.topic, b"probe", partition=args.partition,
                     on_delivery=lambda err, _m: done.append(err))
    while not done and time.monotonic() < deadline:
        producer.poll(0.005)
    if not done or done[0] is not None:
        print(f"probe failed: {done[0] if done else 'timeout'}", file=sys.stderr)
        return 1
    print(f"{time.time():.3f}")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["create", "produce", "probe"])
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--prefix", default="scale")
    ap.add_argument("--topics", type=int, default=1000)
    ap.add_argument("--partitions", type=int, default=10)
    ap.add_argument("--rate", type=float, default=20000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--topic")
    ap.add_argument("--partition", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    return {"create": create, "produce": produce, "probe": probe}[args.mode](args) or 0


if __name__ == "__main__":
    sys.exit(main())
