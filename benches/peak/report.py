"""bench-peak's report: the summary (markdown) and one self-contained HTML page
with inline SVG plots (offered, accepted and rejected load, database rows/s and
backlog on one time axis). Standard library only."""

import html as esc
import statistics


def shave_series(st):
    """Per-second series of a shave/bound stage, t = seconds since the loadgen started."""
    lg = st["loadgen"]
    t0 = lg["started_unix_ms"] / 1000
    tl = lg["timeline"]
    offered = [(p["second"], p["sent_records"] / p["seconds"]) for p in tl]
    accepted = [(p["second"], p["produce_records"] / p["seconds"]) for p in tl]
    rejected = [(p["second"], p["failed_records"] / p["seconds"]) for p in tl]
    db = [(sec - int(t0), n) for sec, n in st["db_per_second"]]
    backlog = [(s["t_unix"] - t0, s["backlog"]) for s in st["samples"] if s["backlog"] is not None]
    return {"offered": offered, "accepted": accepted, "rejected": rejected, "db": db,
            "backlog": backlog, "t0": t0}


def shave_numbers(st, burst, initial_stock):
    s = shave_series(st)
    lg = st["loadgen"]
    acked = lg["totals"]["all"]["acked_records"]
    failed = lg["totals"]["all"]["failed_records"]
    rec = lg["latency"]["produce_record"]
    # The flat part: whole seconds strictly inside the drain's busy span.
    db = [n for _, n in s["db"]]
    inner = db[1:-1] if len(db) > 2 else db
    backlog = [b for _, b in s["backlog"]]
    done = next((s_["t_unix"] - s["t0"] for s_ in st["samples"]
                 if s_["db_rows"] == acked and (s_["backlog"] or 0) == 0
                 and s_["t_unix"] - s["t0"] > 1), None)
    p99s = [x["txn_p99_ms"] for x in st["samples"] if x.get("txn_p99_ms")]
    v = st["verify"]
    checks = {
        "rows == acked orders": v["orders"] == acked,
        "no duplicate order ids": v["distinct_order_ids"] == v["orders"],
        "no duplicate (partition, offset)": v["raw_duplicate_offsets"] == 0,
        "no dead letters": v["dead_letters"] == 0,
        "stock never negative": v["stock_min"] >= 0,
        "stock conserved (reserved + left == initial)":
            v["reserved"] + v["stock_left"] == initial_stock,
    }
    return {
        "offered": st["offered"], "sent": lg["totals"]["all"]["sent_records"],
        "acked": acked, "rejected": failed,
        "produce_p99_ms": rec["p99_us"] / 1000, "produce_p50_ms": rec["p50_us"] / 1000,
        "produce_max_ms": rec["max_us"] / 1000,
        "db_rows_per_s": {"mean": round(statistics.mean(inner), 1) if inner else 0,
                          "min": min(inner, default=0), "max": max(inner, default=0),
                          "stdev": round(statistics.pstdev(inner), 1) if inner else 0,
                          "seconds": len(inner)},
        "backlog_peak": max(backlog, default=0),
        "drained_at_s": round(done, 1) if done is not None else None,
        "drain_after_burst_s": round(done - burst, 1) if done is not None else None,
        "commit_p99_ms": {"median": statistics.median(p99s) if p99s else None,
                          "max": max(p99s, default=None)},
        "errors": lg.get("errors", {}),
        "verify": v, "checks": checks,
    }


