//! A self-contained HTML report: no scripts, no external assets, inline SVG
//! plots of throughput over time and of the latency percentile spectrum.
//! Pure string building from a finished `Report`; main thread.

use std::fmt::Write as _;

use super::Report;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 300.0;
const MARGIN: f64 = 50.0;
/// The spectrum's x axis ends at 99.999%: 1/(1-p) = 10^5.
const SPECTRUM_NINES_MAX: f64 = 5.0;

pub fn render(report: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>weir-loadgen {mode}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}svg{{background:#fafafa}}</style>\
         </head><body><h1>weir-loadgen {mode}: {topic}</h1>",
        mode = report.mode,
        topic = escape(&report.parameters.topic),
    );
    let _ = write!(
        s,
        "<p>{} | {} cores | kernel {} | {:.1} s measured</p>",
        escape(&report.machine.cpu_model),
        report.machine.cores,
        escape(&report.machine.kernel),
        report.throughput.measured_seconds
    );
    s.push_str(&summary_table(report));
    s.push_str("<h2>Throughput over time (MB/s)</h2>");
    s.push_str(&throughput_svg(report));
    s.push_str("<h2>Latency percentile spectrum (ms)</h2>");
    s.push_str(&spectrum_svg(report));
    let params = serde_json::to_string_pretty(&report.parameters).unwrap_or_default();
    let _ = write!(
        s,
        "<h2>Parameters</h2><pre>{}</pre></body></html>",
        escape(&params)
    );
    s
}

fn summary_table(report: &Report) -> String {
    let mut s = String::from("<table><tr><th>latency (ms)</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th><th>count</th></tr>");
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
    let t = &report.throughput;
    let _ = write!(
        s,
        "</table><p>produce {:.0} rec/s, {:.1} MB/s; consume {:.0} rec/s, {:.1} MB/s; \
         loadgen {:.2} cpu-s per GB moved; errors: {}</p>",
        t.produce_records_per_s,
        t.produce_mb_per_s,
        t.consume_records_per_s,
        t.consume_mb_per_s,
        report.cpu.cpu_seconds_per_gb,
        report.errors.values().sum::<u64>()
    );
    s
}

fn svg_open(s: &mut String) {
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\">"
    );
}

fn polyline(s: &mut String, points: &[(f64, f64)], color: &str) {
    let coords: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
        coords.join(" ")
    );
}

fn axes(s: &mut String, y_max: f64, y_label: &str) {
    let (x0, y0, x1, y1) = (MARGIN, HEIGHT - MARGIN, WIDTH - 10.0, 10.0);
    let _ = write!(
        s,
        "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#333\"/>\
         <line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"#333\"/>\
         <text x=\"4\" y=\"{}\" font-size=\"11\">{y_max:.2}</text>\
         <text x=\"4\" y=\"{y0}\" font-size=\"11\">0</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\">{y_label}</text>",
        y1 + 10.0,
        x0 + 6.0,
        y1 + 12.0
    );
}

fn throughput_svg(report: &Report) -> String {
    let mut s = String::new();
    svg_open(&mut s);
    let pts = &report.timeline;
    let x_max = pts.last().map_or(1, |p| p.second.max(1)) as f64;
    let y_max = pts
        .iter()
        .map(|p| p.acked_mb.max(p.consumed_mb))
        .fold(0.0f64, f64::max)
        .max(1e-3);
    axes(
        &mut s,
        y_max,
        "MB/s: blue = produced (acked), green = consumed; x = seconds",
    );
    let map = |sec: u64, v: f64| {
        (
            MARGIN + sec as f64 / x_max * (WIDTH - MARGIN - 10.0),
            HEIGHT - MARGIN - v / y_max * (HEIGHT - MARGIN - 10.0),
        )
    };
    let produced: Vec<(f64, f64)> = pts.iter().map(|p| map(p.second, p.acked_mb)).collect();
    let consumed: Vec<(f64, f64)> = pts.iter().map(|p| map(p.second, p.consumed_mb)).collect();
    polyline(&mut s, &produced, "#1f5fbf");
    polyline(&mut s, &consumed, "#2a9d3a");
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\">{x_max:.0} s</text></svg>",
        WIDTH - 40.0,
        HEIGHT - MARGIN + 15.0
    );
    s
}

/// x = number of nines, log10(1 / (1 - p)), capped at SPECTRUM_NINES_MAX.
fn nines(percentile: f64) -> f64 {
    let rest = 1.0 - percentile / 100.0;
    if rest <= 0.0 {
        SPECTRUM_NINES_MAX
    } else {
        (1.0 / rest).log10().min(SPECTRUM_NINES_MAX)
    }
}

fn spectrum_svg(report: &Report) -> String {
    let mut s = String::new();
    svg_open(&mut s);
    let series = [
        (&report.latency.produce_spectrum, "#1f5fbf"),
        (&report.latency.produce_record_spectrum, "#8e44ad"),
        (&report.latency.e2e_spectrum, "#c0392b"),
    ];
    let y_max = series
        .iter()
        .flat_map(|(pts, _)| pts.iter().map(|p| p.1 as f64 / 1e3))
        .fold(0.0f64, f64::max)
        .max(1e-3);
    axes(
        &mut s,
        y_max,
        "ms: blue = produce/batch, purple = produce/record, red = end-to-end; x = percentile",
    );
    for (pts, color) in series {
        let mapped: Vec<(f64, f64)> = pts
            .iter()
            .map(|&(pct, us)| {
                (
                    MARGIN + nines(pct) / SPECTRUM_NINES_MAX * (WIDTH - MARGIN - 10.0),
                    HEIGHT - MARGIN - (us as f64 / 1e3) / y_max * (HEIGHT - MARGIN - 10.0),
                )
            })
            .collect();
        polyline(&mut s, &mapped, color);
    }
    for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        .iter()
        .enumerate()
    {
        let x = MARGIN + i as f64 / SPECTRUM_NINES_MAX * (WIDTH - MARGIN - 10.0);
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\">{label}</text>",
            x - 10.0,
            HEIGHT - MARGIN + 15.0
        );
    }
    s.push_str("</svg>");
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_percentiles_when_mapping_to_nines_should_be_log_scaled_and_capped() {
        assert!((nines(90.0) - 1.0).abs() < 1e-9);
        assert!((nines(99.9) - 3.0).abs() < 1e-6);
        assert_eq!(nines(100.0), SPECTRUM_NINES_MAX);
        assert_eq!(escape("<a&\">"), "&lt;a&amp;&quot;&gt;");
    }
}
