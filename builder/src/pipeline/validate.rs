//! Checks run in a guest: each a named command whose exit status is the verdict and whose
//! output is the evidence. Every check of the build — guest checks, the seal audit, the serial
//! console scans — is one [`CaseResult`], the JUnit case it becomes: results go to the terminal,
//! `build.log` and `validation.junit.xml`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use qemu::ssh::Ssh;

use super::guest::{self, GuestCommand};
use super::output::JUNIT;
use crate::junit::{CaseResult, Outcome};
use crate::report::Reporter;

/// One check to run.
#[derive(Debug, Clone)]
pub struct NamedCheck {
    /// JUnit class: `validation`, `boot-test`, `kubeadm`, `spec`.
    pub class: String,
    /// The command.
    pub command: GuestCommand,
}

/// Checks that do not depend on each other run in this many lanes side by side (the guests
/// have two vCPUs; most checks wait on a process start).
const CHECK_LANES: usize = 2;

/// Runs `checks` as one batch (all of them, even after a failure, unless `stop_at_failure`:
/// then the first failure ends the run, as when each check needs the one before) and returns
/// the results in order. Only a lost SSH session or a cut batch is an error.
pub fn run_checks(
    ssh: &Ssh,
    phase: &str,
    checks: &[NamedCheck],
    stop_at_failure: bool,
    reporter: &Reporter,
) -> Result<Vec<CaseResult>> {
    let commands: Vec<GuestCommand> = checks.iter().map(|c| c.command.clone()).collect();
    let lanes = if stop_at_failure { 1 } else { CHECK_LANES };
    let ran = guest::run_batch(ssh, phase, &commands, stop_at_failure, lanes, reporter)?;
    let mut results = Vec::new();
    for (check, ran) in checks.iter().zip(ran) {
        let name = &check.command.name;
        let outcome = if ran.success() {
            Outcome::Passed
        } else {
            let tail = ran.tail();
            let message = format!("{} — {}", ran.outcome(), tail.trim());
            reporter.info(&format!("FAILED {}/{name}: {message}", check.class));
            Outcome::Failed {
                message,
                output: ran.output,
            }
        };
        results.push(CaseResult {
            name: name.clone(),
            classname: check.class.clone(),
            duration: ran.took,
            outcome,
        });
    }
    Ok(results)
}

/// One result per serial console: passed when the scan finds no kernel panic, oops, segfault,
/// OOM kill, emergency shell or ordering cycle; else the findings with their line numbers.
pub fn console_result(name: &str, serial: &str) -> CaseResult {
    let findings = distros::console::scan_console(serial);
    let text: Vec<String> = findings
        .iter()
        .map(|f| format!("line {}: {}: {}", f.line_number, f.kind.as_str(), f.line))
        .collect();
    CaseResult {
        name: name.to_owned(),
        classname: "console".into(),
        duration: Duration::ZERO,
        outcome: if findings.is_empty() {
            Outcome::Passed
        } else {
            Outcome::Failed {
                message: format!("{} finding(s): {}", findings.len(), text.join("; ")),
                output: text.join("\n"),
            }
        },
    }
}

/// Writes `validation.junit.xml` into `dir` (atomically).
pub fn write_junit(dir: &Path, suite: &str, results: &[CaseResult]) -> Result<()> {
    let path = dir.join(JUNIT);
    crate::junit::write(&path, suite, results)
        .with_context(|| format!("writing {}", path.display()))
}

/// `N passed, M failed: a, b`.
pub fn summary(results: &[CaseResult]) -> String {
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| r.failed())
        .map(|r| r.name.as_str())
        .collect();
    let skipped = results
        .iter()
        .filter(|r| !r.passed() && !r.failed())
        .count();
    let passed = results.len() - failed.len() - skipped;
    let skipped = if skipped > 0 {
        format!(", {skipped} skipped")
    } else {
        String::new()
    };
    if failed.is_empty() {
        format!("{passed} passed{skipped}")
    } else {
        format!(
            "{passed} passed{skipped}, {} failed: {}",
            failed.len(),
            failed.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_console_passes_and_a_panic_fails_with_its_line() {
        assert!(console_result("c", "[    0.0] Linux version 6.1\nlogin:\n").passed());
        let r = console_result(
            "c",
            "ok\n[   12.3] Kernel panic - not syncing: VFS: Unable to mount root fs\n",
        );
        let failure = r.failure().unwrap();
        assert!(failure.contains("line 2"), "{failure}");
        assert!(failure.contains("kernel-panic"), "{failure}");
    }
}
