//! The checks `nodeimg doctor` runs, one function each: what was found, and for a problem what
//! to install or do. None of them fails: whatever goes wrong is the check's outcome.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use qemu::accel::{self, Accel, AccelChoice};
use qemu::host::{self, QEMU_BINARY, QEMU_ENV};
use serde::Serialize;

use super::{Check, Outcome, Status};

/// Free bytes the work directory needs for a build (VM directory, overlay, golden disk): 4 GiB.
pub const MIN_FREE_BYTES: u64 = 4 << 30;

/// Below this many free bytes a build can still run, but the check warns: 8 GiB.
pub const LOW_FREE_BYTES: u64 = 2 * MIN_FREE_BYTES;

const GIB: u64 = 1 << 30;

/// A program the build runs (`qemu-system-x86_64`, `qemu-img`).
#[derive(Debug, Clone, Serialize)]
pub struct BinaryFound {
    /// The binary, when found (on `$PATH`, then in /usr/bin and /usr/libexec, as `boot` does).
    pub path: Option<String>,
    /// Where the path came from: `NODEIMG_QEMU` or `search` (QEMU only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
    /// Its version, e.g. `7.2.22`.
    pub version: Option<String>,
    /// The first line of `--version`.
    pub version_line: Option<String>,
}

/// OVMF code and vars template.
#[derive(Debug, Clone, Serialize)]
pub struct FirmwareFound {
    /// The OVMF code image.
    pub code: Option<String>,
    /// The variable-store template.
    pub vars_template: Option<String>,
}

/// The accelerator verdict.
#[derive(Debug, Clone, Serialize)]
pub struct AccelFound {
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

/// Free space where VM directories go.
#[derive(Debug, Clone, Serialize)]
pub struct DiskFound {
    /// The directory checked.
    pub work_dir: String,
    /// Bytes available to unprivileged users there.
    pub free_bytes: Option<u64>,
    /// Bytes a build needs ([`MIN_FREE_BYTES`]).
    pub required_bytes: u64,
}

/// The install hint of a qemu crate error ("apt-get install …"), else its whole message.
fn hint_of(e: &qemu::Error) -> String {
    let message = e.to_string();
    install_hint(&message).unwrap_or(message)
}

/// The install hint the qemu crate gives for a missing QEMU.
fn qemu_install_hint() -> String {
    hint_of(&qemu::Error::QemuNotFound {
        searched: String::new(),
    })
}

/// The install hint the qemu crate gives for a missing qemu-img.
fn qemu_img_install_hint() -> String {
    hint_of(&qemu::Error::QemuImgNotFound {
        searched: String::new(),
    })
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

/// A binary that is not there: `message` says why, `fix` what to do.
fn missing(source: Option<&'static str>, message: String, fix: String) -> Check<BinaryFound> {
    Check {
        outcome: Outcome::not_ok(Status::Fail, message, fix),
        found: BinaryFound {
            path: None,
            source,
            version: None,
            version_line: None,
        },
    }
}

/// A binary found at `path`, checked by asking its version (`what` names the query). Ok with
/// the message `ok_message(path, version, line)`; a failure with `reinstall` as the fix.
fn answering(
    path: &Path,
    source: Option<&'static str>,
    what: &str,
    ok_message: impl FnOnce(&str, &str, &str) -> String,
    reinstall: String,
) -> Check<BinaryFound> {
    let shown = path.display().to_string();
    match host::tool_version(path, what) {
        Ok((version, line)) => {
            let version = version.to_string();
            Check {
                outcome: Outcome::ok(ok_message(&shown, &version, &line)),
                found: BinaryFound {
                    path: Some(shown),
                    source,
                    version: Some(version),
                    version_line: Some(line),
                },
            }
        }
        Err(e) => {
            let mut check = missing(source, e.to_string(), reinstall);
            check.found.path = Some(shown);
            check
        }
    }
}

/// `qemu-system-x86_64`, and its path when it answers (for the accelerator probe).
pub fn qemu(override_path: Option<&OsStr>) -> (Check<BinaryFound>, Option<PathBuf>) {
    let (found, source) = locate_qemu(override_path);
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
            return (missing(Some(source), message, fix), None);
        }
    };
    let check = answering(
        &path,
        Some(source),
        "qemu version query",
        |shown, version, line| format!("{shown} {version} ({line})"),
        format!("reinstall QEMU: {}", qemu_install_hint()),
    );
    let answered = (check.outcome.status == Status::Ok).then_some(path);
    (check, answered)
}

