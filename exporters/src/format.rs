//! Export formats, their size rules, and the options of one export.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// 1 MiB.
pub const MIB: u64 = 1 << 20;
/// 1 GiB.
pub const GIB: u64 = 1 << 30;

/// One requested export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Sparse raw copy.
    Raw,
    /// qcow2 v3.
    Qcow2,
    /// Fixed VHD for Azure.
    Vhd,
    /// vSphere OVA (OVF + manifest + streamOptimized VMDK).
    Ova,
    /// GCE `disk.raw` in an old-GNU sparse tar.gz.
    Gce,
    /// AWS import-snapshot input: streamOptimized VMDK + JSON.
    Aws,
}

impl Format {
    /// Every format, in the order artifacts are listed.
    pub const ALL: [Format; 6] = [
        Format::Raw,
        Format::Qcow2,
        Format::Vhd,
        Format::Ova,
        Format::Gce,
        Format::Aws,
    ];

    /// The lower-case name used on the command line and in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
            Format::Vhd => "vhd",
            Format::Ova => "ova",
            Format::Gce => "gce",
            Format::Aws => "aws",
        }
    }

    /// The size rule this format's consumers impose, if stricter than whole sectors.
    pub fn size_rule(self) -> Option<SizeRule> {
        match self {
            Format::Vhd => Some(SizeRule {
                multiple: MIB,
                rule: "a virtual size that is a whole number of MiB (Azure)",
            }),
            Format::Gce => Some(SizeRule {
                multiple: GIB,
                rule: "a disk.raw size that is a whole number of GiB (GCE)",
            }),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!("unknown format {s:?}; known formats: raw, qcow2, vhd, ova, gce, aws")
            })
    }
}

/// A cloud's size rule: the virtual size must be a multiple of `multiple`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeRule {
    /// Required multiple in bytes.
    pub multiple: u64,
    /// The rule in words, for errors.
    pub rule: &'static str,
}

impl SizeRule {
    /// True when `size` obeys the rule.
    pub fn holds(&self, size: u64) -> bool {
        size.is_multiple_of(self.multiple)
    }
}

/// Firmware the image boots with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    /// UEFI (GPT + EFI system partition).
    #[default]
    Uefi,
    /// Legacy BIOS.
    Bios,
}

impl FromStr for Firmware {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "uefi" => Ok(Firmware::Uefi),
            "bios" => Ok(Firmware::Bios),
            _ => Err(format!("unknown firmware {s:?}; use uefi or bios")),
        }
    }
}

/// The default `SOURCE_DATE_EPOCH` when none is set: 2000-01-01T00:00:00Z, the VHD epoch.
pub const DEFAULT_SOURCE_DATE_EPOCH: u64 = 946_684_800;

/// Everything one export needs besides the disk.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Base name of the artifacts (`NAME.qcow2`, ...).
    pub name: String,
    /// Requested formats (deduplicated, in [`Format::ALL`] order).
    pub formats: Vec<Format>,
    /// Firmware for the OVF and register-image.json.
    pub firmware: Firmware,
    /// Deflate-compress qcow2 clusters.
    pub compress: bool,
    /// Grow the exported copy to the next whole GiB instead of refusing a size.
    pub pad: bool,
    /// Seconds since the Unix epoch used for every embedded timestamp.
    pub source_date_epoch: u64,
    /// Version strings to record as OVF product properties (key, value), in order.
    pub properties: Vec<(String, String)>,
}

impl ExportOptions {
    /// Options for `name` with every format and defaults elsewhere.
    pub fn new(name: impl Into<String>) -> Self {
        ExportOptions {
            name: name.into(),
            formats: Format::ALL.to_vec(),
            firmware: Firmware::Uefi,
            compress: false,
            pad: false,
            source_date_epoch: DEFAULT_SOURCE_DATE_EPOCH,
            properties: Vec::new(),
        }
    }

    /// True when `format` was requested.
    pub fn wants(&self, format: Format) -> bool {
        self.formats.contains(&format)
    }
}

/// Checks an artifact base name: non-empty, no path separators, no leading dot, printable.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+');
    if name.is_empty() || name.len() > 100 {
        return Err(format!("name {name:?} must be 1 to 100 characters"));
    }
    if name.starts_with('.') || !name.chars().all(ok_char) {
        return Err(format!(
            "name {name:?} may hold only A-Z a-z 0-9 - _ . + and must not start with '.'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name_and_reject_others() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
        }
        assert!(
            "vmdk"
                .parse::<Format>()
                .unwrap_err()
                .contains("unknown format")
        );
    }

    #[test]
    fn names_with_paths_are_refused() {
        assert!(validate_name("node-1.30").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "sp ace"] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
