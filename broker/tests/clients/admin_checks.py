"""Admin and commit calls made with confluent-kafka (one with kafka-python), run by
broker/tests/admin_e2e.rs.

One sub-command per call; each prints one JSON object on stdout with what the client saw
(error names as librdkafka reports them, e.g. "INVALID_REPLICA_ASSIGNMENT"), so the Rust
test asserts on a real client's view of the broker and shows it in failure messages.
"""
import argparse
import json
import sys

from confluent_kafka import (
    Consumer,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic

TIMEOUT_S = 15


def error_name(exc):
    """The Kafka error name of a future's exception, or its text if it has none."""
    if isinstance(exc, KafkaException) and exc.args and hasattr(exc.args[0], "name"):
        return exc.args[0].name()
    return f"{type(exc).__name__}: {exc}"


def admin(args):
    return AdminClient({"bootstrap.servers": args.bootstrap})


def node_ids(nodes):
    return [n.id for n in nodes]


def describe_partitions(a, topic):
    """Partitions as Metadata reports them (librdkafka's cached view, freshly requested)."""
    md = a.list_topics(topic=topic, timeout=TIMEOUT_S)
    t = md.topics[topic]
    if t.error is not None:
        return {"error": t.error.name()}
    return {
        "error": None,
        "brokers": sorted(md.brokers),
        "partitions": [
            {"id": p.id, "leader": p.leader, "replicas": list(p.replicas), "isrs": list(p.isrs)}
            for p in sorted(t.partitions.values(), key=lambda p: p.id)
        ],
    }


def cmd_create(args):
    """Creates the topics of a JSON list of specs in one request; per topic, the error or
    the partitions Metadata then reports. A spec: {"topic", and "assignment" (broker-id
    lists, one per partition) or "partitions"/"rf" (default -1), optional "config"}."""
    a = admin(args)
    new_topics = []
    for spec in json.loads(args.specs):
        kwargs = {"config": spec.get("config", {})}
        if "assignment" in spec:
            # librdkafka wants the entry count here, and sends -1 for both counts on the wire.
            kwargs["replica_assignment"] = spec["assignment"]
            kwargs["num_partitions"] = len(spec["assignment"])
        else:
            kwargs["num_partitions"] = spec.get("partitions", -1)
            kwargs["replication_factor"] = spec.get("rf", -1)
        new_topics.append(NewTopic(spec["topic"], **kwargs))
    futures = a.create_topics(new_topics, request_timeout=TIMEOUT_S)
    out = {}
    for topic, future in futures.items():
        try:
            future.result()
            out[topic] = describe_partitions(a, topic)
        except Exception as e:  # noqa: BLE001 - the error is the result
            out[topic] = {"error": error_name(e)}
    return out


def cmd_describe_configs(args):
    """Per topic, its configs as DescribeConfigs reports them (one request)."""
    a = admin(args)
    resources = [ConfigResource(ConfigResource.Type.TOPIC, t) for t in args.topics]
    futures = a.describe_configs(resources, request_timeout=TIMEOUT_S)
    return {
        r.name: {
            name: {"value": entry.value, "source": ConfigSource(entry.source).name}
            for name, entry in futures[r].result().items()
        }
        for r in resources
    }


def cmd_describe_topics(args):
    a = admin(args)
    futures = a.describe_topics(
        TopicCollection([args.topic]),
        request_timeout=TIMEOUT_S,
        include_authorized_operations=args.authorized_operations,
    )
    try:
        d = futures[args.topic].result()
    except Exception as e:  # noqa: BLE001
        return {"error": error_name(e)}
    ops = d.authorized_operations
    return {
        "error": None,
        "authorized_operations": None if ops is None else sorted(op.name for op in ops),
        "partitions": [
            {
                "id": p.id,
                "leader": p.leader.id if p.leader else None,
                "replicas": node_ids(p.replicas),
                "isr": node_ids(p.isr),
            }
            for p in d.partitions
        ],
    }


def cmd_describe_cluster(args):
    a = admin(args)
    try:
        d = a.describe_cluster(
            request_timeout=TIMEOUT_S, include_authorized_operations=args.authorized_operations
        ).result()
    except Exception as e:  # noqa: BLE001
        return {"error": error_name(e)}
    ops = d.authorized_operations
    return {
        "error": None,
        "nodes": sorted(n.id for n in d.nodes),
        "authorized_operations": None if ops is None else sorted(op.name for op in ops),
    }


def cmd_describe_group(args):
    """A consumer group as describe_consumer_groups reports it, with its authorized operations."""
    a = admin(args)
    try:
        d = a.describe_consumer_groups(
            [args.group], request_timeout=TIMEOUT_S, include_authorized_operations=True
        )[args.group].result()
    except Exception as e:  # noqa: BLE001
        return {"error": error_name(e)}
    ops = d.authorized_operations
    return {
        "error": None,
        "authorized_operations": None if ops is None else sorted(op.name for op in ops),
    }


def cmd_commit(args):
    """Commits explicit offsets ("topic:partition:offset") for a group with no members.

    Asynchronous, so on_commit shows each partition's error (a synchronous commit raises
    the first error and hides which partition had it).
    """
    results = []

    def on_commit(err, partitions):
        results.append({
            "error": err.name() if err else None,
            "partitions": [
                {"topic": tp.topic, "partition": tp.partition, "error": tp.error.name() if tp.error else None}
                for tp in partitions
            ],
        })

    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "on_commit": on_commit,
    })
    offsets = []
    for spec in args.offsets:
        topic, partition, offset = spec.rsplit(":", 2)
        offsets.append(TopicPartition(topic, int(partition), int(offset)))
    c.commit(offsets=offsets, asynchronous=True)
    for _ in range(int(TIMEOUT_S / 0.1)):
        if results:
            break
        c.poll(0.1)
    out = results[0] if results else {"error": "no commit callback", "partitions": []}
    committed = c.committed(offsets, timeout=TIMEOUT_S)
    out["committed"] = [
        {"topic": tp.topic, "partition": tp.partition, "offset": tp.offset} for tp in committed
    ]
    c.close()
    return out


