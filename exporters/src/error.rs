//! The one error type of the exporters crate: every variant names the file it is about.

use std::io;
use std::path::{Path, PathBuf};

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, always with the path (and offset where there is one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a disk image, or opening or reading a file, failed (the [`diskimg`] error, shown
    /// as it is).
    #[error(transparent)]
    Disk(#[from] diskimg::Error),
    /// The disk's size breaks the size rule of a format.
    #[error(
        "{path}: {format} needs {rule}; the disk is {size} bytes; nearest valid sizes are {below} and {above} bytes (pass --pad to grow the exported copy to {padded} bytes)"
    )]
    SizeRule {
        /// The input file.
        path: PathBuf,
        /// The format whose rule is broken.
        format: &'static str,
        /// The rule, in words.
        rule: &'static str,
        /// The disk size.
        size: u64,
        /// Nearest valid size at or below.
        below: u64,
        /// Nearest valid size above.
        above: u64,
        /// What `--pad` would grow it to.
        padded: u64,
    },
    /// Another nodeimg holds the lock on a directory this run would write into.
    #[error(
        "{path}: in use by another nodeimg ({holder}); wait for it to finish or choose another directory"
    )]
    InUse {
        /// The directory.
        path: PathBuf,
        /// Who holds it, as the holder recorded it (`pid N: COMMAND`).
        holder: String,
    },
    /// A writer thread panicked or the pipeline broke down.
    #[error("export pipeline: {0}")]
    Pipeline(String),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(op: &'static str, path: &Path, cause: io::Error) -> Self {
        Error::Disk(diskimg::Error::io(op, path, cause))
    }

    /// A refused input file.
    pub fn bad_input(path: &Path, reason: impl Into<String>) -> Self {
        Error::Disk(diskimg::Error::bad_input(path, reason))
    }

    /// A corrupt-file error at `offset` of `path`.
    pub fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> Self {
        Error::Disk(diskimg::Error::corrupt(path, offset, reason))
    }

    /// A verification mismatch for `path`.
    pub fn mismatch(path: &Path, reason: impl Into<String>) -> Self {
        Error::Disk(diskimg::Error::mismatch(path, reason))
    }
}

/// Adds the path to an `io::Result` (the diskimg helper; `?` turns its error into [`Error`]).
pub(crate) use diskimg::error::IoContext;
