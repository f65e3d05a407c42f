//! `nodeimg doctor`: can `nodeimg build` / `nodeimg boot` run on this host, and if not, what to
//! install. Checks QEMU, UEFI firmware, the accelerator (probed by behaviour), qemu-img and the
//! free space of the work directory.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use qemu::accel::{self, Accel, AccelChoice};
use qemu::host::{self, QEMU_BINARY};
use serde::Serialize;

use crate::cli::DoctorArgs;

/// Free bytes the work directory needs for a build (VM directory, overlay, golden disk): 4 GiB.
pub const MIN_FREE_BYTES: u64 = 4 << 30;

/// Below this many free bytes a build can still run, but the check warns: 8 GiB.
pub const LOW_FREE_BYTES: u64 = 2 * MIN_FREE_BYTES;

/// Environment variable naming the QEMU binary to use instead of searching for it.
pub use qemu::host::QEMU_ENV;

const GIB: u64 = 1 << 30;

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

/// `qemu-system-x86_64`.
#[derive(Debug, Clone, Serialize)]
pub struct QemuCheck {
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The binary, when found.
    pub path: Option<String>,
    /// Where the path came from: `NODEIMG_QEMU` or `search`.
    pub source: &'static str,
    /// Its version, e.g. `7.2.22`.
    pub version: Option<String>,
    /// The first line of `--version`.
    pub version_line: Option<String>,
}

/// OVMF code and vars template.
#[derive(Debug, Clone, Serialize)]
pub struct FirmwareCheck {
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The OVMF code image.
    pub code: Option<String>,
    /// The variable-store template.
    pub vars_template: Option<String>,
}

/// The accelerator verdict.
#[derive(Debug, Clone, Serialize)]
pub struct AccelCheck {
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// What `--accel` asked for.
    pub choice: AccelChoice,
    /// The accelerator a build would use (`None` when there is no QEMU to ask).
    pub accel: Option<Accel>,
    /// Why.
    pub reason: String,
    /// Whether a probe guest was run.
    pub probed: bool,
    /// How long deciding took, in milliseconds.
    pub probe_ms: u64,
}

/// `qemu-img`.
#[derive(Debug, Clone, Serialize)]
pub struct QemuImgCheck {
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The binary, when found (on `$PATH`, then in /usr/bin and /usr/libexec, as `boot` does).
    pub path: Option<String>,
    /// Its version.
    pub version: Option<String>,
    /// The first line of `--version`.
    pub version_line: Option<String>,
}

/// Free space where VM directories go.
#[derive(Debug, Clone, Serialize)]
pub struct DiskCheck {
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The directory checked.
    pub work_dir: String,
    /// Bytes available to unprivileged users there.
    pub free_bytes: Option<u64>,
    /// Bytes a build needs ([`MIN_FREE_BYTES`]).
    pub required_bytes: u64,
}

/// Everything `doctor` found; `--json` prints this.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// True when a build can run here (no check failed).
    pub ok: bool,
    /// One line: ready or not, and why.
    pub verdict: String,
    /// QEMU.
    pub qemu: QemuCheck,
    /// UEFI firmware.
    pub firmware: FirmwareCheck,
    /// Accelerator.
    pub accelerator: AccelCheck,
    /// qemu-img.
    pub qemu_img: QemuImgCheck,
    /// Free disk space.
    pub disk: DiskCheck,
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

