//! `sweep_latency_vs_throughput.svg`: a sweep's latency against the
//! throughput each broker achieved, one curve per broker and percentile.
//!
//! x is the achieved throughput (MB/s, linear, from 0), y the latency (ms,
//! log scale, whole decades, with one decade spare on top for the legend).
//! Each broker has its colour; p50 is dashed, p99 solid, p99.9 dotted;
//! every point is marked, filled where the broker sustained the target
//! rate and hollow where it did not, and each p99 point names its target
//! rate. Invariants as [`super::svg`]'s: the output depends on the data
//! alone, is well-formed with one `<svg>` root, and drawing into memory
//! fails only on a layout bug (a panic).

use plotters::{
    element::{ComposedElement, DashedPathElement},
    prelude::*,
    style::text_anchor::{HPos, Pos, VPos},
};

use super::svg::{self, Area, DrawResult, FONT};

const HEIGHT: u32 = 620;
/// The percentiles drawn, in the order of [`Point::latency_ms`].
pub const PERCENTILE_NAMES: [&str; 3] = ["p50", "p99", "p99.9"];
/// Which of [`PERCENTILE_NAMES`] carries the target-rate labels.
const LABELLED: usize = 1;
/// The legend's samples of what is not one broker's.
const NEUTRAL: RGBColor = RGBColor(0x55, 0x55, 0x55);
const MARKER_RADIUS: i32 = 4;

/// One target rate of one broker.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub target_msgs_per_s: f64,
    /// Achieved (median of the runs).
    pub mb_per_s: f64,
    /// p50, p99, p99.9 (medians of the runs); 0: no samples, not drawn.
    pub latency_ms: [f64; 3],
    pub sustained: bool,
}

/// One broker's points, ascending by target rate.
#[derive(Clone, Debug)]
pub struct Curve {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<Point>,
}

/// The chart; `note` is the line under the title, `sustained_fraction`
/// the rule the hollow markers stand for.
pub fn chart(title: &str, note: &str, curves: &[Curve], sustained_fraction: f64) -> String {
    svg::render(svg::WIDTH, HEIGHT, |root| {
        draw(root, title, note, curves, sustained_fraction)
    })
}

/// The y axis, whole decades of ms: from the one below the smallest
/// latency to one decade past the one above the largest (room for the
/// legend); 0.1 to 10 ms with nothing to show.
fn y_range(curves: &[Curve]) -> (f64, f64) {
    let values = curves
        .iter()
        .flat_map(|curve| curve.points.iter().flat_map(|point| point.latency_ms))
        .filter(|ms| *ms > 0.0 && ms.is_finite());
    let (min, max) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if max == 0.0 {
        return (0.1, 10.0);
    }
    let low = (min.log10() + 1e-9).floor() as i32;
    let high = ((max.log10() - 1e-9).ceil() as i32).max(low + 1) + 1;
    (10f64.powi(low), 10f64.powi(high))
}

/// 1, 2 and 5 times each decade in `low..=high`.
fn y_ticks(low: f64, high: f64) -> Vec<f64> {
    let decades = low.log10().round() as i32..=high.log10().round() as i32;
    decades
        .flat_map(|d| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(d)))
        .filter(|tick| *tick <= high * (1.0 + 1e-9))
        .collect()
}

/// A point's marker at `at` (data or, in the legend, pixel coordinates).
type Marker<'a, C> = ComposedElement<C, SVGBackend<'a>, Circle<(i32, i32), i32>, Circle<(i32, i32), i32>>;

/// A point's marker: filled, or hollow (white inside) when not sustained.
fn marker<'a, C>(at: C, color: RGBColor, sustained: bool) -> Marker<'a, C> {
    let inside = if sustained { color.filled() } else { WHITE.filled() };
    EmptyElement::at(at)
        + Circle::new((0, 0), MARKER_RADIUS, inside)
        + Circle::new((0, 0), MARKER_RADIUS, color.stroke_width(2))
}

