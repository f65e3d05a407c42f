//! The lock file: every input of a build, by name, source, size and SHA-256. `nodeimg fetch`
//! writes it next to the spec (`NAME.toml` → `NAME.lock`); `nodeimg build` reads only the lock
//! and the content-addressed [`cache`](crate::cache), never the network.
//!
//! ```toml
//! version = 1
//!
//! [[artifact]]
//! name = "kubeadm"                 # unique, [a-z0-9._-]
//! kind = "binary"                  # base-image | deb | binary | archive | file | image |
//!                                  # test-suite | test-image | test-source
//! component = "kubeadm"            # which pinned component it provides (optional)
//! version = "v1.20.2"              # that component's version (with `component`)
//! source = "https://dl.k8s.io/release/v1.20.2/bin/linux/amd64/kubeadm"
//! size = 39219200
//! sha256 = "…64 hex digits…"
//! dest = "/usr/bin/kubeadm"        # binary, file: the path; archive: the directory
//! mode = "0755"                    # binary, file
//! # image = "k8s.gcr.io/pause:3.2" # image: the reference it is imported as
//! # note = "stand-in: …"           # shown in the build output and the manifest
//!
//! [[artifact]]                     # a distro package `nodeimg fetch` resolved
//! name = "deb-conntrack"           # deb-PACKAGE
//! kind = "deb"
//! version = "1:1.4.7-1+b2"         # the package's version (no component needed)
//! architecture = "amd64"           # deb only (optional)
//! suite = "bookworm"               # deb only (optional): the suite it was chosen from
//! source = "http://deb.debian.org/debian/pool/main/c/conntrack-tools/conntrack_1.4.7-1+b2_amd64.deb"
//! size = 39420
//! sha256 = "…"
//! ```
//!
//! When `nodeimg fetch` resolved distro packages, a `[packages]` table (before the artifacts)
//! records what the resolution depended on, so a second fetch with the same inputs reuses the
//! locked set without downloading the archive's indexes again (see [`PackageSet`]).
//!
//! How each kind is installed in the guest: `deb` packages all at once with `dpkg -i`,
//! `binary` and `file` with `install -m MODE` to `dest`, `archive` (`.tar.gz`) extracted into
//! `dest`, `image` imported into containerd's `k8s.io` namespace. `base-image` is the spec's
//! base image. `test-suite` (Kubernetes' `kubernetes-test-linux-<arch>.tar.gz` at the spec's
//! version) and `test-image` (an image the node conformance suite uses, with `image`) are
//! never installed: they go on the node conformance run's read-only test disk. `test-source`
//! (Kubernetes' `kubernetes-src.tar.gz` at the spec's version) is what `nodeimg fetch` derived
//! the test images from; it is locked so a second fetch derives the same list from the cache
//! without asking the network, and the build never reads it.

mod check;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;

pub use crate::located::LocatedError;
use crate::located::Locator;

/// The lock file format this build reads and writes.
pub const LOCK_VERSION: u32 = 1;

/// A lock that does not parse, breaks a rule or does not match the spec.
pub type LockError = LocatedError;

/// What an artifact is and how it is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The distro cloud image the build starts from.
    BaseImage,
    /// A Debian package (installed with the others in one `dpkg -i`).
    Deb,
    /// An executable installed at `dest`.
    Binary,
    /// A `.tar.gz` extracted into the directory `dest`.
    Archive,
    /// A plain file installed at `dest`.
    File,
    /// A container image archive imported into containerd's `k8s.io` namespace as `image`.
    Image,
    /// Kubernetes' test tarball (`kubernetes-test-linux-<arch>.tar.gz`), whose
    /// `kubernetes/test/bin/e2e_node.test` is the node conformance suite; `version` is the
    /// Kubernetes version it was built for.
    TestSuite,
    /// A container image archive the node conformance suite uses, as `image`.
    TestImage,
    /// Kubernetes' source (`kubernetes-src.tar.gz`) at the spec's version (`version`), which
    /// `nodeimg fetch` derived the test images from; never read by the build.
    TestSource,
}

impl Kind {
    /// The name used in the lock.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::BaseImage => "base-image",
            Kind::Deb => "deb",
            Kind::Binary => "binary",
            Kind::Archive => "archive",
            Kind::File => "file",
            Kind::Image => "image",
            Kind::TestSuite => "test-suite",
            Kind::TestImage => "test-image",
            Kind::TestSource => "test-source",
        }
    }
}

/// The components a spec pins, as named in the lock's `component` field.
pub const COMPONENTS: &[&str] = &[
    "kubeadm",
    "kubelet",
    "kubectl",
    "containerd",
    "runc",
    "crictl",
    "cni_plugins",
    "pause",
    "kubernetes-image",
];

/// The short name of an image reference: the last segment of its repository, without tag or
/// digest (`registry.k8s.io/coredns/coredns:v1.11.1` → `coredns`). An image's lock name.
pub fn image_short_name(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split(':').next().unwrap_or(last)
}

/// One locked input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Unique name.
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// The pinned component it provides, one of [`COMPONENTS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The component's version; for a `deb`, the package's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A `deb`'s architecture (`amd64`, `all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// The archive suite a `deb` was chosen from (`bookworm-security`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// Where it came from (URL, or a description for locally made inputs).
    pub source: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Install path (binary, file) or directory (archive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest: Option<String>,
    /// Permission bits for binary and file, as an octal string (`"0755"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The image reference an image archive is imported as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Anything a reader must know (e.g. that the artifact is a stand-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Artifact {
    /// `mode` as permission bits (checked when the lock was loaded).
    pub fn mode_bits(&self) -> Option<u32> {
        self.mode
            .as_deref()
            .and_then(|m| u32::from_str_radix(m, 8).ok())
    }
}

