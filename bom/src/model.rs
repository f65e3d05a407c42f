//! The bill of materials (`bom.json`): what a built image holds, in a stable order so that the
//! file itself diffs cleanly. Every list is sorted and every map is a `BTreeMap`; nothing in it
//! depends on the time or the machine of the build.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The BOM file in a build's output directory.
pub const BOM_FILE: &str = "bom.json";
/// The CycloneDX SBOM file in a build's output directory.
pub const SBOM_FILE: &str = "sbom.cdx.json";
/// `bom.json`'s `format` value.
pub const BOM_FORMAT: &str = "nodeimg-bom";
/// `bom.json`'s `version` value.
pub const BOM_VERSION: u32 = 1;

/// A bill of materials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bom {
    /// Always [`BOM_FORMAT`].
    pub format: String,
    /// Always [`BOM_VERSION`].
    pub version: u32,
    /// What the build was made from.
    pub inputs: Inputs,
    /// The operating system.
    pub os: Os,
    /// Every installed distro package, by name then architecture.
    pub packages: Vec<Package>,
    /// Every file of every pinned component, by component then path.
    pub components: Vec<ComponentFile>,
    /// Every image in containerd's `k8s.io` namespace, by reference.
    pub images: Vec<Image>,
    /// The node configuration that matters.
    pub config: NodeConfig,
}

/// What the build was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// The image's name from the spec.
    pub image: String,
    /// The spec's distro (`debian-12`).
    pub distro: String,
    /// The nodeimg version that built it.
    pub nodeimg_version: String,
    /// SHA-256 of the spec file.
    pub spec_sha256: String,
    /// SHA-256 of the lock file.
    pub lock_sha256: String,
    /// SHA-256 of the base image.
    pub base_image_sha256: String,
}

/// The operating system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Os {
    /// `/etc/os-release` (`ID`, `VERSION_ID`, `VERSION_CODENAME`, …).
    pub os_release: BTreeMap<String, String>,
    /// The kernel release the image boots (`6.1.0-28-cloud-amd64`).
    pub kernel_release: String,
    /// The kernel command line of the image's default boot entry.
    pub kernel_cmdline: String,
}

/// An installed distro package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// Package name.
    pub name: String,
    /// Version as the package manager spells it (`1:2.3-4+deb12u1`).
    pub version: String,
    /// `amd64`, `all`, …
    pub architecture: String,
    /// The source package.
    pub source: String,
    /// The source package's version.
    pub source_version: String,
    /// Whether the package is held (never upgraded automatically).
    pub held: bool,
}

/// One installed file of a pinned component.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentFile {
    /// The component (`kubeadm`, `containerd`, `cni_plugins`, …).
    pub name: String,
    /// Its pinned version.
    pub version: String,
    /// Where the file is installed.
    pub path: String,
    /// SHA-256 of the installed file, read in the guest.
    pub sha256: String,
    /// Where the component came from (the lock's source).
    pub source: String,
}

/// An image in containerd's `k8s.io` namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// `k8s.gcr.io/pause:3.2`.
    pub reference: String,
    /// `sha256:…` of the image's manifest (or index).
    pub digest: String,
}

/// The node configuration that matters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The sysctls the role sets, with their values in the guest.
    pub sysctls: BTreeMap<String, String>,
    /// The modules the role loads, each with whether it is loaded.
    pub modules: BTreeMap<String, bool>,
    /// containerd's effective runtime settings (from `containerd config dump`).
    pub containerd: BTreeMap<String, String>,
}

/// A BOM (or advisory feed) file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BomError {
    /// The file cannot be read: missing, unreadable, not a regular file or larger than the
    /// limit for its kind (the reader, `nodeimg`'s `documents`, sets the limits).
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why (`cannot read: …`, `is a FIFO, not a regular file`, `is larger than 1 GiB …`).
        reason: String,
    },
    /// The file is not a BOM (or not a feed).
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong (with line and column where JSON says so).
        reason: String,
    },
}

impl Bom {
    /// Puts every list in its stable order.
    pub fn normalize(&mut self) {
        self.packages.sort();
        self.packages.dedup();
        self.components.sort();
        self.components.dedup();
        self.images.sort();
        self.images.dedup();
    }

    /// The JSON text of `bom.json`: pretty, sorted, ending in a newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Parses `text` (the contents of `path`): JSON of the right schema and version.
    pub fn parse(path: &Path, text: &[u8]) -> Result<Self, BomError> {
        let invalid = |reason: String| BomError::Invalid {
            path: path.display().to_string(),
            reason,
        };
        let value = parse_json(path, text)?;
        if let Some(reason) = header_fault(&value) {
            return Err(invalid(reason));
        }
        serde_json::from_value(value).map_err(|e| invalid(format!("wrong schema: {e}")))
    }
}

