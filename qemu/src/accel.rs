//! Which accelerator to use, decided by behaviour: a tiny guest must really run under KVM.
//!
//! `/dev/kvm` existing (even opening it, even `KVM_CREATE_VM` working) proves little: under
//! some nested set-ups KVM "works" but traps on every instruction, so a guest is thousands of
//! times slower than under TCG (OVMF prints nothing for minutes). The probe therefore boots a
//! 64 KiB firmware image this crate writes itself: at the reset vector, 16-bit real-mode code
//! spins [`PROBE_LOOPS`] loop iterations (about 0.2 s under TCG, milliseconds under real KVM)
//! and then writes 0x2a to an `isa-debug-exit` port, so QEMU exits with status
//! `(0x2a << 1) | 1` = [`PROBE_EXIT_CODE`]. KVM is chosen only if that happens within the
//! deadline. The same guest under TCG is the probe's self-test ([`tcg_self_test`]).

use std::ffi::OsString;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::process;

/// The exit status QEMU reports when the probe guest finished: `(0x2a << 1) | 1`.
pub const PROBE_EXIT_CODE: i32 = 85;

/// Loop iterations the probe guest spins: 256 × 65535.
pub const PROBE_LOOPS: u32 = 256 * 65_535;

/// How long the KVM probe guest may take, QEMU start-up included.
pub const KVM_DEADLINE: Duration = Duration::from_secs(3);

/// How long the TCG self-test may take.
pub const TCG_DEADLINE: Duration = Duration::from_secs(30);

/// Size of the probe firmware (`-bios` images must be a multiple of 64 KiB).
const FIRMWARE_SIZE: usize = 64 * 1024;

/// An accelerator QEMU can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualisation.
    Kvm,
    /// QEMU's emulator (slow, always works).
    Tcg,
}

impl Accel {
    /// The `-accel` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccelChoice {
    /// Probe: KVM if a guest really runs under it, else TCG.
    #[default]
    Auto,
    /// KVM, without probing.
    Kvm,
    /// TCG, without probing.
    Tcg,
}

impl std::str::FromStr for AccelChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(AccelChoice::Auto),
            "kvm" => Ok(AccelChoice::Kvm),
            "tcg" => Ok(AccelChoice::Tcg),
            other => Err(format!(
                "unknown accelerator {other:?} (expected auto, kvm or tcg)"
            )),
        }
    }
}

/// The decision and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccelVerdict {
    /// The accelerator to use.
    pub accel: Accel,
    /// Why, in words (for logs and `doctor`).
    pub reason: String,
}

static VERDICT: OnceLock<AccelVerdict> = OnceLock::new();

/// Resolves `choice`: overrides are taken as given, `Auto` probes once per process (with the
/// first `qemu` it is given) and caches the verdict.
pub fn resolve(choice: AccelChoice, qemu: &Path) -> AccelVerdict {
    match choice {
        AccelChoice::Kvm => AccelVerdict {
            accel: Accel::Kvm,
            reason: "kvm requested explicitly (not probed)".to_owned(),
        },
        AccelChoice::Tcg => AccelVerdict {
            accel: Accel::Tcg,
            reason: "tcg requested explicitly".to_owned(),
        },
        AccelChoice::Auto => VERDICT
            .get_or_init(|| probe_kvm(qemu, KVM_DEADLINE))
            .clone(),
    }
}

/// Probes KVM now (uncached): `/dev/kvm` must open read-write and the probe guest must finish
/// under `-accel kvm` within `deadline`. Never fails: any problem makes the verdict TCG.
pub fn probe_kvm(qemu: &Path, deadline: Duration) -> AccelVerdict {
    let tcg = |reason: String| {
        tracing::info!(%reason, "using TCG");
        AccelVerdict {
            accel: Accel::Tcg,
            reason,
        }
    };
    let dev = Path::new("/dev/kvm");
    if let Err(e) = std::fs::File::options().read(true).write(true).open(dev) {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => {
                " (no KVM: module not loaded or no hardware virtualisation)"
            }
            std::io::ErrorKind::PermissionDenied => " (add the user to the kvm group)",
            _ => "",
        };
        return tcg(format!("cannot open /dev/kvm: {e}{hint}"));
    }
    match run_probe_guest(qemu, Accel::Kvm, deadline) {
        Ok(took) => {
            let reason = format!("KVM ran the probe guest ({PROBE_LOOPS} loops) in {took:?}");
            tracing::info!(%reason, "using KVM");
            AccelVerdict {
                accel: Accel::Kvm,
                reason,
            }
        }
        Err(Error::Timeout { after, .. }) => tcg(format!(
            "/dev/kvm is present but KVM did not run the probe guest ({PROBE_LOOPS} loops, \
             ~0.2 s under TCG) within {after:?}; killed it (nested virtualisation missing?)"
        )),
        Err(e) => tcg(format!("KVM did not run the probe guest: {e}")),
    }
}

/// Runs the probe guest under TCG and checks it exits with [`PROBE_EXIT_CODE`]: proof that the
/// probe guest is right, so a KVM failure means KVM.
pub fn tcg_self_test(qemu: &Path) -> Result<Duration> {
    run_probe_guest(qemu, Accel::Tcg, TCG_DEADLINE)
}

