"""DeleteGroups, DescribeCluster, ElectLeaders and DescribeLogDirs through real admin clients
(confluent-kafka's AdminClient and kafka-python's KafkaAdminClient, default configuration),
run by broker/tests/admin_apis_a.rs.

One sub-command per call; each prints one JSON object on stdout with what the client saw
(error names as the client reports them), so the Rust test asserts on the client's view.
"""
import argparse
import json
import sys

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka import ElectionType
from confluent_kafka.admin import AdminClient

TIMEOUT_S = 15


def error_name(exc):
    """The Kafka error name of a future's exception, or its text if it has none."""
    if isinstance(exc, KafkaException) and exc.args and hasattr(exc.args[0], "name"):
        return exc.args[0].name()
    return f"{type(exc).__name__}: {exc}"


def ck_admin(args):
    return AdminClient({"bootstrap.servers": args.bootstrap})


def kp_admin(args):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=args.bootstrap)


def ck_delete_groups(args):
    a = ck_admin(args)
    out = {}
    for group, future in a.delete_consumer_groups(args.groups, request_timeout=TIMEOUT_S).items():
        try:
            future.result()
            out[group] = None
        except Exception as e:  # noqa: BLE001 - report what the client saw
            out[group] = error_name(e)
    listed = a.list_consumer_groups(request_timeout=TIMEOUT_S).result()
    return {"results": out, "listed": sorted(g.group_id for g in listed.valid)}


def ck_describe_cluster(args):
    a = ck_admin(args)
    d = a.describe_cluster(include_authorized_operations=True, request_timeout=TIMEOUT_S).result()
    plain = a.describe_cluster(request_timeout=TIMEOUT_S).result()
    md = a.list_topics(timeout=TIMEOUT_S)
    return {
        "cluster_id": d.cluster_id,
        "controller": d.controller.id if d.controller is not None else None,
        "nodes": sorted([n.id, n.host, n.port] for n in d.nodes),
        "operations": sorted(op.name for op in (d.authorized_operations or [])),
        "plain_operations": plain.authorized_operations,
        "metadata_cluster_id": md.cluster_id,
        "metadata_brokers": sorted([b.id, b.host, b.port] for b in md.brokers.values()),
    }


def ck_elect(args):
    a = ck_admin(args)
    out = {}
    for name, kind in (("preferred", ElectionType.PREFERRED), ("unclean", ElectionType.UNCLEAN)):
        parts = [TopicPartition(t, int(p)) for t, p in (s.rsplit(":", 1) for s in args.partitions)]
        try:
            # confluent-kafka 2.16's binding refuses a request_timeout keyword here (SystemError).
            result = a.elect_leaders(kind, parts).result(timeout=TIMEOUT_S)
            out[name] = {
                f"{tp.topic}:{tp.partition}": (err.name() if err is not None else None)
                for tp, err in result.items()
            }
        except Exception as e:  # noqa: BLE001
            out[name] = error_name(e)
    return out


def ck_has_describe_log_dirs(_args):
    return {"available": hasattr(AdminClient, "describe_log_dirs")}


def kp_delete_groups(args):
    a = kp_admin(args)
    # {group: 'OK' or the error class name}
    out = dict(a.delete_groups(args.groups))
    listed = sorted(g["group_id"] for g in a.list_groups())
    a.close()
    return {"results": out, "listed": listed}


def kp_describe_cluster(args):
    a = kp_admin(args)
    d = a.describe_cluster()
    a.close()
    return {
        "cluster_id": d["cluster_id"],
        "controller": d["controller_id"],
        "nodes": sorted([b["broker_id"], b["host"], b["port"]] for b in d["brokers"]),
    }


def kp_describe_log_dirs(args):
    a = kp_admin(args)
    # A dict names partitions without a Metadata lookup (which could auto-create a topic).
    topics = None
    for s in args.partitions:
        t, p = s.rsplit(":", 1)
        topics = topics or {}
        topics.setdefault(t, []).append(int(p))
    answers = a.describe_log_dirs(topic_partitions=topics)
    a.close()
    sizes = {}
    dirs = []
    for answer in answers:
        for d in answer["log_dirs"]:
            dirs.append([answer["broker"], d["error_code"], d["log_dir"]])
            for t in d["topics"]:
                for p in t["partitions"]:
                    key = f"{t['name']}:{p['partition_index']}"
                    sizes.setdefault(key, []).append(
                        [answer["broker"], p["partition_size"], p["offset_lag"], p["is_future_key"]]
                    )
    return {"dirs": dirs, "sizes": sizes}


def kp_elect(args):
    from kafka import errors as Errors

    a = kp_admin(args)
    out = {}
    parts = {}
    for s in args.partitions:
        t, p = s.rsplit(":", 1)
        parts.setdefault(t, []).append(int(p))
    for name, kind in (("preferred", 0), ("unclean", 1)):
        r = a.elect_leaders(kind, parts, raise_errors=False)
        out[name] = {
            f"{res.topic}:{p.partition_id}": Errors.for_code(p.error_code).__name__
            for res in r.replica_election_results
            for p in res.partition_result
        }
    a.close()
    return out


COMMANDS = {
    "ck-delete-groups": ck_delete_groups,
    "ck-describe-cluster": ck_describe_cluster,
    "ck-elect": ck_elect,
    "ck-has-describe-log-dirs": ck_has_describe_log_dirs,
    "kp-delete-groups": kp_delete_groups,
    "kp-describe-cluster": kp_describe_cluster,
    "kp-describe-log-dirs": kp_describe_log_dirs,
    "kp-elect": kp_elect,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--groups", nargs="*", default=[])
    parser.add_argument("--partitions", nargs="*", default=[], help="topic:partition")
    args = parser.parse_args()
    json.dump(COMMANDS[args.command](args), sys.stdout)
    print()


if __name__ == "__main__":
    main()
