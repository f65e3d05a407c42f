//! `nodeimg doctor`: can `nodeimg build` / `nodeimg boot` run on this host, and if not, what to
//! install. Checks QEMU, UEFI firmware, the accelerator (probed by behaviour), qemu-img and the
//! free space of the work directory ([`checks`]); this module runs them, draws the verdict and
//! prints the report.

mod checks;

use std::path::Path;

use anyhow::{Result, bail};
use qemu::accel::AccelChoice;
use qemu::host::{self, QEMU_ENV};
use serde::Serialize;

use crate::args::DoctorArgs;
use checks::{AccelFound, BinaryFound, DiskFound, FirmwareFound};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// A build can run, but something deserves attention.
    Warn,
    /// A build cannot run.
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// The part every check has: status, what was found, what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// ok, warn or fail.
    pub status: Status,
    /// What was found, in words.
    pub message: String,
    /// What to install or do; `None` when the check is ok.
    pub fix: Option<String>,
}

impl Outcome {
    fn ok(message: String) -> Outcome {
        Outcome {
            status: Status::Ok,
            message,
            fix: None,
        }
    }

    fn not_ok(status: Status, message: String, fix: String) -> Outcome {
        Outcome {
            status,
            message,
            fix: Some(fix),
        }
    }
}

/// One check: its outcome and what it found (both flattened into one JSON object).
#[derive(Debug, Clone, Serialize)]
pub struct Check<F> {
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// What the check found.
    #[serde(flatten)]
    pub found: F,
}

/// Everything `doctor` found; `--json` prints this.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// True when a build can run here (no check failed).
    pub ok: bool,
    /// One line: ready or not, and why.
    pub verdict: String,
    /// `qemu-system-x86_64`.
    pub qemu: Check<BinaryFound>,
    /// OVMF code and vars template.
    pub firmware: Check<FirmwareFound>,
    /// The accelerator verdict.
    pub accelerator: Check<AccelFound>,
    /// `qemu-img`.
    pub qemu_img: Check<BinaryFound>,
    /// Free space where VM directories go.
    pub disk: Check<DiskFound>,
}

impl Report {
    /// The checks in display order, with their labels.
    pub fn outcomes(&self) -> [(&'static str, &Outcome); 5] {
        [
            ("qemu", &self.qemu.outcome),
            ("firmware", &self.firmware.outcome),
            ("accelerator", &self.accelerator.outcome),
            ("qemu-img", &self.qemu_img.outcome),
            ("disk", &self.disk.outcome),
        ]
    }

    /// The fixes of the failed checks, in display order, without repeats.
    pub fn required_fixes(&self) -> Vec<&str> {
        let mut fixes: Vec<&str> = Vec::new();
        for (_, o) in self.outcomes() {
            if o.status == Status::Fail
                && let Some(f) = o.fix.as_deref()
                && !fixes.contains(&f)
            {
                fixes.push(f);
            }
        }
        fixes
    }
}

/// `nodeimg doctor`: prints the report; an error (exit 1) when a build cannot run here.
pub fn run(args: &DoctorArgs) -> Result<()> {
    let work_dir = match &args.work_dir {
        Some(dir) => {
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => bail!("--work-dir {}: not a directory", dir.display()),
                Err(e) => bail!("--work-dir {}: {e}", dir.display()),
            }
            dir.clone()
        }
        None => std::env::temp_dir(),
    };
    let report = diagnose(args.accel, &work_dir);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    if report.ok {
        return Ok(());
    }
    bail!(
        "nodeimg build cannot run here; to fix: {}",
        report.required_fixes().join("; ")
    )
}

/// Runs every check. Never fails: whatever goes wrong is a check's outcome.
pub fn diagnose(choice: AccelChoice, work_dir: &Path) -> Report {
    let (qemu, qemu_path) = checks::qemu(std::env::var_os(QEMU_ENV).as_deref());
    let firmware = checks::firmware();
    let accelerator = checks::accel(choice, qemu_path.as_deref());
    let qemu_img = checks::qemu_img(host::find_qemu_img());
    let disk = checks::disk(work_dir);
    let mut report = Report {
        ok: true,
        verdict: String::new(),
        qemu,
        firmware,
        accelerator,
        qemu_img,
        disk,
    };
    let named = |status: Status| -> Vec<&str> {
        report
            .outcomes()
            .iter()
            .filter(|(_, o)| o.status == status)
            .map(|(name, _)| *name)
            .collect()
    };
    let failed = named(Status::Fail);
    let warned = named(Status::Warn);
    report.ok = failed.is_empty();
    report.verdict = if report.ok {
        let accel = report
            .accelerator
            .found
            .accel
            .map_or("none", |a| a.as_str())
            .to_owned();
        let mut v = format!("ready — nodeimg build and boot can run here (accelerator {accel})");
        if !warned.is_empty() {
            v.push_str(&format!("; warnings: {}", warned.join(", ")));
        }
        v
    } else {
        format!("NOT READY — failed: {}", failed.join(", "))
    };
    tracing::debug!(ok = report.ok, verdict = %report.verdict, "doctor done");
    report
}

/// The human report: one aligned line per check, then the verdict line.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for (name, o) in report.outcomes() {
        let mut text = o.message.clone();
        if let Some(fix) = &o.fix
            && !text.contains(fix.as_str())
        {
            text.push_str(" — ");
            text.push_str(fix);
        }
        out.push_str(&format!("{name:<12} {:<5} {text}\n", o.status.label()));
    }
    out.push_str(&format!("verdict: {}\n", report.verdict));
    out
}
