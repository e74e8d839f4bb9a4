# Read a topic back with a real client whose fetch max is small (1 MiB for the whole fetch
# and per partition), and print one JSON line: for each partition, the sequence numbers of
# the records read, in the order the client delivered them.
#
# Record values are "P:S" padded with 'x' (written by the test with its own client): P the
# partition, S the record's number within it. The caller checks each partition's sequence
# against 0..N in order, never as a sorted set.
#
# usage: small_fetch.py CLIENT BOOTSTRAP TOPIC EXPECTED_RECORDS
#   CLIENT: confluent | kafka-python | aiokafka
import asyncio
import json
import sys
import time

client, boot, topic, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
FETCH_MAX = 1048576
DEADLINE_S = 120
got = {}
count = 0


def take(value):
    global count
    p, s = value.split(b"x", 1)[0].decode().split(":")
    got.setdefault(p, []).append(int(s))
    count += 1


started = time.time()
if client == "confluent":
    from confluent_kafka import Consumer

    c = Consumer({
        "bootstrap.servers": boot,
        "group.id": "small-fetch-confluent",
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": FETCH_MAX,
        "max.partition.fetch.bytes": FETCH_MAX,
    })
    c.subscribe([topic])
    while count < expected and time.time() - started < DEADLINE_S:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            print("error:", m.error(), file=sys.stderr)
            continue
        take(m.value())
    c.close()
elif client == "kafka-python":
    from kafka import KafkaConsumer

    c = KafkaConsumer(
        topic,
        bootstrap_servers=boot,
        group_id="small-fetch-kafka-python",
        auto_offset_reset="earliest",
        fetch_max_bytes=FETCH_MAX,
        max_partition_fetch_bytes=FETCH_MAX,
        consumer_timeout_ms=20000,
    )
    for m in c:
        take(m.value)
        if count >= expected or time.time() - started > DEADLINE_S:
            break
    c.close()
elif client == "aiokafka":
    from aiokafka import AIOKafkaConsumer

    async def main():
        c = AIOKafkaConsumer(
            topic,
            bootstrap_servers=boot,
            group_id="small-fetch-aiokafka",
            auto_offset_reset="earliest",
            fetch_max_bytes=FETCH_MAX,
            max_partition_fetch_bytes=FETCH_MAX,
        )
        await c.start()
        try:
            while count < expected and time.time() - started < DEADLINE_S:
                batch = await c.getmany(timeout_ms=1000)
                for messages in batch.values():
                    for m in messages:
                        take(m.value)
        finally:
            await c.stop()

    asyncio.run(main())
else:
    sys.exit(f"unknown client {client}")

print(json.dumps({"seconds": round(time.time() - started, 2), "partitions": got}))
