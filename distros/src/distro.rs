//! The facts nodeimg keeps per distro release, as plain `'static` data.
//!
//! A fact that was not checked against the release itself says so in its doc comment (or in
//! the distro module's comments) instead of being guessed silently; values that move with the
//! release's updates (package versions, cloud-init) are `None` unless a hand run pinned them.

use diskimg::ImageFormat;

use crate::archive::Archive;
/// One distro release that nodeimg can build a node image from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Distro {
    /// Stable identifier used on the command line and in configs, e.g. `debian-12`.
    pub id: &'static str,
    /// The family, which decides how host configuration is done (GRUB, apt, …).
    pub family: Family,
    /// Human-readable name, e.g. `Debian 12 (bookworm)`.
    pub name: &'static str,
    /// `VERSION_ID` as in the release's `/etc/os-release`, e.g. `12` or `24.04`.
    pub version_id: &'static str,
    /// `VERSION_CODENAME` as in `/etc/os-release`, e.g. `bookworm`.
    pub codename: &'static str,
    /// The official generic cloud image for amd64 that a build starts from.
    pub cloud_image: CloudImage,
    /// The user cloud-init creates by default in the official image (`debian`, `ubuntu`).
    pub default_user: &'static str,
    /// GPT partition numbers in the official cloud image.
    pub partitions: Partitions,
    /// The package manager.
    pub package_manager: PackageManager,
    /// The release's package archive, and the node role's packages from it.
    pub archive: Archive,
    /// The packages the node role needs from the archive (before their dependencies).
    pub node_packages: &'static [&'static str],
    /// The kernel package (or metapackage) the official cloud image ships.
    pub kernel_package: &'static str,
    /// The systemd unit that accepts SSH connections: `ssh.service`, or `ssh.socket` where
    /// sshd is socket-activated (the daemon itself is still `ssh.service`).
    pub ssh_unit: &'static str,
    /// Time synchronisation units, most likely first; the image has (at least) one of them.
    pub time_sync_units: &'static [&'static str],
    /// Units that upgrade packages on their own; the node role disables and masks every one
    /// of them (masking a unit that is absent is harmless and stops a later install from
    /// enabling it).
    pub auto_upgrade_units: &'static [&'static str],
    /// cloud-init as shipped in the release.
    pub cloud_init: CloudInit,
    /// Container runtime packages in the release's archive.
    pub container_packages: ContainerPackages,
    /// Whether `/run` is mounted `noexec` (initramfs-tools mounts it `nodev,noexec,nosuid`),
    /// so nothing may be executed from it directly (guest-recipe pitfall 12).
    pub run_is_noexec: bool,
    /// The content of `/etc/hostname` in the official image; the seal restores it.
    pub sealed_hostname: &'static str,
    /// Network configuration cloud-init renders for the build instance (shell globs). It is
    /// MAC-matched and re-rendered for every new instance, so the seal removes it.
    pub cloud_init_network_files: &'static [&'static str],
}

impl Distro {
    /// Whether sshd is socket-activated (the SSH unit is a `.socket`).
    pub fn ssh_socket_activated(&self) -> bool {
        self.ssh_unit.ends_with(".socket")
    }
}

/// Distro family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Family {
    /// Debian.
    Debian,
    /// Ubuntu.
    Ubuntu,
}

/// Package manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PackageManager {
    /// dpkg + apt (`apt-get`, `apt-mark`).
    Apt,
}

/// An official cloud image and how to verify it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudImage {
    /// URL of the image. It points at a moving "latest"/"current" alias: pin the digest from
    /// the checksum file in the build's lock.
    pub url: &'static str,
    /// URL of the checksum file that lists the image (`<hex>  <file name>` lines).
    pub checksums_url: &'static str,
    /// Digest algorithm of the checksum file.
    pub checksum: ChecksumAlgorithm,
    /// The file name of the checksum file's detached signature in the same directory
    /// (`SHA256SUMS.gpg`), where the distro signs it.
    pub checksums_signature: Option<&'static str>,
    /// The keyring on the build host holding the key that makes that signature (set exactly
    /// when `checksums_signature` is).
    pub checksums_keyring: Option<&'static str>,
    /// Format of the image file (whatever its extension says).
    pub format: ImageFormat,
}

/// The published checksum file that lists an image on the distro's image host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedChecksums {
    /// The checksum file's URL, in the image's directory.
    pub url: String,
    /// Its algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// The name the image is listed under (the last segment of its URL).
    pub file_name: String,
    /// The URL of the checksum file's detached signature, where the distro signs it.
    pub signature: Option<String>,
    /// The host keyring that verifies that signature ([`CloudImage::checksums_keyring`]).
    pub keyring: Option<&'static str>,
}

