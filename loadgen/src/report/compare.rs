//! `weir-loadgen compare`: several JSON reports overlaid on one HTML page —
//! throughput over time, latency percentile spectra, and a table of each
//! figure with its ratio against the first run (the baseline).
//!
//! Reads reports as plain JSON (`serde_json::Value`), so reports of older
//! tool versions still load as long as the fields it plots exist; a missing
//! figure shows as "-". Main thread only.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::html::{escape, STYLE, WHOLE_SECOND};
use super::plot::{self, Chart, Series, XAxis, PALETTE};

/// One report to compare, under the name it is shown with.
pub struct Run {
    pub label: String,
    pub report: Value,
}

/// Why the reports could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0} is not a weir-loadgen JSON report: {1}")]
    Parse(String, String),
}

/// Load the reports; labels default to the file names without extension.
pub fn load(paths: &[std::path::PathBuf], labels: &[String]) -> Result<Vec<Run>, CompareError> {
    paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| CompareError::Read(shown.clone(), e))?;
            let report: Value =
                serde_json::from_str(&text).map_err(|e| CompareError::Parse(shown.clone(), e.to_string()))?;
            if report.pointer("/schema").and_then(Value::as_str).is_none() {
                return Err(CompareError::Parse(shown, "no \"schema\" field".into()));
            }
            let label = labels.get(i).cloned().unwrap_or_else(|| stem(path));
            Ok(Run { label, report })
        })
        .collect()
}

fn stem(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

fn num(v: &Value, pointer: &str) -> Option<f64> {
    v.pointer(pointer).and_then(Value::as_f64)
}

/// A figure of the table: its name, where it is in a report, and its scale.
struct Figure {
    name: &'static str,
    pointer: &'static str,
    scale: f64,
    decimals: usize,
}

const fn fig(name: &'static str, pointer: &'static str, scale: f64, decimals: usize) -> Figure {
    Figure {
        name,
        pointer,
        scale,
        decimals,
    }
}

const FIGURES: [Figure; 18] = [
    fig("produce records/s", "/throughput/produce/records_per_s", 1.0, 0),
    fig(
        "produce payload MB/s",
        "/throughput/produce/payload_mb_per_s",
        1.0,
        1,
    ),
    fig("produce wire MB/s", "/throughput/produce/wire_mb_per_s", 1.0, 1),
    fig(
        "produce payload/wire",
        "/throughput/produce/compression_ratio",
        1.0,
        2,
    ),
    fig("consume records/s", "/throughput/consume/records_per_s", 1.0, 0),
    fig(
        "consume payload MB/s",
        "/throughput/consume/payload_mb_per_s",
        1.0,
        1,
    ),
    fig("consume wire MB/s", "/throughput/consume/wire_mb_per_s", 1.0, 1),
    fig(
        "consume payload/wire",
        "/throughput/consume/compression_ratio",
        1.0,
        2,
    ),
    fig(
        "produce latency p50 (ms, per record)",
        "/latency/produce_record/p50_us",
        1e-3,
        3,
    ),
    fig(
        "produce latency p99 (ms, per record)",
        "/latency/produce_record/p99_us",
        1e-3,
        3,
    ),
    fig(
        "produce latency p99.9 (ms, per record)",
        "/latency/produce_record/p999_us",
        1e-3,
        3,
    ),
    fig(
        "produce latency max (ms, per record)",
        "/latency/produce_record/max_us",
        1e-3,
        3,
    ),
    fig("end-to-end latency p50 (ms)", "/latency/e2e/p50_us", 1e-3, 3),
    fig("end-to-end latency p99 (ms)", "/latency/e2e/p99_us", 1e-3, 3),
    fig("end-to-end latency p99.9 (ms)", "/latency/e2e/p999_us", 1e-3, 3),
    fig("measured seconds", "/throughput/measured_seconds", 1.0, 1),
    fig("loadgen cpu-s per GB (wire)", "/cpu/cpu_seconds_per_gb", 1.0, 2),
    fig("failed records", "/totals/all/failed_records", 1.0, 0),
];

/// The comparison page.
pub fn render(runs: &[Run]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>weir-loadgen comparison</title>\
         <style>{STYLE}</style></head><body><h1>weir-loadgen: {} runs compared</h1>",
        runs.len()
    );
    s.push_str(&runs_table(runs));
    s.push_str(&figures_table(runs));
    for (title, side) in [
        (
            "Produced over time (acknowledged; solid: payload, dashed: wire)",
            "produce",
        ),
        ("Consumed over time (solid: payload, dashed: wire)", "consume"),
    ] {
        if let Some(svg) = timeline_svg(runs, side) {
            let _ = write!(s, "<h2>{title}</h2>{svg}");
        }
    }
    for (title, pointer) in [
        (
            "Produce latency spectrum (per record)",
            "/latency/produce_record_spectrum",
        ),
        ("End-to-end latency spectrum", "/latency/e2e_spectrum"),
    ] {
        if let Some(svg) = spectrum_svg(runs, pointer) {
            let _ = write!(s, "<h2>{title}</h2>{svg}");
        }
    }
    s.push_str(
        "<p class=\"note\">payload: record key + value bytes; wire: RecordBatch bytes after \
         compression; MB = 10<sup>6</sup> bytes. Throughput lines plot whole seconds only.</p>\
         </body></html>",
    );
    s
}

/// Whether a run ended early: by a signal, or by an error (`failed_with`).
fn cut_short(r: &Value) -> String {
    if let Some(error) = r.pointer("/failed_with").and_then(Value::as_str) {
        return format!("<b>failed</b>: {}", escape(error));
    }
    if r.pointer("/interrupted").and_then(Value::as_bool) == Some(true) {
        return "<b>interrupted</b>".to_string();
    }
    "no".to_string()
}