def summarize(r):
    a = r["parameters"]
    lines = [f"## bench-peak: burst {a['cap'] * a['factor']} orders/s for {a['burst']} s, "
             f"drain cap {a['cap']} rows/s, {a['clients']} clients, {a['partitions']} partitions",
             "", f"load average at start {r['load_average_start']}, at end "
             f"{r['load_average_end']} (2 vCPUs shared)", ""]
    ok = True
    r["numbers"] = {}
    for name in ("shave", "bound"):
        st = r["stages"].get(name)
        if not st:
            continue
        n = shave_numbers(st, a["burst"], r["initial_stock"])
        r["numbers"][name] = n
        title = "through Weir + weir-drain" if name == "shave" else \
            f"with the bound ({', '.join(st['topic_configs'])})"
        lines += [f"### {name}: {title}", "", "| measure | value |", "| --- | --- |",
                  f"| orders scheduled / sent in the burst | {n['offered']:,} / {n['sent']:,} |",
                  f"| orders acked / rejected | {n['acked']:,} / {n['rejected']:,} |",
                  f"| produce latency per order p50 / p99 / max | {n['produce_p50_ms']:.1f} / "
                  f"{n['produce_p99_ms']:.1f} / {n['produce_max_ms']:.1f} ms |",
                  f"| database rows/s while draining: mean (min..max, stdev, seconds) | "
                  f"{n['db_rows_per_s']['mean']} ({n['db_rows_per_s']['min']}.."
                  f"{n['db_rows_per_s']['max']}, {n['db_rows_per_s']['stdev']}, "
                  f"{n['db_rows_per_s']['seconds']}) |",
                  f"| backlog peak | {n['backlog_peak']:,} records |",
                  f"| drained at / after the burst | {n['drained_at_s']} s / "
                  f"{n['drain_after_burst_s']} s |",
                  f"| database transaction p99 (per-second p99s: median / max) | "
                  f"{n['commit_p99_ms']['median']} / {n['commit_p99_ms']['max']} ms |",
                  f"| produce errors | {n['errors']} |"]
        for check, good in n["checks"].items():
            lines.append(f"| check: {check} | {'ok' if good else 'FAILED'} |")
            ok = ok and good
        v = n["verify"]
        lines += [f"| orders in the database (reserved / sold out) | {v['orders']:,} "
                  f"({v['reserved']:,} / {v['sold_out']:,}) |", ""]
    d = r["stages"].get("direct")
    if d:
        lat = d["latency_ms"]
        per_s = [x for _, x in d["db_per_second"]]
        lines += ["### direct: the same burst straight to PostgreSQL (pgbench)", "",
                  "| measure | value |", "| --- | --- |",
                  f"| orders offered | {d['offered']:,} |",
                  f"| committed (of which later than {a['late_ms']} ms) | {d['committed']:,} "
                  f"({d['late']:,}) |",
                  f"| skipped (already {a['late_ms']} ms behind schedule: not sent) | "
                  f"{d['skipped']:,} |",
                  f"| failed | {d['failed']:,} |",
                  f"| never sent before the end of the run | {d['never_sent']:,} |",
                  f"| latency from scheduled start, p50 / p99 / max | {lat.get('p50')} / "
                  f"{lat.get('p99')} / {lat.get('max')} ms |",
                  f"| database rows/s: mean / max | "
                  f"{round(statistics.mean(per_s), 1) if per_s else 0} / {max(per_s, default=0)} |",
                  f"| pgbench exit status | {d['exit']} |",
                  f"| check: stock never negative | {'ok' if d['verify']['stock_min'] >= 0 else 'FAILED'} |",
                  ""]
        ok = ok and d["verify"]["stock_min"] >= 0
    u = r["stages"].get("unpaid")
    if u:
        lines += [f"### unpaid: payment deadlines delayed {u['delay_s']} s (delayed delivery)", "",
                  "| measure | value |", "| --- | --- |",
                  f"| deadlines produced (in {u['produce_s']} s) / delivered / early | "
                  f"{u['deadlines']:,} / {u['delivered']:,} / {u['early']} |",
                  f"| first / last delivered after the first produce | {u['first_after_s']} s / "
                  f"{u['last_after_s']} s |",
                  f"| paid / expired (stock returned) / still reserved | {u['paid']:,} / "
                  f"{u['expired']:,} / {u['still_reserved']} |",
                  f"| stock left / min per item | {u['stock_left']:,} / {u['stock_min']} |"]
        for check, good in u["checks"].items():
            lines.append(f"| check: {check} | {'ok' if good else 'FAILED'} |")
            ok = ok and good
        lines.append("")
    elif a.get("unpaid", 0) == 0:
        lines += ["Unpaid-order timeout: not run (`--unpaid SECONDS`; needs delayed delivery).", ""]
    return "\n".join(lines), ok


COLORS = {"offered": "#888", "accepted": "#1f77b4", "rejected": "#d62728", "db": "#2ca02c",
          "backlog": "#ff7f0e"}


