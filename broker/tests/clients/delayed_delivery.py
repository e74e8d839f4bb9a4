"""Delayed delivery with confluent-kafka in its default configuration
(tests/delayed_delivery.rs).

  consume BOOTSTRAP TOPIC PARTITIONS COUNT TIMEOUT_S
      A plain consumer (assign, from the beginning) polling continuously.
      Prints READY, then one JSON line per record: partition, offset, value,
      timestamp, headers and arrival time (ms since the epoch, float).
  produce BOOTSTRAP TOPIC PARTITION PREFIX DELAYS
      One record per delay (comma-separated ms) with a weir-delay-ms header;
      a delay written as @N uses weir-deliver-at-ms = now + N instead. Prints
      a JSON list of delivery reports.
  bad BOOTSTRAP TOPIC PARTITION
      Malformed queue headers; prints a JSON list of (case, error code, error
      text) from the delivery reports.
"""

import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING


def consume(bootstrap, topic, partitions, count, timeout_s):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "delay-test", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, int(p), OFFSET_BEGINNING) for p in partitions.split(",")])
    c.poll(0.05)
    print("READY", flush=True)
    seen = 0
    deadline = time.time() + float(timeout_s)
    while seen < int(count) and time.time() < deadline:
        m = c.poll(0.01)
        if m is None or m.error():
            continue
        arrival = time.time() * 1000.0
        headers = {k: (v.decode() if v is not None else None) for k, v in (m.headers() or [])}
        print(
            json.dumps(
                {
                    "p": m.partition(),
                    "o": m.offset(),
                    "v": m.value().decode(),
                    "ts": m.timestamp()[1],
                    "h": headers,
                    "arrival": arrival,
                }
            ),
            flush=True,
        )
        seen += 1
    c.close()


def produce(bootstrap, topic, partition, prefix, delays):
    p = Producer({"bootstrap.servers": bootstrap})
    reports = []

    def report(err, msg):
        reports.append(
            {
                "v": msg.value().decode(),
                "err": None if err is None else [err.code(), err.str()],
                "offset": msg.offset(),
            }
        )

    for i, d in enumerate(delays.split(",")):
        if d.startswith("@"):
            at = int(time.time() * 1000) + int(d[1:])
            headers = [("weir-deliver-at-ms", str(at).encode())]
        else:
            headers = [("weir-delay-ms", d.encode())]
        p.produce(topic, value=f"{prefix}-{i}".encode(), partition=int(partition), headers=headers, on_delivery=report)
    p.flush(30)
    print(json.dumps(reports))


BAD = {
    "not-a-number": [("weir-delay-ms", b"abc")],
    "negative": [("weir-delay-ms", b"-5")],
    "both-delays": [("weir-delay-ms", b"100"), ("weir-deliver-at-ms", b"100")],
    "bad-ttl": [("weir-ttl-ms", b"1h")],
}


def bad(bootstrap, topic, partition):
    # A long linger keeps each pair in one batch even when this process is
    # descheduled between the two produce() calls (seen in CI: the good record
    # went alone and was accepted); flush() sends at once regardless.
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10_000})
    out = []
    for case, headers in BAD.items():
        got = []
        # A good record in the same batch: the whole batch is refused.
        p.produce(topic, value=b"good", partition=int(partition), headers=[("weir-delay-ms", b"10")],
                  on_delivery=lambda err, msg: got.append(err))
        p.produce(topic, value=case.encode(), partition=int(partition), headers=headers,
                  on_delivery=lambda err, msg: got.append(err))
        p.flush(30)
        out.append([case, [None if e is None else [e.code(), e.str()] for e in got]])
    print(json.dumps(out))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"consume": consume, "produce": produce, "bad": bad}[cmd](*args)
