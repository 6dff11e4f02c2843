//! `weir-tune`: the host-tuning tool of weir.
//!
//! - `check`: is this host fit to run weir, and what to change (`check/`);
//! - `disk`: how fast is the data disk for weir's I/O pattern, and which
//!   weir settings follow from it (`disk/`);
//! - `templates`: OS configuration files with every line explained
//!   (`templates.rs`, files in `tuning/templates/`).
//!
//! Module map: `cli` (arguments), `settings` (weir's config as the broker
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

use cli::Command;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args().skip(1).collect()) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("weir-tune: {message}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("weir-tune {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
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
