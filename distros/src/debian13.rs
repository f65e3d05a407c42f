//! Debian 13 (trixie).
//!
//! Not verified by a hand run. Known: the genericcloud image naming and SHA512SUMS next to it,
//! the `debian` user, `linux-image-cloud-amd64`, apt. Believed but unverified: the partition
//! layout is bookworm's (root 1, BIOS boot 14, ESP 15); sshd is not socket-activated in Debian
//! (unlike Ubuntu 24.04); cloud-init is 25.x (version left `None`), which no longer needs the
//! DSA workaround (OpenSSH 10 in trixie has no DSA at all) — setting `ssh_genkeytypes` anyway
//! is harmless; containerd is 1.7.x (schema `version = 2`; the node-role step checks its edits
//! and fails if the schema differs); cloud images render network config with netplan on
//! systemd-networkd. Other trixie changes that matter to the seal: `/tmp` is a tmpfs by
//! default, and login records moved to wtmpdb/lastlog2 (`/var/lib/wtmpdb/wtmp.db`,
//! `/var/lib/lastlog/lastlog2.db`), which the seal removes wherever they exist.

use diskimg::ImageFormat;

use crate::archive::{Archive, ArchiveSource, DEBIAN_KEYRING, NODE_ROLE_PACKAGES};
use crate::distro::{
    ChecksumAlgorithm, CloudImage, CloudInit, ContainerPackages, ContainerdConfigSchema, Distro,
    Family, Package, PackageManager, Partitions,
};

/// Debian 13 (trixie).
pub static DEBIAN_13: Distro = Distro {
    id: "debian-13",
    family: Family::Debian,
    name: "Debian 13 (trixie)",
    version_id: "13",
    codename: "trixie",
    cloud_image: CloudImage {
        url: "https://cloud.debian.org/images/cloud/trixie/latest/debian-13-genericcloud-amd64.qcow2",
        checksums_url: "https://cloud.debian.org/images/cloud/trixie/latest/SHA512SUMS",
        checksum: ChecksumAlgorithm::Sha512,
        checksums_signature: None,
        checksums_keyring: None,
        format: ImageFormat::Qcow2,
    },
    default_user: "debian",
    partitions: Partitions {
        root: 1,
        esp: 15,
        bios_boot: Some(14),
        boot: None,
    },
    package_manager: PackageManager::Apt,
    archive: Archive {
        sources: &[
            ArchiveSource {
                url: "http://deb.debian.org/debian",
                suites: &["trixie", "trixie-updates"],
            },
            ArchiveSource {
                url: "http://deb.debian.org/debian-security",
                suites: &["trixie-security"],
            },
        ],
        components: &["main"],
        keyring: DEBIAN_KEYRING,
        architecture: "amd64",
    },
    node_packages: NODE_ROLE_PACKAGES,
    kernel_package: "linux-image-cloud-amd64",
    ssh_unit: "ssh.service",
    time_sync_units: &["systemd-timesyncd.service", "chrony.service"],
    auto_upgrade_units: &[
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
        "unattended-upgrades.service",
    ],
    cloud_init: CloudInit {
        version: None,
        result_json: "/run/cloud-init/result.json",
        quirks: &[],
    },
    container_packages: ContainerPackages {
        containerd: Package {
            name: "containerd",
            version: None,
        },
        runc: Package {
            name: "runc",
            version: None,
        },
        cni_plugins: Package {
            name: "containernetworking-plugins",
            version: None,
        },
        cni_plugins_dir: "/usr/lib/cni",
        containerd_config: ContainerdConfigSchema::V2,
    },
    run_is_noexec: true,
    sealed_hostname: "debian",
    cloud_init_network_files: &[
        "/etc/netplan/50-cloud-init.yaml",
        "/etc/systemd/network/10-cloud-init-*.network",
        "/etc/systemd/network/10-cloud-init-*.network.d",
        "/etc/network/interfaces.d/50-cloud-init",
    ],
};
