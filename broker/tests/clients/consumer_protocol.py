"""confluent-kafka (librdkafka 2.16) with group.protocol=consumer (KIP-848) against Weir,
for broker/tests/consumer_protocol.rs.

Sub-commands:
  produce --bootstrap B --topic T --start S --count N
      N records with values S..S+N-1 and keys "k<value % 20>"; prints {"produced": N}.
  consume --bootstrap B --topic T --group G --out FILE [--protocol consumer|classic]
      Subscribes with the default configuration plus group.protocol=consumer (or classic:
      librdkafka's default, the range,roundrobin eager assignors) (and
      auto.offset.reset=earliest, so records produced before the first assignment are read);
      appends one JSON line per event to FILE: {"ev":"rec","p":..,"o":..,"k":..,"v":..} for
      each record, then commits that record's offset synchronously; {"ev":"assign"|"revoke",
      "parts":[..]} from the rebalance callbacks; {"ev":"commit_error","e":..}. Runs until
      killed (the test kills it with SIGKILL or SIGTERM).
  describe --bootstrap B --group G
      AdminClient.describe_consumer_groups: prints {"type":..,"state":..,"members":[[id,[parts]]]}.
"""

import argparse
import json
import signal
import sys

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient


def produce(args):
    p = Producer({"bootstrap.servers": args.bootstrap})
    for v in range(args.start, args.start + args.count):
        p.produce(args.topic, key=f"k{v % 20}", value=str(v))
        p.poll(0)
    left = p.flush(30)
    if left:
        sys.exit(f"{left} records not delivered")
    print(json.dumps({"produced": args.count}))


def consume(args):
    out = open(args.out, "a", buffering=1)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    def event(**kw):
        out.write(json.dumps(kw) + "\n")

    c = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "group.protocol": args.protocol,
            "auto.offset.reset": "earliest",
        }
    )

    def on_assign(consumer, parts):
        event(ev="assign", parts=sorted(p.partition for p in parts))

    def on_revoke(consumer, parts):
        event(ev="revoke", parts=sorted(p.partition for p in parts))

    c.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
    while not stop:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            event(ev="error", e=str(m.error()))
            continue
        event(ev="rec", p=m.partition(), o=m.offset(), k=m.key().decode(), v=int(m.value()))
        try:
            c.commit(message=m, asynchronous=False)
        except KafkaException as e:
            event(ev="commit_error", e=str(e))
    c.close()


def describe(args):
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    fut = admin.describe_consumer_groups([args.group])[args.group]
    g = fut.result(timeout=15)
    members = []
    for m in g.members:
        parts = sorted(tp.partition for tp in (m.assignment.topic_partitions if m.assignment else []))
        members.append([m.member_id, parts])
    print(json.dumps({"type": str(g.type), "state": str(g.state), "members": members}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["produce", "consume", "describe"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic")
    ap.add_argument("--group")
    ap.add_argument("--out")
    ap.add_argument("--protocol", default="consumer", choices=["consumer", "classic"])
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--count", type=int, default=0)
    args = ap.parse_args()
    {"produce": produce, "consume": consume, "describe": describe}[args.cmd](args)


if __name__ == "__main__":
    main()
