"""The compatibility suite's Python side, run by broker/tests/compat.rs: every operation of
issue 12 through one real client in its default configuration, confluent-kafka
(`--client confluent`) or kafka-python (`--client kafka-python`).

Prints one JSON line per operation, in the order of OPS:
{"client", "op", "result": "ok" | "fail" | "n/a", "detail"}. "ok" means the client saw the
expected value (each op checks it); "n/a" means the client has no API for the operation.
`--phase restart` runs only the checks made after the test restarts the broker.
Names are prefixed with the client's tag, so the clients may run side by side.
"""
import argparse
import json
import time
import traceback

TIMEOUT_S = 15
NA = "n/a (client has no API)"
# Record timestamps for the time lookup: 10 records, 10 ms apart, in one batch.
TS_BASE = 1_700_000_000_000
KEYS = [f"key-{i}" for i in range(10)]
RETENTION_MS = "3600000"
RETENTION_BYTES = "1048576"
# The broker runs with --retention-ms 86400000 (compat.rs): a serve flag shown as a static config.
BROKER_RETENTION_MS = "86400000"


class NotAvailable(Exception):
    """The client has no API for this operation."""


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def expect(got, want, what):
    check(got == want, f"{what}: expected {want!r}, got {got!r}")


class Client:
    """What both Python clients share: the group member kept for ListGroups/DescribeGroups."""
    member = None

    def close_member(self):
        if self.member is not None:
            self.member.close()


