"""Client quotas through real clients, run by broker/tests/quotas.rs.

Neither confluent-kafka 2.16 nor kafka-python 3.0 nor kafkajs has an admin call for client
quotas, so `alter` and `describe` send kafka-python's own AlterClientQuotasRequest /
DescribeClientQuotasRequest (its protocol classes, encoded and version-negotiated by
kafka-python) through KafkaAdminClient's connection. `produce` and `consume` measure
confluent-kafka's producer and consumer in their default configuration (client.id set).

One sub-command per call; each prints one JSON object on stdout.
"""
import argparse
import json
import threading
import time

TIMEOUT_S = 15
# --sasl-user/--sasl-password: SASL_PLAINTEXT with SCRAM-SHA-512 for the confluent-kafka clients.
SASL = {}


def kp_admin(args):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=args.bootstrap)


def kp_send(admin, request):
    return admin._manager.run(admin._manager.send, request)


def alter(args):
    """args.entries: JSON [{"entity": [[type, name|null]], "ops": [[key, value, remove]]}]."""
    from kafka.protocol.admin import AlterClientQuotasRequest as R

    entries = [
        R.EntryData(
            entity=[R.EntryData.EntityData(entity_type=t, entity_name=n) for t, n in e["entity"]],
            ops=[R.EntryData.OpData(key=k, value=float(v), remove=rm) for k, v, rm in e["ops"]],
        )
        for e in json.loads(args.entries)
    ]
    a = kp_admin(args)
    r = kp_send(a, R(entries=entries, validate_only=args.validate_only))
    a.close()
    return {
        "entries": [
            {
                "entity": [[d.entity_type, d.entity_name] for d in e.entity],
                "error_code": e.error_code,
                "error_message": e.error_message,
            }
            for e in r.entries
        ]
    }


def describe(args):
    """args.components: JSON [[type, match_type, match|null]]."""
    from kafka.protocol.admin import DescribeClientQuotasRequest as R

    components = [
        R.ComponentData(entity_type=t, match_type=mt, match=m) for t, mt, m in json.loads(args.components)
    ]
    a = kp_admin(args)
    r = kp_send(a, R(components=components, strict=args.strict))
    a.close()
    entries = None
    if r.entries is not None:
        entries = [
            {
                "entity": sorted([d.entity_type, d.entity_name] for d in e.entity),
                "values": {v.key: v.value for v in e.values},
            }
            for e in r.entries
        ]
    return {"error_code": r.error_code, "error_message": r.error_message, "entries": entries}


def measure_produce(bootstrap, client_id, topic, seconds, size, out):
    """Produce `size`-byte values as fast as the broker takes them for `seconds`; count the
    value bytes acknowledged within the window (from the first produce call)."""
    from confluent_kafka import KafkaError, Producer

    stats = []
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "statistics.interval.ms": 1000,
            "stats_cb": lambda s: stats.append(json.loads(s)),
            **SASL,
        }
    )
    value = b"q" * size
    acked = [0]
    errors = []
    start = time.monotonic()
    end = start + seconds

    def on_delivery(err, msg):
        if err is not None:
            # The values still queued when the window closes are purged below: not errors.
            if err.code() not in (KafkaError._PURGE_INFLIGHT, KafkaError._PURGE_QUEUE):
                errors.append(str(err))
        elif time.monotonic() <= end:
            acked[0] += len(msg.value())

    # At most 2000 values outstanding: the producer's own 1 GB queue is not what is measured.
    while time.monotonic() < end:
        if len(p) < 2000:
            p.produce(topic, value, on_delivery=on_delivery)
            p.poll(0)
        else:
            p.poll(0.01)
    p.poll(0.1)
    p.purge()
    p.flush(5)
    throttle = [b.get("throttle", {}).get("max", 0) for s in stats for b in s.get("brokers", {}).values()]
    out.update(
        {
            "client_id": client_id,
            "bytes": acked[0],
            "seconds": seconds,
            "rate": acked[0] / seconds,
            "errors": errors[:5],
            "max_throttle_ms": max(throttle, default=0),
        }
    )


def produce(args):
    """One producer per --client-id, all at once, each to its own topic."""
    results = [dict() for _ in args.client_id]
    threads = [
        threading.Thread(
            target=measure_produce,
            args=(args.bootstrap, cid, topic, args.seconds, args.size, results[i]),
        )
        for i, (cid, topic) in enumerate(zip(args.client_id, args.topic))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"producers": results}


def load(args):
    """Write `count` values of `size` bytes (an unlimited client id)."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": args.bootstrap, "client.id": "loader"})
    value = b"l" * args.size
    for _ in range(args.count):
        while True:
            try:
                p.produce(args.topic[0], value)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(60)
    return {"loaded": args.count - left}


def consume(args):
    """Read from the start for `seconds` after the first record; count value bytes."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    stats = []
    c = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"g-{args.client_id[0]}",
            "client.id": args.client_id[0],
            "statistics.interval.ms": 1000,
            "stats_cb": lambda s: stats.append(json.loads(s)),
        }
    )
    c.assign([TopicPartition(args.topic[0], 0, OFFSET_BEGINNING)])
    got, first, errors, records = 0, None, [], 0
    give_up = time.monotonic() + TIMEOUT_S
    while True:
        now = time.monotonic()
        if first is None and now > give_up:
            break
        if first is not None and now >= first + args.seconds:
            break
        m = c.poll(0.1)
        if m is None:
            continue
        if m.error():
            errors.append(str(m.error()))
            continue
        if first is None:
            first = time.monotonic()
        if time.monotonic() <= first + args.seconds:
            got += len(m.value())
            records += 1
    c.close()
    throttle = [b.get("throttle", {}).get("max", 0) for s in stats for b in s.get("brokers", {}).values()]
    return {
        "bytes": got,
        "records": records,
        "seconds": args.seconds,
        "rate": got / args.seconds,
        "errors": errors[:5],
        "max_throttle_ms": max(throttle, default=0),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("command", choices=["alter", "describe", "produce", "load", "consume"])
    ap.add_argument("--entries", default="[]")
    ap.add_argument("--validate-only", action="store_true")
    ap.add_argument("--components", default="[]")
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--client-id", action="append", default=[])
    ap.add_argument("--topic", action="append", default=[])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", type=int, default=16384)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--sasl-user")
    ap.add_argument("--sasl-password")
    args = ap.parse_args()
    if args.sasl_user:
        SASL.update(
            {
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanisms": "SCRAM-SHA-512",
                "sasl.username": args.sasl_user,
                "sasl.password": args.sasl_password,
            }
        )
    print(json.dumps(globals()[args.command](args)))


if __name__ == "__main__":
    main()
