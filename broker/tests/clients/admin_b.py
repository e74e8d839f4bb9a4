"""CreatePartitions (and the admin calls after it) through real admin clients in their
default configuration, run by broker/tests/admin_apis_b.rs: confluent-kafka's AdminClient
("cp-*" sub-commands) and kafka-python's KafkaAdminClient ("kp-*"). Each sub-command prints
one JSON object with what the client saw (error names as the client reports them).
"""
import argparse
import json

TIMEOUT_S = 15


def cp_error(exc):
    from confluent_kafka import KafkaException
    if isinstance(exc, KafkaException) and exc.args and hasattr(exc.args[0], "name"):
        return exc.args[0].name()
    return f"{type(exc).__name__}: {exc}"


def cp_admin(args):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": args.bootstrap})


def cp_grow(args):
    """create_partitions for each topic=count pair; per topic its error or null."""
    from confluent_kafka.admin import NewPartitions
    a = cp_admin(args)
    news = [NewPartitions(t, int(c)) for t, c in (x.split("=") for x in args.items)]
    futures = a.create_partitions(news, validate_only=args.validate_only, request_timeout=TIMEOUT_S)
    out = {}
    for topic, f in futures.items():
        try:
            f.result()
            out[topic] = None
        except Exception as e:  # noqa: BLE001 - the error name is the result
            out[topic] = cp_error(e)
    return out


def cp_partitions(args):
    """Partition count Metadata reports per topic."""
    a = cp_admin(args)
    out = {}
    for t in args.items:
        md = a.list_topics(topic=t, timeout=TIMEOUT_S)
        out[t] = len(md.topics[t].partitions)
    return out


def cp_produce_fetch(args):
    """Produce one record to each topic:partition item and read it back from there."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    p = Producer({"bootstrap.servers": args.bootstrap})
    out = {}
    for item in args.items:
        topic, part = item.split(":")
        value = f"v-{item}".encode()
        delivered = []
        p.produce(topic, value, partition=int(part), on_delivery=lambda e, m: delivered.append((e, m)))
        p.flush(TIMEOUT_S)
        err, msg = delivered[0]
        if err is not None:
            out[item] = {"error": err.name()}
            continue
        c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "admin-b", "enable.auto.commit": False})
        c.assign([TopicPartition(topic, int(part), msg.offset())])
        got = c.poll(TIMEOUT_S)
        c.close()
        out[item] = {"offset": msg.offset(), "read": got.value().decode() if got and not got.error() else None}
    return out


def kp_grow(args):
    """kafka-python create_partitions, one topic=count per request; per topic its error."""
    from kafka.admin import KafkaAdminClient, NewPartitions
    a = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    out = {}
    for t, c in (x.split("=") for x in args.items):
        try:
            a.create_partitions({t: NewPartitions(int(c))}, validate_only=args.validate_only)
            out[t] = None
        except Exception as e:  # noqa: BLE001 - the error class is the result
            out[t] = type(e).__name__
    a.close()
    return out


def cp_delete(args):
    """delete_records for topic:partition:offset items; per item the low watermark or error."""
    from confluent_kafka import TopicPartition
    a = cp_admin(args)
    tps = [TopicPartition(t, int(p), int(o)) for t, p, o in (x.split(":") for x in args.items)]
    futures = a.delete_records(tps, request_timeout=TIMEOUT_S)
    out = {}
    for tp, f in futures.items():
        key = f"{tp.topic}:{tp.partition}"
        try:
            out[key] = f.result().low_watermark
        except Exception as e:  # noqa: BLE001 - the error name is the result
            out[key] = cp_error(e)
    return out


def cp_earliest(args):
    """Per topic:partition: ListOffsets earliest, and the first offset a consumer
    starting at earliest reads."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    out = {}
    for item in args.items:
        topic, part = item.split(":")
        c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "admin-b", "enable.auto.commit": False})
        low, high = c.get_watermark_offsets(TopicPartition(topic, int(part)), timeout=TIMEOUT_S)
        c.assign([TopicPartition(topic, int(part), OFFSET_BEGINNING)])
        got = c.poll(TIMEOUT_S)
        c.close()
        first = got.offset() if got is not None and not got.error() else None
        out[item] = {"earliest": low, "high": high, "first_read": first}
    return out


def kp_delete(args):
    """kafka-python delete_records for topic:partition:offset items, one request each."""
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient
    a = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    out = {}
    for t, p, o in (x.split(":") for x in args.items):
        try:
            r = a.delete_records({TopicPartition(t, int(p)): int(o)})
            out[f"{t}:{p}"] = r[TopicPartition(t, int(p))]["low_watermark"]
        except Exception as e:  # noqa: BLE001 - the error class is the result
            out[f"{t}:{p}"] = type(e).__name__
    a.close()
    return out


