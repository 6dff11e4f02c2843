//! Command line of `weir-tune`, on clap derive: the subcommands, their flags
//! (`--flag value` or `--flag=value`), a `WEIR_TUNE_<FLAG>` environment
//! variable per flag (a flag beats its variable), and the help with every
//! default and unit.
//!
//! Invariants: `weir-tune` alone prints the help and exits 0; usage errors
//! exit 2 (clap's `Error::exit`). The weir settings `check` reasons about are
//! not parsed here: `--config`, `--data-dir` and `--cores` are handed to
//! weir's own parser (`settings`), which also reads weir's `WEIR_<OPTION>`
//! variables as `weir` does.

use std::path::PathBuf;

use clap::{builder::BoolishValueParser, Args, Parser, Subcommand};

use crate::disk;

const AFTER_HELP: &str = "\
Every flag can also be set by an environment variable WEIR_TUNE_<FLAG>
(WEIR_TUNE_DATA_DIR=/var/lib/weir, WEIR_TUNE_JSON=true); a flag on the
command line wins. `weir-tune <COMMAND> --help` describes a command.";

/// weir-tune: host checks, disk probe and OS templates for weir.
#[derive(Debug, Parser)]
#[command(name = "weir-tune", version, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    /// None: print the help.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the kernel, io_uring, limits, filesystem, block device, CPUs,
    /// memory, interrupts and network settings weir depends on.
    ///
    /// Each item is PASS, INFO, WARN or FAIL with the measured value and
    /// what to do. Exit code 0 if nothing FAILed, 1 otherwise (2: weir would
    /// refuse its configuration). --config, --data-dir and --cores are read
    /// exactly as `weir` reads them, WEIR_<OPTION> variables included
    /// (default: weir's defaults).
    Check(CheckArgs),
    /// Measure the data disk for weir's I/O pattern and recommend a config.
    ///
    /// Measures O_DIRECT write bandwidth (block size x queue depth;
    /// appending, into fallocated space, overwriting), O_DIRECT reads and
    /// fdatasync latency in DIR, then writes a recommended weir config to
    /// FILE (or prints it). The probe needs twice --size-mib free; its files
    /// are removed.
    Disk(DiskArgs),
    /// Write sysctl.conf, limits.conf and weir.service (every line
    /// explained) to a directory, or list them.
    Templates(TemplatesArgs),
}

#[derive(Debug, Default, Args)]
pub struct CheckArgs {
    /// weir's data directory [default: weir's data_dir, from --config or
    /// weir's defaults]
    #[arg(long, value_name = "DIR", env = "WEIR_TUNE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// weir's TOML config file, read as `weir --config FILE` reads it
    /// [default: none, weir's defaults]
    #[arg(long, value_name = "FILE", env = "WEIR_TUNE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Shards weir would run [default: weir's cores; 0: one per allowed
    /// CPU] [unit: shards]
    #[arg(long, value_name = "N", env = "WEIR_TUNE_CORES")]
    pub cores: Option<usize>,
    /// Print the report as JSON instead of text
    #[arg(long, env = "WEIR_TUNE_JSON", value_parser = BoolishValueParser::new())]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DiskArgs {
    /// Directory to measure (weir's data directory)
    #[arg(
        long,
        value_name = "DIR",
        default_value = "./data",
        env = "WEIR_TUNE_DATA_DIR"
    )]
    pub data_dir: PathBuf,
    /// Write the recommended weir config to FILE [default: print it]
    #[arg(long, value_name = "FILE", env = "WEIR_TUNE_OUT")]
    pub out: Option<PathBuf>,
    /// Bytes per measurement [default: 256, with --quick 8] [unit: MiB]
    #[arg(long, value_name = "N", env = "WEIR_TUNE_SIZE_MIB")]
    pub size_mib: Option<u64>,
    /// Small sizes: done in under ~5 s
    #[arg(long, env = "WEIR_TUNE_QUICK", value_parser = BoolishValueParser::new())]
    pub quick: bool,
    /// Print the measurements as JSON
    #[arg(long, env = "WEIR_TUNE_JSON", value_parser = BoolishValueParser::new())]
    pub json: bool,
    /// Run even if a weir holds DIR's lock
    #[arg(long, env = "WEIR_TUNE_FORCE", value_parser = BoolishValueParser::new())]
    pub force: bool,
}

#[derive(Debug, Default, Args)]
pub struct TemplatesArgs {
    /// Directory to write the files to [default: list them]
    #[arg(long, value_name = "DIR", env = "WEIR_TUNE_OUT")]
    pub out: Option<PathBuf>,
    /// Overwrite existing files
    #[arg(long, env = "WEIR_TUNE_FORCE", value_parser = BoolishValueParser::new())]
    pub force: bool,
}