fn draw(root: &Area, title: &str, note: &str, curves: &[Curve], sustained_fraction: f64) -> DrawResult {
    let area = root.titled(title, (FONT, 20).into_font().style(FontStyle::Bold))?;
    let (notes, area) = area.split_vertically(26);
    let note_style = (FONT, 14).into_font().color(&NEUTRAL);
    notes.draw_text(note, &note_style, (20, 4))?;

    let x_max = curves
        .iter()
        .flat_map(|curve| curve.points.iter().map(|point| point.mb_per_s))
        .fold(0.0, f64::max);
    let (low, high) = y_range(curves);
    let mut chart = ChartBuilder::on(&area)
        .margin(15)
        .margin_right(30)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(
            0f64..svg::axis_top(x_max),
            (low..high).log_scale().with_key_points(y_ticks(low, high)),
        )?;
    svg::mesh(&mut chart)
        .x_desc("achieved throughput (MB/s)")
        .y_desc("latency (ms, log scale)")
        .x_label_formatter(&|value| svg::format_tick(*value))
        .y_label_formatter(&|value| svg::format_tick(*value))
        .draw()?;

    let rate_style = (FONT, 11)
        .into_font()
        .color(&NEUTRAL)
        .pos(Pos::new(HPos::Left, VPos::Bottom));
    for curve in curves {
        let color = curve.color;
        for (which, _) in PERCENTILE_NAMES.iter().enumerate() {
            let drawn = || {
                curve
                    .points
                    .iter()
                    .filter(move |point| point.latency_ms[which] > 0.0)
                    .map(move |point| (point, (point.mb_per_s, point.latency_ms[which])))
            };
            let line: Vec<(f64, f64)> = drawn().map(|(_, at)| at).collect();
            let style = color.stroke_width(2);
            match DASHES[which] {
                Some((size, spacing)) => {
                    chart.draw_series(DashedLineSeries::new(line, size, spacing, style))?
                }
                None => chart.draw_series(LineSeries::new(line, style))?,
            };
            chart.draw_series(drawn().map(|(point, at)| marker(at, color, point.sustained)))?;
            if which == LABELLED {
                chart.draw_series(drawn().map(|(point, at)| {
                    let rate = format!("{}/s", svg::format_tick(point.target_msgs_per_s));
                    EmptyElement::at(at) + Text::new(rate, (6, -4), rate_style.clone())
                }))?;
            }
        }
        // The broker's legend entry: its colour, a marker on a line.
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label(curve.label.as_str())
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (24, 0)], color.stroke_width(2))
                    + Circle::new((12, 0), MARKER_RADIUS, color.filled())
            });
    }
    // The percentiles' line styles, in a neutral colour.
    let style = NEUTRAL.stroke_width(2);
    for (name, dashes) in PERCENTILE_NAMES.iter().zip(DASHES) {
        let entry = chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label(*name);
        match dashes {
            Some((size, spacing)) => entry.legend(move |(x, y)| {
                DashedPathElement::new(vec![(x, y), (x + 24, y)], size, spacing, style)
            }),
            None => entry.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style)),
        };
    }
    chart
        .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
        .label(format!(
            "hollow: rate not sustained (< {}% of target)",
            svg::format_tick(sustained_fraction * 100.0)
        ))
        .legend(|(x, y)| marker((x + 12, y), NEUTRAL, false));
    svg::draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// Dash and gap (px) of p50, p99, p99.9: dashed, solid, dotted.
const DASHES: [Option<(i32, i32)>; 3] = [Some((8, 5)), None, Some((2, 4))];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::svg::{assert_texts, check_well_formed, texts, COLORS};

    fn point(rate: f64, mb: f64, p50: f64, sustained: bool) -> Point {
        Point {
            target_msgs_per_s: rate,
            mb_per_s: mb,
            latency_ms: [p50, p50 * 4.0, p50 * 9.0],
            sustained,
        }
    }

    fn curves() -> Vec<Curve> {
        vec![
            Curve {
                label: "weir".into(),
                color: COLORS[0],
                points: vec![
                    point(10_000.0, 10.2, 0.3, true),
                    point(50_000.0, 51.0, 0.5, true),
                    point(200_000.0, 120.0, 8.0, false),
                ],
            },
            Curve {
                label: "kafka <2>".into(),
                color: COLORS[1],
                points: vec![
                    point(10_000.0, 10.1, 1.5, true),
                    point(50_000.0, 40.0, 30.0, false),
                ],
            },
        ]
    }

    #[test]
    fn the_chart_is_well_formed_and_names_both_brokers_percentiles_and_rates() {
        let chart = chart("produce & co", "acks=1", &curves(), 0.95);
        check_well_formed(&chart).unwrap();
        assert_eq!(chart.matches("<svg").count(), 1);
        assert_texts(
            &chart,
            [
                "produce &amp; co",
                "acks=1",
                "weir",
                "kafka &lt;2&gt;",
                "p50",
                "p99",
                "p99.9",
                "hollow: rate not sustained (&lt; 95% of target)",
                "achieved throughput (MB/s)",
                "latency (ms, log scale)",
                "10k/s",
                "50k/s",
                "200k/s",
            ],
        );
        // Five points, three percentiles: 15 markers of two circles each;
        // the legend's: one per broker, two for the hollow marker.
        assert_eq!(chart.matches("<circle").count(), 15 * 2 + 2 + 2);
        assert_eq!(chart, self::chart("produce & co", "acks=1", &curves(), 0.95));
    }

    #[test]
    fn hollow_markers_only_where_a_rate_was_not_sustained() {
        let all_sustained: Vec<Curve> = curves()
            .into_iter()
            .map(|mut curve| {
                curve.points.iter_mut().for_each(|p| p.sustained = true);
                curve
            })
            .collect();
        let hollow = chart("t", "n", &curves(), 0.95);
        let filled = chart("t", "n", &all_sustained, 0.95);
        assert_eq!(
            hollow.matches("<circle").count(),
            filled.matches("<circle").count()
        );
        // Two points were not sustained: 2 x 3 percentiles white inside.
        let insides = |svg: &str| svg.matches(r##"fill="#FFFFFF" stroke="none""##).count();
        assert_eq!(insides(&hollow) - insides(&filled), 6, "{hollow}");
    }

    #[test]
    fn an_empty_sweep_still_draws() {
        let empty = chart("nothing", "", &[], 0.95);
        check_well_formed(&empty).unwrap();
        assert!(texts(&empty).iter().any(|t| t == "latency (ms, log scale)"));
    }

    #[test]
    fn the_latency_axis_is_whole_decades_with_room_on_top() {
        // 0.3 to 270 ms: 0.1 to 1000 ms, and a decade for the legend.
        assert_eq!(y_range(&curves()), (0.1, 10_000.0));
        assert_eq!(y_range(&[]), (0.1, 10.0));
        let one = Curve {
            label: "A".into(),
            color: COLORS[0],
            points: vec![point(1.0, 1.0, 1.0, true)],
        };
        // 1, 4 and 9 ms: 1 to 10 ms, and a decade for the legend.
        assert_eq!(y_range(&[one]), (1.0, 100.0));
        assert_eq!(y_ticks(0.1, 10.0), [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]);
    }
}
