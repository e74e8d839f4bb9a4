"""A transactional confluent-kafka producer, run by broker/tests/transactions_wire.rs.

Usage: python txn_producer.py BOOTSTRAP TOPIC GROUP
Runs init_transactions, then one transaction that sends records to both partitions of
TOPIC and the offset 5 for GROUP (send_offsets_to_transaction) and commits, then one
that sends the offset 9 and aborts. Prints "done" and the group's committed offset of
partition 0 (from the broker); exits non-zero on any error.
"""
import sys

from confluent_kafka import Consumer, Producer, TopicPartition

bootstrap, topic, group = sys.argv[1:4]
p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "confluent-txn"})
p.init_transactions(30)
meta = Consumer({"bootstrap.servers": bootstrap, "group.id": group}).consumer_group_metadata()
for commit, offset in ((True, 5), (False, 9)):
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, value=str(i).encode(), partition=i % 2)
    p.flush(30)
    p.send_offsets_to_transaction([TopicPartition(topic, 0, offset)], meta, 30)
    if commit:
        p.commit_transaction(30)
    else:
        p.abort_transaction(30)
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
committed = c.committed([TopicPartition(topic, 0)], 30)[0].offset
print("done", committed, flush=True)
