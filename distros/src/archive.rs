//! Where a release's packages come from: its Debian-style archive (URLs, suites, components,
//! the keyring that signs it) and the packages the node role needs from it.

/// A release's package archive, as apt on its cloud image is set up to use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archive {
    /// Each archive URL with its suites, in apt's order of preference (security updates are
    /// just another suite: the resolver takes the highest version of all of them).
    pub sources: &'static [ArchiveSource],
    /// The components read from every suite. Ubuntu reads `main` and `universe`, as the
    /// sources its cloud images ship do (the node role's packages are in `main`; `universe`
    /// lets a spec's extra packages come from there too). Debian reads `main`.
    pub components: &'static [&'static str],
    /// The keyring on the build host that holds the archive's signing keys.
    pub keyring: &'static str,
    /// The dpkg architecture the images are built for.
    pub architecture: &'static str,
}

/// One archive URL (the directory holding `dists/` and `pool/`) and its suites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveSource {
    pub url: &'static str,
    pub suites: &'static [&'static str],
}

/// The packages a Kubernetes node needs from the distro on top of its cloud image, before
/// their dependencies: what kubeadm's preflight looks for on the PATH (`conntrack`, `ip` and
/// `tc` from iproute2, `iptables`, `mount` and `nsenter` from util-linux, `ebtables`,
/// `ethtool`, `socat`) and what kube-proxy runs (`iptables`, `conntrack`), as guest-recipe.md
/// §3 found them missing from the cloud image. containerd, runc, the CNI plugins and crictl
/// are not among them: they come from their upstream release tarballs.
pub const NODE_ROLE_PACKAGES: &[&str] = &[
    "conntrack",
    "ebtables",
    "ethtool",
    "iproute2",
    "iptables",
    "socat",
    "util-linux",
];

/// Debian's keyring, from the `debian-archive-keyring` package.
pub const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// Ubuntu's keyring, from the `ubuntu-keyring` package (Debian packages it as well).
pub const UBUNTU_KEYRING: &str = "/usr/share/keyrings/ubuntu-archive-keyring.gpg";
/// The key that signs Ubuntu's cloud images' `SHA256SUMS` (`SHA256SUMS.gpg`), from the same
/// `ubuntu-keyring` package.
pub const UBUNTU_CLOUDIMAGE_KEYRING: &str = "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg";