def cp_alter(args):
    """incremental_alter_configs (items "topic:SET:k=v" / "topic:DELETE:k") or, with
    --legacy, alter_configs ("topic:k=v", replacing the whole set); per topic its error."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    a = cp_admin(args)
    by_topic = {}
    for item in args.items:
        if args.legacy:
            topic, kv = item.split(":", 1)
            by_topic.setdefault(topic, {})[kv.split("=")[0]] = kv.split("=", 1)[1]
        else:
            topic, op, kv = item.split(":", 2)
            name, _, value = kv.partition("=")
            entry = ConfigEntry(name, value or None, incremental_operation=getattr(AlterConfigOpType, op))
            by_topic.setdefault(topic, []).append(entry)
    if args.legacy:
        resources = [ConfigResource("TOPIC", t, set_config=c) for t, c in by_topic.items()]
        futures = a.alter_configs(resources, validate_only=args.validate_only, request_timeout=TIMEOUT_S)
    else:
        # "broker/<id>" names the broker resource.
        resources = [
            ConfigResource("BROKER", t[7:], incremental_configs=c) if t.startswith("broker/")
            else ConfigResource("TOPIC", t, incremental_configs=c)
            for t, c in by_topic.items()
        ]
        futures = a.incremental_alter_configs(resources, validate_only=args.validate_only, request_timeout=TIMEOUT_S)
    out = {}
    for res, f in futures.items():
        try:
            f.result()
            out[res.name] = None
        except Exception as e:  # noqa: BLE001 - the error name is the result
            out[res.name] = cp_error(e)
    return out


def cp_describe(args):
    """describe_configs of topics (and "broker:0"): name -> value or error."""
    from confluent_kafka.admin import ConfigResource
    a = cp_admin(args)
    out = {}
    for item in args.items:
        kind, name = ("BROKER", item.split(":")[1]) if item.startswith("broker:") else ("TOPIC", item)
        f = a.describe_configs([ConfigResource(kind, name)], request_timeout=TIMEOUT_S)
        try:
            entries = list(f.values())[0].result()
            out[item] = {k: {"value": v.value, "source": v.source} for k, v in entries.items()}
        except Exception as e:  # noqa: BLE001 - the error name is the result
            out[item] = cp_error(e)
    return out


def kp_alter(args):
    """kafka-python alter_configs ("topic:k=v"); per topic its error code (0: none)."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
    a = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    out = {}
    for item in args.items:
        topic, kv = item.split(":", 1)
        k, v = kv.split("=", 1)
        try:
            r = a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={k: v})])
            # kafka-python 3: {"topic": {name: "OK" or the error's text}}
            out[topic] = r["topic"][topic].split("-")[0].split(":")[0].strip()
        except Exception as e:  # noqa: BLE001 - the error class is the result
            out[topic] = type(e).__name__
    a.close()
    return out


def kp_describe(args):
    """kafka-python describe_configs of one topic: its retention.ms value."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
    a = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    out = {}
    for t in args.items:
        # "broker/<id>" names the broker resource.
        kind, name = ("broker", t[7:]) if t.startswith("broker/") else ("topic", t)
        rtype = ConfigResourceType.BROKER if kind == "broker" else ConfigResourceType.TOPIC
        # kafka-python 3's default filter shows dynamic/topic-modified configs only,
        # which hides static broker configs: ask for all of a broker's.
        filt = "all" if kind == "broker" else "modified"
        r = a.describe_configs([ConfigResource(rtype, name)], config_filter=filt)
        # {"topic": {name: {config: {...}}}}
        out[t] = {k: c.get("value") for k, c in r[kind][name].items()}
    a.close()
    return out


COMMANDS = {
    "cp-grow": cp_grow,
    "cp-partitions": cp_partitions,
    "cp-produce-fetch": cp_produce_fetch,
    "kp-grow": kp_grow,
    "cp-delete": cp_delete,
    "cp-earliest": cp_earliest,
    "kp-delete": kp_delete,
    "cp-alter": cp_alter,
    "cp-describe": cp_describe,
    "kp-alter": kp_alter,
    "kp-describe": kp_describe,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--validate-only", action="store_true")
    ap.add_argument("--legacy", action="store_true")
    ap.add_argument("command", choices=sorted(COMMANDS))
    ap.add_argument("items", nargs="*")
    args = ap.parse_args()
    print(json.dumps(COMMANDS[args.command](args)))


if __name__ == "__main__":
    main()
