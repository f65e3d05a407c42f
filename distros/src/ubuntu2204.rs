//! Ubuntu 22.04 LTS (jammy).
//!
//! Not verified by a hand run. Known: the cloud image URL scheme with SHA256SUMS, the `.img`
//! file being qcow2, the `ubuntu` user, the GPT layout of Ubuntu cloud images (root 1, BIOS
//! boot 14, ESP 15), `ssh.service` (socket activation came with 22.10), systemd-timesyncd,
//! netplan as cloud-init's renderer (`/etc/netplan/50-cloud-init.yaml`). The server cloud
//! image's kernel is the `linux-image-virtual` metapackage, i.e. the `-generic` kernel flavour
//! without `linux-modules-extra` (the *minimal* images use `linux-kvm` instead) — believed,
//! not re-checked. cloud-init and containerd move with jammy-updates (containerd shipped as
//! 1.5.9 at release and was later updated to 1.7.x; runc 1.1.x; CNI plugins 0.9.1 in
//! universe — all from memory, hence `None`). `/run` is noexec as on Debian (initramfs-tools).

use diskimg::ImageFormat;

use crate::archive::{
    Archive, ArchiveSource, NODE_ROLE_PACKAGES, UBUNTU_CLOUDIMAGE_KEYRING, UBUNTU_KEYRING,
};
use crate::distro::{
    ChecksumAlgorithm, CloudImage, CloudInit, ContainerPackages, ContainerdConfigSchema, Distro,
    Family, Package, PackageManager, Partitions,
};

/// Ubuntu 22.04 LTS (jammy).
pub static UBUNTU_2204: Distro = Distro {
    id: "ubuntu-22.04",
    family: Family::Ubuntu,
    name: "Ubuntu 22.04 LTS (jammy)",
    version_id: "22.04",
    codename: "jammy",
    cloud_image: CloudImage {
        url: "https://cloud-images.ubuntu.com/jammy/current/jammy-server-cloudimg-amd64.img",
        checksums_url: "https://cloud-images.ubuntu.com/jammy/current/SHA256SUMS",
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
        boot: None,
    },
    package_manager: PackageManager::Apt,
    archive: Archive {
        sources: &[
            ArchiveSource {
                url: "http://archive.ubuntu.com/ubuntu",
                suites: &["jammy", "jammy-updates"],
            },
            ArchiveSource {
                url: "http://security.ubuntu.com/ubuntu",
                suites: &["jammy-security"],
            },
        ],
        components: &["main", "universe"],
        keyring: UBUNTU_KEYRING,
        architecture: "amd64",
    },
    node_packages: NODE_ROLE_PACKAGES,
    kernel_package: "linux-image-virtual",
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
    sealed_hostname: "ubuntu",
    cloud_init_network_files: &[
        "/etc/netplan/50-cloud-init.yaml",
        "/etc/systemd/network/10-cloud-init-*.network",
        "/etc/systemd/network/10-cloud-init-*.network.d",
    ],
};
