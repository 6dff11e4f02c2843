//! The run's SVG charts, drawn with `plotters` into memory:
//!
//! - `latency_percentiles.svg`: the percentile spectrum, latency (ms)
//!   against 1/(1-percentile) on a log axis, as HdrHistogram plots it (also
//!   the overlay of `compare`, through [`percentile_chart_lines`]);
//! - `throughput.svg`: MB/s and msgs/s per second for every flow, with the
//!   warm-up shaded;
//! - `stages.svg`: drawn by [`super::stages`] with the helpers here, as is
//!   a sweep's `sweep_latency_vs_throughput.svg` ([`super::sweep`]).
//!
//! Invariants: output depends only on the data (no clock, no system font:
//! plotters is built without a font feature, so it estimates text sizes
//! for placing labels and the viewer renders the text with its generic
//! `sans-serif`); every document is well-formed XML with one `<svg>` root.
//! Drawing targets a `String`, so the only way it can fail is a layout bug
//! in this module: that panics.

use hdrhistogram::Histogram;
use plotters::{
    chart::MeshStyle,
    coord::{ranged1d::ValueFormatter, Shift},
    prelude::*,
    style::text_anchor::{HPos, Pos, VPos},
};

use crate::stats::aggregate::SeriesPoint;

pub const WIDTH: u32 = 960;
const PANEL_HEIGHT: u32 = 420;
/// The font family every text element names (resolved by the viewer).
pub const FONT: &str = "sans-serif";
/// Colors for successive series.
pub const COLORS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];
/// Percentile labels of the spectrum's x axis, one per decade of
/// 1/(1-percentile): index d labels 10^d.
const PERCENTILE_LABELS: [&str; 7] = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"];

/// One line on a chart.
pub struct Line {
    pub label: String,
    pub color: RGBColor,
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

/// What drawing reports; only layout bugs produce an error (see the
/// module doc).
pub type DrawResult = Result<(), Box<dyn std::error::Error>>;

pub type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Renders a `width` x `height` document with `draw`, on white.
pub fn render(width: u32, height: u32, draw: impl FnOnce(&Area) -> DrawResult) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let result = (|| -> DrawResult {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
        Ok(())
    })();
    if let Err(error) = result {
        panic!("drawing an SVG chart into memory failed, a layout bug: {error}");
    }
    out
}

/// A tick label: integers plainly, large values with k/M, fractions with
/// up to three decimals.
pub fn format_tick(value: f64) -> String {
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

/// The top of a linear axis from 0 showing `max` with a little headroom
/// (1 when there is nothing to show).
pub fn axis_top(max: f64) -> f64 {
    if max > 0.0 && max.is_finite() {
        max * 1.08
    } else {
        1.0
    }
}

fn max_y(lines: &[Line]) -> f64 {
    lines
        .iter()
        .flat_map(|line| line.points.iter().map(|point| point.1))
        .fold(0.0, f64::max)
}

/// Draws `lines` on `chart` with their legend entries, then the legend.
fn draw_lines<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    lines: &[Line],
    legend_at: SeriesLabelPosition,
) -> DrawResult
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for line in lines {
        let style = line.color.stroke_width(2);
        let color = line.color;
        let legend =
            move |(x, y): (i32, i32)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3));
        let annotation = if line.dashed {
            chart.draw_series(DashedLineSeries::new(line.points.iter().copied(), 6, 4, style))?
        } else {
            chart.draw_series(LineSeries::new(line.points.iter().copied(), style))?
        };
        annotation.label(line.label.as_str()).legend(legend);
    }
    if !lines.is_empty() {
        draw_legend(chart, legend_at)?;
    }
    Ok(())
}

/// The legend of the series labelled so far, at `position`, as every
/// chart draws it.
pub fn draw_legend<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> DrawResult
where
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(0x99, 0x99, 0x99))
        .draw()?;
    Ok(())
}

/// The axes and grid as every chart styles them, ready for the caller's
/// descriptions and label formatters, then `draw`.
pub fn mesh<'a, 'b, X, Y>(
    chart: &'b mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
) -> MeshStyle<'a, 'b, X, Y, SVGBackend<'a>>
where
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
{
    let mut mesh = chart.configure_mesh();
    mesh.label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd));
    mesh
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

/// A panel's frame as both charts draw it: the title, margins, axis room.
fn panel_builder<'a, 'b>(area: &'a Area<'b>, title: &str) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, (FONT, 20).into_font().style(FontStyle::Bold))
        .margin(15)
        .margin_right(30)
        .x_label_area_size(50)
        .y_label_area_size(80);
    builder
}

