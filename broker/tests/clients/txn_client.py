"""Transactions with real Python clients, run by broker/tests/transactions.rs.

Usage: python txn_client.py SCENARIO BOOTSTRAP TOPIC [ARGS...]

Scenarios (each checks what it reads back, in offset order, and prints "ok"):
  confluent-commit-abort T   commit, abort, commit; an open transaction holds
                             read_committed readers at the last stable offset
  confluent-ctp IN OUT       consume-transform-produce over 3 partitions with
                             send_offsets_to_transaction, one round aborted
  confluent-zombie T         a second instance fences the first
  confluent-crash T N        N transactions over 2 partitions; prints "mark"
                             mid-transaction and just before a commit (the
                             test kills and restarts the broker then); every
                             transaction is then all there or not at all
  aiokafka-commit-abort T    commit and abort with aiokafka
Every client runs in its default configuration plus transactional.id.
"""
import asyncio
import json
import sys
import time
import uuid

IDLE_S = 2.0
READ_TIMEOUT_S = 60.0


def fail(message):
    print(message, file=sys.stderr, flush=True)
    sys.exit(1)


def expect(what, got, want):
    if got != want:
        fail(f"{what}: read {len(got)} values {got[:12]}..., want {len(want)} {want[:12]}...")


# ---------------------------------------------------------------- confluent-kafka

