//! Scenarios: what a run does, from discovery to the written report.
//!
//! - [`plan`]: actors (producer / consumer connections) and threads;
//! - [`worker`]: the pinned executors and what they share;
//! - [`produce`], [`consume`]: the actors;
//! - [`runner`]: the main thread during a run (phases, progress, drain);
//! - [`sides`]: the brokers of compare and sweep, their alternating runs,
//!   medians;
//! - [`compare`]: one scenario against two brokers, alternating;
//! - [`sweep`]: one scenario at a list of rates against one or two brokers,
//!   the latency-vs-throughput curve.
//!
//! [`run_and_report`] is one run of `produce`, `consume` or `e2e`:
//! discover the cluster (creating the topic if needed), read the start
//! offsets consumers need, run, validate what was consumed against what was
//! produced, and write the report.

pub mod compare;
pub mod consume;
pub mod plan;
pub mod produce;
pub mod runner;
pub mod sides;
pub mod sweep;
pub mod worker;

use std::{collections::BTreeMap, path::Path};

use crate::{
    cli::{Params, Scenario, StartFrom},
    client::cluster::{self, OFFSET_EARLIEST, OFFSET_LATEST},
    host,
    report::{self, json},
    stats::Flow,
};

/// One finished run.
pub struct RunOutcome {
    pub report: json::Report,
    pub passed: bool,
}

