//! Command-line parsing for `weir-tune`: subcommands, their flags (`--flag
//! value` or `--flag=value`), and the usage text. No parsing library: the
//! surface is small and the broker parses its own flags the same way.

use std::path::PathBuf;

use crate::disk;

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    Check(CheckArgs),
    Disk(DiskArgs),
    Templates(TemplatesArgs),
    Help,
    Version,
}

#[derive(Debug, Default)]
pub struct CheckArgs {
    pub data_dir: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub cores: Option<usize>,
    pub json: bool,
}

#[derive(Debug, Default)]
pub struct DiskArgs {
    pub data_dir: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub size_mib: Option<u64>,
    pub quick: bool,
    pub json: bool,
    pub force: bool,
}

#[derive(Debug, Default)]
pub struct TemplatesArgs {
    pub out: Option<PathBuf>,
    pub force: bool,
}

pub const USAGE: &str = "\
weir-tune: host checks, disk probe and OS templates for weir.

USAGE:
  weir-tune check [--data-dir DIR] [--config FILE] [--cores N] [--json]
      Checks the kernel, io_uring, limits, filesystem, block device, CPUs,
      memory, interrupts and network settings weir depends on. Each item is
      PASS, INFO, WARN or FAIL with the measured value and what to do.
      Exit code 0 if nothing FAILed, 1 otherwise. --config/--data-dir/--cores
      are read exactly as `weir` reads them (default: weir's defaults).

  weir-tune disk [--data-dir DIR] [--out FILE] [--size-mib N] [--quick] [--json] [--force]
      Measures O_DIRECT write bandwidth (block size x queue depth; appending,
      into fallocated space, overwriting), O_DIRECT reads and fdatasync latency
      in DIR (default ./data), then writes a recommended weir config to FILE
      (or prints it). --size-mib: bytes per measurement (default 256, --quick 8;
      the probe needs twice that free). --quick: small sizes, under ~5 s.
      --force: run even if a weir holds DIR's lock. Probe files are removed.

  weir-tune templates [--out DIR] [--force]
      Writes sysctl.conf, limits.conf and weir.service (every line explained)
      to DIR, or lists them. --force overwrites existing files.

  weir-tune --help | --version
";

/// Parses the arguments after the program name.
pub fn parse(args: Vec<String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let Some(subcommand) = args.next() else {
        return Ok(Command::Help);
    };
    let flags = parse_flags(args)?;
    match subcommand.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "-V" | "--version" => Ok(Command::Version),
        "check" => {
            let mut check = CheckArgs::default();
            for (name, value) in flags {
                match (name.as_str(), value) {
                    ("data-dir", Some(value)) => check.data_dir = Some(value.into()),
                    ("config", Some(value)) => check.config = Some(value.into()),
                    ("cores", Some(value)) => check.cores = Some(parse_number(&name, &value)?),
                    ("json", None) => check.json = true,
                    ("help", None) => return Ok(Command::Help),
                    (_, value) => return Err(flag_error("check", &name, value.is_some())),
                }
            }
            Ok(Command::Check(check))
        }
        "disk" => {
            let mut disk = DiskArgs::default();
            for (name, value) in flags {
                match (name.as_str(), value) {
                    ("data-dir", Some(value)) => disk.data_dir = Some(value.into()),
                    ("out", Some(value)) => disk.out = Some(value.into()),
                    ("size-mib", Some(value)) => disk.size_mib = Some(parse_number(&name, &value)?),
                    ("quick", None) => disk.quick = true,
                    ("json", None) => disk.json = true,
                    ("force", None) => disk.force = true,
                    ("help", None) => return Ok(Command::Help),
                    (_, value) => return Err(flag_error("disk", &name, value.is_some())),
                }
            }
            Ok(Command::Disk(disk))
        }
        "templates" => {
            let mut templates = TemplatesArgs::default();
            for (name, value) in flags {
                match (name.as_str(), value) {
                    ("out", Some(value)) => templates.out = Some(value.into()),
                    ("force", None) => templates.force = true,
                    ("help", None) => return Ok(Command::Help),
                    (_, value) => return Err(flag_error("templates", &name, value.is_some())),
                }
            }
            Ok(Command::Templates(templates))
        }
        other => Err(format!("unknown subcommand '{other}' (see weir-tune --help)")),
    }
}

/// Flags that take no value.
const SWITCHES: &[&str] = &["json", "quick", "force", "help"];

/// `--name value`, `--name=value` and switches, in order.
fn parse_flags(args: impl Iterator<Item = String>) -> Result<Vec<(String, Option<String>)>, String> {
    let mut args = args.peekable();
    let mut flags = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "-h" {
            flags.push(("help".to_string(), None));
            continue;
        }
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument '{arg}' (see weir-tune --help)"));
        };
        if let Some((name, value)) = flag.split_once('=') {
            flags.push((name.to_string(), Some(value.to_string())));
        } else if SWITCHES.contains(&flag) {
            flags.push((flag.to_string(), None));
        } else {
            let value = args
                .next()
                .ok_or_else(|| format!("--{flag} needs a value (see weir-tune --help)"))?;
            flags.push((flag.to_string(), Some(value)));
        }
    }
    Ok(flags)
}

fn parse_number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("--{name}: '{value}' is not a non-negative integer"))
}

fn flag_error(subcommand: &str, name: &str, has_value: bool) -> String {
    if SWITCHES.contains(&name) && has_value {
        format!("--{name} takes no value")
    } else {
        format!("unknown option --{name} for '{subcommand}' (see weir-tune --help)")
    }
}

impl DiskArgs {
    pub fn into_options(self) -> disk::Options {
        disk::Options {
            data_dir: self.data_dir.unwrap_or_else(|| PathBuf::from("./data")),
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
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn check_flags_parse_in_both_spellings() {
        let Command::Check(check) = parse_strs(&[
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
        let Command::Disk(disk) = parse_strs(&[
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
    fn bad_command_lines_are_errors() {
        assert!(parse_strs(&["frobnicate"]).is_err());
        assert!(parse_strs(&["check", "--cores", "many"]).is_err());
        assert!(parse_strs(&["check", "--cores"]).is_err());
        assert!(parse_strs(&["check", "--out", "x"]).is_err());
        assert!(parse_strs(&["disk", "--quick=yes"])
            .unwrap_err()
            .contains("takes no value"));
        assert!(parse_strs(&["disk", "stray"]).is_err());
        assert!(matches!(parse_strs(&[]), Ok(Command::Help)));
        assert!(matches!(parse_strs(&["check", "--help"]), Ok(Command::Help)));
        assert!(matches!(parse_strs(&["--version"]), Ok(Command::Version)));
    }
}
