"""An idempotent producer, run by broker/tests/idempotence.rs.

Usage: python idem_producer.py CLIENT BOOTSTRAP TOPIC COUNT
CLIENT is `kafka-python` (its default producer: idempotence is on by default in 3.x),
`confluent` (confluent-kafka with enable.idempotence=true, otherwise default) or
`aiokafka` (AIOKafkaProducer with enable_idempotence=True, otherwise default).
Sends the values "0".."COUNT-1" to partition 0 in order, prints "mark" each time
another quarter of them is handed to the client (the test may kill the broker then),
waits for every delivery and prints "sent COUNT errors E". Exits 0 when E is 0.
"""
import sys


def mark(i, count):
    if i > 0 and i % (count // 4) == 0 and i < count:
        print("mark", flush=True)


def kafka_python(bootstrap, topic, count):
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=bootstrap)
    assert p.config["enable_idempotence"], "kafka-python's default producer is idempotent"
    futures = []
    for i in range(count):
        futures.append(p.send(topic, str(i).encode(), partition=0))
        mark(i, count)
    p.flush()
    errors = 0
    for f in futures:
        try:
            f.get(timeout=120)
        except Exception as e:  # noqa: BLE001 - counted and reported
            errors += 1
            if errors <= 3:
                print("error", repr(e), file=sys.stderr)
    p.close()
    return errors


def confluent(bootstrap, topic, count):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    errors = []
    for i in range(count):
        while True:
            try:
                p.produce(topic, str(i).encode(), partition=0,
                          on_delivery=lambda e, m: e and errors.append(e))
                break
            except BufferError:
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
        mark(i, count)
    left = p.flush(120)
    for e in errors[:3]:
        print("error", e, file=sys.stderr)
    return len(errors) + left


def aiokafka(bootstrap, topic, count):
    import asyncio

    from aiokafka import AIOKafkaProducer

    async def run():
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
        await p.start()
        errors = 0
        try:
            futures = []
            for i in range(count):
                futures.append(await p.send(topic, str(i).encode(), partition=0))
                mark(i, count)
            await p.flush()
            for f in futures:
                try:
                    await f
                except Exception as e:  # noqa: BLE001 - counted and reported
                    errors += 1
                    if errors <= 3:
                        print("error", repr(e), file=sys.stderr)
        finally:
            await p.stop()
        return errors

    return asyncio.run(run())


def main():
    client, bootstrap, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    clients = {"kafka-python": kafka_python, "confluent": confluent, "aiokafka": aiokafka}
    errors = clients[client](bootstrap, topic, count)
    print(f"sent {count} errors {errors}", flush=True)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