def svg_plot(series, right, title, width=900, height=320):
    """Lines on one time axis; `right` names the series on the right-hand axis."""
    series = {k: [(t, y) for t, y in s if t >= 0] for k, s in series.items()}
    ml, mr, mt, mb = 60, 70, 30, 40
    w, h = width - ml - mr, height - mt - mb
    pts = [p for s in series.values() for p in s]
    tmax = max((t for t, _ in pts), default=1) or 1
    left_max = max((y for k, s in series.items() if k != right for _, y in s), default=1) or 1
    right_max = max((y for _, y in series.get(right, [])), default=1) or 1
    x = lambda t: ml + w * t / tmax  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<text x="{ml}" y="18" font-size="13">{esc.escape(title)}</text>',
           f'<rect x="{ml}" y="{mt}" width="{w}" height="{h}" fill="none" stroke="#ccc"/>']
    for i in range(6):
        y = mt + h - h * i / 5
        out.append(f'<line x1="{ml}" x2="{ml + w}" y1="{y}" y2="{y}" stroke="#eee"/>')
        out.append(f'<text x="{ml - 4}" y="{y + 4}" text-anchor="end">{left_max * i / 5:,.0f}</text>')
        if right in series:
            out.append(f'<text x="{ml + w + 4}" y="{y + 4}" fill="{COLORS["backlog"]}">'
                       f'{right_max * i / 5:,.0f}</text>')
    step = max(1, int(tmax / 10))
    for t in range(0, int(tmax) + 1, step):
        out.append(f'<text x="{x(t)}" y="{mt + h + 14}" text-anchor="middle">{t}</text>')
    out.append(f'<text x="{ml + w / 2}" y="{height - 6}" text-anchor="middle">seconds</text>')
    out.append(f'<text x="12" y="{mt + h / 2}" transform="rotate(-90 12 {mt + h / 2})" '
               f'text-anchor="middle">records/s</text>')
    if right in series:
        out.append(f'<text x="{width - 8}" y="{mt + h / 2}" transform="rotate(90 {width - 8} '
                   f'{mt + h / 2})" text-anchor="middle">{esc.escape(right)} (records)</text>')
    for k, s in series.items():
        top = right_max if k == right else left_max
        d = " ".join(f"{x(t):.1f},{mt + h - h * y / top:.1f}" for t, y in s)
        out.append(f'<polyline fill="none" stroke="{COLORS.get(k, "#000")}" stroke-width="1.6" '
                   f'points="{d}"/>')
    lx = ml + 10
    for k in series:
        out.append(f'<rect x="{lx}" y="{mt + 6}" width="10" height="10" fill="{COLORS.get(k)}"/>'
                   f'<text x="{lx + 14}" y="{mt + 15}">{esc.escape(LABELS.get(k, k))}</text>')
        lx += 150
    out.append("</svg>")
    return "\n".join(out)


LABELS = {"offered": "offered (sent/s)", "accepted": "accepted (acked/s)",
          "rejected": "rejected/s", "db": "database rows/s", "backlog": "backlog"}


def html(r, summary):
    parts = ["<!doctype html><meta charset=utf-8><title>bench-peak</title>",
             "<style>body{font-family:sans-serif;max-width:960px;margin:1em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>",
             "<h1>Weir flash-sale scenario (bench-peak)</h1>"]
    for name in ("shave", "bound"):
        st = r["stages"].get(name)
        if st:
            s = shave_series(st)
            series = {k: s[k] for k in ("offered", "accepted", "db", "backlog")}
            if name == "bound":
                series["rejected"] = s["rejected"]
            parts.append(svg_plot(series, "backlog", f"{name}: offered, accepted, database rows/s "
                                                     "and backlog"))
    d = r["stages"].get("direct")
    if d:
        t0 = int(d["started_unix"])
        series = {"db": [(t - t0, n) for t, n in d["db_per_second"]],
                  "offered": [(0, d["offered"] / r["parameters"]["burst"]),
                              (r["parameters"]["burst"], d["offered"] / r["parameters"]["burst"])]}
        parts.append(svg_plot(series, "backlog", "direct (pgbench): offered and database rows/s"))
    parts.append("<pre>" + esc.escape(summary) + "</pre>")
    return "\n".join(parts)
