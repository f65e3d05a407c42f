//! The `nodeimg scan` subcommand: load the BOM and the feeds, match, print a table or JSON, and
//! turn the outcome into an exit code (0 clean, 1 a finding at or above `--fail-on`, 2 bad
//! input).

use std::collections::BTreeMap;
use std::process::ExitCode;

use bom::scan::feed::Feed;
use bom::scan::matcher::{ScanResult, scan};
use bom::scan::{Finding, FixState, Severity, SubjectKind};
use serde::Serialize;

use crate::args::ScanArgs;
use crate::documents::{bom_path, load_bom, load_feed};
use crate::exit::bad_input;
use crate::untrusted::escape;

const SEVERITIES: [Severity; 6] = [
    Severity::Unknown,
    Severity::Unimportant,
    Severity::Low,
    Severity::Medium,
    Severity::High,
    Severity::Critical,
];

/// `nodeimg scan`'s JSON document `format`.
pub const SCAN_FORMAT: &str = "nodeimg-scan";

/// The JSON report.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// Always [`SCAN_FORMAT`].
    pub format: &'static str,
    /// Always 1.
    pub version: u32,
    /// The BOM file read.
    pub bom: String,
    /// The release codename matched against the Debian tracker.
    pub release: Option<&'a str>,
    /// Every feed: path and kind.
    pub feeds: Vec<FeedSummary>,
    /// `--fail-on`, if given.
    pub fail_on: Option<Severity>,
    /// Every finding.
    pub findings: &'a [Finding],
    /// Counts.
    pub summary: Summary,
    /// What could not be checked.
    pub notes: &'a [String],
}

/// A feed in the report.
#[derive(Debug, Serialize)]
pub struct FeedSummary {
    /// The file.
    pub path: String,
    /// `debian-tracker` or `osv`.
    pub kind: &'static str,
}

/// The report's counts.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Findings in all.
    pub findings: usize,
    /// Findings per severity (every severity present, 0 when none).
    pub by_severity: BTreeMap<&'static str, usize>,
    /// Findings without a fix (open or undetermined).
    pub without_fix: usize,
    /// Findings at or above `--fail-on` (0 without it).
    pub failing: usize,
}

/// Runs `nodeimg scan`.
pub fn run(args: &ScanArgs) -> ExitCode {
    let path = bom_path(&args.bom);
    let bom = match load_bom(&path) {
        Ok(b) => b,
        Err(e) => return bad_input(&e),
    };
    let mut feeds: Vec<Feed> = Vec::new();
    for f in &args.feeds {
        match load_feed(f) {
            Ok(feed) => feeds.push(feed),
            Err(e) => return bad_input(&e),
        }
    }
    let result = scan(&bom, &feeds);
    let summary = summarize(&result, args.fail_on);
    if args.json {
        let report = Report {
            format: SCAN_FORMAT,
            version: 1,
            bom: path.display().to_string(),
            release: bom
                .os
                .os_release
                .get("VERSION_CODENAME")
                .map(String::as_str),
            feeds: feeds
                .iter()
                .map(|f| FeedSummary {
                    path: f.path.clone(),
                    kind: f.kind(),
                })
                .collect(),
            fail_on: args.fail_on,
            findings: &result.findings,
            summary,
            notes: &result.notes,
        };
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => return bad_input(format_args!("cannot render the report: {e}")),
        }
        return exit_code(report.summary.failing);
    }
    print!("{}", render_table(&result, &summary, args.fail_on));
    exit_code(summary.failing)
}

fn exit_code(failing: usize) -> ExitCode {
    if failing > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn summarize(result: &ScanResult, fail_on: Option<Severity>) -> Summary {
    let mut by_severity: BTreeMap<&'static str, usize> =
        SEVERITIES.iter().map(|s| (s.name(), 0)).collect();
    for f in &result.findings {
        *by_severity.entry(f.severity.name()).or_default() += 1;
    }
    Summary {
        findings: result.findings.len(),
        by_severity,
        without_fix: result
            .findings
            .iter()
            .filter(|f| f.state != FixState::Fixed)
            .count(),
        failing: fail_on.map_or(0, |t| {
            result.findings.iter().filter(|f| f.severity >= t).count()
        }),
    }
}

fn fixed_text(f: &Finding) -> String {
    match (&f.fixed_version, f.state) {
        (Some(v), _) => v.clone(),
        (None, FixState::Undetermined) => "undetermined".into(),
        (None, _) => "no fix yet".into(),
    }
}

/// The table: one block per package or component, one row per finding, then notes and the
/// summary line.
pub fn render_table(result: &ScanResult, summary: &Summary, fail_on: Option<Severity>) -> String {
    let mut out = String::new();
    let rows: Vec<[String; 5]> = result
        .findings
        .iter()
        .map(|f| {
            [
                escape(&f.id).into_owned(),
                f.severity.name().to_owned(),
                escape(&f.installed).into_owned(),
                escape(&fixed_text(f)).into_owned(),
                escape(&f.feed).into_owned(),
            ]
        })
        .collect();
    let header = ["ID", "SEVERITY", "INSTALLED", "FIXED", "FEED"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut s = String::from("  ");
        for (k, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if k + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut group: Option<(SubjectKind, &str, &str)> = None;
    for (f, r) in result.findings.iter().zip(&rows) {
        let key = (f.kind, f.name.as_str(), f.installed.as_str());
        if group != Some(key) {
            if group.is_none() {
                out.push_str(&line(header));
            }
            let kind = match f.kind {
                SubjectKind::Package => "package",
                SubjectKind::Component => "component",
            };
            out.push_str(&format!(
                "{kind} {} {}\n",
                escape(&f.name),
                escape(&f.installed)
            ));
            group = Some(key);
        }
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    for n in &result.notes {
        out.push_str(&format!("note: {}\n", escape(n)));
    }
    let counts: Vec<String> = SEVERITIES
        .iter()
        .rev()
        .filter_map(|s| {
            let n = summary.by_severity.get(s.name()).copied().unwrap_or(0);
            (n > 0).then(|| format!("{n} {}", s.name()))
        })
        .collect();
    let subjects = result
        .findings
        .iter()
        .map(|f| (f.kind, &f.name, &f.installed))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    out.push_str(&format!(
        "summary: {} finding{} in {subjects} package{}/component{}",
        summary.findings,
        if summary.findings == 1 { "" } else { "s" },
        if subjects == 1 { "" } else { "s" },
        if subjects == 1 { "" } else { "s" },
    ));
    if !counts.is_empty() {
        out.push_str(&format!(
            " ({}; {} without a fix)",
            counts.join(", "),
            summary.without_fix
        ));
    }
    if let Some(t) = fail_on {
        out.push_str(&format!(
            "; {} at or above --fail-on {}",
            summary.failing,
            t.name()
        ));
    }
    out.push('\n');
    out
}
