//! The result of `weir-tune check`: one [`Item`] per measured setting, each
//! with a status, the value measured and what to do about it; rendered as
//! text for people or JSON for machines, and turned into the exit code.
//!
//! The status vocabulary is fixed:
//! - PASS: measured and fine for weir;
//! - INFO: worth knowing, nothing to do (or nothing can be measured here,
//!   as on VMs and in containers);
//! - WARN: weir runs, but slower, less predictably or less durably;
//! - FAIL: weir cannot start or cannot keep its promises. Exit code 1.

use serde::Serialize;

/// How a measured value compares with what weir needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Info,
    Warn,
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Info => "INFO",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One check: `family/name`, its status, the measured value, the advice.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub family: &'static str,
    pub name: String,
    pub status: Status,
    pub value: String,
    pub advice: String,
}

impl Item {
    pub fn new(
        family: &'static str,
        name: impl Into<String>,
        status: Status,
        value: impl Into<String>,
        advice: impl Into<String>,
    ) -> Item {
        Item {
            family,
            name: name.into(),
            status,
            value: value.into(),
            advice: advice.into(),
        }
    }
}

/// Counts per status.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub pass: usize,
    pub info: usize,
    pub warn: usize,
    pub fail: usize,
}

/// Every item of one `weir-tune check` run.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub items: Vec<Item>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    ok: bool,
    summary: Summary,
    items: &'a [Item],
}

impl Report {
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for item in &self.items {
            match item.status {
                Status::Pass => summary.pass += 1,
                Status::Info => summary.info += 1,
                Status::Warn => summary.warn += 1,
                Status::Fail => summary.fail += 1,
            }
        }
        summary
    }

    /// 0 when nothing failed, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.items.iter().any(|item| item.status == Status::Fail))
    }

    /// `{"ok": .., "summary": {..}, "items": [{family, name, status, value, advice}, ..]}`.
    pub fn to_json(&self) -> String {
        let report = JsonReport {
            ok: self.exit_code() == 0,
            summary: self.summary(),
            items: &self.items,
        };
        serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// One block per item: `[STATUS] family/name: value`, then the advice
    /// indented and wrapped.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for item in &self.items {
            text.push_str(&format!(
                "[{}] {}/{}: {}\n",
                item.status.label(),
                item.family,
                item.name,
                item.value
            ));
            for line in wrap(&item.advice, ADVICE_WIDTH_CHARS) {
                text.push_str("       ");
                text.push_str(&line);
                text.push('\n');
            }
        }
        let summary = self.summary();
        text.push_str(&format!(
            "\n{} PASS, {} INFO, {} WARN, {} FAIL\n",
            summary.pass, summary.info, summary.warn, summary.fail
        ));
        text
    }
}

/// Width of wrapped advice lines in the text report.
const ADVICE_WIDTH_CHARS: usize = 92;

/// Greedy word wrap; a word longer than `width` gets a line of its own.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(statuses: &[Status]) -> Report {
        Report {
            items: statuses
                .iter()
                .map(|&status| Item::new("kernel", "version", status, "6.1", "nothing to do"))
                .collect(),
        }
    }

    #[test]
    fn exit_code_is_one_only_when_an_item_failed() {
        assert_eq!(report(&[Status::Pass, Status::Info, Status::Warn]).exit_code(), 0);
        assert_eq!(report(&[Status::Pass, Status::Fail]).exit_code(), 1);
        assert_eq!(report(&[]).exit_code(), 0);
    }

    #[test]
    fn json_has_every_field_of_every_item() {
        let json: serde_json::Value =
            serde_json::from_str(&report(&[Status::Warn, Status::Fail]).to_json()).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["summary"]["warn"], 1);
        assert_eq!(json["summary"]["fail"], 1);
        let items = json["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["status"], "WARN");
        for item in items {
            for field in ["family", "name", "status", "value", "advice"] {
                assert!(item[field].is_string(), "{field} missing in {item}");
            }
        }
    }

    #[test]
    fn text_shows_status_value_and_wrapped_advice() {
        let text = report(&[Status::Pass]).to_text();
        assert!(text.starts_with("[PASS] kernel/version: 6.1\n       nothing to do\n"));
        assert!(text.contains("1 PASS, 0 INFO, 0 WARN, 0 FAIL"));
    }

    #[test]
    fn wrap_breaks_at_word_boundaries() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(
            wrap("averyveryverylongword x", 5),
            vec!["averyveryverylongword", "x"]
        );
        assert!(wrap("", 5).is_empty());
    }
}
