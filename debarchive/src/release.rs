//! A suite's `Release` file, read from its verified `InRelease`: what the suite is, until when
//! it may be used, and the size and SHA-256 of every index it lists. The one place that picks a
//! `Packages` index (`.xz`, then `.gz`, then plain; by-hash when the archive offers it), checks
//! its bytes against the Release and decompresses them.

use std::collections::BTreeMap;
use std::io::Read as _;

use sha2::{Digest as _, Sha256};

use crate::control::{self, ControlError};
use crate::date;
use crate::signature::{self, Keyring, SignatureError, Signer};

/// Why a Release or an index named in it was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("{file}: holds no paragraph")]
    Empty { file: String },
    #[error("{file}: field {field}: {reason}")]
    Field {
        file: String,
        field: &'static str,
        reason: String,
    },
    #[error(
        "{file}: expired: Valid-Until is {valid_until}; the archive (or mirror) is stale or replays an old Release"
    )]
    Expired { file: String, valid_until: String },
    #[error(
        "{file}: lists no Packages index for component {component}, architecture {architecture}"
    )]
    NoIndex {
        file: String,
        component: String,
        architecture: String,
    },
    #[error("{file}: size {actual} bytes, but {release} lists {expected}")]
    SizeMismatch {
        file: String,
        release: String,
        expected: u64,
        actual: u64,
    },
    #[error("{file}: sha256 {actual}, but {release} lists {expected}")]
    HashMismatch {
        file: String,
        release: String,
        expected: String,
        actual: String,
    },
    #[error("{file}: cannot decompress ({compression}): {reason}")]
    Decompress {
        file: String,
        compression: &'static str,
        reason: String,
    },
}

/// A parsed Release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub origin: Option<String>,
    pub suite: Option<String>,
    pub codename: Option<String>,
    pub components: Vec<String>,
    pub architectures: Vec<String>,
    pub acquire_by_hash: bool,
    /// `Date`, seconds since the epoch.
    pub date: Option<u64>,
    /// `Valid-Until`, seconds since the epoch.
    pub valid_until: Option<u64>,
    /// The `SHA256` list: path (relative to `dists/SUITE/`) to its size and digest.
    pub sha256: BTreeMap<String, Listed>,
}

/// One file of the Release's SHA256 list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub size: u64,
    pub sha256: String,
}

/// How an index file is compressed, told by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Xz,
    Gzip,
    None,
}

/// The `Packages` index chosen for one component and architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// The path the Release lists, relative to `dists/SUITE/` (`main/binary-amd64/Packages.xz`).
    pub path: String,
    /// The path to download, relative to `dists/SUITE/`: the by-hash path when the archive
    /// offers one (`main/binary-amd64/by-hash/SHA256/<digest>`), else `path`.
    pub download_path: String,
    pub size: u64,
    pub sha256: String,
    pub compression: Compression,
}

/// Verifies an `InRelease` against `keyring`, parses it, and refuses it when it has expired at
/// `now` (seconds since the epoch: the only wall-clock input, used for this check alone).
pub fn verify_in_release(
    in_release: &[u8],
    keyring: &Keyring,
    file: &str,
    now: u64,
) -> Result<(Release, Signer), ReleaseError> {
    let verified = signature::verify_clearsigned(in_release, keyring, file)?;
    let release = parse(&verified.text, file)?;
    release.check_not_expired(file, now)?;
    Ok((release, verified.signer))
}

