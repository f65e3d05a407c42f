//! `[packages]`: the distro packages `nodeimg fetch` resolves, downloads and locks for the
//! image, on top of the node role's own (which `distros` names per release).
//!
//! ```toml
//! [packages]
//! extra = ["nfs-common"]     # more packages from the archive, resolved with their dependencies
//! # A private archive replaces the distro's (e.g. an organisation's signed snapshot of it);
//! # all four keys go together.
//! archive = "http://apt.example/debian"
//! suites = ["bookworm", "bookworm-security"]
//! components = ["main"]
//! keyring = "keys/archive.gpg"          # relative to the spec's directory
//! # fetch = false            # the base already holds every package the node needs: fetch
//! #                          # adds none (a spec for a base made by hand or a test's fake base)
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::located::Locator;
use crate::spec::{SpecError, check_mirror};

/// `[packages]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagesSection {
    /// Whether `nodeimg fetch` adds distro packages at all (`fetch = false` turns it off).
    pub fetch: bool,
    /// Extra packages, in the spec's order, without duplicates.
    pub extra: Vec<String>,
    /// A private archive used instead of the distro's.
    pub archive: Option<PrivateArchive>,
}

impl Default for PackagesSection {
    fn default() -> Self {
        PackagesSection {
            fetch: true,
            extra: Vec::new(),
            archive: None,
        }
    }
}

/// A private archive: its URL (the directory holding `dists/` and `pool/`), suites,
/// components and the keyring that signs its `InRelease` files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateArchive {
    pub url: String,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    /// Resolved against the spec's directory.
    pub keyring: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPackages {
    fetch: Option<Spanned<bool>>,
    #[serde(default)]
    extra: Vec<Spanned<String>>,
    archive: Option<Spanned<String>>,
    suites: Option<Spanned<Vec<Spanned<String>>>>,
    components: Option<Spanned<Vec<Spanned<String>>>>,
    keyring: Option<Spanned<String>>,
}

/// A Debian package name (Policy §5.6.1): lower-case letters, digits, `+ - .`, at least two
/// characters, starting with a letter or digit.
pub fn is_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.len() <= 128
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// A suite or component name: 1-64 characters of `[A-Za-z0-9._/-]`, starting with a letter
/// or digit, no `..`.
fn is_archive_word(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= 64
        && !word.contains("..")
        && word
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
}

pub(super) fn check(
    loc: &Locator<'_>,
    raw: Option<&RawPackages>,
) -> Result<PackagesSection, SpecError> {
    let Some(raw) = raw else {
        return Ok(PackagesSection::default());
    };
    let mut extra: Vec<String> = Vec::new();
    for name in &raw.extra {
        if !is_package_name(name.get_ref()) {
            return Err(loc.bad(
                name,
                "packages.extra",
                format!(
                    "{:?} is not a Debian package name (a-z 0-9 + - ., at least 2 characters)",
                    name.get_ref()
                ),
            ));
        }
        if extra.contains(name.get_ref()) {
            return Err(loc.bad(
                name,
                "packages.extra",
                format!("{:?} is listed twice", name.get_ref()),
            ));
        }
        extra.push(name.get_ref().clone());
    }
    let archive = match (&raw.archive, &raw.suites, &raw.components, &raw.keyring) {
        (None, None, None, None) => None,
        (Some(url), Some(suites), Some(components), Some(keyring)) => Some(PrivateArchive {
            url: check_mirror(url.get_ref()).map_err(|e| loc.bad(url, "packages.archive", e))?,
            suites: words(loc, suites, "packages.suites")?,
            components: words(loc, components, "packages.components")?,
            keyring: spec_relative_path(loc, keyring, "packages.keyring")?,
        }),
        _ => {
            let at = raw
                .archive
                .as_ref()
                .map(Spanned::span)
                .or(raw.suites.as_ref().map(Spanned::span))
                .or(raw.components.as_ref().map(Spanned::span))
                .or(raw.keyring.as_ref().map(Spanned::span))
                .map_or(0, |span| span.start);
            return Err(loc.at(
                at,
                "packages: a private archive needs archive, suites, components and keyring together",
            ));
        }
    };
    Ok(PackagesSection {
        fetch: raw.fetch.as_ref().is_none_or(|fetch| *fetch.get_ref()),
        extra,
        archive,
    })
}