/// OVMF code and vars template.
pub fn firmware() -> Check<FirmwareFound> {
    match host::find_firmware(host::FIRMWARE_CANDIDATES) {
        Ok(fw) => Check {
            outcome: Outcome::ok(format!(
                "{} + {}",
                fw.code.display(),
                fw.vars_template.display()
            )),
            found: FirmwareFound {
                code: Some(fw.code.display().to_string()),
                vars_template: Some(fw.vars_template.display().to_string()),
            },
        },
        Err(e) => {
            let message = e.to_string();
            let fix = install_hint(&message).unwrap_or_else(|| "install OVMF".to_owned());
            Check {
                outcome: Outcome::not_ok(Status::Fail, message, fix),
                found: FirmwareFound {
                    code: None,
                    vars_template: None,
                },
            }
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The accelerator `choice` resolves to with the QEMU at `qemu` (a warning without one).
pub fn accel(choice: AccelChoice, qemu: Option<&Path>) -> Check<AccelFound> {
    let Some(qemu) = qemu else {
        return Check {
            outcome: Outcome::not_ok(
                Status::Warn,
                "not probed: no working QEMU".to_owned(),
                "fix the qemu check first".to_owned(),
            ),
            found: AccelFound {
                choice,
                accel: None,
                reason: "no working QEMU to probe with".to_owned(),
                probed: false,
                probe_ms: 0,
            },
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
    Check {
        outcome,
        found: AccelFound {
            choice,
            accel: Some(verdict.accel),
            reason: verdict.reason,
            probed,
            probe_ms: millis(took),
        },
    }
}

/// `qemu-img`; `found` is where `nodeimg boot` would take it from ([`host::find_qemu_img`]).
pub fn qemu_img(found: qemu::Result<PathBuf>) -> Check<BinaryFound> {
    match found {
        Ok(path) => answering(
            &path,
            None,
            "qemu-img version query",
            |shown, version, _| format!("{shown} {version}"),
            format!("reinstall qemu-img: {}", qemu_img_install_hint()),
        ),
        Err(e) => {
            let message = e.to_string();
            let fix = install_hint(&message).unwrap_or_else(qemu_img_install_hint);
            missing(None, message, fix)
        }
    }
}

/// Bytes available to unprivileged users on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> anyhow::Result<u64> {
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

/// Free space in `dir`, where VM directories go.
pub fn disk(dir: &Path) -> Check<DiskFound> {
    let shown = dir.display().to_string();
    let mut check = Check {
        outcome: Outcome::ok(String::new()),
        found: DiskFound {
            work_dir: shown.clone(),
            free_bytes: None,
            required_bytes: MIN_FREE_BYTES,
        },
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
    check.found.free_bytes = Some(free);
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
        let c = qemu_img(Err(qemu::Error::QemuImgNotFound {
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
        assert_eq!(c.found.path, None);
        // a qemu-img that does not answer --version is a failure naming it
        let c = qemu_img(Ok(PathBuf::from("/nonexistent/qemu-img")));
        assert_eq!(c.outcome.status, Status::Fail);
        assert!(c.outcome.message.contains("/nonexistent/qemu-img"));
    }

    #[test]
    fn missing_work_dir_is_a_failed_disk_check() {
        let c = disk(Path::new("/nonexistent/nodeimg-work"));
        assert_eq!(c.outcome.status, Status::Fail);
        assert_eq!(c.found.free_bytes, None);
        assert!(c.outcome.message.contains("/nonexistent/nodeimg-work"));
    }
}
