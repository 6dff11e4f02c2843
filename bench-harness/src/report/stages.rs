//! `stages.svg`: where the client's latency went. One row per latency, each
//! with three horizontal bars (p50, p99, p99.9) on a log µs axis: for every
//! flow of the run, the client's own latency (shaded row) followed by the
//! broker's stages of the API that flow used (Produce for produce, Fetch for
//! consume; e2e shows both), in the order a request passes them.
//!
//! Written only when the report has `server_stats` (weir's admin listener).
//! The two sides are not the same window: the client's latency is the
//! measurement after the warm-up, the broker's covers the whole run; and a
//! stage's percentiles are its own, so they do not add up to the client's.
//! The chart says so under its title.

use plotters::{
    prelude::*,
    style::text_anchor::{HPos, Pos, VPos},
};

use super::{
    json::Report,
    svg::{self, Area, DrawResult, FONT},
    text::format_latency_us,
};
use crate::broker_admin::STAGES;

/// The broker API each flow's requests go to, in the order rows are drawn.
const FLOW_APIS: [(&str, &str); 2] = [("produce", "Produce"), ("consume", "Fetch")];
/// p50, p99, p99.9: light to dark.
const PERCENTILE_COLORS: [RGBColor; 3] = [
    RGBColor(0x9e, 0xca, 0xe1),
    RGBColor(0x42, 0x92, 0xc6),
    RGBColor(0x08, 0x30, 0x6b),
];
const PERCENTILE_NAMES: [&str; 3] = ["p50", "p99", "p99.9"];
/// The shade behind the client's rows.
const CLIENT_ROW: RGBColor = RGBColor(0xff, 0xf3, 0xd0);
const ROW_HEIGHT: u32 = 42;
/// Title, notes, x axis and margins.
const CHROME_HEIGHT: u32 = 170;

/// One row of the chart, latencies in µs.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub label: String,
    /// The client's latency (else a broker stage).
    pub client: bool,
    /// p50, p99, p99.9.
    pub latency_us: [f64; 3],
}

/// The rows of `report`; None without `server_stats`.
pub fn rows(report: &Report) -> Option<Vec<Row>> {
    let server = report.server_stats.as_ref()?;
    let mut rows = Vec::new();
    for (flow, api) in FLOW_APIS {
        let Some(summary) = report.flows.get(flow) else {
            continue;
        };
        let client = &summary.latency_us;
        if client.count > 0 {
            rows.push(Row {
                label: format!("client {flow} ({})", summary.latency_kind),
                client: true,
                latency_us: [client.p50 as f64, client.p99 as f64, client.p999 as f64],
            });
        }
        let Some(stages) = server.get(api) else {
            continue;
        };
        // Known stages in request order, then any this version does not
        // know (a newer broker's), by name.
        let known = STAGES.iter().filter_map(|stage| stages.get_key_value(*stage));
        let unknown = stages
            .iter()
            .filter(|(stage, _)| !STAGES.contains(&stage.as_str()));
        for (stage, latency) in known.chain(unknown) {
            rows.push(Row {
                label: format!("{api} {stage}"),
                client: false,
                latency_us: [latency.p50, latency.p99, latency.p999],
            });
        }
    }
    Some(rows)
}

/// A latency in µs for a bar's end: fractions below 10 µs keep a decimal.
fn value_label(us: f64) -> String {
    if us < 10.0 {
        format!("{us:.1} µs")
    } else {
        format_latency_us(us.round() as u64)
    }
}

/// A decade of the µs axis.
fn decade_label(us: f64) -> String {
    match us {
        us if us < 1.0 => format!("{us} µs"),
        us if us < 1e3 => format!("{us:.0} µs"),
        us if us < 1e6 => format!("{:.0} ms", us / 1e3),
        us => format!("{:.0} s", us / 1e6),
    }
}

/// The x axis, whole decades of µs: from below the smallest value (so that
/// its bar has a length; not under 0.1 µs) to one decade past the largest,
/// which leaves room for the value labels and the legend.
fn x_range(rows: &[Row]) -> (f64, f64) {
    let values = rows
        .iter()
        .flat_map(|row| row.latency_us)
        .filter(|v| *v > 0.0 && v.is_finite());
    let (min, max) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if max == 0.0 {
        return (1.0, 1e3);
    }
    let low = ((min.log10() - 1e-9).floor() as i32).max(-1);
    let high = (max.log10().ceil() as i32 + 1).max(low + 2);
    (10f64.powi(low), 10f64.powi(high))
}

