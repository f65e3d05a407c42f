//! `nodeimg audit`: the offline seal hygiene audit of a disk image. The root filesystem is read
//! in place through the project's read-only ext4 reader (no boot, no mount, no loop device) and
//! checked against what the seal (`distros::seal`) leaves behind: an empty machine-id, no SSH
//! host keys, no build user, no cloud-init instance data, no histories, private keys or core
//! dumps, empty apt lists, a small `/var/log` and no journal files.
//!
//! Each check is one JUnit case; a failure names every path it found.

mod checks;
mod view;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use diskimg::ext4::Ext4;

use crate::junit::{CaseResult, Outcome};

pub use checks::HISTORY_FILES;

/// The default limit on the bytes of regular files under `/var/log`. The seal truncates every
/// log to 0 bytes, so a sealed disk holds far less; 1 MiB leaves room for what services write
/// between the seal and power-off.
pub const DEFAULT_VAR_LOG_LIMIT: u64 = 1 << 20;

/// The JUnit class name of the audit's cases.
pub const JUNIT_CLASSNAME: &str = "nodeimg.audit";

/// What the audit is told.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The build user that the seal deletes ([`distros::BUILD_USER`] by default).
    pub build_user: String,
    /// Most bytes of regular files allowed under `/var/log`.
    pub var_log_limit: u64,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            build_user: distros::BUILD_USER.to_string(),
            var_log_limit: DEFAULT_VAR_LOG_LIMIT,
        }
    }
}

/// Why the audit could not run (the disk could not be read); a failed check is not an error.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The disk, its partition table or its filesystem is unreadable, corrupt or unsupported.
    #[error(transparent)]
    Disk(#[from] diskimg::Error),
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The check's name (the JUnit case name), e.g. `machine-id`.
    pub name: &'static str,
    /// What it requires.
    pub description: &'static str,
    /// What it found wrong, each naming a path; empty when it passed.
    pub findings: Vec<String>,
    /// How long it took.
    pub duration: std::time::Duration,
}

impl CheckResult {
    /// Whether the check passed.
    pub fn passed(&self) -> bool {
        self.findings.is_empty()
    }
}

/// The audit of one disk.
#[derive(Debug, Clone)]
pub struct AuditReport {
    /// The disk image.
    pub disk: PathBuf,
    /// The GPT partition number of the root filesystem.
    pub partition: u32,
    /// Every check, in order.
    pub checks: Vec<CheckResult>,
}

impl AuditReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(CheckResult::passed)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| !c.passed())
    }

    /// The terminal report: one `ok`/`FAIL` line per check, findings indented below failures,
    /// and a summary line.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let status = if c.passed() { "ok  " } else { "FAIL" };
            let _ = writeln!(out, "{status} {:<20} {}", c.name, c.description);
            // Findings hold file names from the disk: shown escaped, one line each.
            for f in &c.findings {
                let _ = writeln!(out, "       {}", crate::untrusted::escape(f));
            }
        }
        let failed = self.failures().count();
        let _ = writeln!(
            out,
            "audit {} (root filesystem in partition {}): {} checks, {}",
            crate::untrusted::escape(&self.disk.display().to_string()),
            self.partition,
            self.checks.len(),
            if failed == 0 {
                "all passed".to_string()
            } else {
                format!("{failed} failed")
            }
        );
        out
    }

    /// The checks as JUnit cases (class [`JUNIT_CLASSNAME`]).
    pub fn junit_cases(&self) -> Vec<CaseResult> {
        self.checks
            .iter()
            .map(|c| CaseResult {
                name: c.name.to_string(),
                classname: JUNIT_CLASSNAME.to_string(),
                duration: c.duration,
                outcome: if c.passed() {
                    Outcome::Passed
                } else {
                    Outcome::Failed {
                        message: format!(
                            "{}: {} finding(s): {}",
                            c.description,
                            c.findings.len(),
                            c.findings.first().map(String::as_str).unwrap_or("")
                        ),
                        output: c.findings.join("\n"),
                    }
                },
            })
            .collect()
    }

    /// The JUnit suite name: `nodeimg.audit.<file name>`.
    pub fn junit_suite(&self) -> String {
        let name = self
            .disk
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{JUNIT_CLASSNAME}.{name}")
    }
}

/// Audits the disk image `path` (raw, qcow2, vmdk, vhd or ova with a GPT and an ext4 root).
/// Unreadable input is an [`AuditError`] naming the file and what is wrong; failed checks are
/// in the report.
pub fn audit_disk(path: &Path, options: &AuditOptions) -> Result<AuditReport, AuditError> {
    let mut root = diskimg::rootfs::open_root_fs(path)?;
    let checks = audit_fs(&mut root.fs, options)?;
    Ok(AuditReport {
        disk: path.to_path_buf(),
        partition: root.partition.number,
        checks,
    })
}

/// Runs every check on an opened root filesystem.
pub fn audit_fs(fs: &mut Ext4, options: &AuditOptions) -> Result<Vec<CheckResult>, AuditError> {
    let mut view = view::View { fs };
    let mut results = Vec::new();
    for check in checks::CHECKS {
        let start = Instant::now();
        let findings = (check.run)(&mut view, options)?;
        tracing::debug!("audit {}: {} finding(s)", check.name, findings.len());
        results.push(CheckResult {
            name: check.name,
            description: check.description,
            findings,
            duration: start.elapsed(),
        });
    }
    Ok(results)
}
