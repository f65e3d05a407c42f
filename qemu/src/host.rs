//! What the host offers: the `qemu-system-x86_64` binary, its version and the UEFI firmware.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};

/// The QEMU binary's file name.
pub const QEMU_BINARY: &str = "qemu-system-x86_64";

/// Directories searched after `$PATH`.
pub const FALLBACK_DIRS: &[&str] = &["/usr/bin", "/usr/libexec"];

/// OVMF code + vars-template pairs, in order of preference (non-Secure-Boot builds).
pub const FIRMWARE_CANDIDATES: &[(&str, &str)] = &[
    // Debian 12+, Ubuntu 22.04+ (4 MiB flash)
    (
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.fd",
    ),
    // Debian 11, older Ubuntu (2 MiB flash)
    (
        "/usr/share/OVMF/OVMF_CODE.fd",
        "/usr/share/OVMF/OVMF_VARS.fd",
    ),
    // Fedora, RHEL
    (
        "/usr/share/edk2/ovmf/OVMF_CODE.fd",
        "/usr/share/edk2/ovmf/OVMF_VARS.fd",
    ),
    // Arch
    (
        "/usr/share/edk2/x64/OVMF_CODE.4m.fd",
        "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
    ),
    // openSUSE
    (
        "/usr/share/qemu/ovmf-x86_64-code.bin",
        "/usr/share/qemu/ovmf-x86_64-vars.bin",
    ),
];

/// UEFI firmware: read-only code and the template each VM copies its variable store from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Firmware {
    /// The OVMF code image (mapped read-only).
    pub code: PathBuf,
    /// The pristine variable store; never written, each VM gets a copy.
    pub vars_template: PathBuf,
}

/// A QEMU version, e.g. 7.2.22.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct QemuVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Micro.
    pub micro: u32,
}

impl std::fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// The host's QEMU installation, as `nodeimg doctor --json` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    /// The `qemu-system-x86_64` binary.
    pub qemu: PathBuf,
    /// Its version.
    pub qemu_version: QemuVersion,
    /// The first line of `--version`, verbatim (names the distro build).
    pub qemu_version_line: String,
    /// UEFI firmware.
    pub firmware: Firmware,
}

impl Host {
    /// Finds QEMU (via `$PATH`, then [`FALLBACK_DIRS`]), asks its version and finds OVMF.
    pub fn discover() -> Result<Host> {
        let qemu = locate_qemu()?;
        let (qemu_version, qemu_version_line) = qemu_version(&qemu)?;
        let firmware = find_firmware(FIRMWARE_CANDIDATES)?;
        let host = Host {
            qemu,
            qemu_version,
            qemu_version_line,
            firmware,
        };
        tracing::debug!(?host, "host discovered");
        Ok(host)
    }
}

fn is_executable_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The environment variable naming the QEMU binary to use instead of searching for one.
pub const QEMU_ENV: &str = "NODEIMG_QEMU";

/// The QEMU binary named by `value` (the value of [`QEMU_ENV`]), when set and non-empty; it
/// must be an executable file.
pub fn qemu_override(value: Option<&OsStr>) -> Option<Result<PathBuf>> {
    let value = value.filter(|v| !v.is_empty())?;
    let path = PathBuf::from(value);
    Some(if is_executable_file(&path) {
        Ok(path)
    } else {
        Err(Error::QemuOverride { path })
    })
}

/// The QEMU binary: `$NODEIMG_QEMU` when set, else [`QEMU_BINARY`] on `$PATH`, then in
/// [`FALLBACK_DIRS`].
pub fn locate_qemu() -> Result<PathBuf> {
    qemu_override(std::env::var_os(QEMU_ENV).as_deref())
        .unwrap_or_else(|| find_qemu(std::env::var_os("PATH").as_deref(), FALLBACK_DIRS))
}

/// Finds [`QEMU_BINARY`] in the directories of `path_var`, then in `fallback`.
pub fn find_qemu(path_var: Option<&OsStr>, fallback: &[&str]) -> Result<PathBuf> {
    find_program(QEMU_BINARY, path_var, fallback)
        .map_err(|searched| Error::QemuNotFound { searched })
}

/// Finds `qemu-img` (to make copy-on-write overlays) on `$PATH`, then in [`FALLBACK_DIRS`].
pub fn find_qemu_img() -> Result<PathBuf> {
    find_program(
        QEMU_IMG_BINARY,
        std::env::var_os("PATH").as_deref(),
        FALLBACK_DIRS,
    )
    .map_err(|searched| Error::QemuImgNotFound { searched })
}

/// The `qemu-img` binary's file name.
pub const QEMU_IMG_BINARY: &str = "qemu-img";

/// Finds the executable `name` in the directories of `path_var`, then in `fallback`; the error
/// is the list of directories searched.
fn find_program(
    name: &str,
    path_var: Option<&OsStr>,
    fallback: &[&str],
) -> std::result::Result<PathBuf, String> {
    let mut searched: Vec<String> = Vec::new();
    let dirs = path_var
        .map(|p| std::env::split_paths(p).collect::<Vec<_>>())
        .unwrap_or_default();
    let dirs = dirs
        .into_iter()
        .filter(|d| !d.as_os_str().is_empty())
        .chain(fallback.iter().map(PathBuf::from));
    for dir in dirs {
        let cand = dir.join(name);
        if is_executable_file(&cand) {
            return Ok(cand);
        }
        let shown = dir.display().to_string();
        if !searched.contains(&shown) {
            searched.push(shown);
        }
    }
    Err(if searched.is_empty() {
        "no directories".to_owned()
    } else {
        searched.join(", ")
    })
}