/// Parses the (already verified) text of a Release.
pub fn parse(text: &str, file: &str) -> Result<Release, ReleaseError> {
    let paragraphs = control::parse(text, file)?;
    let paragraph = paragraphs.first().ok_or_else(|| ReleaseError::Empty {
        file: file.to_owned(),
    })?;
    let field_error = |field: &'static str, reason: String| ReleaseError::Field {
        file: file.to_owned(),
        field,
        reason,
    };
    let words = |field: &str| -> Vec<String> {
        paragraph
            .get(field)
            .map(|value| value.split_ascii_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let owned = |field: &str| paragraph.get(field).map(|value| value.trim().to_owned());
    let date_field = |field: &'static str| -> Result<Option<u64>, ReleaseError> {
        match paragraph.get(field) {
            None => Ok(None),
            Some(value) => date::parse(value)
                .map(Some)
                .ok_or_else(|| field_error(field, format!("not a date: {:?}", value.trim()))),
        }
    };
    let acquire_by_hash = match paragraph.get("Acquire-By-Hash").map(str::trim) {
        None | Some("no") => false,
        Some("yes") => true,
        Some(other) => {
            return Err(field_error(
                "Acquire-By-Hash",
                format!("{other:?} is neither yes nor no"),
            ));
        }
    };
    let mut sha256 = BTreeMap::new();
    for line in paragraph.get("SHA256").unwrap_or_default().lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_ascii_whitespace();
        let (Some(digest), Some(size), Some(path), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(field_error(
                "SHA256",
                format!("line {line:?} is not `digest size path`"),
            ));
        };
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(field_error(
                "SHA256",
                format!("{digest:?} for {path} is not a SHA-256 digest"),
            ));
        }
        let size: u64 = size.parse().map_err(|_| {
            field_error(
                "SHA256",
                format!("size {size:?} for {path} is not a number"),
            )
        })?;
        sha256.insert(
            path.to_owned(),
            Listed {
                size,
                sha256: digest.to_ascii_lowercase(),
            },
        );
    }
    if sha256.is_empty() {
        return Err(field_error("SHA256", "missing or empty".to_owned()));
    }
    Ok(Release {
        origin: owned("Origin"),
        suite: owned("Suite"),
        codename: owned("Codename"),
        components: words("Components"),
        architectures: words("Architectures"),
        acquire_by_hash,
        date: date_field("Date")?,
        valid_until: date_field("Valid-Until")?,
        sha256,
    })
}

impl Release {
    /// Refuses a Release whose `Valid-Until` is at or before `now`, naming the date.
    pub fn check_not_expired(&self, file: &str, now: u64) -> Result<(), ReleaseError> {
        match self.valid_until {
            Some(valid_until) if valid_until <= now => Err(ReleaseError::Expired {
                file: file.to_owned(),
                valid_until: date::format(valid_until),
            }),
            _ => Ok(()),
        }
    }

    /// The `Packages` index to download for `component` and `architecture`: `.xz` first, then
    /// `.gz`, then the plain file, as listed in SHA256.
    pub fn packages_index(
        &self,
        component: &str,
        architecture: &str,
        file: &str,
    ) -> Result<IndexFile, ReleaseError> {
        let directory = format!("{component}/binary-{architecture}");
        let candidates = [
            ("Packages.xz", Compression::Xz),
            ("Packages.gz", Compression::Gzip),
            ("Packages", Compression::None),
        ];
        for (name, compression) in candidates {
            let path = format!("{directory}/{name}");
            if let Some(listed) = self.sha256.get(&path) {
                let download_path = if self.acquire_by_hash {
                    format!("{directory}/by-hash/SHA256/{}", listed.sha256)
                } else {
                    path.clone()
                };
                return Ok(IndexFile {
                    path,
                    download_path,
                    size: listed.size,
                    sha256: listed.sha256.clone(),
                    compression,
                });
            }
        }
        Err(ReleaseError::NoIndex {
            file: file.to_owned(),
            component: component.to_owned(),
            architecture: architecture.to_owned(),
        })
    }
}

impl IndexFile {
    /// Checks downloaded bytes (named `file`) against the size and SHA-256 that `release` (the
    /// Release's name) lists, then decompresses them. Nothing is parsed before this passes.
    pub fn check_and_decompress(
        &self,
        bytes: &[u8],
        file: &str,
        release: &str,
    ) -> Result<Vec<u8>, ReleaseError> {
        let actual = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if actual != self.size {
            return Err(ReleaseError::SizeMismatch {
                file: file.to_owned(),
                release: release.to_owned(),
                expected: self.size,
                actual,
            });
        }
        let digest = hex::encode(Sha256::digest(bytes));
        if digest != self.sha256 {
            return Err(ReleaseError::HashMismatch {
                file: file.to_owned(),
                release: release.to_owned(),
                expected: self.sha256.clone(),
                actual: digest,
            });
        }
        decompress(bytes, self.compression, file)
    }
}

fn decompress(bytes: &[u8], compression: Compression, file: &str) -> Result<Vec<u8>, ReleaseError> {
    let mut out = Vec::new();
    let (result, name) = match compression {
        Compression::None => return Ok(bytes.to_vec()),
        Compression::Xz => (
            liblzma::read::XzDecoder::new(bytes).read_to_end(&mut out),
            "xz",
        ),
        Compression::Gzip => (
            flate2::read::GzDecoder::new(bytes).read_to_end(&mut out),
            "gzip",
        ),
    };
    result.map_err(|error| ReleaseError::Decompress {
        file: file.to_owned(),
        compression: name,
        reason: error.to_string(),
    })?;
    Ok(out)
}
