//! Inline SVG line charts with labelled axes, ticks, grid lines and a legend,
//! shared by the single-run report and the comparison page. Pure string
//! building; no scripts, no external assets.

use std::fmt::Write as _;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 330.0;
const LEFT: f64 = 70.0;
/// Room for the last x tick label ("99.999%") to the right of the axis end.
const RIGHT: f64 = 40.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 50.0;
/// The spectrum's x axis ends at 99.999%: 1/(1-p) = 10^5.
pub const SPECTRUM_NINES_MAX: f64 = 5.0;

/// The y axis reaches this much above the highest point.
const LEGEND_HEADROOM: f64 = 1.3;

/// Colours of successive series (distinguishable, also in grey print).
pub const PALETTE: [&str; 8] = [
    "#1f5fbf", "#d35400", "#2a9d3a", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#b7950b",
];

/// How the x axis maps and labels its values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum XAxis {
    /// Seconds (or any linear quantity) from 0.
    Linear,
    /// Percentiles, placed by their number of nines (`nines`).
    Nines,
}

pub struct Series {
    pub label: String,
    pub color: &'static str,
    pub dashed: bool,
    /// (x, y) in data units; x as percentile for `XAxis::Nines`.
    pub points: Vec<(f64, f64)>,
}

pub struct Chart<'a> {
    pub x_axis: XAxis,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: Vec<Series>,
}

/// x = number of nines, log10(1 / (1 - p)), capped at SPECTRUM_NINES_MAX.
pub fn nines(percentile: f64) -> f64 {
    let rest = 1.0 - percentile / 100.0;
    if rest <= 0.0 {
        SPECTRUM_NINES_MAX
    } else {
        (1.0 / rest).log10().min(SPECTRUM_NINES_MAX)
    }
}

/// A round tick step (1, 2 or 5 times a power of ten) giving about 5 ticks.
pub fn tick_step(max: f64) -> f64 {
    let raw = (max / 5.0).max(1e-9);
    let power = 10f64.powf(raw.log10().floor());
    let mult = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|m| m * power >= raw)
        .unwrap_or(10.0);
    mult * power
}

/// A tick label without noise: integers plain, fractions to the step's precision.
fn tick_label(value: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{value:.decimals$}")
}

pub fn render(chart: &Chart<'_>) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">\
         <rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#fcfcfc\"/>"
    );
    let all = || chart.series.iter().flat_map(|s| s.points.iter());
    // Headroom above the highest point, for the legend in the top left.
    let top = all().map(|p| p.1).fold(0.0, f64::max) * LEGEND_HEADROOM;
    let y_step = tick_step(top);
    let y_max = (top / y_step).ceil().max(1.0) * y_step;
    let (x_max, x_step) = match chart.x_axis {
        XAxis::Linear => {
            let raw = all().map(|p| p.0).fold(0.0, f64::max).max(1.0);
            let step = tick_step(raw);
            ((raw / step).ceil() * step, step)
        }
        XAxis::Nines => (SPECTRUM_NINES_MAX, 1.0),
    };
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let map_x = |x: f64| {
        let v = if chart.x_axis == XAxis::Nines { nines(x) } else { x };
        LEFT + v / x_max * plot_w
    };
    let map_y = |y: f64| TOP + plot_h - y / y_max * plot_h;
    y_ticks(&mut s, y_max, y_step, map_y);
    x_ticks(&mut s, chart.x_axis, x_max, x_step);
    axis_labels(&mut s, chart);
    for series in &chart.series {
        let coords: Vec<String> = series
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", map_x(x), map_y(y)))
            .collect();
        let dash = if series.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            series.color,
            coords.join(" ")
        );
    }
    legend(&mut s, &chart.series);
    s.push_str("</svg>");
    s
}

fn y_ticks(s: &mut String, y_max: f64, step: f64, map_y: impl Fn(f64) -> f64) {
    let count = (y_max / step).round() as usize;
    for i in 0..=count {
        let v = i as f64 * step;
        let y = map_y(v);
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e3e3e3\"/>\
             <line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{LEFT}\" y2=\"{y:.1}\" stroke=\"#333\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 5.0,
            LEFT - 8.0,
            y + 4.0,
            tick_label(v, step)
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{:.1}\" stroke=\"#333\"/>",
        HEIGHT - BOTTOM
    );
}

fn x_ticks(s: &mut String, axis: XAxis, x_max: f64, step: f64) {
    let base = HEIGHT - BOTTOM;
    let plot_w = WIDTH - LEFT - RIGHT;
    let labels: Vec<(f64, String)> = match axis {
        XAxis::Linear => {
            let count = (x_max / step).round() as usize;
            (0..=count)
                .map(|i| (i as f64 * step, tick_label(i as f64 * step, step)))
                .collect()
        }
        XAxis::Nines => ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
            .iter()
            .enumerate()
            .map(|(i, l)| (i as f64, (*l).to_string()))
            .collect(),
    };
    for (v, label) in labels {
        let x = LEFT + v / x_max * plot_w;
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{base}\" stroke=\"#eeeeee\"/>\
             <line x1=\"{x:.1}\" y1=\"{base}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            base + 5.0,
            base + 18.0
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{:.1}\" y2=\"{base}\" stroke=\"#333\"/>",
        WIDTH - RIGHT
    );
}

fn axis_labels(s: &mut String, chart: &Chart<'_>) {
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">{}</text>\
         <text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">{}</text>",
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        HEIGHT - 10.0,
        super::html::escape(chart.x_label),
        TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
        super::html::escape(chart.y_label),
    );
}

fn legend(s: &mut String, series: &[Series]) {
    let x = LEFT + 12.0;
    let widest = series.iter().map(|s| s.label.chars().count()).max().unwrap_or(0);
    let _ = write!(
        s,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#fcfcfc\" \
         fill-opacity=\"0.85\" stroke=\"#ddd\"/>",
        x - 6.0,
        TOP + 4.0,
        36.0 + widest as f64 * 6.5,
        series.len() as f64 * 16.0 + 6.0
    );
    for (i, ser) in series.iter().enumerate() {
        let y = TOP + 14.0 + i as f64 * 16.0;
        let dash = if ser.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = write!(
            s,
            "<line x1=\"{x}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{}\" stroke-width=\"2\"{dash}/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 24.0,
            ser.color,
            x + 30.0,
            y + 4.0,
            super::html::escape(&ser.label)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_ranges_when_choosing_ticks_should_pick_round_steps() {
        assert_eq!(tick_step(100.0), 20.0);
        assert_eq!(tick_step(7.0), 2.0);
        assert_eq!(tick_step(0.3), 0.1);
        assert_eq!(tick_step(2300.0), 500.0);
        assert_eq!(tick_label(0.5, 0.1), "0.5");
        assert_eq!(tick_label(40.0, 20.0), "40");
        assert!((nines(99.9) - 3.0).abs() < 1e-6);
        assert_eq!(nines(100.0), SPECTRUM_NINES_MAX);
    }
}
