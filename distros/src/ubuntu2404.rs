//! Ubuntu 24.04 LTS (noble).
//!
//! Not verified by a hand run. Known: the cloud image URL scheme with SHA256SUMS, the `.img`
//! file being qcow2, the `ubuntu` user, the GPT layout (root 1, BIOS boot 14, ESP 15, and new
//! in 24.04 a separate ext4 `/boot` as partition 16), sshd socket-activated through
//! `ssh.socket` (the daemon is still `ssh.service` once a connection arrives), systemd-timesyncd
//! (chrony became the default only later), netplan as cloud-init's renderer. The kernel is the
//! `linux-image-virtual` metapackage (`-generic` flavour) — believed, not re-checked.
//! cloud-init (24.1 at release) and containerd (1.7.x) move with noble-updates, hence `None`.

use diskimg::ImageFormat;

use crate::archive::{
    Archive, ArchiveSource, NODE_ROLE_PACKAGES, UBUNTU_CLOUDIMAGE_KEYRING, UBUNTU_KEYRING,
};
use crate::distro::{
    ChecksumAlgorithm, CloudImage, CloudInit, ContainerPackages, ContainerdConfigSchema, Distro,
    Family, Package, PackageManager, Partitions,
};

/// Ubuntu 24.04 LTS (noble).
pub static UBUNTU_2404: Distro = Distro {
    id: "ubuntu-24.04",
    family: Family::Ubuntu,
    name: "Ubuntu 24.04 LTS (noble)",
    version_id: "24.04",
    codename: "noble",
    cloud_image: CloudImage {
        url: "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
        checksums_url: "https://cloud-images.ubuntu.com/noble/current/SHA256SUMS",
        checksum: ChecksumAlgorithm::Sha256,
        checksums_signature: Some("SHA256SUMS.gpg"),
        checksums_keyring: Some(UBUNTU_CLOUDIMAGE_KEYRING),
        format: ImageFormat::Qcow2,
    },
    default_user: "ubuntu",
    partitions: Partitions {
        root: 1,
        esp: 15,
        bios_boot: Some(14),
        boot: Some(16),
    },
    package_manager: PackageManager::Apt,
    archive: Archive {
        sources: &[
            ArchiveSource {
                url: "http://archive.ubuntu.com/ubuntu",
                suites: &["noble", "noble-updates"],
            },
            ArchiveSource {
                url: "http://security.ubuntu.com/ubuntu",
                suites: &["noble-security"],
            },
        ],
        components: &["main", "universe"],
        keyring: UBUNTU_KEYRING,
        architecture: "amd64",
    },
    node_packages: NODE_ROLE_PACKAGES,
    kernel_package: "linux-image-virtual",
    ssh_unit: "ssh.socket",
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
    sealed_hostname: "ubuntu",
    cloud_init_network_files: &[
        "/etc/netplan/50-cloud-init.yaml",
        "/etc/systemd/network/10-cloud-init-*.network",
        "/etc/systemd/network/10-cloud-init-*.network.d",
    ],
};