/// The spectrum panel: x from 0% to the percentile of `decades` nines.
fn percentile_panel(area: &Area, title: &str, lines: &[Line], decades: usize) -> DrawResult {
    let x_max = 10f64.powi(decades as i32);
    let ticks: Vec<f64> = (0..=decades).map(|d| 10f64.powi(d as i32)).collect();
    let mut chart = panel_builder(area, title).build_cartesian_2d(
        (1f64..x_max).log_scale().with_key_points(ticks),
        0f64..axis_top(max_y(lines)),
    )?;
    let percentile_label = |value: &f64| {
        let decade = value.log10().round().max(0.0) as usize;
        PERCENTILE_LABELS
            .get(decade)
            .copied()
            .unwrap_or_default()
            .to_string()
    };
    mesh(&mut chart)
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&percentile_label)
        .y_label_formatter(&|value| format_tick(*value))
        .draw()?;
    draw_lines(&mut chart, lines, SeriesLabelPosition::UpperLeft)
}

/// How many decades of 1/(1-percentile) `samples` resolve, 2 (99%) to 6
/// (99.9999%).
fn decades_for(samples: u64) -> usize {
    (samples.max(100) as f64).log10().ceil().clamp(2.0, 6.0) as usize
}

/// `latency_percentiles.svg` for one or more histograms (label, µs).
pub fn percentile_chart(title: &str, histograms: &[(String, &Histogram<u64>)]) -> String {
    let samples = histograms.iter().map(|(_, h)| h.len()).max().unwrap_or(0);
    let decades = decades_for(samples);
    let x_max = 10f64.powi(decades as i32);
    let lines: Vec<Line> = histograms
        .iter()
        .zip(COLORS.iter().cycle())
        .map(|((label, histogram), color)| Line {
            label: label.clone(),
            color: *color,
            dashed: false,
            points: percentile_points(histogram, x_max),
        })
        .collect();
    render(WIDTH, PANEL_HEIGHT, |root| {
        percentile_panel(root, title, &lines, decades)
    })
}

/// Like [`percentile_chart`] but with caller-chosen lines whose x runs to
/// `x_max` (compare mode).
pub fn percentile_chart_lines(title: &str, lines: Vec<Line>, x_max: f64) -> String {
    let decades = x_max.log10().round().clamp(2.0, 6.0) as usize;
    render(WIDTH, PANEL_HEIGHT, |root| {
        percentile_panel(root, title, &lines, decades)
    })
}

/// One throughput panel; `warmup_s` seconds from 0 are shaded.
fn throughput_panel(
    area: &Area,
    title: &str,
    unit: &str,
    lines: &[Line],
    x_max: f64,
    warmup_s: u64,
) -> DrawResult {
    let y_top = axis_top(max_y(lines));
    let mut chart = panel_builder(area, title).build_cartesian_2d(0f64..x_max, 0f64..y_top)?;
    mesh(&mut chart)
        .x_desc("time since start (s)")
        .y_desc(unit)
        .x_label_formatter(&|value| format_tick(*value))
        .y_label_formatter(&|value| format_tick(*value))
        .draw()?;
    if warmup_s > 0 {
        let end = (warmup_s as f64).min(x_max);
        chart.draw_series([Rectangle::new(
            [(0.0, 0.0), (end, y_top)],
            RGBColor(0x88, 0x88, 0x88).mix(0.18).filled(),
        )])?;
        let style = (FONT, 14)
            .into_font()
            .color(&RGBColor(0x66, 0x66, 0x66))
            .pos(Pos::new(HPos::Left, VPos::Bottom));
        chart.draw_series([EmptyElement::at((0.0, 0.0)) + Text::new("warm-up", (5, -5), style)])?;
    }
    // Lower right: a steady run's lines run along the top.
    draw_lines(&mut chart, lines, SeriesLabelPosition::LowerRight)
}