/// Boots the probe guest under `accel`; `Ok(elapsed)` if QEMU exits with [`PROBE_EXIT_CODE`]
/// within `deadline` (else it is killed).
pub fn run_probe_guest(qemu: &Path, accel: Accel, deadline: Duration) -> Result<Duration> {
    let probe_err = |reason: String| Error::Probe {
        accel: accel.as_str(),
        reason,
    };
    let dir = tempfile::Builder::new()
        .prefix("nodeimg-accel-")
        .tempdir()
        .map_err(|e| probe_err(format!("creating a temporary directory: {e}")))?;
    let bios = dir.path().join("probe.bin");
    std::fs::write(&bios, probe_firmware()).map_err(|e| Error::io("writing", &bios, e))?;
    let log = dir.path().join("qemu.log");
    let start = Instant::now();
    let mut child = process::spawn(qemu, &probe_args(accel, &bios), &log, "accel probe")?;
    let status = child.wait_timeout(deadline)?;
    let took = start.elapsed();
    if status.code() == Some(PROBE_EXIT_CODE) {
        tracing::debug!(%accel, ?took, "probe guest finished");
        Ok(took)
    } else {
        Err(child.exited_error(status))
    }
}

/// The QEMU arguments that boot the probe guest.
pub fn probe_args(accel: Accel, bios: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = [
        "-no-user-config",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
        "-machine",
        "pc",
        "-accel",
        accel.as_str(),
        "-m",
        "16",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-bios",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    a.push(bios.as_os_str().to_owned());
    a
}

/// The 64 KiB probe firmware. The last 64 KiB of a `-bios` image are mapped at 0xF0000, so
/// offset 0 is F000:0000 and offset 0xFFF0 is the reset vector (F000:FFF0).
pub fn probe_firmware() -> Vec<u8> {
    let mut img = vec![0xf4_u8; FIRMWARE_SIZE]; // hlt everywhere
    #[rustfmt::skip]
    let main: [u8; 18] = [
        0xbb, 0x00, 0x01,       // mov bx, 256
        0xb9, 0xff, 0xff,       // outer: mov cx, 65535
        0xe2, 0xfe,             // inner: loop inner
        0x4b,                   // dec bx
        0x75, 0xf7,             // jnz outer
        0xb0, 0x2a,             // mov al, 0x2a
        0xe6, 0xf4,             // out 0xf4, al   -> QEMU exits with (0x2a << 1) | 1
        0xf4,                   // hlt
        0xeb, 0xfd,             // jmp hlt
    ];
    img[..main.len()].copy_from_slice(&main);
    let reset: [u8; 5] = [0xea, 0x00, 0x00, 0x00, 0xf0]; // jmp far F000:0000
    img[0xfff0..0xfff0 + reset.len()].copy_from_slice(&reset);
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_layout() {
        let f = probe_firmware();
        assert_eq!(f.len(), 65536);
        assert_eq!(&f[0xfff0..0xfff5], &[0xea, 0, 0, 0, 0xf0]);
        assert_eq!(f[0], 0xbb);
        // the exit value and the port
        assert!(f.windows(4).any(|w| w == [0xb0, 0x2a, 0xe6, 0xf4]));
        assert_eq!((0x2a << 1) | 1, PROBE_EXIT_CODE);
    }

    #[test]
    fn probe_args_name_accel_and_bios() {
        let a = probe_args(Accel::Kvm, Path::new("/t/probe.bin"));
        let s: Vec<String> = a.iter().map(|x| x.to_string_lossy().into_owned()).collect();
        let i = s.iter().position(|x| x == "-accel").unwrap();
        assert_eq!(s[i + 1], "kvm");
        assert_eq!(s.last().unwrap(), "/t/probe.bin");
        assert!(
            s.iter()
                .any(|x| x.starts_with("isa-debug-exit,iobase=0xf4"))
        );
    }

    #[test]
    fn choice_parses_and_overrides_do_not_probe() {
        assert_eq!("auto".parse::<AccelChoice>(), Ok(AccelChoice::Auto));
        assert_eq!("kvm".parse::<AccelChoice>(), Ok(AccelChoice::Kvm));
        assert!("hvf".parse::<AccelChoice>().is_err());
        let q = Path::new("/nonexistent/qemu");
        assert_eq!(resolve(AccelChoice::Tcg, q).accel, Accel::Tcg);
        assert_eq!(resolve(AccelChoice::Kvm, q).accel, Accel::Kvm);
    }

    #[test]
    fn missing_qemu_means_tcg_with_reason() {
        let v = probe_kvm(Path::new("/nonexistent/qemu"), Duration::from_secs(1));
        assert_eq!(v.accel, Accel::Tcg);
        assert!(!v.reason.is_empty());
    }

    #[test]
    fn verdict_json() {
        let v = AccelVerdict {
            accel: Accel::Tcg,
            reason: "r".into(),
        };
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"accel":"tcg","reason":"r"}"#
        );
    }
}
