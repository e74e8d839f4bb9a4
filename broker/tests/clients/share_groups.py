"""Share-group (KIP-932) clients for broker/tests/share_groups.rs, with confluent-kafka's
ShareConsumer (librdkafka 2.16).

  produce BOOTSTRAP TOPIC N          create TOPIC (2 partitions) and produce N records
  member BOOTSTRAP GROUP TOPIC LOG STOPFILE [--release-mod K]
                                     a share consumer in its DEFAULT configuration (implicit
                                     acknowledgement), or with --release-mod in explicit mode,
                                     releasing each record whose offset % K == 7 the first
                                     time it sees it and accepting everything else
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

from confluent_kafka import AcknowledgeType, Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, NewTopic


def produce(bootstrap, topic, n):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        f.result(30)
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
        acked = [[tp.partition, o] for tp, offs in offsets.items() for o in sorted(offs)]
        log.write(json.dumps({"t": time.time(), "acked": acked, "err": str(exc) if exc else None}) + "\n")

    c.set_acknowledgement_commit_callback(on_commit)
    c.subscribe([topic])
    released_once = set()
    while not os.path.exists(stop_file):
        msgs = c.poll(0.5)
        batch = []
        released = []
        for m in msgs:
            if m.error():
                log.write(json.dumps({"t": time.time(), "error": str(m.error())}) + "\n")
                continue
            batch.append([m.partition(), m.offset(), m.delivery_count()])
            if release_mod:
                key = (m.partition(), m.offset())
                if m.offset() % release_mod == 7 and key not in released_once:
                    released_once.add(key)
                    released.append(list(key))
                    c.acknowledge(m, AcknowledgeType.RELEASE)
                else:
                    c.acknowledge(m, AcknowledgeType.ACCEPT)
        if batch:
            log.write(json.dumps({"t": time.time(), "poll": batch}) + "\n")
        if released:
            log.write(json.dumps({"t": time.time(), "released": released}) + "\n")
        if release_mod and batch:
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
        produce(args[0], args[1], int(args[2]))
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
