//! `manifest.json` and `SHA256SUMS`: what an export produced, written last.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::format::{Firmware, Format};
use crate::pipeline::Role;
use diskimg::input_file::read_bounded_string;

/// Manifest schema version.
pub const MANIFEST_VERSION: u32 = 1;
/// File name of the manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the checksum list.
pub const SUMS_FILE: &str = "SHA256SUMS";
/// Largest `manifest.json` or `SHA256SUMS` read back (an export's are a few KiB).
pub const DOCUMENT_LIMIT: u64 = 16 << 20;

/// What one export produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Schema version.
    pub manifest_version: u32,
    /// Base name of the artifacts.
    pub name: String,
    /// Virtual disk size every disk artifact holds.
    pub virtual_size: u64,
    /// SHA-256 of the virtual disk as a guest sees it (hex).
    pub content_sha256: String,
    /// Size of the input file when the export was padded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padded_from: Option<u64>,
    /// Firmware recorded in the OVF and register-image.json.
    pub firmware: Firmware,
    /// SOURCE_DATE_EPOCH used for embedded timestamps.
    pub source_date_epoch: u64,
    /// Every file, in a fixed order.
    pub artifacts: Vec<ManifestArtifact>,
    /// What `nodeimg build` adds: its own files (golden disk, reports, logs) and a record of
    /// how the disk was made. Absent for a plain `nodeimg export`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildSection>,
}

/// The build's part of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    /// Files of the build next to the artifacts; `nodeimg verify` checks their sizes and
    /// digests too, and `SHA256SUMS` lists them after the artifacts.
    pub files: Vec<BuildFile>,
    /// How the disk was made (spec and lock hashes, versions, phase timings); opaque here.
    pub record: serde_json::Value,
}

/// One file of the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildFile {
    /// File name inside the output directory.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 (hex).
    pub sha256: String,
}

/// One file of the export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestArtifact {
    /// File name inside the output directory.
    pub file: String,
    /// Requested format it belongs to.
    pub format: Format,
    /// Disk or metadata.
    pub role: Role,
    /// Container to parse it as.
    pub container: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 (hex).
    pub sha256: String,
}

impl Manifest {
    /// Reads `dir/manifest.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST_FILE);
        let text = read_bounded_string(&path, DOCUMENT_LIMIT, "a manifest").at("reading", &path)?;
        serde_json::from_str(&text).map_err(|e| {
            Error::bad_input(
                &path,
                format!(
                    "not a nodeimg manifest: {e} (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })
    }

    /// The manifest as pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// `SHA256SUMS` in `sha256sum -c` format.
    pub fn sums(&self) -> String {
        let build = self.build.iter().flat_map(|b| b.files.iter());
        self.artifacts
            .iter()
            .map(|a| (&a.sha256, &a.file))
            .chain(build.map(|f| (&f.sha256, &f.file)))
            .map(|(sha256, file)| format!("{sha256}  {file}\n"))
            .collect()
    }

    /// The disk artifacts.
    pub fn disks(&self) -> impl Iterator<Item = &ManifestArtifact> {
        self.artifacts.iter().filter(|a| a.role == Role::Disk)
    }
}
