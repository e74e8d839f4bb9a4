"""A transactional producer, run by broker/tests/transactions_wire.rs.

Usage: python txn_producer.py CLIENT BOOTSTRAP TOPIC GROUP
CLIENT is `confluent` (confluent-kafka), `kafka-python` or `aiokafka`. Initializes
transactions, runs one transaction that sends records to partition 0 of TOPIC and the
offset 5 for GROUP (send_offsets_to_transaction) and commits, then one that sends the
offset 9 and aborts. Prints "done"; exits non-zero on any error.
"""
import asyncio
import sys


def confluent(bootstrap, topic, group):
    from confluent_kafka import Consumer, Producer, TopicPartition
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "confluent-txn"})
    p.init_transactions(30)
    meta = Consumer({"bootstrap.servers": bootstrap, "group.id": group}).consumer_group_metadata()
    for commit, offset in ((True, 5), (False, 9)):
        p.begin_transaction()
        for i in range(10):
            p.produce(topic, value=str(i).encode(), partition=0)
        p.flush(30)
        p.send_offsets_to_transaction([TopicPartition(topic, 0, offset)], meta, 30)
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)


def kafka_python(bootstrap, topic, group):
    from kafka import KafkaProducer
    from kafka.structs import OffsetAndMetadata, TopicPartition
    p = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kafka-python-txn")
    p.init_transactions()
    for commit, offset in ((True, 5), (False, 9)):
        p.begin_transaction()
        for i in range(10):
            p.send(topic, str(i).encode(), partition=0)
        p.send_offsets_to_transaction({TopicPartition(topic, 0): OffsetAndMetadata(offset, "", -1)}, group)
        if commit:
            p.commit_transaction()
        else:
            p.abort_transaction()
    p.close()


async def aiokafka(bootstrap, topic, group):
    from aiokafka import AIOKafkaProducer, TopicPartition
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="aiokafka-txn")
    await p.start()
    try:
        for commit, offset in ((True, 5), (False, 9)):
            await p.begin_transaction()
            for i in range(10):
                await p.send(topic, str(i).encode(), partition=0)
            await p.send_offsets_to_transaction({TopicPartition(topic, 0): offset}, group)
            if commit:
                await p.commit_transaction()
            else:
                await p.abort_transaction()
    finally:
        await p.stop()


client, bootstrap, topic, group = sys.argv[1:5]
if client == "confluent":
    confluent(bootstrap, topic, group)
elif client == "kafka-python":
    kafka_python(bootstrap, topic, group)
else:
    asyncio.run(aiokafka(bootstrap, topic, group))
print("done", flush=True)
