//! The one error type of the diskimg crate: every variant names the file it is about.

use std::io;
use std::path::{Path, PathBuf};

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, always with the path (and offset where there is one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed on a file.
    #[error(transparent)]
    Io(#[from] FileIoError),
    /// The input file cannot be used as it is.
    #[error("{path}: {reason}")]
    BadInput {
        /// The input file.
        path: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// The file is an image format nodeimg cannot read (VHDX, a VMDK descriptor, ...).
    #[error(
        "{path}: is {what}; nodeimg reads raw, qcow2, fixed VHD, streamOptimized VMDK, OVA and GCE tar.gz"
    )]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// What it is, in words ("a VHDX image").
        what: &'static str,
    },
    /// An image (or a member of one) is not what it claims to be.
    #[error("{path}: offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset where the problem was found.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An ext4 filesystem inside a disk image is unreadable, corrupt or unsupported.
    #[error("{path}: ext4 filesystem at byte {offset}: {reason}")]
    Ext4 {
        /// The disk image file.
        path: PathBuf,
        /// Byte offset of the filesystem (its partition) in the disk.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A file does not match what its manifest (an OVA's `.mf`, an export's
    /// `manifest.json`) says about it.
    #[error("{path}: {reason}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(op: &'static str, path: &Path, cause: io::Error) -> Self {
        Error::Io(FileIoError::new(op, path, cause))
    }

    /// A refused input file.
    pub fn bad_input(path: &Path, reason: impl Into<String>) -> Self {
        Error::BadInput {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// A corrupt-file error at `offset` of `path`.
    pub fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }

    /// A mismatch between `path` and its manifest.
    pub fn mismatch(path: &Path, reason: impl Into<String>) -> Self {
        Error::Mismatch {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// An I/O call that failed on a file: what was being done, to which path, and why. The one
/// such error of the workspace's library crates (`diskimg`, `exporters`, `qemu`). The cause is
/// part of the message and deliberately not also the error's `source()`: a printer of the
/// whole chain (`{:#}`) would repeat it.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {cause}")]
pub struct FileIoError {
    /// What was being done ("reading", "creating", ...).
    pub op: &'static str,
    /// The file.
    pub path: PathBuf,
    /// The cause.
    pub cause: io::Error,
}

impl FileIoError {
    /// `op` on `path` failed with `cause`.
    pub fn new(op: &'static str, path: &Path, cause: io::Error) -> Self {
        FileIoError {
            op,
            path: path.to_path_buf(),
            cause,
        }
    }
}

/// Adds the path to an `io::Result`.
pub trait IoContext<T> {
    /// Wraps the error with what was being done to which file.
    fn at(self, op: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}
