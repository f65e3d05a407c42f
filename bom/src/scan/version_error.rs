//! A version string that cannot be ordered: one error for both version schemes
//! ([`super::debian_version`], [`super::upstream_version`]).

/// The version scheme a string was parsed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// A Debian package version.
    Debian,
    /// An upstream component's version.
    Upstream,
}

impl Scheme {
    /// The error for `text`, refused as a version of this scheme because of `reason`.
    pub(crate) fn refuse(self, text: &str, reason: &'static str) -> VersionError {
        VersionError {
            scheme: self,
            version: text.to_owned(),
            reason,
        }
    }

    /// How a message names a version of this scheme.
    fn noun(self) -> &'static str {
        match self {
            Self::Debian => "Debian version",
            Self::Upstream => "version",
        }
    }
}

/// A string that is not a version of its scheme.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {} {version:?}: {reason}", scheme.noun())]
pub struct VersionError {
    /// The scheme it was parsed as.
    pub scheme: Scheme,
    /// The string as given.
    pub version: String,
    /// What is wrong with it.
    pub reason: &'static str,
}
