//! What can go wrong while fetching, each naming the URL or file.

use super::checksum::ChecksumError;
use super::http::HttpError;
use super::kubeadm::KubeadmError;
use super::plan::PlanError;
use crate::cache::CacheError;
use crate::lock::LockError;

/// A fetch problem.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No plan for this spec.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The locked kubeadm could not list the images.
    #[error(transparent)]
    Kubeadm(#[from] KubeadmError),
    /// A signed checksum file whose signature could not be checked or is not good: no digest
    /// is taken from it.
    #[error(
        "{checksums}: not trusted: its signature {signature} was not verified with keyring {keyring}: {why}; nothing was cached"
    )]
    ChecksumsSignature {
        /// The checksum file (as fetched).
        checksums: String,
        /// Its detached signature (as fetched).
        signature: String,
        /// The keyring it was checked against.
        keyring: String,
        /// Why it is refused.
        why: String,
    },
    /// A download failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A checksum file does not list the artifact.
    #[error(transparent)]
    Checksum(#[from] ChecksumError),
    /// The cache could not be read or written.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// Downloaded (or local) bytes are not what they must be.
    #[error(
        "{url}: {algorithm} mismatch: expected {expected}, got {actual} ({what}); nothing was cached"
    )]
    Mismatch {
        /// Where the bytes came from.
        url: String,
        /// `sha256` or `sha512`.
        algorithm: &'static str,
        /// What the checksum source says.
        expected: String,
        /// What the bytes hash to.
        actual: String,
        /// Which source the expected digest is from.
        what: String,
    },
    /// A registry answered something nodeimg cannot use.
    #[error("{url}: {why}")]
    Registry {
        /// The request.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// The registry does not have the image (HTTP 404 for its manifest).
    #[error("{url}: {reference} is not in the registry (HTTP 404: {detail})")]
    NotInRegistry {
        /// The manifest request.
        url: String,
        /// The image.
        reference: String,
        /// The registry's message.
        detail: String,
    },
    /// A node conformance test image could not be pulled (other than not being there).
    #[error("pulling the node conformance test image {reference}")]
    TestImage {
        /// The image.
        reference: String,
        /// Why.
        #[source]
        source: Box<FetchError>,
    },
    /// The node conformance test images could not be derived from the Kubernetes source.
    #[error("deriving the node conformance test images: {0}")]
    ImageList(#[from] super::node_e2e_images::ImageListError),
    /// Fetching one artifact failed.
    #[error("fetching {name}")]
    Artifact {
        /// The artifact's name.
        name: String,
        /// Why.
        #[source]
        source: Box<FetchError>,
    },
    /// The cache's download directory could not be made.
    #[error("creating {path}")]
    Create {
        /// The directory.
        path: String,
        /// The error.
        #[source]
        cause: std::io::Error,
    },
    /// The lock about to be written does not parse back (a bug) or breaks a rule.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The lock about to be written does not match the spec.
    #[error("{0}")]
    LockDoesNotMatch(String),
    /// The lock could not be written.
    #[error("writing {path}")]
    Write {
        /// The lock.
        path: String,
        /// The error.
        #[source]
        cause: std::io::Error,
    },
    /// An archive's `InRelease` or a `Packages` index named in it was refused (bad
    /// signature, expired, hash mismatch).
    #[error(transparent)]
    Release(#[from] debarchive::release::ReleaseError),
    /// A keyring was not usable.
    #[error(transparent)]
    Signature(#[from] debarchive::signature::SignatureError),
    /// A keyring file could not be read.
    #[error("keyring {path}: {why}")]
    Keyring {
        /// The keyring file.
        path: String,
        /// Why.
        why: String,
    },
    /// A `Packages` index or dpkg status is not valid.
    #[error(transparent)]
    Packages(#[from] debarchive::packages::ParseError),
    /// An index could not be used.
    #[error("{url}: {why}")]
    Index {
        /// Where it came from.
        url: String,
        /// Why.
        why: String,
    },
    /// The wanted packages cannot be installed on the base image.
    #[error("resolving the distro packages: {0}")]
    Resolve(#[from] debarchive::resolve::ResolveError),
    /// The base image's dpkg status could not be read.
    #[error("base image {image}: {file}: {why}")]
    BaseStatus {
        /// The cached image.
        image: String,
        /// The file inside it.
        file: &'static str,
        /// Why.
        why: String,
    },
    /// A local file could not be read or written.
    /// (The cause is in the message, not also `source()`: `{:#}` would print it twice.)
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        cause: std::io::Error,
    },
}

/// Maps an I/O error on `path` into [`FetchError::Io`].
pub fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |cause| FetchError::Io {
        path: path.display().to_string(),
        cause,
    }
}
