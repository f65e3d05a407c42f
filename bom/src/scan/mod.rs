//! The vulnerability scan behind `nodeimg scan`: matches a BOM's distro packages and upstream
//! components against offline advisory feeds — the Debian security tracker's JSON export and
//! OSV records — and lists the known vulnerabilities that a later version fixes (or that have
//! no fix yet).
//!
//! - [`debian_version`]: Debian's version ordering (epochs, tildes), as dpkg implements it.
//! - [`upstream_version`]: semver-like ordering for upstream components (`v1.28.3`); a string
//!   that is neither is a [`version_error::VersionError`].
//! - [`feed`]: detects a feed's kind; [`debian_tracker`] and [`osv`] parse them, reporting
//!   faults as [`schema::SchemaError`]s.
//! - [`matcher`]: the findings of a BOM against parsed feeds.
//!
//! The `nodeimg scan` subcommand itself (reading the files, table or JSON, exit codes) is the
//! command line's.

pub mod cvss;
pub mod debian_tracker;
pub mod debian_version;
pub mod feed;
pub mod matcher;
pub mod osv;
pub mod schema;
pub mod upstream_version;
pub mod version_error;

use serde::Serialize;

/// How severe a vulnerability is, from least to most. `Unknown` (Debian's "not yet assigned",
/// "end-of-life", an OSV record without a usable severity) ranks lowest, so only
/// `--fail-on unknown` fails on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// No severity known.
    Unknown,
    /// Debian's "unimportant" (e.g. not a real issue for Debian's build).
    Unimportant,
    /// Low.
    Low,
    /// Medium (OSV/GHSA "moderate").
    Medium,
    /// High.
    High,
    /// Critical (only from OSV; Debian's scale stops at high).
    Critical,
}

impl Severity {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Unimportant => "unimportant",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// A qualitative severity word from a feed (Debian urgencies, GHSA/OSV words), or `None`
    /// for words it does not know. Debian's trailing `*` markers (`low**`) are ignored.
    pub fn from_word(word: &str) -> Option<Self> {
        match word
            .trim()
            .trim_end_matches('*')
            .to_ascii_lowercase()
            .as_str()
        {
            "unimportant" | "negligible" => Some(Self::Unimportant),
            "low" => Some(Self::Low),
            "medium" | "moderate" => Some(Self::Medium),
            "high" | "important" => Some(Self::High),
            "critical" => Some(Self::Critical),
            "not yet assigned" | "end-of-life" | "unknown" | "" => Some(Self::Unknown),
            _ => None,
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    /// A distro source package (from the BOM's packages).
    Package,
    /// A pinned upstream component (from the BOM's components).
    Component,
}

/// Whether a fix exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FixState {
    /// A later version fixes it.
    Fixed,
    /// Known to affect the installed version, no fix yet.
    Open,
    /// The tracker has not determined whether the release is affected.
    Undetermined,
}

/// One vulnerability of one package or component.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    /// Package or component.
    pub kind: SubjectKind,
    /// The source package or component name.
    pub name: String,
    /// The installed version (the source version for packages).
    pub installed: String,
    /// The advisory's id (`CVE-…`, `GHSA-…`, `DSA-…`).
    pub id: String,
    /// Its severity.
    pub severity: Severity,
    /// Whether a fix exists.
    pub state: FixState,
    /// The first version that fixes it, when one does.
    pub fixed_version: Option<String>,
    /// The feed file it came from.
    pub feed: String,
}
