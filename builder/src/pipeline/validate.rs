//! Checks run in a guest: each a named command whose exit status is the verdict and whose
//! output is the evidence. Results go to the terminal, `build.log` and `validation.junit.xml`.

use std::time::Duration;

use anyhow::Result;
use qemu::ssh::Ssh;

use super::guest::{self, GuestCommand};
use crate::build::report::Reporter;

/// One check to run.
#[derive(Debug, Clone)]
pub struct NamedCheck {
    /// JUnit class: `validation`, `boot-test`, `kubeadm`, `spec`.
    pub class: String,
    /// The command.
    pub command: GuestCommand,
}

/// One check's result.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// JUnit class.
    pub class: String,
    /// Check name.
    pub name: String,
    /// How long it ran.
    pub took: Duration,
    /// `None` when it passed, else what it said (its last lines) and how it ended.
    pub failure: Option<String>,
    /// Its whole output.
    pub output: String,
}

impl CheckResult {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Runs every check (all of them, even after a failure) and returns the results in order.
/// Only an SSH failure is an error.
pub fn run_checks(
    ssh: &Ssh,
    phase: &str,
    checks: &[NamedCheck],
    reporter: &Reporter,
) -> Result<Vec<CheckResult>> {
    let mut results = Vec::new();
    for check in checks {
        let name = &check.command.name;
        reporter.step_started(phase, name);
        let ran = guest::run(ssh, &check.command, reporter)?;
        reporter.step_finished(phase, name, ran.took, ran.success());
        let failure = (!ran.success()).then(|| {
            let tail = ran.tail();
            let message = format!("{} — {}", ran.outcome(), tail.trim());
            reporter.info(&format!("FAILED {}/{name}: {message}", check.class));
            message
        });
        results.push(CheckResult {
            class: check.class.clone(),
            name: name.clone(),
            took: ran.took,
            failure,
            output: ran.output,
        });
    }
    Ok(results)
}

/// The spec's own `[[checks]]`.
pub fn spec_checks(spec: &crate::spec::Spec) -> Vec<NamedCheck> {
    spec.checks
        .iter()
        .map(|c| NamedCheck {
            class: "spec".into(),
            command: GuestCommand::user_script("", &c.name, &c.run, Duration::from_secs(300)),
        })
        .collect()
}

/// `N passed, M failed: a, b`.
pub fn summary(results: &[CheckResult]) -> String {
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.name.as_str())
        .collect();
    let passed = results.len() - failed.len();
    if failed.is_empty() {
        format!("{passed} passed")
    } else {
        format!(
            "{passed} passed, {} failed: {}",
            failed.len(),
            failed.join(", ")
        )
    }
}
