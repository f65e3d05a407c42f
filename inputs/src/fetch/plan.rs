//! What `nodeimg fetch` downloads for a spec: a pure function of the spec (no I/O), so the
//! URLs for every version can be tested. URLs here are the upstream ones; a [`Mirror`] only
//! changes where they are fetched from, never what the lock records.

use std::path::{Path, PathBuf};

use distros::ChecksumAlgorithm;

use crate::lock::Kind;
use crate::spec::{BaseSource, Spec};

/// The release of kubernetes/release whose kubelet unit and kubeadm drop-in are installed.
pub const RELEASE_TEMPLATES_VERSION: &str = "v0.16.2";

/// The registry kubeadm pulls the control-plane images from.
pub const K8S_REGISTRY: &str = "registry.k8s.io";

/// The lock name of the spec's pause image when it differs from kubeadm's (which keeps the
/// name `pause`).
pub const SANDBOX_PAUSE: &str = "sandbox-pause";

/// The images kubeadm lists cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// kubeadm's list has no pause image.
    #[error("kubeadm {version} lists no pause image: {listed}")]
    NoPause {
        /// The Kubernetes version.
        version: String,
        /// What it listed.
        listed: String,
    },
    /// A node conformance test image's reference cannot be pulled.
    #[error(
        "node e2e image list at {version}: {reference:?} is not a registry/repository:tag reference"
    )]
    TestImageReference {
        /// The Kubernetes version.
        version: String,
        /// The reference.
        reference: String,
    },
    /// Two node conformance test images would get the same lock name.
    #[error(
        "node e2e image list at {version}: {first} and {second} would both be locked as {name:?}"
    )]
    TestImageName {
        /// The Kubernetes version.
        version: String,
        /// The lock name.
        name: String,
        /// The first image.
        first: String,
        /// The second image.
        second: String,
    },
    /// Two listed images would get the same lock name.
    #[error("kubeadm {version} lists two images named {name:?}: {first} and {second}")]
    SameName {
        /// The Kubernetes version.
        version: String,
        /// The lock name.
        name: String,
        /// The first image.
        first: String,
        /// The second image.
        second: String,
    },
}

/// Where a planned artifact's digest comes from, besides the download itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// Nothing is published: the SHA-256 of what was downloaded is recorded.
    Unpublished,
    /// A checksum file listing the artifact (`<hex>` alone, or `<hex>  <file name>` lines).
    File {
        /// The checksum file's upstream URL.
        url: String,
        /// Its algorithm.
        algorithm: ChecksumAlgorithm,
        /// The name the artifact is listed under.
        file_name: String,
        /// The checksum file's detached signature, where it is signed: verified before any
        /// digest is taken from the file.
        signature: Option<DetachedSignature>,
    },
}

/// A checksum file's detached signature and the keyring that must have made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachedSignature {
    /// The signature's upstream URL (`…/SHA256SUMS.gpg`).
    pub url: String,
    /// The host keyring holding the signing key: the spec's `base.keyring`, or the distro's
    /// ([`distros::CloudImage::checksums_keyring`]).
    pub keyring: PathBuf,
}

/// An image in a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host, e.g. `registry.k8s.io`.
    pub registry: String,
    /// Repository, e.g. `coredns/coredns`.
    pub repository: String,
    /// Tag, or the digest `sha256:<hex>` of a reference pinned by digest.
    pub tag: String,
}

impl ImageRef {
    /// `registry/repository:tag`, or `registry/repository@sha256:<hex>` when pinned by digest.
    pub fn reference(&self) -> String {
        let sep = if self.pinned_digest().is_some() {
            '@'
        } else {
            ':'
        };
        format!("{}/{}{sep}{}", self.registry, self.repository, self.tag)
    }

    /// The hex SHA-256 a reference pinned by digest names.
    pub fn pinned_digest(&self) -> Option<&str> {
        self.tag.strip_prefix("sha256:")
    }

