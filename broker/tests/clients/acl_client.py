"""confluent-kafka against a SASL (SCRAM) listener with ACLs, run by broker/tests/acl.rs.
Each sub-command prints one JSON object on stdout with what the client saw.

create: AdminClient.create_acls with the bindings given as JSON (--acls); per binding the
  error name or null.
describe: AdminClient.describe_acls with a match-everything filter; the bindings, sorted.
delete: AdminClient.delete_acls with the filter given as JSON (--acls, one object); the
  bindings it removed, sorted.
produce: produce COUNT records (value "v<i>") to TOPIC, round-robin over its partitions by
  explicit partition number (default producer config); per-message delivery errors.
consume: consume TOPIC from the beginning with group GROUP; the values per partition in
  consumption order and the errors the client surfaced.
txn: a transactional producer (transactional.id TXN) writes COUNT records to TOPIC in one
  committed transaction; the error name of the first failing step, or null.
idempotent: an idempotent producer (enable.idempotence) writes COUNT records to TOPIC.
"""
import argparse
import json
import sys
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, ResourcePatternType, ResourceType)

TIMEOUT_S = 30


def config(args):
    return {
        "bootstrap.servers": args.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": args.user,
        "sasl.password": args.password,
    }


def binding(d, cls=AclBinding):
    return cls(ResourceType[d["resource"]], d.get("name"), ResourcePatternType[d["pattern"]],
               d.get("principal"), d.get("host"), AclOperation[d["operation"]],
               AclPermissionType[d["permission"]])


def as_dict(b):
    return {"resource": b.restype.name, "name": b.name, "pattern": b.resource_pattern_type.name,
            "principal": b.principal, "host": b.host, "operation": b.operation.name,
            "permission": b.permission_type.name}


def error_name(e):
    if e is None:
        return None
    if hasattr(e, "args") and e.args and hasattr(e.args[0], "name"):
        return e.args[0].name()
    return str(e)


def create(args):
    a = AdminClient(config(args))
    bindings = [binding(d) for d in json.loads(args.acls)]
    futures = a.create_acls(bindings, request_timeout=TIMEOUT_S)
    out = []
    for b in bindings:
        try:
            futures[b].result()
            out.append(None)
        except Exception as e:  # noqa: BLE001 - report what the client saw
            out.append(error_name(e))
    return {"results": out}


def describe(args):
    a = AdminClient(config(args))
    f = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                         AclOperation.ANY, AclPermissionType.ANY)
    try:
        got = a.describe_acls(f, request_timeout=TIMEOUT_S).result()
        return {"acls": sorted((as_dict(b) for b in got), key=json.dumps), "error": None}
    except Exception as e:  # noqa: BLE001
        return {"acls": [], "error": error_name(e)}


def delete(args):
    a = AdminClient(config(args))
    f = binding(json.loads(args.acls), AclBindingFilter)
    try:
        got = a.delete_acls([f], request_timeout=TIMEOUT_S)[f].result()
        return {"deleted": sorted((as_dict(b) for b in got), key=json.dumps), "error": None}
    except Exception as e:  # noqa: BLE001
        return {"deleted": [], "error": error_name(e)}


def produce(args):
    errors = []
    p = Producer({**config(args), "error_cb": lambda e: errors.append(e.name())})
    results = []
    for i in range(args.count):
        p.produce(args.topic, value=f"v{i}", partition=i % args.partitions,
                  on_delivery=lambda err, msg: results.append(err.name() if err else None))
    left = p.flush(TIMEOUT_S)
    return {"results": results, "unflushed": left, "errors": sorted(set(errors))}


def consume(args):
    errors = []
    c = Consumer({**config(args), "group.id": args.group, "auto.offset.reset": "earliest",
                  "error_cb": lambda e: errors.append(e.name())})
    c.subscribe([args.topic])
    got = {}
    n = 0
    deadline = time.time() + args.seconds
    while n < args.count and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            errors.append(m.error().name())
            if args.stop_on_error:
                break
            continue
        got.setdefault(str(m.partition()), []).append(m.value().decode())
        n += 1
    c.close()
    return {"consumed": got, "errors": sorted(set(errors))}


def txn(args):
    p = Producer({**config(args), "transactional.id": args.txn})
    try:
        p.init_transactions(TIMEOUT_S)
        p.begin_transaction()
        for i in range(args.count):
            p.produce(args.topic, value=f"t{i}", partition=0)
        p.commit_transaction(TIMEOUT_S)
        return {"error": None}
    except Exception as e:  # noqa: BLE001 - report what the client saw
        return {"error": error_name(e)}


def idempotent(args):
    results = []
    p = Producer({**config(args), "enable.idempotence": True})
    for i in range(args.count):
        p.produce(args.topic, value=f"i{i}", partition=0,
                  on_delivery=lambda err, msg: results.append(err.name() if err else None))
    left = p.flush(TIMEOUT_S)
    return {"results": results, "unflushed": left}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["create", "describe", "delete", "produce", "consume", "txn",
                                        "idempotent"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--acls")
    ap.add_argument("--topic")
    ap.add_argument("--group", default="g")
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=TIMEOUT_S)
    ap.add_argument("--stop-on-error", action="store_true")
    ap.add_argument("--txn")
    args = ap.parse_args()
    out = {"create": create, "describe": describe, "delete": delete, "produce": produce,
           "consume": consume, "txn": txn, "idempotent": idempotent}[args.command](args)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
