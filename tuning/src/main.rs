//! `weir-tune`: the host-tuning tool of weir.
//!
//! - `check`: is this host fit to run weir, and what to change (`check/`);
//! - `disk`: how fast is the data disk for weir's I/O pattern, and which
//!   weir settings follow from it (`disk/`);
//! - `templates`: OS configuration files with every line explained
//!   (`templates.rs`, files in `tuning/templates/`).
//!
//! Module map: `cli` (the command line, on clap), `settings` (weir's config as the broker
//! loads it, and what it implies), `host` (reading /proc, /sys, rlimits),
//! `cpulist` (the kernel's CPU list format), `report` (check items, text and
//! JSON), `probe_dir` (probe files that always get removed), `aligned`
//! (O_DIRECT buffers).

mod aligned;
mod check;
mod cli;
mod cpulist;
mod disk;
mod host;
mod probe_dir;
mod report;
mod settings;
mod templates;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};

fn main() -> ExitCode {
    // Usage errors exit 2 with clap's message; --help and --version exit 0.
    let cli = Cli::try_parse().unwrap_or_else(|error| error.exit());
    let Some(command) = cli.command else {
        // No command: the help, as `weir-tune --help` prints it.
        return match Cli::command().print_long_help() {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    };
    match command {
        Command::Check(args) => run_check(args),
        Command::Disk(args) => match disk::run(&args.into_options()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("weir-tune disk: {message}");
                ExitCode::FAILURE
            }
        },
        Command::Templates(args) => match templates::run(args.out.as_deref(), args.force) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("weir-tune templates: {message}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run_check(args: cli::CheckArgs) -> ExitCode {
    // Probe files of the fs check must go even on Ctrl-C.
    probe_dir::catch_interrupts();
    let settings =
        match settings::Settings::load(args.config.as_deref(), args.data_dir.as_deref(), args.cores) {
            Ok(settings) => settings,
            Err(message) => {
                eprintln!("weir-tune check: weir's configuration: {message}");
                return ExitCode::from(2);
            }
        };
    let data_dir = settings::absolute_path(&settings.config.data_dir);
    let context = check::Context { settings, data_dir };
    let report = check::run(&context);
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    ExitCode::from(report.exit_code() as u8)
}
