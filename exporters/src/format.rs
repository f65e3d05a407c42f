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
    /// Run every thread the export starts at a lower CPU priority (nice 10, see
    /// [`crate::priority`]), so that it takes only the CPU time more urgent work (a guest
    /// booting alongside) leaves; the caller's own thread is the caller's to lower. Changes
    /// no byte of the output.
    pub background: bool,
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
            background: false,
        }
    }

    /// True when `format` was requested.
    pub fn wants(&self, format: Format) -> bool {
        self.formats.contains(&format)
    }
}

/// Checks an artifact base name (`export --name`, a spec's `image.name`): 1 to 100 of
/// `A-Z a-z 0-9 - _ . +`, starting with a letter or digit — so it is never a path, never
/// hidden, and never read as an option (`-rf.vmdk`) by the tools the import instructions call.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+');
    if name.is_empty() || name.len() > 100 {
        return Err(format!("name {name:?} must be 1 to 100 characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) || !name.chars().all(ok_char) {
        return Err(format!(
            "name {name:?} may hold only A-Z a-z 0-9 - _ . + and must start with a letter or digit"
        ));
    }
    Ok(())
}

/// The latest `SOURCE_DATE_EPOCH` every format can record unchanged: a VHD footer's timestamp
/// is a u32 of seconds since 2000-01-01 (2136-02-07T06:28:15Z). The other embedded times hold
/// more: ustar and old-GNU tar mtimes take 11 octal digits (8^11 - 1 s, year 2242); the gzip
/// member's MTIME is always 0, and VMDK, OVF and the JSON files carry no time.
pub const MAX_SOURCE_DATE_EPOCH: u64 = DEFAULT_SOURCE_DATE_EPOCH + u32::MAX as u64;

/// Parses a `SOURCE_DATE_EPOCH` value: whole seconds since 1970-01-01, at most
/// [`MAX_SOURCE_DATE_EPOCH`]. The error names the variable, the value and the limit.
pub fn parse_source_date_epoch(value: &str) -> Result<u64, String> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "SOURCE_DATE_EPOCH={value:?} is not a whole, non-negative number of seconds since 1970-01-01"
        ));
    }
    // All digits: it either fits or is too large.
    v.parse::<u64>()
        .ok()
        .filter(|&n| n <= MAX_SOURCE_DATE_EPOCH)
        .ok_or_else(|| too_late(value))
}

/// Checks a `SOURCE_DATE_EPOCH` already parsed (a library caller's).
pub fn check_source_date_epoch(seconds: u64) -> Result<u64, String> {
    if seconds > MAX_SOURCE_DATE_EPOCH {
        return Err(too_late(&seconds.to_string()));
    }
    Ok(seconds)
}

fn too_late(value: &str) -> String {
    format!(
        "SOURCE_DATE_EPOCH={value:?} is later than {MAX_SOURCE_DATE_EPOCH} \
         (2136-02-07T06:28:15Z), the latest time a VHD footer can record"
    )
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
        for bad in ["", "../x", "a/b", ".hidden", "sp ace", "-rf", "_x", "+x"] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn source_date_epoch_is_refused_beyond_what_every_format_holds() {
        assert_eq!(parse_source_date_epoch("0"), Ok(0));
        assert_eq!(
            parse_source_date_epoch(" 5241652095 "),
            Ok(MAX_SOURCE_DATE_EPOCH)
        );
        assert_eq!(MAX_SOURCE_DATE_EPOCH, 5_241_652_095);
        let e = parse_source_date_epoch("5241652096").unwrap_err();
        assert!(e.contains("5241652095") && e.contains("VHD"), "{e}");
        let e = parse_source_date_epoch("99999999999999999999999").unwrap_err();
        assert!(e.contains("later than"), "{e}");
        for bad in ["-1", "", "1.5", "yesterday", "+5"] {
            let e = parse_source_date_epoch(bad).unwrap_err();
            assert!(e.contains("not a whole, non-negative number"), "{bad}: {e}");
        }
    }
}
