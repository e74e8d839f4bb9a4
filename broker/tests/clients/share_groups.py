"""Share-group (KIP-932) clients for broker/tests/share_groups.rs, with confluent-kafka's
ShareConsumer (librdkafka 2.16).

  produce BOOTSTRAP TOPIC N [DLQ]    create TOPIC (2 partitions; dead-letter topic DLQ, also
                                     created with 2 partitions, and TOPIC-poison with 100
                                     records, same DLQ) and produce N records
  member BOOTSTRAP GROUP TOPIC LOG STOPFILE [--release-mod K]
                                     a share consumer in its DEFAULT configuration (implicit
                                     acknowledgement), or with --release-mod in explicit mode:
                                     releasing each record whose offset % K == 7 the first
                                     time it sees it, REJECTing those with offset % K == 5 and
                                     accepting everything else; it also subscribes to
                                     TOPIC-poison and always releases its records
  rejecter BOOTSTRAP GROUP TOPIC STOPFILE
                                     an explicit-mode share consumer REJECTing every record
  dump BOOTSTRAP TOPIC P             read partitions 0..P of TOPIC up to their high watermarks:
                                     one JSON line per record, with headers, in partition order
  ttl BOOTSTRAP TOPIC DLQ            TTL check: TOPIC with message.ttl.ms=1500 and DLQ; produces
                                     old (topic default expires), long (header 600000) and
                                     short (header 1) records, then a share consumer polls;
                                     prints what it received
  hold BOOTSTRAP GROUP TOPIC LOG     poll until one non-empty batch, log it, then hold the locks
                                     (sleep) until killed
  describe BOOTSTRAP GROUP           the group as AdminClient.list_consumer_groups() lists it

Each member appends JSON lines to LOG: {"t": time, "poll": [[partition, offset, delivery_count]]}
per poll, {"t": time, "acked": [[partition, offset]], "err": null|str} per acknowledgement
commit result (set_acknowledgement_commit_callback), {"released": [[partition, offset]]}.
"""

import json
import os
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, AcknowledgeType, Consumer, Producer, ShareConsumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


POISON = 100


def produce(bootstrap, topic, n, dlq=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [NewTopic(topic, 2, 1)]
    if dlq:
        conf = {"errors.deadletterqueue.topic.name": dlq}
        topics = [NewTopic(dlq, 2, 1), NewTopic(topic, 2, 1, config=conf),
                  NewTopic(topic + "-poison", 2, 1, config=conf)]
    for f in admin.create_topics(topics).values():
        f.result(30)
    if dlq:
        p = Producer({"bootstrap.servers": bootstrap})
        for i in range(POISON):
            p.produce(topic + "-poison", value=f"poison-{i}".encode(), partition=i % 2)
        assert p.flush(60) == 0
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(n):
        p.produce(topic, value=str(i).encode(), partition=i % 2)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(60)
    assert left == 0, f"{left} records not delivered"
    print(json.dumps({"produced": n}))


def open_log(path):
    return open(path, "a", buffering=1)


def member(bootstrap, group, topic, log_path, stop_file, release_mod=None):
    log = open_log(log_path)
    conf = {"bootstrap.servers": bootstrap, "group.id": group}
    if release_mod:
        conf["share.acknowledgement.mode"] = "explicit"
    c = ShareConsumer(conf)

    def on_commit(offsets, exc):
        acked = [[tp.partition, o] for tp, offs in offsets.items() if tp.topic == topic for o in sorted(offs)]
        log.write(json.dumps({"t": time.time(), "acked": acked, "err": str(exc) if exc else None}) + "\n")

    c.set_acknowledgement_commit_callback(on_commit)
    # The explicit members also take TOPIC-poison (when it exists), whose records they
    # always RELEASE: the default member never sees them, so they reach the delivery limit.
    c.subscribe([topic, topic + "-poison"] if release_mod else [topic])
    released_once = set()
    while not os.path.exists(stop_file):
        msgs = c.poll(0.5)
        batch = []
        released = []
        rejected = []
        poison = []
        for m in msgs:
            if m.error():
                log.write(json.dumps({"t": time.time(), "error": str(m.error())}) + "\n")
                continue
            if m.topic() != topic:
                c.acknowledge(m, AcknowledgeType.RELEASE)
                poison.append([m.partition(), m.offset()])
                continue
            batch.append([m.partition(), m.offset(), m.delivery_count()])
            if release_mod:
                key = (m.partition(), m.offset())
                if m.offset() % release_mod == 7 and key not in released_once:
                    released_once.add(key)
                    released.append(list(key))
                    c.acknowledge(m, AcknowledgeType.RELEASE)
                elif m.offset() % release_mod == 5:
                    rejected.append(list(key))
                    c.acknowledge(m, AcknowledgeType.REJECT)
                else:
                    c.acknowledge(m, AcknowledgeType.ACCEPT)
        if batch:
            log.write(json.dumps({"t": time.time(), "poll": batch}) + "\n")
        if released:
            log.write(json.dumps({"t": time.time(), "released": released}) + "\n")
        if rejected:
            log.write(json.dumps({"t": time.time(), "rejected": rejected}) + "\n")
        if poison:
            log.write(json.dumps({"t": time.time(), "poison": poison}) + "\n")
        if release_mod and (batch or poison):
            try:
                c.commit_sync(30)
            except Exception as e:  # the broker may be restarting: the records come back
                log.write(json.dumps({"t": time.time(), "error": f"commit_sync: {e}"}) + "\n")
    c.close()
    log.write(json.dumps({"t": time.time(), "closed": True}) + "\n")


def hold(bootstrap, group, topic, log_path):
    log = open_log(log_path)
    c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group})
    c.subscribe([topic])
    while True:
        msgs = [m for m in c.poll(0.5) if not m.error()]
        if msgs:
            batch = [[m.partition(), m.offset(), m.delivery_count()] for m in msgs]
            log.write(json.dumps({"t": time.time(), "poll": batch, "held": True}) + "\n")
            break
    time.sleep(3600)  # holds the locks until kill -9


