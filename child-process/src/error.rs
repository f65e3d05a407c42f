//! The runner's error type: every variant names the program (or the `what` its caller gave it).

use std::io;
use std::process::ExitStatus;
use std::time::Duration;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong running a child.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The program could not be started (not found, not executable, ...).
    #[error("starting {what}: {source}")]
    Spawn {
        /// What the child was for, and the program.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The child did not finish by its deadline; its whole process group was killed.
    #[error(
        "{what} timed out: no exit within {after:?}, killed{}",
        tail_suffix(stderr_tail)
    )]
    Timeout {
        /// What the child was for.
        what: String,
        /// The deadline.
        after: Duration,
        /// The last lines of its stderr.
        stderr_tail: String,
    },
    /// The child exited unsuccessfully (or was killed by a signal).
    #[error("{what} exited with {status}{}", tail_suffix(stderr_tail))]
    Exited {
        /// What the child was for.
        what: String,
        /// How it ended.
        status: ExitStatus,
        /// The last lines of its stderr.
        stderr_tail: String,
    },
    /// The child wrote more to stdout than the caller allows; it was killed.
    #[error("{what} wrote more than the {cap}-byte output cap to stdout; killed")]
    OutputCap {
        /// What the child was for.
        what: String,
        /// The cap, in bytes.
        cap: usize,
    },
    /// An I/O call on the child (a pipe, the log file, waiting) failed.
    #[error("{op} {what}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// What the child was for (or the log file).
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn tail_suffix(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("; last stderr:\n{tail}")
    }
}

impl Error {
    /// The last lines of the child's stderr, when the error carries them.
    pub fn stderr_tail(&self) -> Option<&str> {
        match self {
            Error::Timeout { stderr_tail, .. } | Error::Exited { stderr_tail, .. } => {
                Some(stderr_tail)
            }
            _ => None,
        }
    }
}
