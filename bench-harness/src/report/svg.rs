//! SVG charts, written by hand (no plotting crate, no fonts needed to
//! produce them; text uses the viewer's generic `sans-serif`):
//!
//! - `latency_percentiles.svg`: the percentile spectrum, latency (ms)
//!   against 1/(1-percentile) on a log axis, as HdrHistogram plots it;
//! - `throughput.svg`: MB/s and msgs/s per second for every flow, with the
//!   warm-up shaded.
//!
//! Output is deterministic, well-formed XML (tests parse its structure).

use std::fmt::Write;

use hdrhistogram::Histogram;

use crate::stats::aggregate::SeriesPoint;

const WIDTH: f64 = 960.0;
const PANEL_HEIGHT: f64 = 420.0;
const MARGIN_LEFT: f64 = 90.0;
const MARGIN_RIGHT: f64 = 30.0;
const MARGIN_TOP: f64 = 50.0;
const MARGIN_BOTTOM: f64 = 60.0;
/// Colors for successive series.
pub const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

/// One line on a chart.
pub struct Line {
    pub label: String,
    pub color: &'static str,
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

struct Axis {
    label: String,
    log: bool,
    min: f64,
    max: f64,
    ticks: Vec<(f64, String)>,
}

impl Axis {
    fn position(&self, value: f64, from: f64, to: f64) -> f64 {
        let fraction = if self.log {
            (value.max(self.min).log10() - self.min.log10()) / (self.max.log10() - self.min.log10())
        } else {
            (value - self.min) / (self.max - self.min)
        };
        from + (to - from) * fraction.clamp(0.0, 1.0)
    }
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round step giving about five ticks up to `max`.
fn nice_step(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let scaled = raw / magnitude;
    let nice = if scaled <= 1.0 {
        1.0
    } else if scaled <= 2.0 {
        2.0
    } else if scaled <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

fn linear_axis(label: &str, max_value: f64) -> Axis {
    let step = nice_step(max_value * 1.05);
    let max = (max_value * 1.05 / step).ceil().max(1.0) * step;
    let mut ticks = Vec::new();
    let mut value = 0.0;
    while value <= max + step / 2.0 {
        ticks.push((value, format_tick(value)));
        value += step;
    }
    Axis {
        label: label.to_string(),
        log: false,
        min: 0.0,
        max,
        ticks,
    }
}

fn format_tick(value: f64) -> String {
    if value == 0.0 {
        "0".into()
    } else if value.abs() >= 1e6 {
        format!("{}M", trim(value / 1e6))
    } else if value.abs() >= 1e4 {
        format!("{}k", trim(value / 1e3))
    } else {
        trim(value)
    }
}

fn trim(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Draws one panel at vertical offset `top` into `out`.
fn panel(
    out: &mut String,
    top: f64,
    title: &str,
    x: &Axis,
    y: &Axis,
    lines: &[Line],
    band: Option<(f64, f64)>,
) {
    let (left, right) = (MARGIN_LEFT, WIDTH - MARGIN_RIGHT);
    let (plot_top, plot_bottom) = (top + MARGIN_TOP, top + PANEL_HEIGHT - MARGIN_BOTTOM);
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="16" text-anchor="middle" font-weight="bold">{}</text>"#,
        WIDTH / 2.0,
        top + 28.0,
        escape(title)
    );
    if let Some((from, to)) = band {
        let (x0, x1) = (x.position(from, left, right), x.position(to, left, right));
        if x1 > x0 {
            let _ = writeln!(
                out,
                r##"<rect x="{x0:.1}" y="{plot_top:.1}" width="{:.1}" height="{:.1}" fill="#eeeeee"/>"##,
                x1 - x0,
                plot_bottom - plot_top
            );
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#777777">warm-up</text>"##,
                x0 + 4.0,
                plot_bottom - 6.0
            );
        }
    }
    for (value, label) in &x.ticks {
        let px = x.position(*value, left, right);
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{plot_top:.1}" x2="{px:.1}" y2="{plot_bottom:.1}" stroke="#dddddd"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{px:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
            plot_bottom + 18.0,
            escape(label)
        );
    }
    for (value, label) in &y.ticks {
        let py = y.position(*value, plot_bottom, plot_top);
        let _ = writeln!(
            out,
            r##"<line x1="{left:.1}" y1="{py:.1}" x2="{right:.1}" y2="{py:.1}" stroke="#dddddd"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text>"#,
            left - 8.0,
            py + 4.0,
            escape(label)
        );
    }
    let _ = writeln!(
        out,
        r#"<rect x="{left:.1}" y="{plot_top:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="black"/>"#,
        right - left,
        plot_bottom - plot_top
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle">{}</text>"#,
        (left + right) / 2.0,
        plot_bottom + 42.0,
        escape(&x.label)
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{}</text>"#,
        left - 62.0,
        (plot_top + plot_bottom) / 2.0,
        left - 62.0,
        (plot_top + plot_bottom) / 2.0,
        escape(&y.label)
    );
    for (index, line) in lines.iter().enumerate() {
        if !line.points.is_empty() {
            let points: Vec<String> = line
                .points
                .iter()
                .map(|&(vx, vy)| {
                    format!(
                        "{:.1},{:.1}",
                        x.position(vx, left, right),
                        y.position(vy, plot_bottom, plot_top)
                    )
                })
                .collect();
            let dash = if line.dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{}" stroke-width="2"{dash} points="{}"/>"#,
                line.color,
                points.join(" ")
            );
        }
        let legend_y = plot_top + 18.0 + index as f64 * 18.0;
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="3"/>"#,
            left + 12.0,
            legend_y - 4.0,
            left + 36.0,
            legend_y - 4.0,
            line.color
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{legend_y:.1}" font-size="12">{}</text>"#,
            left + 42.0,
            escape(&line.label)
        );
    }
}

