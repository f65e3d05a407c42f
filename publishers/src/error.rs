//! The one error type of publishing. No variant carries a credential: a message names the
//! source that was tried (`AWS_PROFILE=ci in ~/.aws/config`), the call that failed
//! (`ebs:PutSnapshotBlock`), or the file, never a secret's value ([`crate::secret`]).

use std::path::PathBuf;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--to` is not a target nodeimg knows, or is missing its part (`gcp:BUCKET`).
    #[error("--to {given}: {why}")]
    BadTarget {
        /// What was given.
        given: String,
        /// What is wrong, with the accepted forms.
        why: String,
    },
    /// The build did not export what the target needs; refused before anything is sent.
    #[error(
        "--to {target} needs the {format} export, and {dir} has only {exported}: export it with --formats {format} first"
    )]
    NotExported {
        /// The target.
        target: String,
        /// The missing format.
        format: exporters::Format,
        /// The output directory.
        dir: PathBuf,
        /// The formats it has, comma-separated.
        exported: String,
    },
    /// No credentials, or credentials the service refused: names the source that was tried.
    #[error("{target}: credentials from {tried}: {why}")]
    Credentials {
        /// The target.
        target: String,
        /// The source that was tried (an environment variable's name, a file's path, a profile).
        tried: String,
        /// What went wrong, without any secret.
        why: String,
    },
    /// A call the service refused or failed (permission, quota, a 4xx): names the call.
    #[error("{call}: {why}")]
    Call {
        /// `service:Operation` or the HTTP method and path (no query string).
        call: String,
        /// The service's answer, scrubbed of secrets.
        why: String,
    },
    /// Throttling, 5xx or an unreachable endpoint that lasted through every retry.
    #[error("{call}: gave up after {attempts} attempts: {why}")]
    Retries {
        /// The call.
        call: String,
        /// How many were made.
        attempts: u32,
        /// The last failure.
        why: String,
    },
    /// What was read back through the service's API differs from the artifact.
    #[error("read back {what}: {got}, expected {want}; nothing was registered")]
    ReadBack {
        /// What was read (`snapshot snap-… blocks`, `gs://bucket/object`, …).
        what: String,
        /// The digest (or size) read back.
        got: String,
        /// The artifact's.
        want: String,
    },
    /// A file of the output that cannot be used.
    #[error("{}: {why}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Reading the output's manifest or an artifact.
    #[error(transparent)]
    Exporters(#[from] exporters::Error),
    /// Reading a disk artifact's virtual contents.
    #[error(transparent)]
    Disk(#[from] diskimg::Error),
    /// A target with no API nodeimg can call here; its ready-to-run commands are in a file.
    #[error(
        "{target}: nodeimg does not upload there itself; run the commands in {}",
        instructions.display()
    )]
    NoApi {
        /// The target.
        target: String,
        /// The file with the commands.
        instructions: PathBuf,
    },
}
