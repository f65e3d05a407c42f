//! JUnit XML reports of check results, for CI systems.
//!
//! One `<testsuites>` holding one `<testsuite>`; each case is a `<testcase>` with a
//! `<failure message="…">output</failure>` or a `<skipped message="…"/>` when it did not
//! pass. The output is deterministic: no timestamp or host name, times in seconds with three
//! decimals. Text is escaped for XML 1.0, and characters XML 1.0 does not allow (C0 controls
//! other than tab, newline and carriage return, U+FFFE, U+FFFF) are written as `\xNN` or
//! `\u{FFFE}` text, so an ANSI escape sequence or a NUL in a tool's output cannot break the
//! report.

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::Duration;

use diskimg::xml::{self, Disallowed, Whitespace};

/// The result of one check, the one type from a guest check or an audit check to the terminal,
/// `build.log` and the JUnit report (a JUnit test case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The case's name, e.g. `version-containerd`.
    pub name: String,
    /// The group it belongs to, e.g. `nodeimg.node.debian-12`.
    pub classname: String,
    /// How long it ran.
    pub duration: Duration,
    /// What happened.
    pub outcome: Outcome,
}

impl CaseResult {
    /// Whether it passed (a skipped check did not).
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }

    /// Whether it failed (a skipped check did not: a node conformance test skipped by name
    /// offline does not fail the build).
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed { .. })
    }

    /// The one-line reason it failed or was skipped; `None` when it passed.
    pub fn failure(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Passed => None,
            Outcome::Failed { message, .. } | Outcome::Skipped { message } => Some(message),
        }
    }
}

/// What happened to a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Passed,
    /// It failed: `message` is the one-line reason, `output` what it printed.
    Failed {
        /// One line: what was found and what was expected.
        message: String,
        /// Everything the case printed (may be long and multi-line).
        output: String,
    },
    /// It was not run.
    Skipped {
        /// Why.
        message: String,
    },
}

/// Seconds with three decimals (`1.250`).
fn seconds(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// Escapes `s` for XML 1.0 text or a double-quoted attribute value. In attributes, tab,
/// newline and carriage return are written as character references so parsers keep them; in
/// text only the carriage return is (parsers turn a bare CR into LF). Characters XML 1.0 does
/// not allow become visible `\xNN` / `\u{FFFE}` text.
fn escape(s: &str, attribute: bool) -> String {
    let whitespace = if attribute {
        Whitespace::Reference
    } else {
        Whitespace::Keep
    };
    xml::escape(s, whitespace, Disallowed::Show)
}

/// The JUnit XML document for `cases` as the suite `suite`.
pub fn render(suite: &str, cases: &[CaseResult]) -> String {
    let failures = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed { .. }))
        .count();
    let skipped = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Skipped { .. }))
        .count();
    let total: Duration = cases.iter().map(|c| c.duration).sum();
    let name = escape(suite, true);
    let counts = format!(
        "tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{}\"",
        cases.len(),
        seconds(total)
    );
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"{name}\" {counts}>");
    let _ = writeln!(out, "  <testsuite name=\"{name}\" {counts}>");
    for c in cases {
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
            escape(&c.name, true),
            escape(&c.classname, true),
            seconds(c.duration)
        );
        match &c.outcome {
            Outcome::Passed => out.push_str("/>\n"),
            Outcome::Failed { message, output } => {
                let _ = write!(
                    out,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                    escape(message, true),
                    escape(output, false)
                );
            }
            Outcome::Skipped { message } => {
                let _ = write!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                    escape(message, true)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Writes [`render`]'s document to `path` atomically: a temporary file in the same directory,
/// flushed and fsynced, renamed over `path`, then the directory fsynced. Readers see the old
/// report or the new one, never a part. The file is mode 0644.
pub fn write(path: &Path, suite: &str, cases: &[CaseResult]) -> io::Result<()> {
    inputs::atomic::write_atomic(path, render(suite, cases).as_bytes())
}

#[cfg(test)]
mod tests;