/// The `--accel` value parser: auto, kvm or tcg (listed in `--help` and in usage errors).
pub fn accel_choice_parser() -> impl TypedValueParser<Value = AccelChoice> {
    PossibleValuesParser::new(["auto", "kvm", "tcg"]).try_map(|s| s.parse::<AccelChoice>())
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
    let (qemu, qemu_path) = check_qemu(std::env::var_os(QEMU_ENV).as_deref());
    let firmware = check_firmware();
    let accelerator = check_accel(choice, qemu_path.as_deref());
    let qemu_img = check_qemu_img(host::find_qemu_img());
    let disk = check_disk(work_dir);
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

/// The install hint the qemu crate gives for a missing QEMU ("apt-get install …").
fn qemu_install_hint() -> String {
    let e = qemu::Error::QemuNotFound {
        searched: String::new(),
    };
    install_hint(&e.to_string()).unwrap_or_else(|| e.to_string())
}

/// The "install it: …" tail of a qemu crate error message.
fn install_hint(message: &str) -> Option<String> {
    message
        .split_once("install it: ")
        .map(|(_, hint)| hint.trim().to_owned())
}

/// The QEMU binary: `override_path` (the value of `NODEIMG_QEMU`) when set and non-empty,
/// else found via `$PATH` and [`host::FALLBACK_DIRS`]. Returns where it came from; the error
/// says what is wrong.
pub fn locate_qemu(override_path: Option<&OsStr>) -> (Result<PathBuf, String>, &'static str) {
    match host::qemu_override(override_path) {
        Some(found) => (found.map_err(|e| e.to_string()), QEMU_ENV),
        None => (
            host::find_qemu(std::env::var_os("PATH").as_deref(), host::FALLBACK_DIRS)
                .map_err(|e| e.to_string()),
            "search",
        ),
    }
}

fn check_qemu(override_path: Option<&OsStr>) -> (QemuCheck, Option<PathBuf>) {
    let (found, source) = locate_qemu(override_path);
    let mut check = QemuCheck {
        outcome: Outcome::ok(String::new()),
        path: None,
        source,
        version: None,
        version_line: None,
    };
    let path = match found {
        Ok(p) => p,
        Err(message) => {
            tracing::debug!(%message, "no QEMU");
            let mut fix = qemu_install_hint();
            if source == QEMU_ENV {
                fix = format!(
                    "point {QEMU_ENV} at a {QEMU_BINARY} binary or unset it (to install QEMU: {fix})"
                );
            }
            check.outcome = Outcome::not_ok(Status::Fail, message, fix);
            return (check, None);
        }
    };
    check.path = Some(path.display().to_string());
    match host::qemu_version(&path) {
        Ok((version, line)) => {
            check.outcome = Outcome::ok(format!("{} {version} ({line})", path.display()));
            check.version = Some(version.to_string());
            check.version_line = Some(line);
            (check, Some(path))
        }
        Err(e) => {
            let fix = format!("reinstall QEMU: {}", qemu_install_hint());
            check.outcome = Outcome::not_ok(Status::Fail, e.to_string(), fix);
            (check, None)
        }
    }
}

fn check_firmware() -> FirmwareCheck {
    match host::find_firmware(host::FIRMWARE_CANDIDATES) {
        Ok(fw) => FirmwareCheck {
            outcome: Outcome::ok(format!(
                "{} + {}",
                fw.code.display(),
                fw.vars_template.display()
            )),
            code: Some(fw.code.display().to_string()),
            vars_template: Some(fw.vars_template.display().to_string()),
        },
        Err(e) => {
            let message = e.to_string();
            let fix = install_hint(&message).unwrap_or_else(|| "install OVMF".to_owned());
            FirmwareCheck {
                outcome: Outcome::not_ok(Status::Fail, message, fix),
                code: None,
                vars_template: None,
            }
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn check_accel(choice: AccelChoice, qemu: Option<&Path>) -> AccelCheck {
    let Some(qemu) = qemu else {
        return AccelCheck {
            outcome: Outcome::not_ok(
                Status::Warn,
                "not probed: no working QEMU".to_owned(),
                "fix the qemu check first".to_owned(),
            ),
            choice,
            accel: None,
            reason: "no working QEMU to probe with".to_owned(),
            probed: false,
            probe_ms: 0,
        };
    };
    if choice == AccelChoice::Auto {
        tracing::info!(
            "probing KVM with a tiny guest (up to {:?})",
            accel::KVM_DEADLINE
        );
    }
    let start = Instant::now();
    let verdict = accel::resolve(choice, qemu);
    let mut probed = choice == AccelChoice::Auto;
    let mut outcome = Outcome::ok(format!("{}: {}", verdict.accel, verdict.reason));
    if choice == AccelChoice::Kvm {
        // `resolve` takes an explicit kvm as given; a build forced onto KVM that cannot run
        // guests would hang, so say so (not a failure: --accel auto would still build).
        tracing::info!(
            "checking that KVM runs guests (up to {:?})",
            accel::KVM_DEADLINE
        );
        let probe = accel::probe_kvm(qemu, accel::KVM_DEADLINE);
        probed = true;
        if probe.accel != Accel::Kvm {
            outcome = Outcome::not_ok(
                Status::Warn,
                format!(
                    "kvm requested, but KVM does not run guests here: {}",
                    probe.reason
                ),
                "use --accel auto (TCG) or make KVM work".to_owned(),
            );
        }
    }
    let took = start.elapsed();
    if probed && outcome.status == Status::Ok {
        outcome.message = format!("{} (probe took {} ms)", outcome.message, millis(took));
    }
    AccelCheck {
        outcome,
        choice,
        accel: Some(verdict.accel),
        reason: verdict.reason,
        probed,
        probe_ms: millis(took),
    }
}

/// The install hint the qemu crate gives for a missing qemu-img ("apt-get install qemu-utils …").
fn qemu_img_install_hint() -> String {
    let e = qemu::Error::QemuImgNotFound {
        searched: String::new(),
    };
    install_hint(&e.to_string()).unwrap_or_else(|| e.to_string())
}

/// `found` is where `nodeimg boot` would take qemu-img from ([`host::find_qemu_img`]).
fn check_qemu_img(found: qemu::Result<PathBuf>) -> QemuImgCheck {
    let path = match found {
        Ok(p) => p,
        Err(e) => {
            let message = e.to_string();
            let fix = install_hint(&message).unwrap_or_else(qemu_img_install_hint);
            return QemuImgCheck {
                outcome: Outcome::not_ok(Status::Fail, message, fix),
                path: None,
                version: None,
                version_line: None,
            };
        }
    };
    let shown = path.display().to_string();
    let fail = |message: String| QemuImgCheck {
        outcome: Outcome::not_ok(
            Status::Fail,
            message,
            format!("reinstall qemu-img: {}", qemu_img_install_hint()),
        ),
        path: Some(shown.clone()),
        version: None,
        version_line: None,
    };
    match host::tool_version(&path, "qemu-img version query") {
        Ok((v, line)) => QemuImgCheck {
            outcome: Outcome::ok(format!("{shown} {v}")),
            path: Some(shown.clone()),
            version: Some(v.to_string()),
            version_line: Some(line),
        },
        Err(e) => fail(e.to_string()),
    }
}

/// Bytes available to unprivileged users on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir)?;
    let blocks: u64 = st.blocks_available();
    let block_size: u64 = st.fragment_size();
    Ok(blocks.saturating_mul(block_size))
}

/// `n` bytes as GiB with one decimal, rounded down.
pub fn gib(n: u64) -> String {
    let tenths = n / (GIB / 10);
    format!("{}.{} GiB", tenths / 10, tenths % 10)
}

/// The status of `free` bytes against [`MIN_FREE_BYTES`] and [`LOW_FREE_BYTES`].
pub fn disk_status(free: u64) -> Status {
    if free < MIN_FREE_BYTES {
        Status::Fail
    } else if free < LOW_FREE_BYTES {
        Status::Warn
    } else {
        Status::Ok
    }
}

fn check_disk(dir: &Path) -> DiskCheck {
    let shown = dir.display().to_string();
    let mut check = DiskCheck {
        outcome: Outcome::ok(String::new()),
        work_dir: shown.clone(),
        free_bytes: None,
        required_bytes: MIN_FREE_BYTES,
    };
    let free = match free_bytes(dir) {
        Ok(f) => f,
        Err(e) => {
            check.outcome = Outcome::not_ok(
                Status::Fail,
                format!("{shown}: {e}"),
                format!(
                    "create {shown}, or point TMPDIR (or --work-dir) at a directory with {} free",
                    gib(MIN_FREE_BYTES)
                ),
            );
            return check;
        }
    };
    check.free_bytes = Some(free);
    let message = format!(
        "{} free in {shown} ({} required)",
        gib(free),
        gib(MIN_FREE_BYTES)
    );
    let fix = format!(
        "free space in {shown}, or point TMPDIR (or --work-dir) at a file system with at least {} free",
        gib(LOW_FREE_BYTES)
    );
    check.outcome = match disk_status(free) {
        Status::Ok => Outcome::ok(message),
        status => Outcome::not_ok(status, message, fix),
    };
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_thresholds() {
        assert_eq!(disk_status(0), Status::Fail);
        assert_eq!(disk_status(MIN_FREE_BYTES - 1), Status::Fail);
        assert_eq!(disk_status(MIN_FREE_BYTES), Status::Warn);
        assert_eq!(disk_status(LOW_FREE_BYTES - 1), Status::Warn);
        assert_eq!(disk_status(LOW_FREE_BYTES), Status::Ok);
        assert_eq!(disk_status(u64::MAX), Status::Ok);
        assert_eq!(gib(MIN_FREE_BYTES), "4.0 GiB");
        assert_eq!(gib(GIB + GIB / 2), "1.5 GiB");
        assert_eq!(gib(0), "0.0 GiB");
        assert!(gib(u64::MAX).ends_with(" GiB"));
    }

    #[test]
    fn qemu_override_and_hints() {
        let (found, source) = locate_qemu(Some(OsStr::new("/nonexistent/qemu")));
        assert_eq!(source, QEMU_ENV);
        assert_eq!(
            found.unwrap_err(),
            "NODEIMG_QEMU=/nonexistent/qemu: not an executable file"
        );
        assert_eq!(
            qemu_install_hint(),
            "apt-get install qemu-system-x86 ovmf (Debian/Ubuntu) or dnf install qemu-system-x86 edk2-ovmf (Fedora)"
        );
        assert_eq!(install_hint("no hint here"), None);
        let c = check_qemu_img(Err(qemu::Error::QemuImgNotFound {
            searched: "/a, /b".to_owned(),
        }));
        assert_eq!(c.outcome.status, Status::Fail);
        assert_eq!(
            c.outcome.fix.as_deref(),
            Some("apt-get install qemu-utils (Debian/Ubuntu) or dnf install qemu-img (Fedora)")
        );
        assert!(
            c.outcome.message.contains("/a, /b"),
            "{}",
            c.outcome.message
        );
        assert_eq!(c.path, None);
        // a qemu-img that does not answer --version is a failure naming it
        let c = check_qemu_img(Ok(PathBuf::from("/nonexistent/qemu-img")));
        assert_eq!(c.outcome.status, Status::Fail);
        assert!(c.outcome.message.contains("/nonexistent/qemu-img"));
    }

    #[test]
    fn missing_work_dir_is_a_failed_disk_check() {
        let c = check_disk(Path::new("/nonexistent/nodeimg-work"));
        assert_eq!(c.outcome.status, Status::Fail);
        assert_eq!(c.free_bytes, None);
        assert!(c.outcome.message.contains("/nonexistent/nodeimg-work"));
    }
}
