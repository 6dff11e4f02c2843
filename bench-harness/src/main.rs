//! `weir-bench`: a load generator that speaks the Kafka protocol itself.
//!
//! It drives any Kafka-compatible broker (weir, Kafka, Redpanda) with the
//! standard APIs only, from one pinned glommio executor per core, so that
//! the generator is not the bottleneck, and writes a report per run
//! (`report.json`, `latency.hgrm`, SVG charts).
//!
//! Module map, in the order a run flows through it:
//!
//! - [`cli`]: flags, defaults and units, validation; the help text.
//! - [`client`]: the Kafka wire: framing, version negotiation, the blocking
//!   control plane (ApiVersions, Metadata, CreateTopics, ListOffsets) and the
//!   async data-plane connection.
//! - [`payload`], [`records`]: pre-generated message bodies; record batch v2
//!   encoding (producers) and validation (consumers: CRC32C, record walk).
//! - [`pacing`]: the open-loop schedule (coordinated-omission correction).
//! - [`scenario`]: plan actors, run them on pinned executors, coordinate the
//!   phases (warm-up, measurement, drain), compare two brokers, sweep a
//!   list of rates on one or two.
//! - [`stats`]: per-thread recorders, the main thread's aggregate, progress.
//! - [`report`]: the JSON schema, `.hgrm`, SVG charts (plotters: latency
//!   percentiles, throughput, client latency beside the broker's stages,
//!   a sweep's latency against throughput), the human summary.
//! - [`host`], [`clock`]: what machine ran it; one clock for every thread.

mod broker_admin;
mod cli;
mod client;
mod clock;
mod host;
mod pacing;
mod payload;
mod records;
mod report;
mod scenario;
mod stats;

use std::process::ExitCode;

fn main() -> ExitCode {
    // glommio reports memlock and io_uring trouble only through `log`.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let command = match cli::parse(std::env::args_os()) {
        Ok(command) => command,
        // --help, --version: to stdout, exit code 0.
        Err(error) if !error.use_stderr() => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        // Bad command line: exit code 2.
        Err(error) => {
            eprint!("weir-bench: {}", error.render());
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    let outcome = match command {
        cli::Command::Run(params) => scenario::run_and_report(&params, None).map(|outcome| outcome.passed),
        cli::Command::Compare(params) => scenario::compare::run(&params),
        cli::Command::Sweep(params) => scenario::sweep::run(&params),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("weir-bench: validation failed (see the summary above and report.json)");
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("weir-bench: {message}");
            ExitCode::FAILURE
        }
    }
}