/// Runs `params.scenario` against `params.bootstrap`, writes the report
/// into `params.report_dir` and prints the summary.
pub fn run_and_report(params: &Params, label: Option<&str>) -> Result<RunOutcome, String> {
    let started_at_unix_ms = crate::clock::RunClock::new().wall_base_ms();
    let host = host::collect();
    let cluster = cluster::discover(params, &params.bootstrap)?;
    if cluster.partitions() != params.partitions as usize {
        eprintln!(
            "weir-bench: topic {} exists with {} partitions (not --partitions {}); using {}",
            cluster.topic,
            cluster.partitions(),
            params.partitions,
            cluster.partitions()
        );
    }
    if params.scenario.consumes() && (params.consumers as usize) > cluster.partitions() {
        return Err(format!(
            "--consumers {} is more than the topic's {} partitions",
            params.consumers,
            cluster.partitions()
        ));
    }
    let start_offsets = match params.scenario {
        Scenario::Produce => None,
        Scenario::Consume if params.from == StartFrom::Earliest => {
            Some(cluster.list_offsets(OFFSET_EARLIEST)?)
        }
        Scenario::Consume | Scenario::E2e => Some(cluster.list_offsets(OFFSET_LATEST)?),
    };
    let plan = plan::build(params, &cluster, start_offsets.as_deref())?;
    let (producer_connections, consumer_connections) = (plan.producers, plan.consumers);
    // The broker's view, where it has one: a fresh interval now, read back
    // after the run.
    let admin = crate::broker_admin::url(params.broker_admin.as_deref(), &params.bootstrap)
        .filter(|url| crate::broker_admin::reset(url));
    let result = runner::execute(params, &cluster, plan, start_offsets)?;
    let apis: Vec<&str> = [
        params.scenario.produces().then_some("Produce"),
        params.scenario.consumes().then_some("Fetch"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let server_stats = admin.and_then(|url| crate::broker_admin::read(&url, &apis));

    let aggregate = &result.aggregate;
    let warmup_end_ns = result.warmup_end_ns;
    let measured_s = |flow: Flow| {
        let end_ns = result
            .measure_end_ns
            .max(aggregate.flow(flow).measured.last_completion_ns);
        end_ns.saturating_sub(warmup_end_ns) as f64 / 1e9
    };
    let records_produced: Option<u64> = params
        .scenario
        .produces()
        .then(|| result.totals.produced.values().sum());
    let records_consumed: Option<u64> = params
        .scenario
        .consumes()
        .then(|| result.totals.consumed.values().sum());
    let mut flows = BTreeMap::new();
    if params.scenario.produces() {
        let mut summary = json::Summary::of(
            "produce",
            "produce_ack",
            &aggregate.flow(Flow::Produce).measured,
            measured_s(Flow::Produce),
        );
        summary.records_produced = records_produced;
        flows.insert("produce", summary);
    }
    if params.scenario.consumes() {
        let kind = if params.scenario == Scenario::E2e {
            "end_to_end"
        } else {
            "fetch_round_trip"
        };
        let mut summary = json::Summary::of(
            "consume",
            kind,
            &aggregate.flow(Flow::Consume).measured,
            measured_s(Flow::Consume),
        );
        summary.records_consumed = records_consumed;
        summary.records_produced = records_produced;
        flows.insert("consume", summary);
    }
    let primary = if params.scenario == Scenario::Produce {
        Flow::Produce
    } else {
        Flow::Consume
    };
    let summary = flows[primary.name()].clone();
    let validation = validate(params, &result, records_produced, records_consumed);
    let time_series = aggregate
        .flows
        .iter()
        .filter(|flow| flow.active)
        .map(|flow| (flow.flow.name(), flow.series.clone()))
        .collect();
    let report = json::Report {
        schema_version: json::SCHEMA_VERSION,
        tool: json::Tool::current(),
        scenario: params.scenario.name(),
        label: label.map(str::to_string),
        started_at: host::rfc3339_utc(started_at_unix_ms),
        started_at_unix_ms,
        params: params.clone(),
        host,
        broker: json::BrokerInfo::of(&cluster),
        run: json::RunInfo {
            mode: if params.rate_msgs_per_s.is_some() {
                "open_loop"
            } else {
                "closed_loop"
            },
            threads: result.threads,
            thread_cpus: result.cpus.clone(),
            producer_connections,
            consumer_connections,
            warmup_s: params.warmup_s,
            measured_s: summary.duration_s,
        },
        summary,
        flows,
        validation,
        time_series,
        files: json::Files {
            report_json: report::REPORT_JSON,
            latency_hgrm: report::LATENCY_HGRM,
            produce_latency_hgrm: (params.scenario == Scenario::E2e).then_some(report::PRODUCE_LATENCY_HGRM),
            latency_percentiles_svg: report::LATENCY_PERCENTILES_SVG,
            throughput_svg: report::THROUGHPUT_SVG,
            stages_svg: server_stats.as_ref().map(|_| report::STAGES_SVG),
        },
        notes: result.notes.clone(),
        server_stats,
    };
    report::write_run(Path::new(&params.report_dir), &report, aggregate, primary)?;
    print!("{}", report::text::summary(&report));
    println!(
        "  report: {}",
        Path::new(&params.report_dir).join(report::REPORT_JSON).display()
    );
    let passed = report.validation.passed;
    Ok(RunOutcome { report, passed })
}

/// What the consumers read must be intact, and in e2e complete.
fn validate(
    params: &Params,
    result: &runner::RunResult,
    records_produced: Option<u64>,
    records_consumed: Option<u64>,
) -> json::Validation {
    let mut checks = Vec::new();
    let mut passed = true;
    let (crc_errors, corrupt_batches) = (result.totals.crc_errors, result.totals.corrupt_batches);
    if params.scenario.consumes() {
        if crc_errors == 0 && corrupt_batches == 0 {
            checks.push(
                "every consumed batch had a valid CRC32C and the record count its header states".into(),
            );
        } else {
            passed = false;
            checks.push(format!(
                "FAILED: {crc_errors} CRC mismatches, {corrupt_batches} malformed batches"
            ));
        }
    }
    let mut records_missing = None;
    if params.scenario == Scenario::E2e {
        let produced = records_produced.unwrap_or(0);
        let consumed = records_consumed.unwrap_or(0);
        let missing = produced.saturating_sub(consumed);
        records_missing = Some(missing);
        if missing == 0 && result.caught_up == Some(true) {
            checks.push(format!("all {produced} acknowledged records were consumed"));
        } else {
            passed = false;
            checks.push(format!(
                "FAILED: {missing} of {produced} acknowledged records were not consumed (consumers reached the \
                 end offsets: {:?})",
                result.caught_up
            ));
        }
        if consumed > produced {
            checks.push(format!(
                "{} more records consumed than produced (another writer?)",
                consumed - produced
            ));
        }
    }
    if params.scenario == Scenario::Consume && params.catches_up_to_end() {
        match result.caught_up {
            Some(true) => checks.push("consumers reached the end offsets taken at the start".into()),
            _ => checks.push("consumers did not reach the end offsets before the duration ended".into()),
        }
    }
    json::Validation {
        passed,
        records_produced,
        records_consumed,
        records_missing,
        crc_errors,
        corrupt_batches,
        caught_up: result.caught_up,
        start_offsets: result.start_offsets.clone(),
        end_offsets: result.targets.clone(),
        checks,
    }
}
