"""bench-peak's unpaid-order stage (--unpaid SECONDS): every reserved order of
the shave stage gets a payment deadline, a record on topic `order-deadlines`
whose topic config `delivery.delay.ms` holds it back for SECONDS (Weir's
delayed delivery, docs/queues.md). Half the orders are paid at once; a
consumer takes each deadline as it becomes visible and, in one database
transaction, expires the order if it is still unpaid and returns its unit of
stock. Checked: no deadline is delivered early, every unpaid order expired,
paid ones untouched, stock never negative and conserved.

Needs confluent-kafka (the venv of `make test-deps`)."""

import time


def run(pg, weir, db, seconds, initial_stock):
    from confluent_kafka import Consumer, Producer  # the venv's

    delay_ms = seconds * 1000
    weir.topic("order-deadlines", 4, [f"delivery.delay.ms={delay_ms}"])
    ids = pg.sql(db, "SELECT order_id FROM orders WHERE status = 'reserved' ORDER BY order_id")
    ids = ids.split("\n") if ids else []
    # Every other order is paid before its deadline.
    pg.sql(db, "UPDATE orders SET status = 'paid' WHERE status = 'reserved' "
               "AND abs(hashtext(order_id)) % 2 = 0")
    paid = int(pg.sql(db, "SELECT count(*) FROM orders WHERE status = 'paid'"))
    p = Producer({"bootstrap.servers": weir.boot, "linger.ms": 20})
    sent_at = time.time()
    for oid in ids:
        p.produce("order-deadlines", key=oid.encode(), value=b"")
        p.poll(0)
    p.flush(60)
    produced_s = time.time() - sent_at
    c = Consumer({"bootstrap.servers": weir.boot, "group.id": "deadlines",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(["order-deadlines"])
    got, early, first_at, last_at = 0, 0, None, None
    deadline = time.time() + seconds + 120
    while got < len(ids) and time.time() < deadline:
        msgs = c.consume(5000, 1.0)
        batch = []
        for m in msgs:
            if m.error():
                continue
            now = time.time()
            first_at = first_at or now
            last_at = now
            # The record's timestamp is its produce time: it must not show up before +delay.
            if now * 1000 < m.timestamp()[1] + delay_ms - 5:
                early += 1
            batch.append(m.key().decode())
        if batch:
            expire(pg, db, batch)
            c.commit(asynchronous=False)
            got += len(batch)
    c.close()
    q = lambda s: int(pg.sql(db, s) or 0)  # noqa: E731
    v = {
        "delay_s": seconds, "deadlines": len(ids), "delivered": got, "early": early,
        "produce_s": round(produced_s, 2),
        "first_after_s": round(first_at - sent_at, 2) if first_at else None,
        "last_after_s": round(last_at - sent_at, 2) if last_at else None,
        "paid": paid, "expired": q("SELECT count(*) FROM orders WHERE status = 'expired'"),
        "still_reserved": q("SELECT count(*) FROM orders WHERE status = 'reserved'"),
        "paid_after": q("SELECT count(*) FROM orders WHERE status = 'paid'"),
        "stock_left": q("SELECT sum(qty) FROM stock"),
        "stock_min": q("SELECT min(qty) FROM stock"),
    }
    v["checks"] = {
        "every deadline delivered": got == len(ids),
        "no deadline delivered early": early == 0,
        "every unpaid order expired": v["still_reserved"] == 0 and v["expired"] == len(ids) - paid,
        "paid orders untouched": v["paid_after"] == paid,
        "stock never negative": v["stock_min"] >= 0,
        "stock conserved (paid + left == initial)": paid + v["stock_left"] == initial_stock,
    }
    return v


def expire(pg, db, order_ids):
    """One transaction: expire the still-unpaid orders, return their stock."""
    arr = ",".join("'" + o.replace("'", "''") + "'" for o in order_ids)
    pg.sql(db, f"""
WITH exp AS (UPDATE orders SET status = 'expired'
             WHERE order_id = ANY (ARRAY[{arr}]) AND status = 'reserved' RETURNING item),
     n AS (SELECT item, count(*) AS k FROM exp GROUP BY item)
UPDATE stock s SET qty = s.qty + n.k FROM n WHERE s.item = n.item""")