def rejecter(bootstrap, group, topic, stop_file):
    c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                       "share.acknowledgement.mode": "explicit"})
    c.subscribe([topic])
    while not os.path.exists(stop_file):
        msgs = [m for m in c.poll(0.5) if not m.error()]
        for m in msgs:
            c.acknowledge(m, AcknowledgeType.REJECT)
        if msgs:
            try:
                c.commit_sync(30)
            except Exception:  # the broker may be down: the records come back
                pass
    c.close()


def dump(bootstrap, topic, partitions, timeout=60):
    """Every record of TOPIC up to the high watermarks, partition by partition."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"dump-{time.time()}",
                  "enable.auto.commit": False})
    for p in range(partitions):
        tp = TopicPartition(topic, p, OFFSET_BEGINNING)
        _, high = c.get_watermark_offsets(tp, timeout=30)
        c.assign([tp])
        deadline = time.time() + timeout
        pos = 0
        while pos < high and time.time() < deadline:
            for m in c.consume(500, 0.5):
                if m.error():
                    continue
                pos = m.offset() + 1
                hs = {k: (v.decode() if v is not None else None) for k, v in (m.headers() or [])}
                print(json.dumps({"p": m.partition(), "o": m.offset(),
                                  "value": m.value().decode() if m.value() is not None else None,
                                  "headers": hs}))
        assert pos >= high, f"partition {p}: read to {pos} of {high}"
    c.close()


def ttl(bootstrap, topic, dlq):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([
        NewTopic(dlq, 1, 1),
        NewTopic(topic, 1, 1, config={"message.ttl.ms": "1500", "errors.deadletterqueue.topic.name": dlq}),
    ]).values():
        f.result(30)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(20):
        p.produce(topic, value=f"old-{i}".encode())
    p.flush(30)
    time.sleep(2.0)  # the topic default (1500 ms) has passed for the old records
    for i in range(20):
        # the header wins over the topic default, both ways
        p.produce(topic, value=f"long-{i}".encode(), headers=[("weir-ttl-ms", b"600000")])
        p.produce(topic, value=f"short-{i}".encode(), headers=[("weir-ttl-ms", b"1")])
    p.flush(30)
    time.sleep(0.1)
    c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": "ttl-workers"})
    c.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while time.time() < deadline and len([v for v in got if v.startswith("long-")]) < 20:
        got.extend(m.value().decode() for m in c.poll(0.5) if not m.error())
    for _ in range(4):  # a few more polls: anything else would show up here
        got.extend(m.value().decode() for m in c.poll(0.5) if not m.error())
    c.close()
    print(json.dumps({"received": got}))


def describe(bootstrap, group):
    # confluent-kafka 2.16 has no ConsumerGroupType.SHARE (only UNKNOWN, CONSUMER, CLASSIC):
    # an unfiltered listing shows a share group with type UNKNOWN.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = admin.list_consumer_groups().result(30)
    groups = [[g.group_id, str(g.type), str(g.state)] for g in listed.valid if g.group_id == group]
    print(json.dumps({"share_groups": groups, "errors": [str(e) for e in listed.errors]}))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "produce":
        produce(args[0], args[1], int(args[2]), args[3] if len(args) > 3 else None)
    elif cmd == "rejecter":
        rejecter(args[0], args[1], args[2], args[3])
    elif cmd == "dump":
        dump(args[0], args[1], int(args[2]))
    elif cmd == "ttl":
        ttl(args[0], args[1], args[2])
    elif cmd == "member":
        mod = int(args[6]) if len(args) > 6 and args[5] == "--release-mod" else None
        member(args[0], args[1], args[2], args[3], args[4], mod)
    elif cmd == "hold":
        hold(args[0], args[1], args[2], args[3])
    elif cmd == "describe":
        describe(args[0], args[1])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
