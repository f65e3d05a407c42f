//! The qemu crate's error type: every variant names the file, program or command it is about.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed on a file or directory.
    #[error(transparent)]
    Io(#[from] diskimg::error::FileIoError),
    /// `qemu-system-x86_64` is not installed (or not executable) anywhere we looked.
    #[error(
        "qemu-system-x86_64 not found (searched {searched}); install it: apt-get install qemu-system-x86 ovmf (Debian/Ubuntu) or dnf install qemu-system-x86 edk2-ovmf (Fedora)"
    )]
    QemuNotFound {
        /// The places searched, in order.
        searched: String,
    },
    /// `NODEIMG_QEMU` names something that is not an executable file.
    #[error("NODEIMG_QEMU={path}: not an executable file")]
    QemuOverride {
        /// The value.
        path: PathBuf,
    },
    /// `qemu-img` is not installed anywhere we looked.
    #[error(
        "qemu-img not found (searched {searched}); install it: apt-get install qemu-utils (Debian/Ubuntu) or dnf install qemu-img (Fedora)"
    )]
    QemuImgNotFound {
        /// The places searched, in order.
        searched: String,
    },
    /// `qemu-system-x86_64 --version` did not give a version.
    #[error("{path} --version: {reason}")]
    QemuVersion {
        /// The binary.
        path: PathBuf,
        /// What was wrong with its answer.
        reason: String,
    },
    /// No OVMF (UEFI) code + vars template pair was found.
    #[error(
        "UEFI firmware (OVMF code + vars template) not found; looked for {searched}; install it: apt-get install ovmf (Debian/Ubuntu) or dnf install edk2-ovmf (Fedora)"
    )]
    FirmwareNotFound {
        /// The pairs looked for.
        searched: String,
    },
    /// Running an external program (qemu-img, ssh-keygen, `qemu --version`) failed: it could
    /// not start, timed out, wrote too much or exited non-zero.
    #[error(transparent)]
    Run(#[from] child_process::Error),
    /// A child process did not finish in time; it has been killed.
    #[error(
        "{what} (pid {pid}) did not exit within {after:?} and was killed; last stderr:\n{stderr_tail}"
    )]
    Timeout {
        /// What the child was.
        what: String,
        /// Its pid.
        pid: u32,
        /// The deadline.
        after: Duration,
        /// Last lines of its stderr.
        stderr_tail: String,
    },
    /// A child process exited unsuccessfully.
    #[error("{what} (pid {pid}) exited with {status}; last stderr:\n{stderr_tail}")]
    Exited {
        /// What the child was.
        what: String,
        /// Its pid.
        pid: u32,
        /// How it ended.
        status: std::process::ExitStatus,
        /// Last lines of its stderr.
        stderr_tail: String,
    },
    /// The accelerator probe guest did not behave as expected (under TCG: the probe itself is broken).
    #[error("accelerator probe ({accel}): {reason}")]
    Probe {
        /// The accelerator tried.
        accel: &'static str,
        /// What happened.
        reason: String,
    },
    /// A VM specification cannot be turned into a command line.
    #[error("VM spec for {dir}: {reason}")]
    BadSpec {
        /// The VM directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The QMP conversation broke (closed, timed out, not QMP).
    #[error("QMP {path}: {reason}")]
    Qmp {
        /// The QMP socket.
        path: PathBuf,
        /// What happened.
        reason: String,
    },
    /// QEMU answered a QMP command with an error.
    #[error("QMP {path}: {command} failed: {class}: {desc}")]
    QmpCommand {
        /// The QMP socket.
        path: PathBuf,
        /// The command.
        command: String,
        /// QEMU's error class.
        class: String,
        /// QEMU's description.
        desc: String,
    },
    /// An SSH key could not be generated or encoded (`keys`); `path` is where it was going,
    /// or `<memory>` when nothing was being written.
    #[error("{op} {path}: {cause}")]
    Key {
        /// What was being done.
        op: &'static str,
        /// The key file, or `<memory>`.
        path: std::path::PathBuf,
        /// The cause (in the message, so not also the `source()`: no doubled chain).
        cause: russh::keys::ssh_key::Error,
    },
    /// A field of a NoCloud seed spec is unusable (`seed`); `path` is the seed file it belongs
    /// in (`meta-data` or `user-data`).
    #[error("{path}: field {field}: {reason}")]
    SeedField {
        /// The seed file the field is rendered into.
        path: std::path::PathBuf,
        /// The field of `SeedSpec`.
        field: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// Building the in-memory FAT seed image failed (`seed`); `path` is the file inside the
    /// image, or `<volume>` for the file system itself.
    #[error("{op} {path} in the seed image: {cause}")]
    SeedImage {
        /// What was being done.
        op: &'static str,
        /// The file inside the image.
        path: std::path::PathBuf,
        /// The cause (in the message, so not also the `source()`).
        cause: std::io::Error,
    },
    /// An SSH operation on a guest failed.
    #[error("SSH {target}: {op}: {reason}")]
    Ssh {
        /// `user@127.0.0.1:port`.
        target: String,
        /// What was being done.
        op: &'static str,
        /// What happened.
        reason: String,
    },
    /// Something went wrong with a running VM (no readiness in time, SSH refused, a command
    /// failed, QEMU exited). Carries the end of the serial console and of QEMU's own output,
    /// which is where the reason usually is.
    #[error("{0}")]
    Vm(Box<VmFailure>),
    /// A disk image given to the VM cannot be used.
    #[error("{path}: {reason}")]
    Image {
        /// The image.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The details of [`Error::Vm`].
#[derive(Debug)]
pub struct VmFailure {
    /// What failed, with its cause.
    pub what: String,
    /// The serial console log.
    pub serial_log: PathBuf,
    /// Its last lines.
    pub serial_tail: String,
    /// QEMU's stdout/stderr log.
    pub qemu_log: PathBuf,
    /// Its last lines.
    pub qemu_tail: String,
}

impl std::fmt::Display for VmFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- last lines of the serial console ({}) ---\n{}\n--- last lines of QEMU's output ({}) ---\n{}",
            self.what,
            self.serial_log.display(),
            self.serial_tail,
            self.qemu_log.display(),
            self.qemu_tail
        )
    }
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(op: &'static str, path: &Path, cause: io::Error) -> Self {
        Error::Io(diskimg::error::FileIoError::new(op, path, cause))
    }

    /// A QMP transport error on `path`.
    pub(crate) fn qmp(path: &Path, reason: impl Into<String>) -> Self {
        Error::Qmp {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}