/// Why `value` is not a BOM this nodeimg reads (its `format` and `version` keys), if it is not.
fn header_fault(value: &serde_json::Value) -> Option<String> {
    let format = value.get("format").and_then(|f| f.as_str());
    if format != Some(BOM_FORMAT) {
        return Some(match format {
            Some(other) => format!("`format` is {other:?}, not {BOM_FORMAT:?}: not a nodeimg BOM"),
            None => {
                format!("no `format` key: not a nodeimg BOM (expected \"format\": {BOM_FORMAT:?})")
            }
        });
    }
    match value.get("version") {
        Some(v) if v.as_u64() == Some(u64::from(BOM_VERSION)) => None,
        Some(v) => Some(format!(
            "`version` is {v}; this nodeimg reads BOM version {BOM_VERSION}"
        )),
        None => Some(format!(
            "no `version` key; this nodeimg reads BOM version {BOM_VERSION}"
        )),
    }
}

/// `bytes` (the contents of `path`, a BOM or a feed) as JSON: a truncated document and one that
/// is not JSON at all are told apart.
pub(crate) fn parse_json(path: &Path, bytes: &[u8]) -> Result<serde_json::Value, BomError> {
    serde_json::from_slice(bytes).map_err(|e| BomError::Invalid {
        path: path.display().to_string(),
        reason: if e.is_eof() {
            format!("truncated JSON ({e})")
        } else {
            format!("not JSON: {e}")
        },
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small BOM for tests.
    pub fn sample() -> Bom {
        let mut bom = Bom {
            format: BOM_FORMAT.into(),
            version: BOM_VERSION,
            inputs: Inputs {
                image: "test-image".into(),
                distro: "debian-12".into(),
                nodeimg_version: "0.1.0".into(),
                spec_sha256: "a".repeat(64),
                lock_sha256: "b".repeat(64),
                base_image_sha256: "c".repeat(64),
            },
            os: Os {
                os_release: [
                    ("ID".to_owned(), "debian".to_owned()),
                    ("VERSION_CODENAME".to_owned(), "bookworm".to_owned()),
                    ("VERSION_ID".to_owned(), "12".to_owned()),
                ]
                .into(),
                kernel_release: "6.1.0-28-cloud-amd64".into(),
                kernel_cmdline: "root=UUID=x ro console=ttyS0".into(),
            },
            packages: vec![
                Package {
                    name: "runc".into(),
                    version: "1.1.5+ds1-1+deb12u1".into(),
                    architecture: "amd64".into(),
                    source: "runc".into(),
                    source_version: "1.1.5+ds1-1+deb12u1".into(),
                    held: true,
                },
                Package {
                    name: "bash".into(),
                    version: "5.2.15-2+b7".into(),
                    architecture: "amd64".into(),
                    source: "bash".into(),
                    source_version: "5.2.15-2".into(),
                    held: false,
                },
            ],
            components: vec![ComponentFile {
                name: "kubeadm".into(),
                version: "v1.20.2".into(),
                path: "/usr/bin/kubeadm".into(),
                sha256: "d".repeat(64),
                source: "https://dl.k8s.io/release/v1.20.2/bin/linux/amd64/kubeadm".into(),
            }],
            images: vec![Image {
                reference: "k8s.gcr.io/pause:3.2".into(),
                digest: format!("sha256:{}", "e".repeat(64)),
            }],
            config: NodeConfig {
                sysctls: [("net.ipv4.ip_forward".to_owned(), "1".to_owned())].into(),
                modules: [("br_netfilter".to_owned(), true)].into(),
                containerd: [("SystemdCgroup".to_owned(), "true".to_owned())].into(),
            },
        };
        bom.normalize();
        bom
    }

    #[test]
    fn round_trips_in_a_stable_order() {
        let bom = sample();
        assert_eq!(bom.packages[0].name, "bash", "sorted by name");
        let text = bom.to_json();
        let back = Bom::parse(Path::new("bom.json"), text.as_bytes()).unwrap();
        assert_eq!(back, bom);
        assert_eq!(back.to_json(), text);
    }

    #[test]
    fn bad_files_name_the_file_and_the_fault() {
        let p = Path::new("/x/bom.json");
        let text = sample().to_json();
        let cases: [(&[u8], &str); 7] = [
            (&text.as_bytes()[..text.len() / 2], "truncated JSON"),
            (b"not json", "not JSON"),
            (br#"{"format": "cyclonedx"}"#, "not a nodeimg BOM"),
            (
                br#"{"format": "nodeimg-bom", "version": 7}"#,
                "`version` is 7; this nodeimg reads BOM version 1",
            ),
            (
                br#"{"format": "nodeimg-bom", "version": "1"}"#,
                "`version` is \"1\"; this",
            ),
            (br#"{"format": "nodeimg-bom"}"#, "no `version` key"),
            (
                br#"{"format": "nodeimg-bom", "version": 1, "inputs": 3}"#,
                "wrong schema",
            ),
        ];
        for (bytes, want) in cases {
            let e = Bom::parse(p, bytes).unwrap_err().to_string();
            assert!(e.starts_with("/x/bom.json: "), "{e}");
            assert!(e.contains(want), "{want}: {e}");
        }
    }
}