/// A parsed and checked lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// Where it was read from.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes (recorded in the manifest).
    pub sha256: String,
    /// The artifacts, in file order.
    pub artifacts: Vec<Artifact>,
    /// What the locked distro packages were resolved from, when `nodeimg fetch` resolved them.
    pub packages: Option<PackageSet>,
}

/// The inputs of a distro package resolution: the same inputs give the same locked set, so
/// `nodeimg fetch` reuses it (unless told to refresh) while every `.deb` is cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSet {
    /// The packages asked for (the node role's and the spec's extras), sorted.
    pub wanted: Vec<String>,
    /// SHA-256 of the base image whose dpkg status was subtracted.
    pub base_sha256: String,
    /// The archives read, one `URL SUITE… | COMPONENT… | KEYRING` line each.
    pub sources: Vec<String>,
}

/// The lock file that belongs to `spec_path`: same directory, extension `.lock`.
pub fn path_for_spec(spec_path: &Path) -> PathBuf {
    spec_path.with_extension("lock")
}

#[derive(Serialize)]
struct LockFile<'a> {
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    packages: Option<&'a PackageSet>,
    artifact: &'a [Artifact],
}

/// Renders a lock file's text (what `nodeimg fetch` writes), artifacts in the given order.
pub fn render(artifacts: &[Artifact]) -> String {
    render_with_packages(artifacts, None)
}

/// [`render`], with the `[packages]` record of a resolution.
pub fn render_with_packages(artifacts: &[Artifact], packages: Option<&PackageSet>) -> String {
    render_full(
        artifacts,
        packages,
        "nodeimg lock: every input of the build, pinned by SHA-256. Written by `nodeimg fetch`;\n\
         `nodeimg build` reads only this file and the cache.",
    )
}

/// Renders a lock file's text headed by `comment` (each line becomes a `# ` line), artifacts
/// in the given order: what [`render`] writes, for a lock made by another tool (the fixtures).
pub fn render_with_comment(artifacts: &[Artifact], comment: &str) -> String {
    render_full(artifacts, None, comment)
}

fn render_full(artifacts: &[Artifact], packages: Option<&PackageSet>, comment: &str) -> String {
    let body = toml::to_string(&LockFile {
        version: LOCK_VERSION,
        packages,
        artifact: artifacts,
    })
    .unwrap_or_else(|e| format!("# cannot render: {e}\n"));
    let mut text = String::new();
    for line in comment.lines() {
        text.push_str("# ");
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&body);
    text
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    version: Spanned<u32>,
    packages: Option<PackageSet>,
    #[serde(default)]
    artifact: Vec<RawArtifact>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArtifact {
    name: Spanned<String>,
    kind: Spanned<Kind>,
    component: Option<Spanned<String>>,
    version: Option<Spanned<String>>,
    architecture: Option<Spanned<String>>,
    suite: Option<Spanned<String>>,
    source: Spanned<String>,
    size: Spanned<u64>,
    sha256: Spanned<String>,
    dest: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    image: Option<Spanned<String>>,
    note: Option<Spanned<String>>,
}

/// Reads and checks the lock at `path`.
pub fn load(path: &Path) -> Result<Lock, LockError> {
    crate::located::load(path, crate::documents::LOCK_LIMIT, "a lock", parse)
}

/// Parses and checks lock `text` read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Lock, LockError> {
    let loc = Locator { path, text };
    let raw: RawLock = loc.parse_toml()?;
    if *raw.version.get_ref() != LOCK_VERSION {
        return Err(loc.bad(
            &raw.version,
            "version",
            format!(
                "lock format {} is not the one this nodeimg reads ({LOCK_VERSION}); run `nodeimg fetch` again",
                raw.version.get_ref()
            ),
        ));
    }
    let mut artifacts: Vec<Artifact> = Vec::with_capacity(raw.artifact.len());
    for a in raw.artifact {
        let artifact = check::artifact(&loc, a, &artifacts)?;
        artifacts.push(artifact);
    }
    let bases = artifacts
        .iter()
        .filter(|a| a.kind == Kind::BaseImage)
        .count();
    if bases != 1 {
        return Err(loc.at(
            text.len(),
            format!("artifact: the lock must hold exactly one base-image, it holds {bases}"),
        ));
    }
    Ok(Lock {
        path: path.to_path_buf(),
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
        artifacts,
        packages: raw.packages,
    })
}

impl Lock {
    /// The base image's entry.
    pub fn base(&self) -> &Artifact {
        self.artifacts
            .iter()
            .find(|a| a.kind == Kind::BaseImage)
            .unwrap_or(&self.artifacts[0])
    }

    /// The artifacts of one kind, in lock order.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Artifact> {
        self.artifacts.iter().filter(move |a| a.kind == kind)
    }

    /// The artifacts providing `component`.
    pub fn component(&self, component: &str) -> impl Iterator<Item = &Artifact> {
        self.artifacts
            .iter()
            .filter(move |a| a.component.as_deref() == Some(component))
    }

    /// Checks that this lock was made for `spec`: the same base image (when the spec pins
    /// one), for every pinned component artifacts at exactly the pinned version, a pause
    /// image, the control-plane images at the Kubernetes version, and no image of an addon
    /// the spec leaves out. The error names the lock, the component and both versions, and
    /// says how to refresh the lock.
    pub fn check_matches(&self, spec: &crate::spec::Spec) -> Result<(), String> {
        check::matches_spec(self, spec)
    }
}
