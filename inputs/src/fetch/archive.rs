//! Reading a Debian-style archive over HTTP, each step checked before the next: a suite's
//! `InRelease` verified against the archive's keyring ([`debarchive::release`]), then each
//! `Packages` index by its size and SHA-256 in that Release, and only then parsed. Indexes are
//! not build inputs, so they stay in memory and never enter the cache.

use std::path::{Path, PathBuf};

use debarchive::packages::Package;
use debarchive::release::{self, Release};
use debarchive::signature::Keyring;

use super::error::FetchError;
use super::http::Http;
use super::plan::{Mirror, fetch_url};
use crate::spec::Spec;

/// The largest `InRelease` read (Debian's main suite is about 150 KiB).
const IN_RELEASE_LIMIT: u64 = 16 << 20;
/// The largest keyring read.
const KEYRING_LIMIT: u64 = 16 << 20;

/// One archive: where it is, which suites and components to read, and its keyring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSource {
    /// The directory holding `dists/` and `pool/` (upstream, before any mirror).
    pub url: String,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub keyring: PathBuf,
}

impl ArchiveSource {
    /// One line for the lock's `[packages]` record.
    pub fn describe(&self) -> String {
        format!(
            "{} {} | {} | {}",
            self.url,
            self.suites.join(" "),
            self.components.join(" "),
            self.keyring.display()
        )
    }
}

/// The archives `spec` reads: its private archive, or else its distro's.
pub fn sources(spec: &Spec, distro: &distros::Distro) -> Vec<ArchiveSource> {
    if let Some(private) = &spec.packages.archive {
        return vec![ArchiveSource {
            url: private.url.clone(),
            suites: private.suites.clone(),
            components: private.components.clone(),
            keyring: private.keyring.clone(),
        }];
    }
    distro_sources(distro)
}

/// The archives of `distro` (its archive URLs, suites, components and host keyring).
pub fn distro_sources(distro: &distros::Distro) -> Vec<ArchiveSource> {
    let archive = &distro.archive;
    archive
        .sources
        .iter()
        .map(|source| ArchiveSource {
            url: source.url.trim_end_matches('/').to_owned(),
            suites: source.suites.iter().map(|s| (*s).to_owned()).collect(),
            components: archive.components.iter().map(|c| (*c).to_owned()).collect(),
            keyring: PathBuf::from(archive.keyring),
        })
        .collect()
}

/// Reads an archive's keyring file (binary or armored).
pub fn load_keyring(path: &Path) -> Result<Keyring, FetchError> {
    read_keyring(
        path,
        "Debian's keyring comes with the debian-archive-keyring package, Ubuntu's with \
         ubuntu-keyring; a private archive's is `[packages] keyring` in the spec",
    )
}

/// Reads a keyring file (binary or armored); `when_missing` says where the keyring comes from
/// (its package, the spec's option) when the file does not exist.
pub fn read_keyring(path: &Path, when_missing: &str) -> Result<Keyring, FetchError> {
    let bytes =
        diskimg::input_file::read_bounded(path, KEYRING_LIMIT, "a keyring").map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                format!(" ({when_missing})")
            } else {
                String::new()
            };
            FetchError::Keyring {
                path: path.display().to_string(),
                why: format!("{e}{hint}"),
            }
        })?;
    Ok(Keyring::parse(&bytes, &path.display().to_string())?)
}

/// One suite as read and verified: its `InRelease` bytes, the parsed Release, and each
/// component's `Packages` text (decompressed, checked against the Release).
#[derive(Debug, Clone)]
pub struct Suite {
    /// The archive URL (upstream).
    pub url: String,
    pub suite: String,
    pub in_release: Vec<u8>,
    pub release: Release,
    /// `(component, Packages text)`, in the source's component order.
    pub packages: Vec<(String, String)>,
}

impl Suite {
    /// The suite's indexes for the resolver, labelled as apt would name them.
    pub fn indexes(
        &self,
        architecture: &str,
    ) -> Result<Vec<debarchive::resolve::Index>, FetchError> {
        let mut out = Vec::new();
        for (component, text) in &self.packages {
            let label = format!("{} {}/{component} {architecture}", self.url, self.suite);
            let packages: Vec<Package> = debarchive::packages::parse_index(text, &label)?;
            out.push(debarchive::resolve::Index {
                suite: self.suite.clone(),
                label,
                packages,
            });
        }
        Ok(out)
    }
}

/// Downloads and verifies `dists/SUITE/InRelease` of `source` (through `mirror`), then each
/// component's `Packages` index for `architecture`. `now` (seconds since the epoch) is used
/// only to refuse an expired Release.
pub fn read_suite(
    http: &Http,
    mirror: Option<&Mirror>,
    source: &ArchiveSource,
    keyring: &Keyring,
    suite: &str,
    architecture: &str,
    now: u64,
) -> Result<Suite, FetchError> {
    let dists = format!("{}/dists/{suite}", source.url);
    let in_release_url = fetch_url(mirror, &format!("{dists}/InRelease"));
    let in_release = http.get_ok(&in_release_url, IN_RELEASE_LIMIT)?;
    let (release, signer) = release::verify_in_release(&in_release, keyring, &in_release_url, now)?;
    tracing::info!(
        "{in_release_url}: signed by {} ({})",
        signer.fingerprint,
        keyring.name()
    );
    let mut packages = Vec::new();
    for component in &source.components {
        let index = release.packages_index(component, architecture, &in_release_url)?;
        let url = fetch_url(mirror, &format!("{dists}/{}", index.download_path));
        let bytes = http.get_ok(&url, index.size.saturating_add(1))?;
        let plain = index.check_and_decompress(&bytes, &url, &in_release_url)?;
        let text = String::from_utf8(plain).map_err(|_| FetchError::Index {
            url: url.clone(),
            why: "the Packages index is not UTF-8 text".to_owned(),
        })?;
        packages.push((component.clone(), text));
    }
    Ok(Suite {
        url: source.url.clone(),
        suite: suite.to_owned(),
        in_release,
        release,
        packages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_bad_keyring_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("absent.gpg");
        let text = load_keyring(&absent).unwrap_err().to_string();
        assert!(
            text.contains("absent.gpg") && text.contains("debian-archive-keyring"),
            "{text}"
        );
        let junk = dir.path().join("junk.gpg");
        std::fs::write(&junk, b"junk").unwrap();
        let text = load_keyring(&junk).unwrap_err().to_string();
        assert!(text.contains("junk.gpg"), "{text}");
    }

    #[test]
    fn every_distro_reads_its_archive_with_its_keyring() {
        for distro in distros::all() {
            let sources = distro_sources(distro);
            assert!(sources.len() >= 2, "{}", distro.id);
            assert!(sources.iter().all(|s| {
                s.suites
                    .iter()
                    .all(|suite| suite.starts_with(distro.codename))
            }));
            assert!(
                sources
                    .iter()
                    .any(|s| s.suites.iter().any(|suite| suite.ends_with("-security")))
            );
            assert!(sources[0].keyring.is_absolute());
        }
    }
}