def cmd_commit_kafka_python(args):
    """The same commit through kafka-python's admin client, which reports every
    partition's error as the broker sent it (librdkafka's commit callback does not)."""
    try:
        from kafka import KafkaAdminClient
        from kafka import TopicPartition as KpTopicPartition
        from kafka.structs import OffsetAndMetadata
    except ImportError:
        sys.exit("kafka-python is missing: run `make test-deps`")
    a = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    offsets = {}
    for spec in args.offsets:
        topic, partition, offset = spec.rsplit(":", 2)
        offsets[KpTopicPartition(topic, int(partition))] = OffsetAndMetadata(int(offset), "", -1)
    errors = a.alter_group_offsets(args.group, offsets)
    a.close()
    return [[tp.topic, tp.partition, e.__name__] for tp, e in sorted(errors.items())]


def cmd_produce_consume(args):
    """Produces N records with the given codec, consumes them back; reports the values seen."""
    p = Producer({"bootstrap.servers": args.bootstrap, "compression.type": args.compression, "linger.ms": 5})
    sent = [f"value-{i}" for i in range(args.count)]
    errors = []
    for v in sent:
        p.produce(args.topic, value=v.encode(), partition=0, on_delivery=lambda e, _m: e and errors.append(e.name()))
    p.flush(TIMEOUT_S)
    c = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"check-{args.topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.assign([TopicPartition(args.topic, 0, 0)])
    seen = []
    for _ in range(100):
        for m in c.consume(num_messages=args.count, timeout=0.2):
            if m.error() is None:
                seen.append(m.value().decode())
        if len(seen) >= args.count:
            break
    c.close()
    return {"produce_errors": errors, "consumed": seen}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("create")
    p.add_argument("specs", help="JSON list of topic specs (see cmd_create)")
    p = sub.add_parser("describe-configs")
    p.add_argument("topics", nargs="+")
    p = sub.add_parser("describe-topics")
    p.add_argument("--topic", required=True)
    p.add_argument("--authorized-operations", action="store_true")
    p = sub.add_parser("describe-cluster")
    p.add_argument("--authorized-operations", action="store_true")
    p = sub.add_parser("describe-group")
    p.add_argument("--group", required=True)
    p = sub.add_parser("commit")
    p.add_argument("--group", required=True)
    p.add_argument("offsets", nargs="+", help="topic:partition:offset")
    p = sub.add_parser("commit-kafka-python")
    p.add_argument("--group", required=True)
    p.add_argument("offsets", nargs="+", help="topic:partition:offset")
    p = sub.add_parser("produce-consume")
    p.add_argument("--topic", required=True)
    p.add_argument("--compression", required=True)
    p.add_argument("--count", type=int, default=20)
    args = ap.parse_args()
    handler = {
        "create": cmd_create,
        "describe-configs": cmd_describe_configs,
        "describe-topics": cmd_describe_topics,
        "describe-cluster": cmd_describe_cluster,
        "describe-group": cmd_describe_group,
        "commit": cmd_commit,
        "commit-kafka-python": cmd_commit_kafka_python,
        "produce-consume": cmd_produce_consume,
    }[args.cmd]
    json.dump(handler(args), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