    /// A normalized reference (`registry/repository:tag` or `…@sha256:<64 hex>`, as
    /// [`super::node_e2e_images::normalize_reference`] writes them): registry a host
    /// (`[a-z0-9.-]`, optional `:port`), repository segments of `[a-z0-9._-]`, a tag of up to
    /// 128 `[A-Za-z0-9._-]`.
    pub fn parse(reference: &str) -> Option<ImageRef> {
        let (registry, rest) = reference.split_once('/')?;
        let (repository, tag) = match rest.split_once('@') {
            Some((r, d)) => {
                let hex = d.strip_prefix("sha256:")?;
                let ok = hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit());
                (r, ok.then(|| d.to_ascii_lowercase())?)
            }
            None => {
                let (r, t) = rest.rsplit_once(':')?;
                let ok = (1..=128).contains(&t.len())
                    && !t.starts_with(['.', '-'])
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
                (r, ok.then(|| t.to_owned())?)
            }
        };
        let host_ok = !registry.is_empty()
            && registry
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-:".contains(c));
        let segment_ok = |s: &str| {
            s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        };
        (host_ok && repository.split('/').all(segment_ok)).then(|| ImageRef {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
        })
    }

    /// Its lock name: the last segment of the repository (`coredns/coredns` → `coredns`).
    pub fn name(&self) -> &str {
        crate::lock::image_short_name(&self.repository)
    }
}

/// Where a planned artifact comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An upstream URL.
    Url {
        /// The URL.
        url: String,
        /// How it is verified.
        checksum: Checksum,
    },
    /// A local file (the base image given by `path`).
    Local(PathBuf),
    /// A registry image, written as an OCI archive.
    Image(ImageRef),
}

/// One artifact to fetch, with everything its lock entry needs except size and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Lock name.
    pub name: String,
    /// Kind.
    pub kind: Kind,
    /// Component, one of [`crate::lock::COMPONENTS`].
    pub component: Option<String>,
    /// The component's version.
    pub version: Option<String>,
    /// Where it comes from.
    pub source: Source,
    /// The SHA-256 the spec pins (the base image).
    pub pinned_sha256: Option<String>,
    /// Install path or directory.
    pub dest: Option<String>,
    /// Permission bits.
    pub mode: Option<String>,
    /// Image reference.
    pub image: Option<String>,
    /// Note for the lock.
    pub note: Option<String>,
}

impl Planned {
    fn new(name: &str, kind: Kind, source: Source) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            component: None,
            version: None,
            source,
            pinned_sha256: None,
            dest: None,
            mode: None,
            image: None,
            note: None,
        }
    }

    fn component(mut self, component: &str, version: &str) -> Self {
        self.component = Some(component.to_owned());
        self.version = Some(version.to_owned());
        self
    }

    fn install(mut self, dest: &str, mode: Option<&str>) -> Self {
        self.dest = Some(dest.to_owned());
        self.mode = mode.map(str::to_owned);
        self
    }

    /// The lock's `source` for this artifact before it is fetched (images add the digest).
    pub fn source_text(&self) -> String {
        match &self.source {
            Source::Url { url, .. } => url.clone(),
            Source::Local(p) => p.display().to_string(),
            Source::Image(r) => r.reference(),
        }
    }
}

fn url_file(url: &str, checksum_url: String, algorithm: ChecksumAlgorithm) -> Source {
    Source::Url {
        url: url.to_owned(),
        checksum: Checksum::File {
            url: checksum_url,
            algorithm,
            file_name: last_segment(url).to_owned(),
            signature: None,
        },
    }
}

fn unpublished(url: String) -> Source {
    Source::Url {
        url,
        checksum: Checksum::Unpublished,
    }
}