fn words(
    loc: &Locator<'_>,
    list: &Spanned<Vec<Spanned<String>>>,
    key: &str,
) -> Result<Vec<String>, SpecError> {
    if list.get_ref().is_empty() {
        return Err(loc.bad(list, key, "is empty"));
    }
    let mut out: Vec<String> = Vec::new();
    for word in list.get_ref() {
        if !is_archive_word(word.get_ref()) {
            return Err(loc.bad(
                word,
                key,
                format!(
                    "{:?} must be 1-64 characters of [A-Za-z0-9._/-], starting with a letter or digit",
                    word.get_ref()
                ),
            ));
        }
        if out.contains(word.get_ref()) {
            return Err(loc.bad(word, key, format!("{:?} is listed twice", word.get_ref())));
        }
        out.push(word.get_ref().clone());
    }
    Ok(out)
}

/// A path the spec gives at `key` (a keyring), resolved against the spec's directory.
pub(super) fn spec_relative_path(
    loc: &Locator<'_>,
    keyring: &Spanned<String>,
    key: &str,
) -> Result<PathBuf, SpecError> {
    if keyring.get_ref().is_empty() {
        return Err(loc.bad(keyring, key, "is empty"));
    }
    let path = PathBuf::from(keyring.get_ref());
    Ok(if path.is_absolute() {
        path
    } else {
        loc.path.parent().unwrap_or(Path::new(".")).join(path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse;

    const BASE: &str = r#"[image]
name = "n"
distro = "debian-12"
firmware = "uefi"
disk_gib = 8
[base]
path = "base.qcow2"
sha256 = "0000000000000000000000000000000000000000000000000000000000000abc"
format = "qcow2"
[kubernetes]
version = "v1.20.2"
[components]
containerd = "1"
runc = "1"
crictl = "1"
cni_plugins = "1"
pause = "3.2"
[export]
formats = ["raw"]
"#;

    fn parsed(extra: &str) -> Result<PackagesSection, String> {
        parse(Path::new("/specs/s.toml"), &format!("{BASE}{extra}"))
            .map(|spec| spec.packages)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn absent_means_the_distros_archive_and_no_extras() {
        assert_eq!(parsed("").unwrap(), PackagesSection::default());
        assert!(PackagesSection::default().fetch);
    }

    #[test]
    fn extras_and_a_private_archive_parse() {
        let section = parsed(
            "[packages]\nextra = [\"nfs-common\", \"libc6\"]\narchive = \"http://apt.example/deb/\"\n\
             suites = [\"stable\", \"stable-security\"]\ncomponents = [\"main\"]\nkeyring = \"k/a.gpg\"\n",
        )
        .unwrap();
        assert_eq!(section.extra, ["nfs-common", "libc6"]);
        let archive = section.archive.unwrap();
        assert_eq!(archive.url, "http://apt.example/deb");
        assert_eq!(archive.suites, ["stable", "stable-security"]);
        assert_eq!(archive.keyring, Path::new("/specs/k/a.gpg"));
        assert!(!parsed("[packages]\nfetch = false\n").unwrap().fetch);
    }

    #[test]
    fn bad_packages_are_refused_at_their_key() {
        let cases = [
            (
                "[packages]\nextra = [\"NFS\"]\n",
                "packages.extra: \"NFS\" is not",
            ),
            (
                "[packages]\nextra = [\"a\"]\n",
                "packages.extra: \"a\" is not",
            ),
            ("[packages]\nextra = [\"jq\", \"jq\"]\n", "listed twice"),
            (
                "[packages]\narchive = \"http://a\"\n",
                "needs archive, suites",
            ),
            (
                "[packages]\narchive = \"ftp://a\"\nsuites = [\"s\"]\ncomponents = [\"main\"]\nkeyring = \"k\"\n",
                "packages.archive:",
            ),
            (
                "[packages]\narchive = \"http://a\"\nsuites = []\ncomponents = [\"main\"]\nkeyring = \"k\"\n",
                "packages.suites: is empty",
            ),
            (
                "[packages]\narchive = \"http://a\"\nsuites = [\"../x\"]\ncomponents = [\"main\"]\nkeyring = \"k\"\n",
                "packages.suites: \"../x\"",
            ),
            ("[packages]\nextras = []\n", "unknown field `extras`"),
        ];
        for (text, want) in cases {
            let error = parsed(text).unwrap_err();
            assert!(error.contains(want), "{text}: {error}");
            assert!(error.starts_with("/specs/s.toml:2"), "{text}: {error}");
        }
    }
}