fn runs_table(runs: &[Run]) -> String {
    let mut s = String::from(
        "<table><tr><th>run</th><th>mode</th><th>topic</th><th>partitions</th><th>producers</th>\
         <th>consumers</th><th>record bytes</th><th>acks</th><th>compression</th><th>rate/s</th>\
         <th>cut short</th></tr>",
    );
    for (i, run) in runs.iter().enumerate() {
        let r = &run.report;
        let text = |p: &str| {
            r.pointer(p).map_or("-".to_string(), |v| {
                v.as_str().map_or_else(|| v.to_string(), str::to_string)
            })
        };
        let _ = write!(
            s,
            "<tr><td><span style=\"color:{}\">&#9632;</span> {}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            PALETTE[i % PALETTE.len()],
            escape(&run.label),
            escape(&text("/mode")),
            escape(&text("/parameters/topic")),
            text("/cluster/partitions"),
            text("/parameters/producers"),
            text("/parameters/consumers"),
            text("/parameters/record_bytes"),
            text("/parameters/acks"),
            escape(&text("/parameters/compression")),
            text("/parameters/rate_per_s"),
            cut_short(r),
        );
    }
    s.push_str("</table>");
    s
}

fn figures_table(runs: &[Run]) -> String {
    let mut s = String::from("<h2>Figures (ratio against the first run)</h2><table><tr><th>figure</th>");
    for run in runs {
        let _ = write!(s, "<th>{}</th>", escape(&run.label));
    }
    s.push_str("</tr>");
    for f in &FIGURES {
        let values: Vec<Option<f64>> = runs.iter().map(|r| num(&r.report, f.pointer)).collect();
        if values.iter().all(|v| v.is_none_or(|x| x == 0.0)) {
            continue;
        }
        let _ = write!(s, "<tr><td>{}</td>", f.name);
        let base = values[0];
        for v in &values {
            let cell = match (v, base) {
                (Some(v), Some(b)) if b != 0.0 => {
                    format!("{:.*} (&times;{:.2})", f.decimals, v * f.scale, v / b)
                }
                (Some(v), _) => format!("{:.*}", f.decimals, v * f.scale),
                (None, _) => "-".to_string(),
            };
            let _ = write!(s, "<td>{cell}</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

/// Each run's whole seconds of one side's payload and wire MB (counts per
/// second, so rates); None when no run has any.
fn timeline_svg(runs: &[Run], side: &str) -> Option<String> {
    let mut series = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        for (unit, dashed) in [("payload", false), ("wire", true)] {
            let field = format!("/{side}_{unit}_mb");
            let points: Vec<(f64, f64)> = run
                .report
                .pointer("/timeline")
                .and_then(Value::as_array)
                .map(|tl| {
                    tl.iter()
                        .filter(|p| num(p, "/seconds").unwrap_or(1.0) >= WHOLE_SECOND)
                        .filter_map(|p| Some((num(p, "/second")?, num(p, &field)?)))
                        .collect()
                })
                .unwrap_or_default();
            if points.iter().any(|p| p.1 > 0.0) {
                series.push(Series {
                    label: format!("{}, {unit}", run.label),
                    color: PALETTE[i % PALETTE.len()],
                    dashed,
                    points,
                });
            }
        }
    }
    (!series.is_empty()).then(|| {
        plot::render(&Chart {
            x_axis: XAxis::Linear,
            x_label: "seconds since the start of each run",
            y_label: "MB/s (10^6 B/s)",
            series,
        })
    })
}

fn spectrum_svg(runs: &[Run], pointer: &str) -> Option<String> {
    let mut series = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let points: Vec<(f64, f64)> = run
            .report
            .pointer(pointer)
            .and_then(Value::as_array)
            .map(|pts| {
                pts.iter()
                    .filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()? / 1e3)))
                    .collect()
            })
            .unwrap_or_default();
        if !points.is_empty() {
            series.push(Series {
                label: run.label.clone(),
                color: PALETTE[i % PALETTE.len()],
                dashed: false,
                points,
            });
        }
    }
    (!series.is_empty()).then(|| {
        plot::render(&Chart {
            x_axis: XAxis::Nines,
            x_label: "percentile",
            y_label: "latency (ms)",
            series,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_two_reports_when_comparing_should_show_ratios_and_both_lines() {
        let report = |mb: f64| {
            serde_json::json!({
                "schema": "weir-loadgen/2", "mode": "produce",
                "throughput": {"produce": {"records_per_s": mb * 1000.0, "payload_mb_per_s": mb}},
                "timeline": [{"second": 0, "seconds": 1.0, "produce_payload_mb": mb, "produce_wire_mb": mb},
                             {"second": 1, "seconds": 0.2, "produce_payload_mb": mb / 5.0}],
                "latency": {"produce_record_spectrum": [[50.0, 1000], [99.0, 4000]]}
            })
        };
        let runs = [
            Run {
                label: "before".into(),
                report: report(100.0),
            },
            Run {
                label: "after".into(),
                report: report(150.0),
            },
        ];
        let page = render(&runs);
        assert!(
            page.contains("150.0 (&times;1.50)"),
            "ratio against the first run"
        );
        assert!(page.contains("100.0 (&times;1.00)"));
        assert_eq!(
            page.matches("<polyline").count(),
            6,
            "2 x (payload, wire) + 2 spectrum lines"
        );
        assert!(
            page.contains(">before, payload<") && page.contains(">after, wire<"),
            "the throughput legend names each run and unit"
        );
        assert!(
            page.contains(">before<") && page.contains(">after<"),
            "the spectrum legend names each run"
        );
    }
}
