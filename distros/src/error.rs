//! The distros crate's error type: every variant names the input it is about.

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No distro has this id.
    #[error("unknown distro {id:?}; known: {known}")]
    UnknownDistro {
        /// The id asked for.
        id: String,
        /// The known ids, comma-separated, in registry order.
        known: String,
    },
    /// A parameter that would be interpolated into a guest script is not acceptable.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidInput {
        /// Which parameter (e.g. `build user`, `pause image`, `held package`).
        field: &'static str,
        /// The value given (as given, for the message).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl Error {
    pub(crate) fn invalid(field: &'static str, value: &str, reason: &'static str) -> Self {
        Error::InvalidInput {
            field,
            value: value.to_owned(),
            reason,
        }
    }
}