impl DiskArgs {
    pub fn into_options(self) -> disk::Options {
        disk::Options {
            data_dir: self.data_dir,
            out: self.out,
            size_mib: self.size_mib,
            quick: self.quick,
            json: self.json,
            force: self.force,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{error::ErrorKind, CommandFactory};

    use super::*;

    /// The process's `WEIR_TUNE_*` variables are not set by these tests;
    /// flags beat them anyway.
    fn parse_strs(args: &[&str]) -> Result<Option<Command>, clap::Error> {
        Cli::try_parse_from(std::iter::once("weir-tune").chain(args.iter().copied())).map(|cli| cli.command)
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn check_flags_parse_in_both_spellings() {
        let Some(Command::Check(check)) = parse_strs(&[
            "check",
            "--data-dir",
            "/d",
            "--config=/c.toml",
            "--cores",
            "3",
            "--json",
        ])
        .unwrap() else {
            panic!("not check");
        };
        assert_eq!(check.data_dir, Some(PathBuf::from("/d")));
        assert_eq!(check.config, Some(PathBuf::from("/c.toml")));
        assert_eq!(check.cores, Some(3));
        assert!(check.json);
    }

    #[test]
    fn disk_flags_parse() {
        let Some(Command::Disk(disk)) = parse_strs(&[
            "disk",
            "--quick",
            "--out",
            "w.toml",
            "--size-mib",
            "16",
            "--force",
        ])
        .unwrap() else {
            panic!("not disk");
        };
        assert!(disk.quick && disk.force && !disk.json);
        assert_eq!(disk.size_mib, Some(16));
        assert_eq!(disk.out, Some(PathBuf::from("w.toml")));
        assert_eq!(disk.into_options().data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn templates_flags_parse() {
        let Some(Command::Templates(templates)) = parse_strs(&["templates", "--out=os", "--force"]).unwrap()
        else {
            panic!("not templates");
        };
        assert_eq!(templates.out, Some(PathBuf::from("os")));
        assert!(templates.force);
    }

    #[test]
    fn bad_command_lines_are_errors() {
        let kind = |args: &[&str]| parse_strs(args).unwrap_err().kind();
        assert_eq!(kind(&["frobnicate"]), ErrorKind::InvalidSubcommand);
        assert_eq!(kind(&["check", "--cores", "many"]), ErrorKind::ValueValidation);
        assert!(parse_strs(&["check", "--cores"]).is_err());
        assert_eq!(kind(&["check", "--out", "x"]), ErrorKind::UnknownArgument);
        let quick = parse_strs(&["disk", "--quick=yes"]).unwrap_err();
        assert_eq!(quick.kind(), ErrorKind::TooManyValues);
        assert!(quick.to_string().contains("--quick"), "{quick}");
        assert!(parse_strs(&["disk", "stray"]).is_err());
        assert_eq!(parse_strs(&["frobnicate"]).unwrap_err().exit_code(), 2);
        // No command: main prints the help and exits 0.
        assert!(parse_strs(&[]).unwrap().is_none());
        assert_eq!(kind(&["check", "--help"]), ErrorKind::DisplayHelp);
        assert_eq!(kind(&["--version"]), ErrorKind::DisplayVersion);
    }

    #[test]
    fn help_shows_every_flag_with_its_default_unit_and_variable() {
        let mut cli = Cli::command();
        let top = cli.render_long_help().to_string();
        for name in ["check", "disk", "templates"] {
            assert!(top.contains(name), "{name} missing:\n{top}");
        }
        for (subcommand, needles) in [
            (
                "check",
                &[
                    "--data-dir <DIR>",
                    "--config <FILE>",
                    "--cores <N>",
                    "--json",
                    "[unit: shards]",
                ][..],
            ),
            (
                "disk",
                &[
                    "--data-dir <DIR>",
                    "[default: ./data]",
                    "--out <FILE>",
                    "--size-mib <N>",
                    "[default: 256, with --quick 8]",
                    "[unit: MiB]",
                    "--quick",
                    "--force",
                    "[env: WEIR_TUNE_SIZE_MIB=]",
                ][..],
            ),
            (
                "templates",
                &["--out <DIR>", "--force", "[env: WEIR_TUNE_FORCE=]"][..],
            ),
        ] {
            let help = cli
                .find_subcommand_mut(subcommand)
                .unwrap()
                .render_long_help()
                .to_string();
            let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
            for needle in needles {
                assert!(
                    flat.contains(needle),
                    "{needle} missing from {subcommand} --help:\n{help}"
                );
            }
        }
    }
}