impl CloudImage {
    /// The image's file name as listed in the checksum file (the last path segment of `url`).
    pub fn file_name(&self) -> &'static str {
        self.url.rsplit('/').next().unwrap_or(self.url)
    }

    /// The checksum file that lists the image at `url`: the file named like the distro's
    /// (`SHA512SUMS`, `SHA256SUMS`) in the same directory, when `url` is on the distro's image
    /// host (same scheme and host as [`CloudImage::url`]); `None` elsewhere.
    pub fn checksums_for(&self, url: &str) -> Option<PublishedChecksums> {
        let host = |u: &str| u.split('/').take(3).collect::<Vec<_>>().join("/");
        if host(url) != host(self.url) {
            return None;
        }
        self.checksums_beside(url)
    }

    /// The checksum file (and its signature) named like the distro's, in the directory of
    /// `url` on any host: where an image host laid out like the distro's (a mirror, a private
    /// host signing with its own key) publishes them. `None` when `url` has no directory or
    /// no file name.
    pub fn checksums_beside(&self, url: &str) -> Option<PublishedChecksums> {
        let host_len = url.split('/').take(3).collect::<Vec<_>>().join("/").len();
        let (dir, file) = url.rsplit_once('/')?;
        if file.is_empty() || dir.len() <= host_len {
            return None;
        }
        let sums = self
            .checksums_url
            .rsplit('/')
            .next()
            .unwrap_or(self.checksums_url);
        Some(PublishedChecksums {
            url: format!("{dir}/{sums}"),
            algorithm: self.checksum,
            file_name: file.to_owned(),
            signature: self.checksums_signature.map(|s| format!("{dir}/{s}")),
            keyring: self.checksums_keyring,
        })
    }
}

/// Digest algorithm of a checksum file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChecksumAlgorithm {
    /// SHA-256 (`SHA256SUMS`).
    Sha256,
    /// SHA-512 (`SHA512SUMS`).
    Sha512,
}

impl ChecksumAlgorithm {
    /// Length of a digest in hex characters.
    pub fn hex_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Sha256 => 64,
            ChecksumAlgorithm::Sha512 => 128,
        }
    }
}

/// GPT partition numbers (1-based, as in `/dev/vda<N>`) of an official cloud image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitions {
    /// The root filesystem (ext4); the last partition on disk, so growpart can extend it.
    pub root: u32,
    /// The EFI system partition (FAT).
    pub esp: u32,
    /// The BIOS boot partition (GRUB core for legacy boot), if any.
    pub bios_boot: Option<u32>,
    /// A separate `/boot` filesystem, if any.
    pub boot: Option<u32>,
}

/// cloud-init as shipped in a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudInit {
    /// Version in the release, when a hand run pinned it; `None` when unverified or when the
    /// release updates it (Ubuntu ships new cloud-init versions as stable updates).
    pub version: Option<&'static str>,
    /// Where cloud-init writes its final result (`{"v1": {"errors": […]}}`); the readiness
    /// beacon reads it instead of starting Python for `cloud-init status`.
    pub result_json: &'static str,
    /// Behaviour that needs a workaround in the seed or the image.
    pub quirks: &'static [CloudInitQuirk],
}

/// A cloud-init behaviour that needs a workaround.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloudInitQuirk {
    /// Generates a DSA host key unless `ssh_genkeytypes` is set (cloud-init 22.4;
    /// guest-recipe pitfall 2).
    GeneratesDsaHostKey,
    /// The `locale` module fails (`update-locale` exits 255, `cloud-config.service` fails)
    /// unless the locale is `C.UTF-8` (guest-recipe pitfall 1).
    LocaleNeedsCUtf8,
}

impl CloudInitQuirk {
    /// The `#cloud-config` line that works around the quirk.
    pub fn cloud_config(self) -> &'static str {
        match self {
            CloudInitQuirk::GeneratesDsaHostKey => "ssh_genkeytypes: [rsa, ecdsa, ed25519]",
            CloudInitQuirk::LocaleNeedsCUtf8 => "locale: C.UTF-8",
        }
    }
}

/// Container runtime packages in a release's archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerPackages {
    /// containerd.
    pub containerd: Package,
    /// runc.
    pub runc: Package,
    /// The CNI reference plugins.
    pub cni_plugins: Package,
    /// Where the CNI plugins package installs the plugins. containerd's default `bin_dir` is
    /// `/opt/cni/bin`, where the payload's pinned plugins go.
    pub cni_plugins_dir: &'static str,
    /// Schema of `containerd config default` for this containerd.
    pub containerd_config: ContainerdConfigSchema,
}

/// A package of the release's archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package {
    /// Binary package name.
    pub name: &'static str,
    /// Upstream version in the release when verified (`None` otherwise); the build's lock
    /// pins the exact Debian version either way.
    pub version: Option<&'static str>,
}

/// Layout of containerd's `config.toml`, which decides how the node role edits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContainerdConfigSchema {
    /// `version = 2` (containerd 1.5–1.7): CRI settings under
    /// `[plugins."io.containerd.grpc.v1.cri"]`, `sandbox_image = "…"`,
    /// `SystemdCgroup = false` in the runc options, `config_path = ""` in the registry table.
    /// containerd 2.x (`version = 3`) moved these keys and would need its own variant.
    V2,
}