/// `throughput.svg`: MB/s (top) and msgs/s (bottom) per second per flow.
pub fn throughput_chart(title: &str, flows: &[(&str, &[SeriesPoint])], warmup_s: u64) -> String {
    let seconds = flows
        .iter()
        .flat_map(|(_, series)| series.iter().map(|p| p.elapsed_s + 1))
        .max()
        .unwrap_or(1)
        .max(1);
    let lines = |value: fn(&SeriesPoint) -> f64| -> Vec<Line> {
        flows
            .iter()
            .zip(COLORS.iter().cycle())
            .map(|((name, series), color)| Line {
                label: name.to_string(),
                color: *color,
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
    render(WIDTH, 2 * PANEL_HEIGHT, |root| {
        let panels = root.split_evenly((2, 1));
        let x_max = seconds as f64;
        throughput_panel(
            &panels[0],
            &format!("{title}: MB/s"),
            "MB/s",
            &megabytes,
            x_max,
            warmup_s,
        )?;
        throughput_panel(
            &panels[1],
            &format!("{title}: msgs/s"),
            "msgs/s",
            &messages,
            x_max,
            warmup_s,
        )
    })
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

/// The text of every `<text>` element, in document order.
#[cfg(test)]
pub fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|rest| {
            let body = rest.split_once('>')?.1;
            Some(body.split_once("</text>")?.0.trim().to_string())
        })
        .collect()
}

/// Every text of `svg` ([`texts`]); panics unless one of them is each of
/// `wanted` (as the document escapes it).
#[cfg(test)]
pub fn assert_texts<'a>(svg: &str, wanted: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let texts = texts(svg);
    for text in wanted {
        assert!(texts.iter().any(|t| t == text), "{text} missing from {texts:?}");
    }
    texts
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
    fn the_percentile_chart_is_well_formed_and_carries_its_data() {
        let mut histogram = latency_histogram();
        for value in 1..=50_000u64 {
            histogram.record(value).unwrap();
        }
        let chart = percentile_chart("produce <latency> & co", &[("A".into(), &histogram)]);
        check_well_formed(&chart).unwrap();
        // 50,000 samples resolve 99.999%: every decade up to it is a tick.
        let labels = assert_texts(
            &chart,
            [
                "produce &lt;latency&gt; &amp; co",
                "0%",
                "90%",
                "99%",
                "99.9%",
                "99.99%",
                "99.999%",
                "percentile",
                "latency (ms)",
                "A",
            ],
        );
        assert!(!labels.iter().any(|t| t == "99.9999%"));
        // The data line and its legend sample.
        assert!(chart.matches("<polyline").count() >= 2);
        assert_eq!(
            chart,
            percentile_chart("produce <latency> & co", &[("A".into(), &histogram)])
        );

        let empty = percentile_chart("nothing", &[("A".into(), &latency_histogram())]);
        check_well_formed(&empty).unwrap();
        assert!(texts(&empty).contains(&"99%".to_string()));
    }

    #[test]
    fn compare_lines_may_be_dashed() {
        let lines = vec![
            Line {
                label: "A run 1".into(),
                color: COLORS[0],
                dashed: false,
                points: vec![(1.0, 1.0), (10.0, 2.0), (100.0, 3.0)],
            },
            Line {
                label: "B run 1".into(),
                color: COLORS[1],
                dashed: true,
                points: vec![(1.0, 1.5), (10.0, 2.5), (100.0, 3.5)],
            },
        ];
        let chart = percentile_chart_lines("compare", lines, 100.0);
        check_well_formed(&chart).unwrap();
        let texts = texts(&chart);
        assert!(texts.contains(&"A run 1".into()) && texts.contains(&"B run 1".into()));
    }

    #[test]
    fn the_throughput_chart_has_two_panels_a_warmup_band_and_every_flow() {
        let series: Vec<SeriesPoint> = (0..10).map(|s| point(s, 100.0 + s as f64)).collect();
        let chart = throughput_chart("produce", &[("produce", &series), ("consume", &series)], 2);
        check_well_formed(&chart).unwrap();
        let texts = assert_texts(
            &chart,
            [
                "produce: MB/s",
                "produce: msgs/s",
                "warm-up",
                "produce",
                "consume",
                "time since start (s)",
                "MB/s",
                "msgs/s",
            ],
        );
        assert_eq!(texts.iter().filter(|t| *t == "warm-up").count(), 2);
        let without_warmup = throughput_chart("produce", &[("produce", &series)], 0);
        check_well_formed(&without_warmup).unwrap();
        assert!(!without_warmup.contains("warm-up"));
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

    #[test]
    fn ticks_are_short() {
        assert_eq!(format_tick(0.0), "0");
        assert_eq!(format_tick(2.5), "2.5");
        assert_eq!(format_tick(25_000.0), "25k");
        assert_eq!(format_tick(3_000_000.0), "3M");
    }
}