/// `stages.svg` for `rows` (see [`rows`]).
pub fn chart(title: &str, rows: &[Row]) -> String {
    let height = CHROME_HEIGHT + ROW_HEIGHT * rows.len().max(3) as u32;
    svg::render(svg::WIDTH, height, |root| draw(root, title, rows))
}

fn draw(root: &Area, title: &str, rows: &[Row]) -> DrawResult {
    let area = root.titled(title, (FONT, 20).into_font().style(FontStyle::Bold))?;
    let (notes, area) = area.split_vertically(44);
    let note_style = (FONT, 14).into_font().color(&RGBColor(0x55, 0x55, 0x55));
    notes.draw_text(
        "p50, p99 and p99.9 of each latency, log scale. Client: the measured window after the warm-up;",
        &note_style,
        (20, 4),
    )?;
    notes.draw_text(
        "broker (weir's admin listener): the whole run. Stages overlap and nest: their percentiles do not add up.",
        &note_style,
        (20, 22),
    )?;

    let count = rows.len() as i32;
    let (low, high) = x_range(rows);
    let decades: Vec<f64> = (low.log10().round() as i32..=high.log10().round() as i32)
        .map(|d| 10f64.powi(d))
        .collect();
    // y is in hundredths of a row (plotters formats integer axes but not
    // f64 ones with chosen key points); row i is centered on
    // (count - 1 - i) * ROW, the first row on top.
    const ROW: i32 = 100;
    let centers: Vec<i32> = (0..count).map(|i| i * ROW).collect();
    let y_of = |index: usize| (count - 1 - index as i32) * ROW;
    let mut chart = ChartBuilder::on(&area)
        .margin(15)
        .margin_right(30)
        .x_label_area_size(45)
        .y_label_area_size(210)
        .build_cartesian_2d(
            (low..high).log_scale().with_key_points(decades),
            (-ROW / 2..count.max(1) * ROW - ROW / 2).with_key_points(centers),
        )?;
    let row_label = |y: &i32| {
        let index = count - 1 - y / ROW;
        usize::try_from(index)
            .ok()
            .and_then(|index| rows.get(index))
            .map(|row| row.label.clone())
            .unwrap_or_default()
    };
    svg::mesh(&mut chart)
        .disable_y_mesh()
        .x_desc("latency (µs, log scale)")
        .x_label_formatter(&|us| decade_label(*us))
        .y_label_formatter(&row_label)
        .draw()?;

    chart.draw_series(
        rows.iter()
            .enumerate()
            .filter(|(_, row)| row.client)
            .map(|(index, _)| {
                let y = y_of(index);
                Rectangle::new(
                    [(low, y - ROW / 2), (high, y + ROW / 2)],
                    CLIENT_ROW.mix(0.8).filled(),
                )
            }),
    )?;
    // Three bars per row, p50 on top; each BAR high with a gap between.
    const BAR: i32 = 26;
    const GAP: i32 = 2;
    let label_style = (FONT, 12)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (which, (color, name)) in PERCENTILE_COLORS.iter().zip(PERCENTILE_NAMES).enumerate() {
        let offset = (BAR + GAP) * (1 - which as i32);
        let bar = |(index, row): (usize, &Row)| {
            let y = y_of(index) + offset;
            let end = row.latency_us[which].max(low);
            Rectangle::new([(low, y - BAR / 2), (end, y + BAR / 2)], color.filled())
        };
        let color = *color;
        chart
            .draw_series(rows.iter().enumerate().map(bar))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
        chart.draw_series(rows.iter().enumerate().map(|(index, row)| {
            let value = row.latency_us[which];
            EmptyElement::at((value.max(low), y_of(index) + offset))
                + Text::new(value_label(value), (4, 0), label_style.clone())
        }))?;
    }
    svg::draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{
        broker_admin::{ServerStats, StageLatency},
        report::{
            json::LatencyUs,
            svg::{assert_texts, check_well_formed},
        },
    };

    fn stage(p50: f64) -> StageLatency {
        StageLatency {
            count: 1_000,
            p50,
            p99: p50 * 4.0,
            p999: p50 * 9.0,
            max: p50 * 20.0,
        }
    }

    fn client_latency(p50: u64) -> LatencyUs {
        LatencyUs {
            p50,
            p99: p50 * 3,
            p999: p50 * 8,
            count: 10_000,
            ..LatencyUs::default()
        }
    }

    fn server_stats() -> ServerStats {
        let produce = BTreeMap::from([
            ("respond".to_string(), stage(8.0)),
            ("decode".to_string(), stage(0.6)),
            ("fsync".to_string(), stage(900.0)),
            ("append".to_string(), stage(35.0)),
            ("queue".to_string(), stage(4.0)),
            ("handler".to_string(), stage(1_100.0)),
        ]);
        let fetch = BTreeMap::from([
            ("wait".to_string(), stage(2_000.0)),
            ("read".to_string(), stage(20.0)),
            ("future".to_string(), stage(3.0)),
        ]);
        BTreeMap::from([("Produce".to_string(), produce), ("Fetch".to_string(), fetch)])
    }

    /// A report of `scenario` whose flows have the given client p50s.
    fn report(flows: &[(&'static str, &'static str, u64)], server: Option<ServerStats>) -> Report {
        let mut report = crate::report::json::tests::sample_report();
        report.flows.clear();
        for (flow, kind, p50) in flows {
            let mut summary = report.summary.clone();
            summary.flow = flow;
            summary.latency_kind = kind;
            summary.latency_us = client_latency(*p50);
            report.flows.insert(flow, summary);
        }
        report.server_stats = server;
        report
    }

    fn labels(rows: &[Row]) -> Vec<&str> {
        rows.iter().map(|row| row.label.as_str()).collect()
    }

    #[test]
    fn rows_follow_the_flows_and_the_request_path() {
        let produce = report(&[("produce", "produce_ack", 1_500)], Some(server_stats()));
        let rows = rows(&produce).expect("server stats present");
        assert_eq!(
            labels(&rows),
            [
                "client produce (produce_ack)",
                "Produce decode",
                "Produce queue",
                "Produce handler",
                "Produce append",
                "Produce fsync",
                "Produce respond",
            ]
        );
        assert!(rows[0].client && !rows[1].client);
        assert_eq!(rows[0].latency_us, [1_500.0, 4_500.0, 12_000.0]);
        assert_eq!(rows[5].latency_us, [900.0, 3_600.0, 8_100.0]);

        let consume = report(&[("consume", "fetch_round_trip", 3_000)], Some(server_stats()));
        assert_eq!(
            labels(&super::rows(&consume).unwrap()),
            [
                "client consume (fetch_round_trip)",
                "Fetch read",
                "Fetch wait",
                "Fetch future"
            ]
        );

        let e2e = report(
            &[
                ("produce", "produce_ack", 1_500),
                ("consume", "end_to_end", 5_000),
            ],
            Some(server_stats()),
        );
        let e2e_rows = super::rows(&e2e).unwrap();
        assert_eq!(e2e_rows.len(), 7 + 4);
        assert_eq!(e2e_rows[7].label, "client consume (end_to_end)");

        assert_eq!(super::rows(&report(&[("produce", "produce_ack", 1)], None)), None);
    }

    #[test]
    fn the_chart_is_well_formed_and_labels_every_row_and_percentile() {
        let e2e = report(
            &[
                ("produce", "produce_ack", 1_500),
                ("consume", "end_to_end", 5_000),
            ],
            Some(server_stats()),
        );
        let rows = rows(&e2e).unwrap();
        let chart = chart("weir-bench e2e <stages>", &rows);
        check_well_formed(&chart).unwrap();
        let wanted = labels(&rows).into_iter().chain([
            "p50",
            "p99",
            "p99.9",
            "weir-bench e2e &lt;stages&gt;",
            "1 ms",
            "100 µs",
            "0.6 µs",
            "1.50 ms",
        ]);
        assert_texts(&chart, wanted);
        assert_eq!(chart, super::chart("weir-bench e2e <stages>", &rows));
    }

    #[test]
    fn degenerate_inputs_still_draw() {
        for rows in [
            Vec::new(),
            vec![Row {
                label: "client produce (produce_ack)".into(),
                client: true,
                latency_us: [0.0, 0.0, 0.0],
            }],
        ] {
            check_well_formed(&chart("empty", &rows)).unwrap();
        }
    }

    #[test]
    fn the_axis_spans_whole_decades_with_headroom() {
        let row = |values| Row {
            label: String::new(),
            client: false,
            latency_us: values,
        };
        assert_eq!(x_range(&[row([0.6, 35.0, 12_000.0])]), (0.1, 1e6));
        assert_eq!(x_range(&[row([1.0, 3.0, 5.0])]), (0.1, 100.0));
        assert_eq!(x_range(&[row([1.5, 3.0, 5.0])]), (1.0, 100.0));
        assert_eq!(x_range(&[row([0.01, 1.0, 2.0])]), (0.1, 100.0));
        assert_eq!(x_range(&[row([0.0, 0.0, 0.0])]), (1.0, 1e3));
        assert_eq!(decade_label(0.1), "0.1 µs");
        assert_eq!(decade_label(100.0), "100 µs");
        assert_eq!(decade_label(1e4), "10 ms");
        assert_eq!(decade_label(1e6), "1 s");
    }
}