class Confluent(Client):
    name = "confluent-kafka"
    tag = "ck"

    def __init__(self, bootstrap):
        from confluent_kafka.admin import AdminClient
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def producer(self):
        from confluent_kafka import Producer
        return Producer({"bootstrap.servers": self.bootstrap})

    def consumer(self, group="unused", **extra):
        from confluent_kafka import Consumer
        return Consumer({"bootstrap.servers": self.bootstrap, "group.id": group, **extra})

    def create_topic(self, topic, partitions):
        from confluent_kafka.admin import NewTopic
        self.admin.create_topics([NewTopic(topic, partitions)], request_timeout=TIMEOUT_S)[topic].result()
        return self.partition_count(topic)

    def partition_count(self, topic):
        return len(self.admin.list_topics(topic=topic, timeout=TIMEOUT_S).topics[topic].partitions)

    def produce(self, topic, records, partition=None):
        """records: (key, value, timestamp) triples; the (partition, offset) of each."""
        p = self.producer()
        out = [None] * len(records)
        for i, (key, value, ts) in enumerate(records):
            kw = {"partition": partition} if partition is not None else {}
            if ts is not None:
                kw["timestamp"] = ts

            def delivered(err, msg, i=i):
                out[i] = err.name() if err else (msg.partition(), msg.offset())
            p.produce(topic, value.encode(), key and key.encode(), on_delivery=delivered, **kw)
        p.flush(TIMEOUT_S)
        return out

    def read(self, topic, partition, count):
        """(key, value) of the first `count` records from the start of the partition."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition
        c = self.consumer()
        c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        out = []
        deadline = time.time() + TIMEOUT_S
        while len(out) < count and time.time() < deadline:
            m = c.poll(1)
            if m is not None and not m.error():
                out.append(((m.key() or b"").decode(), m.value().decode()))
        c.close()
        return out

    def consume_and_commit(self, topic, group, count):
        """Subscribes as a group member, reads `count` records, commits; the member stays
        in the group (self.member) for ListGroups and DescribeGroups."""
        from confluent_kafka import TopicPartition
        c = self.consumer(group, **{"auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe([topic])
        values = []
        deadline = time.time() + TIMEOUT_S
        while len(values) < count and time.time() < deadline:
            m = c.poll(1)
            if m is not None and not m.error():
                values.append(m.value().decode())
        c.commit(asynchronous=False)
        committed = c.committed([TopicPartition(topic, 0)], timeout=TIMEOUT_S)[0].offset
        self.member = c
        return values, committed

    def create_partitions(self, topic, count):
        from confluent_kafka.admin import NewPartitions
        self.admin.create_partitions([NewPartitions(topic, count)], request_timeout=TIMEOUT_S)[topic].result()

    def delete_records(self, topic, partition, before):
        from confluent_kafka import TopicPartition
        tp = TopicPartition(topic, partition, before)
        return list(self.admin.delete_records([tp], request_timeout=TIMEOUT_S).values())[0].result().low_watermark

    def list_offset(self, topic, partition, spec):
        """ListOffsets for "earliest", "latest" or a timestamp."""
        from confluent_kafka import TopicPartition
        from confluent_kafka.admin import OffsetSpec
        named = {"earliest": OffsetSpec.earliest(), "latest": OffsetSpec.latest()}
        s = named[spec] if spec in named else OffsetSpec.for_timestamp(spec)
        fs = self.admin.list_offsets({TopicPartition(topic, partition): s}, request_timeout=TIMEOUT_S)
        return list(fs.values())[0].result().offset

    def commit_as_admin(self, topic, group):
        from confluent_kafka import TopicPartition
        c = self.consumer(group)
        c.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
        c.close()

    def delete_group(self, group):
        self.admin.delete_consumer_groups([group], request_timeout=TIMEOUT_S)[group].result()

    def list_groups(self):
        return [g.group_id for g in self.admin.list_consumer_groups(request_timeout=TIMEOUT_S).result().valid]

    def describe_group(self, group):
        d = self.admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S)[group].result()
        parts = sorted(tp.partition for m in d.members for tp in m.assignment.topic_partitions)
        return {"state": d.state.name, "members": len(d.members), "partitions": parts}

    def alter_configs(self, topic, configs):
        from confluent_kafka.admin import ConfigResource
        r = ConfigResource("TOPIC", topic, set_config=configs)
        list(self.admin.alter_configs([r], request_timeout=TIMEOUT_S).values())[0].result()

    def incremental_alter_configs(self, topic, configs):
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
        entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()]
        r = ConfigResource("TOPIC", topic, incremental_configs=entries)
        list(self.admin.incremental_alter_configs([r], request_timeout=TIMEOUT_S).values())[0].result()

    def describe_configs(self, kind, name):
        """{config: (value, source name)}."""
        from confluent_kafka.admin import ConfigResource
        f = self.admin.describe_configs([ConfigResource(kind, name)], request_timeout=TIMEOUT_S)
        entries = list(f.values())[0].result()
        return {k: (v.value, _source_name(v.source)) for k, v in entries.items()}

    def describe_cluster(self):
        d = self.admin.describe_cluster(request_timeout=TIMEOUT_S).result()
        return {"cluster_id": d.cluster_id, "controller": d.controller.id, "nodes": sorted(n.id for n in d.nodes)}

    def describe_log_dirs(self, topic):
        raise NotAvailable

    def elect_leaders(self, topic, partition):
        from confluent_kafka import ElectionType, TopicPartition
        r = self.admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, partition)]).result(timeout=TIMEOUT_S)
        return [e.name() if e is not None else None for e in r.values()][0]

    def offset_for_leader_epoch(self):
        raise NotAvailable

    def describe_topic_partitions(self, topics, limit, cursor=None):
        # describe_topics sends Metadata (librdkafka 2.16), not DescribeTopicPartitions.
        raise NotAvailable


def _source_name(source):
    from confluent_kafka.admin import ConfigSource
    return ConfigSource(source).name


class KafkaPython(Client):
    name = "kafka-python"
    tag = "kp"

    def __init__(self, bootstrap):
        from kafka import KafkaAdminClient
        self.bootstrap = bootstrap
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)

    def create_topic(self, topic, partitions):
        from kafka.admin import NewTopic
        self.admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        return self.partition_count(topic)

    def partition_count(self, topic):
        d = self.admin.describe_topics([topic])[0]
        return len(d["partitions"])

    def produce(self, topic, records, partition=None):
        from kafka import KafkaProducer
        p = KafkaProducer(bootstrap_servers=self.bootstrap)
        futures = [
            p.send(topic, value=v.encode(), key=k and k.encode(), partition=partition, timestamp_ms=ts)
            for k, v, ts in records
        ]
        p.flush(TIMEOUT_S)
        out = [(m.partition, m.offset) for m in (f.get(TIMEOUT_S) for f in futures)]
        p.close()
        return out

    def read(self, topic, partition, count):
        from kafka import KafkaConsumer, TopicPartition
        c = KafkaConsumer(bootstrap_servers=self.bootstrap)
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek_to_beginning(tp)
        out = []
        deadline = time.time() + TIMEOUT_S
        while len(out) < count and time.time() < deadline:
            for records in c.poll(timeout_ms=1000).values():
                out.extend(((r.key or b"").decode(), r.value.decode()) for r in records)
        c.close()
        return out[:count]

    def consume_and_commit(self, topic, group, count):
        from kafka import KafkaConsumer, TopicPartition
        c = KafkaConsumer(topic, bootstrap_servers=self.bootstrap, group_id=group,
                          auto_offset_reset="earliest", enable_auto_commit=False)
        values = []
        deadline = time.time() + TIMEOUT_S
        while len(values) < count and time.time() < deadline:
            for records in c.poll(timeout_ms=1000).values():
                values.extend(r.value.decode() for r in records)
        c.commit()
        committed = c.committed(TopicPartition(topic, 0))
        self.member = c
        return values, committed

    def create_partitions(self, topic, count):
        from kafka.admin import NewPartitions
        self.admin.create_partitions({topic: NewPartitions(count)})

    def delete_records(self, topic, partition, before):
        from kafka import TopicPartition
        tp = TopicPartition(topic, partition)
        return self.admin.delete_records({tp: before})[tp]["low_watermark"]

    def list_offset(self, topic, partition, spec):
        from kafka import TopicPartition
        from kafka.protocol.consumer import OffsetSpec
        tp = TopicPartition(topic, partition)
        s = {"earliest": OffsetSpec.EARLIEST, "latest": OffsetSpec.LATEST}.get(spec, spec)
        return self.admin.list_partition_offsets({tp: s})[tp].offset

    def commit_as_admin(self, topic, group):
        from kafka import KafkaConsumer, TopicPartition
        from kafka.structs import OffsetAndMetadata
        c = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group)
        c.assign([TopicPartition(topic, 0)])
        c.commit({TopicPartition(topic, 0): OffsetAndMetadata(1, "", -1)})
        c.close()

    def delete_group(self, group):
        r = dict(self.admin.delete_groups([group]))
        expect(r, {group: "OK"}, "delete_groups")

    def list_groups(self):
        return [g["group_id"] for g in self.admin.list_groups()]

    def describe_group(self, group):
        d = self.admin.describe_groups([group])[group]
        members = d["members"]
        parts = sorted(
            p for m in members for t in m["member_assignment"]["assigned_partitions"] for p in t["partitions"]
        )
        return {"state": d["group_state"].upper(), "members": len(members), "partitions": parts}

    def _alter(self, topic, configs, incremental):
        from kafka.admin import ConfigResource, ConfigResourceType
        r = self.admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)],
                                     incremental=incremental)
        expect(r["topic"][topic], "OK", "alter result")

    def alter_configs(self, topic, configs):
        self._alter(topic, configs, False)

    def incremental_alter_configs(self, topic, configs):
        self._alter(topic, {k: ("SET", v) for k, v in configs.items()}, True)

    def describe_configs(self, kind, name):
        from kafka.admin import ConfigResource, ConfigResourceType
        rtype = ConfigResourceType.BROKER if kind == "BROKER" else ConfigResourceType.TOPIC
        r = self.admin.describe_configs([ConfigResource(rtype, name)], config_filter="all")
        return {k: (c.get("value"), _kp_source(c)) for k, c in r[kind.lower()][name].items()}

    def describe_cluster(self):
        d = self.admin.describe_cluster()
        return {"cluster_id": d["cluster_id"], "controller": d["controller_id"],
                "nodes": sorted(b["broker_id"] for b in d["brokers"])}

    def describe_log_dirs(self, topic):
        """Per partition of `topic`: the brokers reporting it and whether its size is > 0."""
        out = {}
        for answer in self.admin.describe_log_dirs(topic_partitions={topic: [0, 1]}):
            for d in answer["log_dirs"]:
                for t in d["topics"]:
                    for p in t["partitions"]:
                        out.setdefault(p["partition_index"], []).append(p["partition_size"] > 0)
        return out

    def elect_leaders(self, topic, partition):
        from kafka import errors as Errors
        r = self.admin.elect_leaders(0, {topic: [partition]}, raise_errors=False)
        codes = [p.error_code for res in r.replica_election_results for p in res.partition_result]
        return [Errors.for_code(c).__name__ for c in codes][0]

    def offset_for_leader_epoch(self):
        # The consumer sends it internally (KIP-320 validation); no public call.
        raise NotAvailable

    def metadata_partitions(self, topic):
        return self.admin.describe_topics([topic])[0]["partitions"]

    def describe_topic_partitions(self, topics, limit, cursor=None):
        return self.admin.describe_topic_partitions(topics, response_partition_limit=limit, cursor=cursor)


def _kp_source(c):
    from kafka.admin import ConfigSourceType
    s = c.get("config_source")
    try:
        return ConfigSourceType(s).name
    except (ValueError, TypeError):
        return str(s)


# The operations, in the suite's order; each returns a short detail or raises.
def op_create_topic(c):
    expect(c.create_topic(f"{c.tag}-basic", 2), 2, "partitions after CreateTopics")
    return "2 partitions"


def op_produce(c):
    got = c.produce(f"{c.tag}-basic", [(None, f"v{i}", None) for i in range(5)], partition=0)
    expect(got, [(0, i) for i in range(5)], "(partition, offset) per record")
    return "offsets 0-4"


def op_fetch(c):
    got = [v for _, v in c.read(f"{c.tag}-basic", 0, 5)]
    expect(got, [f"v{i}" for i in range(5)], "values in order")
    return "5 records in order"


def op_commit(c):
    values, committed = c.consume_and_commit(f"{c.tag}-basic", f"{c.tag}-g", 5)
    expect(values, [f"v{i}" for i in range(5)], "values read by the group member")
    expect(committed, 5, "committed offset")
    return "committed 5"


def op_list_groups(c):
    mine = [g for g in c.list_groups() if g.startswith(f"{c.tag}-")]
    expect(mine, [f"{c.tag}-g"], "this client's groups, each once")
    return "group listed once"


def op_describe_groups(c):
    d = c.describe_group(f"{c.tag}-g")
    expect(d, {"state": "STABLE", "members": 1, "partitions": [0, 1]}, "group")
    c.close_member()
    return "Stable, 1 member with partitions 0-1"


def op_create_partitions(c):
    topic = f"{c.tag}-grow"
    c.create_topic(topic, 2)
    before = c.produce(topic, [(k, k, None) for k in KEYS])
    c.create_partitions(topic, 4)
    expect(c.partition_count(topic), 4, "partitions after CreatePartitions")
    # The records already written stay where they were, in order.
    for p in (0, 1):
        want = [(k, k) for k, (part, _) in zip(KEYS, before) if part == p]
        expect(c.read(topic, p, len(want)), want, f"records of partition {p}")
        expect(c.list_offset(topic, p, "latest"), len(want), f"end of partition {p}")
    return "2 -> 4; keyed records kept their partitions"


def op_delete_records(c):
    topic = f"{c.tag}-dr"
    c.create_topic(topic, 1)
    c.produce(topic, [(None, f"d{i}", None) for i in range(10)], partition=0)
    expect(c.delete_records(topic, 0, 4), 4, "low watermark")
    expect(c.list_offset(topic, 0, "earliest"), 4, "ListOffsets earliest")
    expect(c.read(topic, 0, 1), [("", "d4")], "first record read")
    return "low watermark 4, earliest 4"


def op_delete_groups(c):
    group = f"{c.tag}-gdel"
    c.commit_as_admin(f"{c.tag}-basic", group)
    check(group in c.list_groups(), f"{group} listed before deletion")
    c.delete_group(group)
    check(group not in c.list_groups(), f"{group} listed after deletion")
    return "deleted"


def op_alter_configs(c):
    topic = f"{c.tag}-basic"
    c.alter_configs(topic, {"retention.ms": RETENTION_MS})
    expect(c.describe_configs("TOPIC", topic)["retention.ms"], (RETENTION_MS, "DYNAMIC_TOPIC_CONFIG"), "retention.ms")
    return f"retention.ms={RETENTION_MS}"


def op_incremental_alter_configs(c):
    topic = f"{c.tag}-basic"
    c.incremental_alter_configs(topic, {"retention.bytes": RETENTION_BYTES})
    seen = c.describe_configs("TOPIC", topic)
    expect(seen["retention.bytes"], (RETENTION_BYTES, "DYNAMIC_TOPIC_CONFIG"), "retention.bytes")
    expect(seen["retention.ms"][0], RETENTION_MS, "retention.ms kept")
    return f"retention.bytes={RETENTION_BYTES}"


def op_describe_topic_configs(c):
    seen = c.describe_configs("TOPIC", f"{c.tag}-dr")
    # A topic without overrides follows the broker's --retention-ms.
    expect(seen["retention.ms"][0], BROKER_RETENTION_MS, "retention.ms")
    expect(seen["cleanup.policy"], ("delete", "DEFAULT_CONFIG"), "cleanup.policy")
    return "defaults with sources"


def op_describe_broker_configs(c):
    seen = c.describe_configs("BROKER", "0")
    expect(seen["log.retention.ms"], (BROKER_RETENTION_MS, "STATIC_BROKER_CONFIG"), "log.retention.ms")
    expect(seen["num.partitions"], ("1", "DEFAULT_CONFIG"), "num.partitions")
    return "serve flags under Kafka names"


def op_describe_cluster(c):
    d = c.describe_cluster()
    expect((d["controller"], d["nodes"]), (0, [0, 1]), "controller and nodes")
    check(d["cluster_id"], "a cluster id")
    return "2 brokers, controller 0"


def op_describe_log_dirs(c):
    seen = c.describe_log_dirs(f"{c.tag}-basic")
    expect(seen, {0: [True], 1: [False]}, "partition -> [size > 0] per reporting broker")
    return "each partition once, sizes"


def op_elect_leaders(c):
    got = c.elect_leaders(f"{c.tag}-basic", 0)
    check(got in ("ELECTION_NOT_NEEDED", "ElectionNotNeededError"), f"ELECTION_NOT_NEEDED, got {got}")
    return "ELECTION_NOT_NEEDED"


def op_list_offsets_by_time(c):
    topic = f"{c.tag}-ts"
    c.create_topic(topic, 1)
    c.produce(topic, [(None, f"t{i}", TS_BASE + 10 * i) for i in range(10)], partition=0)
    # Between the 5th record (offset 4) and the 6th (offset 5).
    expect(c.list_offset(topic, 0, TS_BASE + 45), 5, "offset for a time between records 5 and 6")
    expect(c.list_offset(topic, 0, TS_BASE), 0, "offset for the first record's time")
    return "record-granular"


def op_offset_for_leader_epoch(c):
    return c.offset_for_leader_epoch()


def op_describe_topic_partitions(c):
    grow, basic = f"{c.tag}-grow", f"{c.tag}-basic"
    page = c.describe_topic_partitions([grow, basic, f"{c.tag}-none"], 5)
    # Sorted by name: basic (2 partitions), grow (4): the limit of 5 cuts grow after 3.
    got = [(t["name"], t["error_code"], [p["partition_index"] for p in t["partitions"]]) for t in page["topics"]]
    expect(got, [(basic, 0, [0, 1]), (grow, 0, [0, 1, 2])], "first page")
    expect(page["next_cursor"], {"topic_name": grow, "partition_index": 3}, "next cursor")
    # Each partition as Metadata describes it (the leader is the owning shard's node).
    fields = ("partition_index", "leader_id", "leader_epoch", "replica_nodes", "isr_nodes")
    want = [{k: p[k] for k in fields} for p in c.metadata_partitions(basic)]
    expect([{k: p[k] for k in fields} for p in page["topics"][0]["partitions"]], want, "partitions")
    expect(page["topics"][0]["partitions"][0]["eligible_leader_replicas"], None, "no ELR")
    page = c.describe_topic_partitions([grow, basic, f"{c.tag}-none"], 5, page["next_cursor"])
    got = [(t["name"], t["error_code"], [p["partition_index"] for p in t["partitions"]]) for t in page["topics"]]
    expect(got, [(grow, 0, [3]), (f"{c.tag}-none", 3, [])], "second page")
    expect(page["next_cursor"], None, "no cursor after the last page")
    return "paged by cursor, unknown topic refused"


OPS = [
    ("CreateTopics", op_create_topic),
    ("Produce", op_produce),
    ("Fetch", op_fetch),
    ("OffsetCommit (group member)", op_commit),
    ("ListGroups", op_list_groups),
    ("DescribeGroups", op_describe_groups),
    ("CreatePartitions", op_create_partitions),
    ("DeleteRecords + ListOffsets earliest", op_delete_records),
    ("DeleteGroups", op_delete_groups),
    ("AlterConfigs", op_alter_configs),
    ("IncrementalAlterConfigs", op_incremental_alter_configs),
    ("DescribeConfigs topic", op_describe_topic_configs),
    ("DescribeConfigs broker", op_describe_broker_configs),
    ("DescribeCluster", op_describe_cluster),
    ("DescribeLogDirs", op_describe_log_dirs),
    ("ElectLeaders", op_elect_leaders),
    ("ListOffsets by timestamp", op_list_offsets_by_time),
    ("OffsetForLeaderEpoch", op_offset_for_leader_epoch),
    ("DescribeTopicPartitions", op_describe_topic_partitions),
]


def op_configs_after_restart(c):
    seen = c.describe_configs("TOPIC", f"{c.tag}-basic")
    expect((seen["retention.ms"][0], seen["retention.bytes"][0]), (RETENTION_MS, RETENTION_BYTES), "configs")
    return "both changes kept"


RESTART_OPS = [("Configs survive a restart", op_configs_after_restart)]

CLIENTS = {"confluent": Confluent, "kafka-python": KafkaPython}


def run(client, name, fn):
    line = {"client": client.name, "op": name}
    try:
        line.update(result="ok", detail=fn(client))
    except NotAvailable:
        line.update(result="n/a", detail=NA)
    except Exception as e:  # noqa: BLE001 - a failure is reported, and the next op runs
        where = traceback.extract_tb(e.__traceback__)[-1]
        line.update(result="fail", detail=f"{type(e).__name__}: {str(e)[:400]} (line {where.lineno})")
    print(json.dumps(line), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--client", choices=sorted(CLIENTS), required=True)
    ap.add_argument("--phase", choices=["main", "restart"], default="main")
    args = ap.parse_args()
    client = CLIENTS[args.client](args.bootstrap)
    for name, fn in OPS if args.phase == "main" else RESTART_OPS:
        run(client, name, fn)


if __name__ == "__main__":
    main()
