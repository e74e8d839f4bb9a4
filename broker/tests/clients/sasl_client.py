"""confluent-kafka with SASL (SCRAM-SHA-512/256, PLAIN) over plaintext or TLS, run by
broker/tests/sasl.rs. Sub-commands print one JSON object on stdout with what the client saw.

roundtrip: produce COUNT records (key i, value "v<i>") to TOPIC, spread over its partitions by
  explicit partition number, then consume them all back from the beginning with a group; reports
  per-partition values in consumption order and the brokers the client was told about.
badlogin: connect with the given (wrong) credentials; reports the errors the client got.
"""
import argparse
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient

TIMEOUT_S = 30


def config(args):
    c = {
        "bootstrap.servers": args.bootstrap,
        "security.protocol": args.protocol,
        "sasl.mechanism": args.mechanism,
        "sasl.username": args.user,
        "sasl.password": args.password,
    }
    if args.ca:
        c["ssl.ca.location"] = args.ca
    return c


def roundtrip(args):
    errors = []
    p = Producer({**config(args), "error_cb": lambda e: errors.append(e.name())})
    md = p.list_topics(timeout=TIMEOUT_S)
    brokers = sorted([b.id, b.host, b.port] for b in md.brokers.values())
    partitions = len(md.topics[args.topic].partitions)
    delivered = []
    for i in range(args.count):
        p.produce(args.topic, key=str(i), value=f"v{i}", partition=i % partitions,
                  on_delivery=lambda err, msg: delivered.append(err is None))
    left = p.flush(TIMEOUT_S)
    c = Consumer({**config(args), "group.id": f"g-{args.topic}-{time.time()}",
                  "auto.offset.reset": "earliest"})
    c.subscribe([args.topic])
    got = {}
    n = 0
    deadline = time.time() + TIMEOUT_S
    while n < args.count and time.time() < deadline:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        got.setdefault(str(m.partition()), []).append(m.value().decode())
        n += 1
    c.close()
    return {"brokers": brokers, "delivered": sum(delivered), "unflushed": left,
            "consumed": got, "errors": errors}


def badlogin(args):
    errors = []
    a = AdminClient({**config(args), "error_cb": lambda e: errors.append(e.name())})
    listed = None
    try:
        a.list_topics(timeout=10)
        listed = "ok"
    except Exception as e:  # noqa: BLE001 - report what the client saw
        listed = e.args[0].name() if e.args and hasattr(e.args[0], "name") else str(e)
    # The authentication errors reach error_cb through poll.
    for _ in range(4):
        a.poll(0.5)
    return {"list_topics": listed, "errors": sorted(set(errors))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["roundtrip", "badlogin"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--protocol", default="SASL_PLAINTEXT")
    ap.add_argument("--mechanism", default="SCRAM-SHA-512")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--ca")
    ap.add_argument("--topic", default="t")
    ap.add_argument("--count", type=int, default=20)
    args = ap.parse_args()
    out = roundtrip(args) if args.command == "roundtrip" else badlogin(args)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
