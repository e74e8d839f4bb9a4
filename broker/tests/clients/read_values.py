"""Print every value of TOPIC partition 0, in offset order, one per line.

Usage: python read_values.py BOOTSTRAP TOPIC
Reads from offset 0 to the high watermark with confluent-kafka (read_uncommitted).
"""
import sys
import time

from confluent_kafka import Consumer, TopicPartition


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "weir-read-values",
                  "enable.auto.commit": False})
    _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
    c.assign([TopicPartition(topic, 0, 0)])
    out, offset = [], 0
    deadline = time.time() + 60
    while offset < high:
        if time.time() > deadline:
            raise SystemExit(f"read stalled at offset {offset} of {high}")
        for m in c.consume(num_messages=10000, timeout=5):
            if m.error():
                raise SystemExit(f"consume error {m.error()}")
            out.append(m.value().decode())
            offset = m.offset() + 1
    c.close()
    sys.stdout.write("\n".join(out) + ("\n" if out else ""))


if __name__ == "__main__":
    main()