/// How long `--version` of a QEMU tool may take (it answers at once: this catches a hang).
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// How much `--version` of a QEMU tool may print (one line, a copyright notice).
pub const VERSION_OUTPUT_CAP: usize = 64 * 1024;

/// Runs `qemu --version` and parses the first line.
pub fn qemu_version(qemu: &Path) -> Result<(QemuVersion, String)> {
    tool_version(qemu, "qemu version query")
}

/// Runs `program --version` (`qemu-system-x86_64`, `qemu-img`) with a deadline
/// ([`VERSION_TIMEOUT`]) and an output cap ([`VERSION_OUTPUT_CAP`]) and parses the first line;
/// `what` names the query in errors.
pub fn tool_version(program: &Path, what: &str) -> Result<(QemuVersion, String)> {
    let out = child_process::Command::new(program, VERSION_TIMEOUT)
        .what(what)
        .arg("--version")
        .stdout_cap(VERSION_OUTPUT_CAP)
        .run_status()?;
    let bad = |reason: String| Error::QemuVersion {
        path: program.to_path_buf(),
        reason,
    };
    if !out.status.success() {
        return Err(bad(format!(
            "exited with {}: {}",
            out.status,
            out.stderr_tail.trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or("").trim().to_owned();
    let v = parse_version_line(&line).ok_or_else(|| bad(format!("no version in {line:?}")))?;
    Ok((v, line))
}

/// Parses "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)".
pub fn parse_version_line(line: &str) -> Option<QemuVersion> {
    let rest = line.split("version").nth(1)?.trim_start();
    let word = rest.split_whitespace().next()?;
    let mut parts = word.split('.');
    let num = |s: Option<&str>| -> Option<u32> {
        let s = s?;
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let major = num(parts.next())?;
    let minor = num(parts.next())?;
    let micro = num(parts.next()).unwrap_or(0);
    Some(QemuVersion {
        major,
        minor,
        micro,
    })
}

/// The first candidate pair whose code and vars template both exist as files.
pub fn find_firmware(candidates: &[(&str, &str)]) -> Result<Firmware> {
    for (code, vars) in candidates {
        let (code, vars) = (Path::new(code), Path::new(vars));
        if code.is_file() && vars.is_file() {
            return Ok(Firmware {
                code: code.to_path_buf(),
                vars_template: vars.to_path_buf(),
            });
        }
    }
    let searched = candidates
        .iter()
        .map(|(c, v)| format!("{c} + {v}"))
        .collect::<Vec<_>>()
        .join("; ");
    Err(Error::FirmwareNotFound { searched })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        let v = parse_version_line("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)");
        assert_eq!(
            v,
            Some(QemuVersion {
                major: 7,
                minor: 2,
                micro: 22
            })
        );
        let v = parse_version_line("QEMU emulator version 10.0.0").unwrap();
        assert_eq!(v.to_string(), "10.0.0");
        let v = parse_version_line("QEMU emulator version 9.1.50 (v9.1.0-123-gabc)").unwrap();
        assert_eq!(v.to_string(), "9.1.50");
        assert_eq!(
            parse_version_line("QEMU emulator version 8.2")
                .unwrap()
                .micro,
            0
        );
        assert_eq!(parse_version_line("garbage"), None);
        assert_eq!(parse_version_line(""), None);
        assert_eq!(parse_version_line("version x.y"), None);
    }

    #[test]
    fn finds_qemu_in_path_then_fallback() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let bin = b.path().join(QEMU_BINARY);
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        // not executable yet: not found
        let path = std::env::join_paths([a.path()]).unwrap();
        let fb = b.path().to_str().unwrap();
        let e = find_qemu(Some(&path), &[fb]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("apt-get install qemu-system-x86 ovmf"),
            "{msg}"
        );
        assert!(msg.contains(fb), "{msg}");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_qemu(Some(&path), &[fb]).unwrap(), bin);
        // PATH wins over the fallback
        let path = std::env::join_paths([b.path()]).unwrap();
        assert_eq!(find_qemu(Some(&path), &["/nonexistent"]).unwrap(), bin);
        assert!(find_qemu(None, &[]).is_err());
    }

    #[test]
    fn firmware_needs_both_files() {
        let d = tempfile::tempdir().unwrap();
        let code = d.path().join("CODE.fd");
        let vars = d.path().join("VARS.fd");
        std::fs::write(&code, b"c").unwrap();
        let (c, v) = (code.to_str().unwrap(), vars.to_str().unwrap());
        let e = find_firmware(&[(c, v)]).unwrap_err();
        assert!(e.to_string().contains("apt-get install ovmf"), "{e}");
        assert!(e.to_string().contains("VARS.fd"), "{e}");
        std::fs::write(&vars, b"v").unwrap();
        let fw = find_firmware(&[("/nonexistent/a", "/nonexistent/b"), (c, v)]).unwrap();
        assert_eq!(fw.code, code);
        assert_eq!(fw.vars_template, vars);
    }

    #[test]
    fn host_serialises_to_json() {
        let h = Host {
            qemu: "/usr/bin/qemu-system-x86_64".into(),
            qemu_version: QemuVersion {
                major: 7,
                minor: 2,
                micro: 22,
            },
            qemu_version_line: "QEMU emulator version 7.2.22".into(),
            firmware: Firmware {
                code: "/c".into(),
                vars_template: "/v".into(),
            },
        };
        let j = serde_json::to_value(&h).unwrap();
        assert_eq!(j["qemu_version"]["minor"], 2);
        assert_eq!(j["firmware"]["vars_template"], "/v");
    }
}
