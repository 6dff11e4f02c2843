//! The OS templates shipped in `tuning/templates/`, embedded in the binary
//! (`include_str!`) so `weir-tune templates --out DIR` can write them
//! anywhere. Every setting in them is preceded by a comment with its reason;
//! a unit test keeps it that way.

use std::path::Path;

/// (file name, contents, where it is installed).
pub const TEMPLATES: &[(&str, &str, &str)] = &[
    (
        "sysctl.conf",
        include_str!("../templates/sysctl.conf"),
        "/etc/sysctl.d/60-weir.conf",
    ),
    (
        "limits.conf",
        include_str!("../templates/limits.conf"),
        "/etc/security/limits.d/weir.conf",
    ),
    (
        "weir.service",
        include_str!("../templates/weir.service"),
        "/etc/systemd/system/weir.service",
    ),
];

/// Writes the templates into `out` (refusing to overwrite unless `force`),
/// or lists them; returns what to print.
pub fn run(out: Option<&Path>, force: bool) -> Result<String, String> {
    let Some(out) = out else {
        let mut text = String::from("Templates (write them with --out DIR):\n");
        for (name, _, installed) in TEMPLATES {
            text.push_str(&format!("  {name:<14} install as {installed}\n"));
        }
        return Ok(text);
    };
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut text = String::new();
    for (name, contents, installed) in TEMPLATES {
        let path = out.join(name);
        if path.exists() && !force {
            return Err(format!("{} exists (use --force to overwrite)", path.display()));
        }
        std::fs::write(&path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        text.push_str(&format!("wrote {} (install as {installed})\n", path.display()));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A setting line: not blank, not a comment, not an ini section.
    fn is_setting(line: &str) -> bool {
        let line = line.trim();
        !line.is_empty() && !line.starts_with('#') && !line.starts_with('[')
    }

    #[test]
    fn every_setting_has_a_reason_comment_above_it() {
        for (name, contents, _) in TEMPLATES {
            let lines: Vec<&str> = contents.lines().collect();
            for (index, line) in lines.iter().enumerate() {
                if is_setting(line) {
                    let previous = lines[..index].iter().rev().find(|l| !l.trim().is_empty());
                    let explained = previous.is_some_and(|p| p.starts_with('#') || is_setting(p));
                    assert!(explained, "{name}: '{line}' has no comment above it");
                }
            }
            // Consecutive settings share a comment; no block of settings is bare.
            let mut previous_kind = "";
            for line in &lines {
                let kind = if line.trim().is_empty() {
                    "blank"
                } else if line.starts_with('#') {
                    "comment"
                } else if line.starts_with('[') {
                    "section"
                } else {
                    "setting"
                };
                if kind == "setting" {
                    assert!(
                        previous_kind == "comment" || previous_kind == "setting",
                        "{name}: '{line}' follows a {previous_kind} line, not its reason"
                    );
                }
                if kind != "blank" || previous_kind != "setting" {
                    previous_kind = kind;
                }
            }
        }
    }

    #[test]
    fn the_unit_starts_weir_with_a_config_and_the_limits_weir_needs() {
        let unit = TEMPLATES[2].1;
        assert!(unit.contains("ExecStart=/usr/local/bin/weir --config "));
        assert!(unit.contains("\nLimitMEMLOCK=infinity\n"));
        assert!(unit.contains("\nLimitNOFILE=1048576\n"));
        assert!(unit.contains("\nRestart=on-failure\n"));
        assert!(unit.contains("CPUAffinity="));
    }

    #[test]
    fn sysctl_settings_are_key_equals_value_lines() {
        for line in TEMPLATES[0].1.lines().filter(|line| is_setting(line)) {
            let (key, value) = line.split_once(" = ").unwrap_or_else(|| panic!("'{line}'"));
            assert!(key.trim_start_matches('-').contains('.'), "'{key}'");
            assert!(!value.trim().is_empty());
        }
    }

    #[test]
    fn templates_are_written_and_not_overwritten_without_force() {
        let dir = tempfile::tempdir().unwrap();
        run(Some(dir.path()), false).unwrap();
        for (name, contents, _) in TEMPLATES {
            assert_eq!(std::fs::read_to_string(dir.path().join(name)).unwrap(), *contents);
        }
        assert!(run(Some(dir.path()), false).is_err());
        assert!(run(Some(dir.path()), true).is_ok());
        assert!(run(None, false).unwrap().contains("weir.service"));
    }
}