def read(bootstrap, topic, partition, isolation, at_least):
    """Values of one partition from offset 0 in offset order: at least
    `at_least`, then until nothing more arrives for IDLE_S."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"weir-read-{uuid.uuid4()}",
                  "enable.auto.commit": False, "isolation.level": isolation})
    c.assign([TopicPartition(topic, partition, 0)])
    out = []
    deadline = time.time() + READ_TIMEOUT_S
    last = time.time()
    while time.time() < deadline:
        msgs = c.consume(num_messages=10000, timeout=0.5)
        for m in msgs:
            if m.error():
                fail(f"consume error {m.error()}")
            out.append(m.value().decode())
        if msgs:
            last = time.time()
        elif len(out) >= at_least and time.time() - last > IDLE_S:
            break
    c.close()
    return out


def txn_producer(bootstrap, txn_id):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id})
    p.init_transactions(60)
    return p


def send_txn(p, topic, values, commit, partition=0):
    p.begin_transaction()
    for v in values:
        p.produce(topic, v.encode(), partition=partition)
    if commit:
        p.commit_transaction(60)
    else:
        # librdkafka purges what it has not sent yet when aborting: flush
        # first so the aborted records are on the broker, hidden by markers.
        p.flush(30)
        p.abort_transaction(60)


def confluent_commit_abort(bootstrap, topic):
    p = txn_producer(bootstrap, "weir-commit-abort")
    c1 = [f"c{i}" for i in range(10)]
    a = [f"a{i}" for i in range(10)]
    c2 = [f"c{i}" for i in range(10, 20)]
    send_txn(p, topic, c1, True)
    send_txn(p, topic, a, False)
    send_txn(p, topic, c2, True)
    expect("read_committed after commit/abort/commit", read(bootstrap, topic, 0, "read_committed", 20), c1 + c2)
    expect("read_uncommitted after commit/abort/commit",
           read(bootstrap, topic, 0, "read_uncommitted", 30), c1 + a + c2)
    # An open transaction: read_committed readers stop at its first offset.
    o = [f"o{i}" for i in range(5)]
    p.begin_transaction()
    for v in o:
        p.produce(topic, v.encode(), partition=0)
    p.flush(30)
    expect("read_committed with a transaction open", read(bootstrap, topic, 0, "read_committed", 20), c1 + c2)
    expect("read_uncommitted with a transaction open",
           read(bootstrap, topic, 0, "read_uncommitted", 35), c1 + a + c2 + o)
    p.commit_transaction(60)
    expect("read_committed after the open one commits",
           read(bootstrap, topic, 0, "read_committed", 25), c1 + c2 + o)
    print("ok", flush=True)


def produce_input(bootstrap, topic, partitions, per_partition):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap})
    for part in range(partitions):
        for i in range(per_partition):
            p.produce(topic, f"p{part}-{i}".encode(), partition=part)
    if p.flush(60) != 0:
        fail("input not delivered")


def confluent_ctp(bootstrap, topic_in, topic_out):
    """Read IN (3 partitions) in a group, write each value + "-out" to the same
    partition of OUT and commit the consumed offsets in the same transaction.
    The second round is aborted and redone from the committed offsets."""
    from confluent_kafka import Consumer, TopicPartition
    partitions, per_partition = 3, 200
    produce_input(bootstrap, topic_in, partitions, per_partition)
    group = "weir-ctp"
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    c.subscribe([topic_in])
    p = txn_producer(bootstrap, "weir-ctp")
    done, rounds, aborted = 0, 0, 0
    deadline = time.time() + 120
    while done < partitions * per_partition:
        if time.time() > deadline:
            fail(f"consume-transform-produce stalled at {done}")
        msgs = [m for m in c.consume(num_messages=70, timeout=1.0) if not m.error()]
        if not msgs:
            continue
        rounds += 1
        p.begin_transaction()
        for m in msgs:
            p.produce(topic_out, m.value() + b"-out", partition=m.partition())
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
        if rounds == 2:
            p.flush(30)  # written, then aborted (see send_txn)
            p.abort_transaction(60)
            aborted += len(msgs)
            committed = c.committed(c.assignment(), timeout=30)
            for tp in committed:
                c.seek(TopicPartition(tp.topic, tp.partition, max(tp.offset, 0)))
            continue
        p.commit_transaction(60)
        done += len(msgs)
    committed = {tp.partition: tp.offset for tp in c.committed(
        [TopicPartition(topic_in, i) for i in range(partitions)], timeout=30)}
    c.close()
    if committed != {i: per_partition for i in range(partitions)}:
        fail(f"committed offsets {committed}, want {per_partition} on each partition")
    if aborted == 0:
        fail("no round was aborted")
    for part in range(partitions):
        want = [f"p{part}-{i}-out" for i in range(per_partition)]
        expect(f"OUT partition {part} read_committed", read(bootstrap, topic_out, part, "read_committed", per_partition), want)
    total = sum(len(read(bootstrap, topic_out, part, "read_uncommitted", per_partition)) for part in range(partitions))
    if total != partitions * per_partition + aborted:
        fail(f"read_uncommitted saw {total}, want {partitions * per_partition} committed + {aborted} aborted")
    print(f"ok rounds {rounds} aborted {aborted}", flush=True)


def confluent_zombie(bootstrap, topic):
    from confluent_kafka import KafkaException
    p1 = txn_producer(bootstrap, "weir-zombie")
    p1.begin_transaction()
    p1.produce(topic, b"z1", partition=0)
    p1.flush(30)
    p2 = txn_producer(bootstrap, "weir-zombie")  # fences p1 and aborts its transaction
    send_txn(p2, topic, ["z2"], True)
    try:
        p1.produce(topic, b"z1b", partition=0)
        p1.commit_transaction(30)
        fail("the fenced producer committed")
    except KafkaException as e:
        err = e.args[0]
        if not (err.fatal() or "fenced" in err.str().lower() or "epoch" in err.str().lower()):
            fail(f"the fenced producer failed, but not as fenced: {err}")
        print(f"zombie refused: {err.name()}", flush=True)
    expect("read_committed after fencing", read(bootstrap, topic, 0, "read_committed", 1), ["z2"])
    expect("read_uncommitted after fencing", read(bootstrap, topic, 0, "read_uncommitted", 2), ["z1", "z2"])
    print("ok", flush=True)


def confluent_crash(bootstrap, topic, count):
    """`count` transactions of 2 x 50 records over partitions 0 and 1. A
    failure (the broker was killed) abandons that transaction and starts a new
    producer instance, as an application would."""
    per_txn = 100
    kill_mid = count // 2
    kill_commit = (3 * count) // 4
    committed, failed = [], []
    p = None
    for n in range(count):
        try:
            if p is None:
                p = reconnect(bootstrap)
            p.begin_transaction()
            for i in range(per_txn):
                p.produce(topic, f"t{n}-{i}".encode(), partition=i % 2)
                if n == kill_mid and i == per_txn // 2:
                    p.flush(30)
                    print("mark", flush=True)
                    time.sleep(0.5)
            if n == kill_commit:
                p.flush(30)
                print("mark", flush=True)
            p.commit_transaction(60)
            committed.append(n)
        except Exception as e:  # noqa: BLE001 - any failure abandons the transaction
            failed.append(n)
            print(f"transaction {n} failed: {e}", file=sys.stderr, flush=True)
            p = None
    check_all_or_nothing(bootstrap, topic, per_txn, committed, failed)
    print(json.dumps({"ok": True, "committed": len(committed), "failed": failed}), flush=True)


def reconnect(bootstrap):
    deadline = time.time() + 60
    while True:
        try:
            return txn_producer(bootstrap, "weir-crash")
        except Exception as e:  # noqa: BLE001 - the broker may still be restarting
            if time.time() > deadline:
                raise
            print(f"init_transactions: {e}", file=sys.stderr, flush=True)
            time.sleep(0.5)


def check_all_or_nothing(bootstrap, topic, per_txn, committed, failed):
    seen = {}
    for part in (0, 1):
        values = read(bootstrap, topic, part, "read_committed", len(committed) * per_txn // 2)
        for v in values:
            n, i = (int(x) for x in v[1:].split("-"))
            if i % 2 != part:
                fail(f"{v} read from partition {part}")
            got = seen.setdefault(n, {0: [], 1: []})[part]
            got.append(i)
    for n, parts in seen.items():
        for part in (0, 1):
            want = list(range(part, per_txn, 2))
            if parts[part] != want:
                fail(f"transaction {n} partition {part} is partly visible or out of order: {parts[part][:10]}...")
    missing = [n for n in committed if n not in seen]
    if missing:
        fail(f"committed transactions missing: {missing}")
    unexpected = [n for n in seen if n not in committed and n not in failed]
    if unexpected:
        fail(f"transactions visible that were never sent: {unexpected}")


# ---------------------------------------------------------------- aiokafka

async def aio_read(bootstrap, topic, isolation, at_least):
    from aiokafka import AIOKafkaConsumer, TopicPartition
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation,
                         enable_auto_commit=False, auto_offset_reset="earliest")
    await c.start()
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    await c.seek_to_beginning(tp)
    out = []
    deadline = time.time() + READ_TIMEOUT_S
    last = time.time()
    while time.time() < deadline:
        batch = await c.getmany(tp, timeout_ms=500)
        got = [m.value.decode() for m in batch.get(tp, [])]
        out += got
        if got:
            last = time.time()
        elif len(out) >= at_least and time.time() - last > IDLE_S:
            break
    await c.stop()
    return out


async def aiokafka_commit_abort(bootstrap, topic):
    from aiokafka import AIOKafkaProducer
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="weir-aio")
    await p.start()
    c1 = [f"c{i}" for i in range(10)]
    a = [f"a{i}" for i in range(10)]
    c2 = [f"c{i}" for i in range(10, 20)]
    async with p.transaction():
        for v in c1:
            await p.send(topic, v.encode(), partition=0)
    await p.begin_transaction()
    for v in a:
        await p.send(topic, v.encode(), partition=0)
    await p.abort_transaction()
    async with p.transaction():
        for v in c2:
            await p.send(topic, v.encode(), partition=0)
    await p.stop()
    expect("aiokafka read_committed", await aio_read(bootstrap, topic, "read_committed", 20), c1 + c2)
    expect("aiokafka read_uncommitted", await aio_read(bootstrap, topic, "read_uncommitted", 30), c1 + a + c2)
    print("ok", flush=True)


def main():
    scenario, bootstrap, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if scenario == "confluent-commit-abort":
        confluent_commit_abort(bootstrap, args[0])
    elif scenario == "confluent-ctp":
        confluent_ctp(bootstrap, args[0], args[1])
    elif scenario == "confluent-zombie":
        confluent_zombie(bootstrap, args[0])
    elif scenario == "confluent-crash":
        confluent_crash(bootstrap, args[0], int(args[1]))
    elif scenario == "aiokafka-commit-abort":
        asyncio.run(aiokafka_commit_abort(bootstrap, args[0]))
    else:
        fail(f"unknown scenario {scenario}")


if __name__ == "__main__":
    main()