fn document(height: f64, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}</svg>\n"
    )
}

/// The percentile spectrum of a histogram (µs) as points (1/(1-q), ms),
/// ending at the max at `x_max`.
pub fn percentile_points(histogram: &Histogram<u64>, x_max: f64) -> Vec<(f64, f64)> {
    let mut points = Vec::new();
    if histogram.is_empty() {
        return points;
    }
    for step in histogram.iter_quantiles(super::hgrm::TICKS_PER_HALF_DISTANCE) {
        let quantile = step.quantile_iterated_to();
        if quantile >= 1.0 {
            break;
        }
        let x = 1.0 / (1.0 - quantile);
        if x > x_max {
            break;
        }
        points.push((x, step.value_iterated_to() as f64 / 1e3));
    }
    points.push((x_max, histogram.max() as f64 / 1e3));
    points
}

/// `latency_percentiles.svg` for one or more histograms (label, µs).
pub fn percentile_chart(title: &str, histograms: &[(String, &Histogram<u64>)]) -> String {
    let samples_max = histograms
        .iter()
        .map(|(_, h)| h.len())
        .max()
        .unwrap_or(0)
        .max(100);
    // Up to the percentile the samples can resolve, between 99% and 99.9999%.
    let decades = (samples_max as f64).log10().ceil().clamp(2.0, 6.0) as i32;
    let x_max = 10f64.powi(decades);
    let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"];
    let ticks = (0..=decades)
        .map(|d| (10f64.powi(d), labels[d as usize].to_string()))
        .collect();
    let x = Axis {
        label: "percentile".into(),
        log: true,
        min: 1.0,
        max: x_max,
        ticks,
    };
    let lines: Vec<Line> = histograms
        .iter()
        .enumerate()
        .map(|(index, (label, histogram))| Line {
            label: label.clone(),
            color: COLORS[index % COLORS.len()],
            dashed: false,
            points: percentile_points(histogram, x_max),
        })
        .collect();
    let y_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let y = linear_axis("latency (ms)", if y_max > 0.0 { y_max } else { 1.0 });
    let mut body = String::new();
    panel(&mut body, 0.0, title, &x, &y, &lines, None);
    document(PANEL_HEIGHT, &body)
}

/// Like [`percentile_chart`] but with caller-chosen lines (compare mode).
pub fn percentile_chart_lines(title: &str, lines: Vec<Line>, x_max: f64) -> String {
    let decades = x_max.log10().round().clamp(2.0, 6.0) as i32;
    let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"];
    let ticks = (0..=decades)
        .map(|d| (10f64.powi(d), labels[d as usize].to_string()))
        .collect();
    let x = Axis {
        label: "percentile".into(),
        log: true,
        min: 1.0,
        max: 10f64.powi(decades),
        ticks,
    };
    let y_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let y = linear_axis("latency (ms)", if y_max > 0.0 { y_max } else { 1.0 });
    let mut body = String::new();
    panel(&mut body, 0.0, title, &x, &y, &lines, None);
    document(PANEL_HEIGHT, &body)
}