fn last_segment(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

const UNPUBLISHED_NOTE: &str =
    "no published checksum: the sha256 is that of the bytes downloaded by nodeimg fetch";

/// The distro's checksum file for a base image URL: the file named like the distro's
/// (`SHA512SUMS`, `SHA256SUMS`) in the same directory as the image, when the image is on the
/// distro's image host ([`distros::CloudImage::checksums_for`]), or on any host when the spec
/// names the `keyring` that signs it ([`distros::CloudImage::checksums_beside`]). A signed file
/// is verified with `keyring`, else with the distro's. Any other URL is verified against the
/// spec's sha256 only.
pub fn base_checksum(distro: &distros::Distro, url: &str, keyring: Option<&Path>) -> Checksum {
    let image = &distro.cloud_image;
    let published = match keyring {
        Some(_) => image.checksums_beside(url),
        None => image.checksums_for(url),
    };
    match published {
        Some(p) => Checksum::File {
            url: p.url,
            algorithm: p.algorithm,
            file_name: p.file_name,
            signature: p.signature.map(|url| DetachedSignature {
                url,
                keyring: keyring.map_or_else(
                    || PathBuf::from(p.keyring.unwrap_or_default()),
                    Path::to_path_buf,
                ),
            }),
        },
        None => Checksum::Unpublished,
    }
}

/// Everything to fetch for `spec` (amd64) before the images, in the lock's order: base image,
/// then binaries, archives and files, each group by name. The images come from the locked
/// kubeadm's own list ([`images`]).
pub fn plan(spec: &Spec) -> Vec<Planned> {
    let k8s = spec.kubernetes_version.as_str();
    let c = &spec.components;
    let mut out = Vec::new();

    let distro = distros::find(&spec.image.distro).ok();
    let base_source = match &spec.base.source {
        BaseSource::Path(p) => Source::Local(p.clone()),
        BaseSource::Url(u) => Source::Url {
            url: u.clone(),
            checksum: distro.map_or(Checksum::Unpublished, |d| {
                base_checksum(d, u, spec.base.keyring.as_deref())
            }),
        },
    };
    let mut base = Planned::new("base-image", Kind::BaseImage, base_source);
    base.pinned_sha256.clone_from(&spec.base.sha256);
    out.push(base);

    for name in ["kubeadm", "kubelet", "kubectl"] {
        let url = format!("https://dl.k8s.io/release/{k8s}/bin/linux/amd64/{name}");
        let sum = format!("{url}.sha256");
        out.push(
            Planned::new(
                name,
                Kind::Binary,
                url_file(&url, sum, ChecksumAlgorithm::Sha256),
            )
            .component(name, k8s)
            .install(&format!("/usr/bin/{name}"), Some("0755")),
        );
    }
    let runc = format!(
        "https://github.com/opencontainers/runc/releases/download/v{}/runc.amd64",
        c.runc
    );
    let runc_sums = format!(
        "https://github.com/opencontainers/runc/releases/download/v{}/runc.sha256sum",
        c.runc
    );
    out.push(
        Planned::new(
            "runc",
            Kind::Binary,
            url_file(&runc, runc_sums, ChecksumAlgorithm::Sha256),
        )
        .component("runc", &c.runc)
        .install("/usr/local/sbin/runc", Some("0755")),
    );

    // The release archives: (artifact, component, version, URL, checksum file suffix, dest).
    let archives = [
        (
            "containerd",
            "containerd",
            &c.containerd,
            format!(
                "https://github.com/containerd/containerd/releases/download/v{v}/containerd-{v}-linux-amd64.tar.gz",
                v = c.containerd
            ),
            ".sha256sum",
            "/usr/local",
        ),
        (
            "crictl",
            "crictl",
            &c.crictl,
            format!(
                "https://github.com/kubernetes-sigs/cri-tools/releases/download/v{v}/crictl-v{v}-linux-amd64.tar.gz",
                v = c.crictl
            ),
            ".sha256",
            "/usr/local/bin",
        ),
        (
            "cni-plugins",
            "cni_plugins",
            &c.cni_plugins,
            format!(
                "https://github.com/containernetworking/plugins/releases/download/v{v}/cni-plugins-linux-amd64-v{v}.tgz",
                v = c.cni_plugins
            ),
            ".sha256",
            "/opt/cni/bin",
        ),
    ];
    for (name, component, version, url, sums, dest) in archives {
        out.push(
            Planned::new(
                name,
                Kind::Archive,
                url_file(&url, format!("{url}{sums}"), ChecksumAlgorithm::Sha256),
            )
            .component(component, version)
            .install(dest, None),
        );
    }

    let templates = format!(
        "https://raw.githubusercontent.com/kubernetes/release/{RELEASE_TEMPLATES_VERSION}/cmd/krel/templates/latest"
    );
    let mut files = vec![
        Planned::new(
            "10-kubeadm.conf",
            Kind::File,
            unpublished(format!("{templates}/kubeadm/10-kubeadm.conf")),
        )
        .install(
            "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
            Some("0644"),
        ),
        Planned::new(
            "containerd.service",
            Kind::File,
            unpublished(format!(
                "https://raw.githubusercontent.com/containerd/containerd/v{}/containerd.service",
                c.containerd
            )),
        )
        .component("containerd", &c.containerd)
        .install("/etc/systemd/system/containerd.service", Some("0644")),
        Planned::new(
            "kubelet.service",
            Kind::File,
            unpublished(format!("{templates}/kubelet/kubelet.service")),
        )
        .install("/etc/systemd/system/kubelet.service", Some("0644")),
    ];
    for f in &mut files {
        f.note = Some(UNPUBLISHED_NOTE.to_owned());
    }
    out.extend(files);

    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    out
}

/// The images to pull for `spec`, given what kubeadm lists for its version (`listed`, pause
/// included), in lock order: each listed image except those of an addon the spec leaves out
/// (`kubernetes.skip_addons`), named by [`ImageRef::name`]; kubeadm's pause provides the
/// `pause` component (the sandbox image) unless the spec pins another tag, which is then
/// pulled as well, named [`SANDBOX_PAUSE`].
pub fn images(spec: &Spec, listed: &[ImageRef]) -> Result<Vec<Planned>, PlanError> {
    let version = &spec.kubernetes_version;
    let kept: Vec<&ImageRef> = listed
        .iter()
        .filter(|r| !spec.skip_addons.iter().any(|a| a.name() == r.name()))
        .collect();
    let pause = kept
        .iter()
        .find(|r| r.name() == "pause")
        .ok_or_else(|| PlanError::NoPause {
            version: version.clone(),
            listed: listed
                .iter()
                .map(ImageRef::reference)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let sandbox = match &spec.components.pause {
        Some(tag) if *tag != pause.tag => Some(ImageRef {
            tag: tag.clone(),
            ..(*pause).clone()
        }),
        _ => None,
    };
    let mut out: Vec<Planned> = Vec::new();
    for r in kept {
        let component = if r.name() == "pause" && sandbox.is_none() {
            "pause"
        } else {
            "kubernetes-image"
        };
        if let Some(before) = out.iter().find(|p| p.name == r.name()) {
            return Err(PlanError::SameName {
                version: version.clone(),
                name: r.name().to_owned(),
                first: before.image.clone().unwrap_or_default(),
                second: r.reference(),
            });
        }
        out.push(image(r.name(), r, component));
    }
    if let Some(r) = &sandbox {
        out.push(image(SANDBOX_PAUSE, r, "pause"));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn image(name: &str, r: &ImageRef, component: &str) -> Planned {
    let mut p =
        Planned::new(name, Kind::Image, Source::Image(r.clone())).component(component, &r.tag);
    p.image = Some(r.reference());
    p
}

/// The lock name of the node conformance test suite (Kubernetes' test tarball).
pub const TEST_SUITE: &str = "kubernetes-test";

/// The lock name of the Kubernetes source the test images are derived from.
pub const TEST_SOURCE: &str = "kubernetes-src";

/// The node conformance inputs fetched before the test images, when the spec turns
/// conformance on (none otherwise): Kubernetes' source (`kubernetes-src.tar.gz`, read by
/// fetch to derive the test images, [`super::node_e2e_images`]) and test tarball
/// (`kubernetes-test-linux-amd64.tar.gz`) at the spec's version, each verified against its
/// `.sha256` (the bare hex, as for the binaries), in that order.
pub fn conformance(spec: &Spec) -> Vec<Planned> {
    if spec.conformance.is_none() {
        return Vec::new();
    }
    let k8s = spec.kubernetes_version.as_str();
    [
        (TEST_SOURCE, Kind::TestSource, "kubernetes-src.tar.gz"),
        (
            TEST_SUITE,
            Kind::TestSuite,
            "kubernetes-test-linux-amd64.tar.gz",
        ),
    ]
    .into_iter()
    .map(|(name, kind, file)| {
        let url = format!("https://dl.k8s.io/release/{k8s}/{file}");
        let sums = format!("{url}.sha256");
        let mut p = Planned::new(name, kind, url_file(&url, sums, ChecksumAlgorithm::Sha256));
        p.version = Some(k8s.to_owned());
        p
    })
    .collect()
}

/// The lock name of a node conformance test image: `test-NAME-TAG` (NAME the repository's
/// last segment, TAG lower-cased with anything outside `[a-z0-9._-]` as `-`; a digest as
/// `sha256-` and its first 12 hex digits).
pub fn test_image_name(r: &ImageRef) -> String {
    let tag = match r.pinned_digest() {
        Some(hex) => format!("sha256-{}", hex.chars().take(12).collect::<String>()),
        None => r.tag.to_ascii_lowercase(),
    };
    let clean = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect::<String>()
    };
    format!("test-{}-{}", clean(r.name()), clean(&tag))
}

/// The node conformance test images to pull, given the normalized references derived from
/// the source ([`super::node_e2e_images::ImageList::all`]), by name ([`test_image_name`]),
/// each locked as a `test-image` with `image` = its upstream reference.
pub fn test_images(spec: &Spec, references: &[String]) -> Result<Vec<Planned>, PlanError> {
    let version = &spec.kubernetes_version;
    let mut out: Vec<Planned> = Vec::new();
    for reference in references {
        let r = ImageRef::parse(reference).ok_or_else(|| PlanError::TestImageReference {
            version: version.clone(),
            reference: reference.clone(),
        })?;
        let name = test_image_name(&r);
        if let Some(before) = out.iter().find(|p| p.name == name) {
            return Err(PlanError::TestImageName {
                version: version.clone(),
                name,
                first: before.image.clone().unwrap_or_default(),
                second: r.reference(),
            });
        }
        let mut p = Planned::new(&name, Kind::TestImage, Source::Image(r.clone()));
        p.image = Some(r.reference());
        out.push(p);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Where downloads go instead of upstream: `{base}/{host}{path}` for URLs, and the base's
/// scheme and host (its path is ignored) as the registry for every image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    base: String,
}

impl Mirror {
    /// A mirror at `base` (checked with [`crate::spec::check_mirror`]).
    pub fn new(base: &str) -> Result<Self, String> {
        crate::spec::check_mirror(base).map(|base| Self { base })
    }

    /// The URL `upstream` is fetched from: its scheme dropped, host and path kept under the
    /// mirror's base.
    pub fn url(&self, upstream: &str) -> String {
        let rest = upstream
            .split_once("://")
            .map_or(upstream, |(_, rest)| rest);
        format!("{}/{rest}", self.base)
    }

    /// The registry API base (`scheme://host[:port]`) every image is pulled from.
    pub fn registry(&self) -> String {
        let (scheme, rest) = self.base.split_once("://").unwrap_or(("https", &self.base));
        format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest))
    }
}

/// The URL to fetch `upstream` from, with or without a mirror.
pub fn fetch_url(mirror: Option<&Mirror>, upstream: &str) -> String {
    mirror.map_or_else(|| upstream.to_owned(), |m| m.url(upstream))
}

/// The registry API base for `image`, with or without a mirror (Docker Hub's `docker.io`
/// serves its API at `registry-1.docker.io`).
pub fn registry_base(mirror: Option<&Mirror>, image: &ImageRef) -> String {
    let host = match image.registry.as_str() {
        "docker.io" => "registry-1.docker.io",
        other => other,
    };
    mirror.map_or_else(|| format!("https://{host}"), Mirror::registry)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
