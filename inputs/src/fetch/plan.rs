//! What `nodeimg fetch` downloads for a spec: a pure function of the spec (no I/O), so the
//! URLs for every version can be tested. URLs here are the upstream ones; a [`Mirror`] only
//! changes where they are fetched from, never what the lock records.

use std::path::PathBuf;

use distros::ChecksumAlgorithm;

use crate::lock::Kind;
use crate::spec::{BaseSource, Spec};

/// The release of kubernetes/release whose kubelet unit and kubeadm drop-in are installed.
pub const RELEASE_TEMPLATES_VERSION: &str = "v0.16.2";

/// The registry kubeadm pulls the control-plane images from.
pub const K8S_REGISTRY: &str = "registry.k8s.io";

/// The etcd and coredns tags kubeadm asks for, per Kubernetes minor (kubeadm's
/// `constants.go` at the minor's `.0` release: `kubeadm config images list`).
const KUBEADM_IMAGES: &[(u32, &str, &str)] = &[
    (28, "3.5.9-0", "v1.10.1"),
    (29, "3.5.10-0", "v1.11.1"),
    (30, "3.5.12-0", "v1.11.1"),
    (31, "3.5.15-0", "v1.11.3"),
];

/// A spec the plan cannot be made for.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The Kubernetes minor is not in the etcd/coredns table.
    #[error(
        "{spec}: kubernetes.version {version}: nodeimg does not know which etcd and coredns images kubeadm {version} uses (known minors: {known})"
    )]
    UnknownMinor {
        /// The spec file.
        spec: String,
        /// The version.
        version: String,
        /// The minors in the table, e.g. `1.28, 1.29`.
        known: String,
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
    },
}

/// An image in a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host, e.g. `registry.k8s.io`.
    pub registry: String,
    /// Repository, e.g. `coredns/coredns`.
    pub repository: String,
    /// Tag.
    pub tag: String,
}

impl ImageRef {
    /// `registry/repository:tag`.
    pub fn reference(&self) -> String {
        format!("{}/{}:{}", self.registry, self.repository, self.tag)
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
/// distro's image host. Any other URL is verified against the spec's sha256 only.
pub fn base_checksum(distro: &distros::Distro, url: &str) -> Checksum {
    let img = &distro.cloud_image;
    let host = |u: &str| u.split('/').take(3).collect::<Vec<_>>().join("/");
    let Some((dir, file)) = url.rsplit_once('/') else {
        return Checksum::Unpublished;
    };
    if host(url) != host(img.url) || file.is_empty() {
        return Checksum::Unpublished;
    }
    Checksum::File {
        url: format!("{dir}/{}", last_segment(img.checksums_url)),
        algorithm: img.checksum,
        file_name: file.to_owned(),
    }
}

/// The etcd and coredns tags kubeadm `version` (`vMAJOR.MINOR.PATCH`) pulls.
pub fn kubeadm_image_tags(spec: &Spec) -> Result<(&'static str, &'static str), PlanError> {
    let version = &spec.kubernetes_version;
    let minor = version
        .strip_prefix("v1.")
        .and_then(|r| r.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    KUBEADM_IMAGES
        .iter()
        .find(|(m, _, _)| Some(*m) == minor)
        .map(|(_, etcd, coredns)| (*etcd, *coredns))
        .ok_or_else(|| PlanError::UnknownMinor {
            spec: spec.path.display().to_string(),
            version: version.clone(),
            known: KUBEADM_IMAGES
                .iter()
                .map(|(m, _, _)| format!("1.{m}"))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Everything to fetch for `spec` (amd64), in the lock's order: base image, then binaries,
/// archives, files and images, each group by name.
pub fn plan(spec: &Spec) -> Result<Vec<Planned>, PlanError> {
    let (etcd, coredns) = kubeadm_image_tags(spec)?;
    let k8s = spec.kubernetes_version.as_str();
    let c = &spec.components;
    let mut out = Vec::new();

    let distro = distros::find(&spec.image.distro).ok();
    let base_source = match &spec.base.source {
        BaseSource::Path(p) => Source::Local(p.clone()),
        BaseSource::Url(u) => Source::Url {
            url: u.clone(),
            checksum: distro.map_or(Checksum::Unpublished, |d| base_checksum(d, u)),
        },
    };
    let mut base = Planned::new("base-image", Kind::BaseImage, base_source);
    base.pinned_sha256 = Some(spec.base.sha256.clone());
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

    let images = [
        ("coredns", "coredns/coredns", coredns, "kubernetes-image"),
        ("etcd", "etcd", etcd, "kubernetes-image"),
        ("kube-apiserver", "kube-apiserver", k8s, "kubernetes-image"),
        (
            "kube-controller-manager",
            "kube-controller-manager",
            k8s,
            "kubernetes-image",
        ),
        ("kube-proxy", "kube-proxy", k8s, "kubernetes-image"),
        ("kube-scheduler", "kube-scheduler", k8s, "kubernetes-image"),
        ("pause", "pause", c.pause.as_str(), "pause"),
    ];
    for (name, repository, tag, component) in images {
        let r = ImageRef {
            registry: K8S_REGISTRY.to_owned(),
            repository: repository.to_owned(),
            tag: tag.to_owned(),
        };
        let mut p =
            Planned::new(name, Kind::Image, Source::Image(r.clone())).component(component, tag);
        p.image = Some(r.reference());
        out.push(p);
    }
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
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

/// The registry API base for `image`, with or without a mirror.
pub fn registry_base(mirror: Option<&Mirror>, image: &ImageRef) -> String {
    mirror.map_or_else(|| format!("https://{}", image.registry), Mirror::registry)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