/// `throughput.svg`: MB/s (top) and msgs/s (bottom) per second per flow.
pub fn throughput_chart(title: &str, flows: &[(&str, &[SeriesPoint])], warmup_s: u64) -> String {
    let seconds = flows
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.elapsed_s + 1))
        .max()
        .unwrap_or(1)
        .max(1);
    let step = nice_step(seconds as f64).max(1.0);
    let x_max = (seconds as f64 / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut tick = 0.0;
    while tick <= x_max + step / 2.0 {
        ticks.push((tick, trim(tick)));
        tick += step;
    }
    let x = Axis {
        label: "time since start (s)".into(),
        log: false,
        min: 0.0,
        max: x_max,
        ticks,
    };
    let lines = |value: fn(&SeriesPoint) -> f64| -> Vec<Line> {
        flows
            .iter()
            .enumerate()
            .map(|(index, (name, series))| Line {
                label: name.to_string(),
                color: COLORS[index % COLORS.len()],
                dashed: false,
                // Each second's value drawn at the middle of its second; the
                // drain after the measurement (partial seconds) is left out.
                points: series
                    .iter()
                    .filter(|p| p.phase != "drain")
                    .map(|p| (p.elapsed_s as f64 + 0.5, value(p)))
                    .collect(),
            })
            .collect()
    };
    let megabytes = lines(|p| p.throughput_mb_per_s);
    let messages = lines(|p| p.throughput_msgs_per_s);
    let max_of = |lines: &[Line]| {
        lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .fold(0.0, f64::max)
    };
    let band = (warmup_s > 0).then_some((0.0, warmup_s as f64));
    let mut body = String::new();
    let y = linear_axis("MB/s", max_of(&megabytes).max(1e-3));
    panel(
        &mut body,
        0.0,
        &format!("{title}: MB/s"),
        &x,
        &y,
        &megabytes,
        band,
    );
    let y = linear_axis("msgs/s", max_of(&messages).max(1.0));
    panel(
        &mut body,
        PANEL_HEIGHT,
        &format!("{title}: msgs/s"),
        &x,
        &y,
        &messages,
        band,
    );
    document(2.0 * PANEL_HEIGHT, &body)
}

/// A minimal structural check: balanced tags, one root `svg` element.
#[cfg(test)]
pub fn check_well_formed(text: &str) -> Result<(), String> {
    let body = text
        .trim_start()
        .strip_prefix("<?xml")
        .map_or(text, |rest| rest.split_once("?>").map_or("", |r| r.1));
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    let mut roots = 0;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').ok_or("unterminated tag")? + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let expected = stack
                .pop()
                .ok_or_else(|| format!("</{name}> without an opening tag"))?;
            if expected != name.trim() {
                return Err(format!("</{name}> closes <{expected}>"));
            }
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().unwrap_or_default().to_string();
            if stack.is_empty() {
                roots += 1;
            }
            stack.push(name);
        } else if stack.is_empty() {
            roots += 1;
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed <{}>", stack.join("> <")));
    }
    if roots != 1 || !body.trim_start().starts_with("<svg") {
        return Err("expected exactly one <svg> root element".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::latency_histogram;

    fn point(second: u64, mb: f64) -> SeriesPoint {
        SeriesPoint {
            elapsed_s: second,
            phase: if second < 2 { "warmup" } else { "measure" },
            messages: (mb * 1000.0) as u64,
            bytes: (mb * 1e6) as u64,
            throughput_mb_per_s: mb,
            throughput_msgs_per_s: mb * 1000.0,
            errors: 0,
            latency_us_p50: 1,
            latency_us_p99: 2,
            latency_us_max: 3,
        }
    }

    #[test]
    fn charts_are_well_formed_and_carry_their_data() {
        let mut histogram = latency_histogram();
        for value in 1..=50_000u64 {
            histogram.record(value).unwrap();
        }
        let chart = percentile_chart("produce <latency> & co", &[("A".into(), &histogram)]);
        check_well_formed(&chart).unwrap();
        assert!(chart.contains("99.99%") && chart.contains("&lt;latency&gt; &amp; co"));
        assert_eq!(chart.matches("<polyline").count(), 1);

        let series: Vec<SeriesPoint> = (0..10).map(|s| point(s, 100.0 + s as f64)).collect();
        let chart = throughput_chart("produce", &[("produce", &series), ("consume", &series)], 2);
        check_well_formed(&chart).unwrap();
        assert_eq!(chart.matches("<polyline").count(), 4);
        assert!(chart.contains("warm-up"));

        let empty = percentile_chart("nothing", &[("A".into(), &latency_histogram())]);
        check_well_formed(&empty).unwrap();
    }

    #[test]
    fn the_checker_rejects_broken_documents() {
        assert!(check_well_formed("<svg><g></svg>").is_err());
        assert!(check_well_formed("<svg></svg><svg></svg>").is_err());
        assert!(check_well_formed("<svg><line/></svg>").is_ok());
    }

    #[test]
    fn percentile_points_rise_and_end_at_the_max() {
        let mut histogram = latency_histogram();
        for value in 1..=1_000u64 {
            histogram.record(value * 1_000).unwrap();
        }
        let points = percentile_points(&histogram, 1_000.0);
        assert!(points.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        let last = points.last().unwrap();
        assert_eq!(last.0, 1_000.0);
        assert!((last.1 - 1_000.0).abs() < 1.0);
    }
}
