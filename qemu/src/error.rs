//! The qemu crate's error type.

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed on a path.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An SSH key could not be generated or encoded (`keys`); `path` is where it was going,
    /// or `<memory>` when nothing was being written.
    #[error("{op} {path}: {source}")]
    Key {
        /// What was being done.
        op: &'static str,
        /// The key file, or `<memory>`.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: russh::keys::ssh_key::Error,
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
    #[error("{op} {path} in the seed image: {source}")]
    SeedImage {
        /// What was being done.
        op: &'static str,
        /// The file inside the image.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}
