"""One producer in its client's default configuration, run by broker/tests/ordering.rs.

Reads PLAN (one line "partition size" per record, in send order) and sends record i, whose
value is b"i:" padded with b"x" to its size, to its partition, as fast as the client takes
them (so many requests are in flight), then flushes. The broker must store each partition's
records in send order: the test reads them back and checks the numbers before ':'.

--client confluent: confluent-kafka (librdkafka) with no settings but bootstrap.servers
(and acks when --acks is given). --client kafka-python: kafka-python with its defaults except
enable_idempotence=False: kafka-python 3.x turns idempotence on by default and Weir has no
InitProducerId yet (another issue adds idempotence), so its default producer fails today.

Exits 0 when every record was acknowledged (with acks=0: handed to the network), 1 with the
first errors on stderr otherwise.
"""
import argparse
import sys


def read_plan(path):
    with open(path, encoding="ascii") as f:
        return [tuple(int(x) for x in line.split()) for line in f if line.strip()]


def value(seq, size):
    return (str(seq).encode() + b":").ljust(size, b"x")


def run_confluent(args, plan):
    from confluent_kafka import Producer

    config = {"bootstrap.servers": args.bootstrap}
    if args.acks is not None:
        config["acks"] = args.acks
    producer = Producer(config)
    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(str(err))

    for seq, (partition, size) in enumerate(plan):
        while True:
            try:
                producer.produce(args.topic, value=value(seq, size), partition=partition,
                                 on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    left = producer.flush(120)
    if left:
        errors.append(f"{left} records still queued after flush")
    return errors


def run_kafka_python(args, plan):
    from kafka import KafkaProducer

    config = {"bootstrap_servers": args.bootstrap, "enable_idempotence": False}
    if args.acks is not None:
        config["acks"] = args.acks if args.acks == "all" else int(args.acks)
    producer = KafkaProducer(**config)
    futures = [
        producer.send(args.topic, value=value(seq, size), partition=partition)
        for seq, (partition, size) in enumerate(plan)
    ]
    producer.flush(120)
    errors = []
    for f in futures:
        try:
            f.get(timeout=0)
        except Exception as e:  # noqa: BLE001 - report whatever the client raised
            errors.append(repr(e))
    producer.close(10)
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", choices=["confluent", "kafka-python"], required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--acks", choices=["0", "1", "all"], default=None,
                    help="default: the client's own default")
    args = ap.parse_args()
    plan = read_plan(args.plan)
    run = run_confluent if args.client == "confluent" else run_kafka_python
    errors = run(args, plan)
    for e in errors[:10]:
        print("error", e, file=sys.stderr)
    print(f"sent {len(plan)} records, {len(errors)} errors", file=sys.stderr)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
