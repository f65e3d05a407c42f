//! Debian 12 (bookworm).
//!
//! Verified by the project's hand runs (guest-recipe.md, kubeadm-offline.md) on a Debian 12
//! image built from Debian's packages: cloud-init 22.4.2 and its two quirks, `/run` noexec,
//! containerd 1.6.20 / runc 1.1.5 / containernetworking-plugins 1.1.1, `linux-image-cloud-amd64`.
//! Taken from the official genericcloud image's known layout but not re-checked here: the
//! partition numbers (root 1, BIOS boot 14, ESP 15), the time sync daemon (systemd-timesyncd
//! is the fixture's; chrony is accepted as well), and which renderer cloud-init uses there
//! (the fixture uses systemd-networkd; the official bookworm image is believed to use ifupdown,
//! so both renderers' files are listed).

use diskimg::ImageFormat;

use crate::archive::{Archive, ArchiveSource, DEBIAN_KEYRING, NODE_ROLE_PACKAGES};
use crate::distro::{
    ChecksumAlgorithm, CloudImage, CloudInit, CloudInitQuirk, ContainerPackages,
    ContainerdConfigSchema, Distro, Family, Package, PackageManager, Partitions,
};

/// Debian 12 (bookworm).
pub static DEBIAN_12: Distro = Distro {
    id: "debian-12",
    family: Family::Debian,
    name: "Debian 12 (bookworm)",
    version_id: "12",
    codename: "bookworm",
    cloud_image: CloudImage {
        url: "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2",
        checksums_url: "https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS",
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
                suites: &["bookworm", "bookworm-updates"],
            },
            ArchiveSource {
                url: "http://deb.debian.org/debian-security",
                suites: &["bookworm-security"],
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
        version: Some("22.4.2"),
        result_json: "/run/cloud-init/result.json",
        quirks: &[
            CloudInitQuirk::GeneratesDsaHostKey,
            CloudInitQuirk::LocaleNeedsCUtf8,
        ],
    },
    container_packages: ContainerPackages {
        containerd: Package {
            name: "containerd",
            version: Some("1.6.20"),
        },
        runc: Package {
            name: "runc",
            version: Some("1.1.5"),
        },
        cni_plugins: Package {
            name: "containernetworking-plugins",
            version: Some("1.1.1"),
        },
        cni_plugins_dir: "/usr/lib/cni",
        containerd_config: ContainerdConfigSchema::V2,
    },
    run_is_noexec: true,
    sealed_hostname: "debian",
    cloud_init_network_files: &[
        "/etc/systemd/network/10-cloud-init-*.network",
        "/etc/systemd/network/10-cloud-init-*.network.d",
        "/etc/network/interfaces.d/50-cloud-init",
        "/etc/network/interfaces.d/50-cloud-init.cfg",
    ],
};
