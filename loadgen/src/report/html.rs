//! A self-contained HTML report: no scripts, no external assets, inline SVG
//! plots of throughput over time and of the latency percentile spectrum.
//! Pure string building from a finished `Report`; main thread.

use std::fmt::Write as _;

use super::plot::{self, Chart, Series, XAxis, PALETTE};
use super::Report;

pub fn render(report: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>weir-loadgen {mode}</title>\
         <style>{STYLE}</style></head><body><h1>weir-loadgen {mode}: {topic}</h1>",
        mode = report.mode,
        topic = escape(&report.parameters.topic),
    );
    if report.interrupted {
        let _ = write!(
            s,
            "<p class=\"warn\">Interrupted by {}: the figures cover the run until then.</p>",
            report.interrupted_by.unwrap_or("a signal")
        );
    }
    if let Some(error) = &report.failed_with {
        let _ = write!(
            s,
            "<p class=\"warn\">Failed ({}): the figures cover the run until then.</p>",
            escape(error)
        );
    }
    let _ = write!(
        s,
        "<p>{} | {} cores | kernel {} | {:.1} s measured</p>",
        escape(&report.machine.cpu_model),
        report.machine.cores,
        escape(&report.machine.kernel),
        report.throughput.measured_seconds
    );
    s.push_str(&summary_table(report));
    s.push_str("<h2>Throughput over time</h2>");
    s.push_str(&throughput_svg(report));
    s.push_str("<h2>Latency percentile spectrum</h2>");
    s.push_str(&spectrum_svg(report));
    let params = serde_json::to_string_pretty(&report.parameters).unwrap_or_default();
    let _ = write!(
        s,
        "<h2>Parameters</h2><pre>{}</pre></body></html>",
        escape(&params)
    );
    s
}

/// The page style, shared with the comparison page.
pub const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:62em}\
    table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}\
    th:first-child,td:first-child{text-align:left}.warn{color:#b00;font-weight:bold}\
    .note{color:#555;font-size:90%}";

fn summary_table(report: &Report) -> String {
    let t = &report.throughput;
    let mut s = String::from(
        "<table><tr><th></th><th>records/s</th><th>payload MB/s</th><th>wire MB/s</th>\
         <th>payload/wire</th></tr>",
    );
    let rows = [
        ("produce (acked)", report.parameters.producers > 0, &t.produce),
        ("consume", report.parameters.consumers > 0, &t.consume),
    ];
    for (name, _, r) in rows.iter().filter(|r| r.1) {
        let _ = write!(
            s,
            "<tr><td>{name}</td><td>{:.0}</td><td>{:.1}</td><td>{:.1}</td><td>{:.2}</td></tr>",
            r.records_per_s, r.payload_mb_per_s, r.wire_mb_per_s, r.compression_ratio
        );
    }
    s.push_str(
        "</table><p class=\"note\">payload: record key + value bytes (uncompressed); wire: \
         RecordBatch bytes as sent or fetched (after compression, headers included); \
         MB = 10<sup>6</sup> bytes.</p>",
    );
    s.push_str("<table><tr><th>latency (ms)</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th><th>count</th></tr>");
    let rows = [
        ("produce (batch)", &report.latency.produce),
        ("produce (record)", &report.latency.produce_record),
        ("end-to-end", &report.latency.e2e),
    ];
    for (name, p) in rows {
        let ms = |us: u64| us as f64 / 1e3;
        let _ = write!(
            s,
            "<tr><td>{name}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td></tr>",
            ms(p.p50_us), ms(p.p90_us), ms(p.p99_us), ms(p.p999_us), ms(p.p9999_us), ms(p.max_us), p.count
        );
    }
    let _ = write!(
        s,
        "</table><p>loadgen {:.2} cpu-s per GB moved (wire); errors: {}</p>",
        report.cpu.cpu_seconds_per_gb,
        report.errors.values().sum::<u64>()
    );
    s
}

fn throughput_svg(report: &Report) -> String {
    // Whole seconds only: the last, partial one would read as a fall.
    let whole: Vec<_> = report
        .timeline
        .iter()
        .filter(|p| p.seconds >= WHOLE_SECOND)
        .collect();
    let mut series = Vec::new();
    let mut add = |label: &str, color, dashed, f: &dyn Fn(&super::TimelinePoint) -> f64| {
        series.push(Series {
            label: label.to_string(),
            color,
            dashed,
            points: whole.iter().map(|p| (p.second as f64, f(p))).collect(),
        });
    };
    if report.parameters.producers > 0 {
        add("produced, payload", PALETTE[0], false, &|p| p.produce_payload_mb);
        add("produced, wire", PALETTE[0], true, &|p| p.produce_wire_mb);
    }
    if report.parameters.consumers > 0 {
        add("consumed, payload", PALETTE[2], false, &|p| p.consume_payload_mb);
        add("consumed, wire", PALETTE[2], true, &|p| p.consume_wire_mb);
    }
    plot::render(&Chart {
        x_axis: XAxis::Linear,
        x_label: "seconds since the start (whole seconds only)",
        y_label: "MB/s (10^6 B/s)",
        series,
    })
}

fn spectrum_svg(report: &Report) -> String {
    let l = &report.latency;
    let series = [
        ("produce, per batch", &l.produce_spectrum, PALETTE[0]),
        ("produce, per record", &l.produce_record_spectrum, PALETTE[3]),
        ("end-to-end", &l.e2e_spectrum, PALETTE[4]),
    ]
    .into_iter()
    .filter(|(_, pts, _)| !pts.is_empty())
    .map(|(label, pts, color)| Series {
        label: label.to_string(),
        color,
        dashed: false,
        points: pts.iter().map(|&(pct, us)| (pct, us as f64 / 1e3)).collect(),
    })
    .collect();
    plot::render(&Chart {
        x_axis: XAxis::Nines,
        x_label: "percentile",
        y_label: "latency (ms)",
        series,
    })
}

/// A timeline point covering at least this much of its second is whole.
pub const WHOLE_SECOND: f64 = 0.999;

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_markup_when_escaping_should_neutralise_it() {
        assert_eq!(escape("<a&\">"), "&lt;a&amp;&quot;&gt;");
    }
}
