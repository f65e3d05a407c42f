//! Per-distro facts and guest steps for nodeimg, as data plus small pure renderers.
//!
//! * Facts ([`Distro`]): the official cloud image and its checksum file, partition numbers,
//!   units, packages and cloud-init quirks of each release, one module per release
//!   ([`debian12`], [`debian13`], [`ubuntu2204`], [`ubuntu2404`]). Adding a distro is adding one
//!   file and one line in [`all`].
//! * Steps ([`Step`]): named POSIX sh scripts run as root in the guest over SSH. Every script
//!   a guest runs is rendered here, with one header ([`Step::new`], [`Step::user_command`]):
//!   [`payload`] (install the offline payload), [`node_role_steps`] (what a kubeadm node
//!   needs), the spec's commands and files ([`Step::user_command`], [`spec_files`]),
//!   [`bom_collect`] (the bill of materials), [`seal_steps`] (the last thing before the golden
//!   disk is final) and [`kubeadm_test`] (the boot test's offline `kubeadm init`). Checks
//!   ([`checks`]) are rendered the same way. Every parameter is validated and shell-quoted
//!   ([`shell`]); `tests/it/syntax.rs` runs `sh -n` and shellcheck over every script.
//!
//! No QEMU, no async, no I/O: the builder runs the steps.

pub mod archive;
pub mod batch;
pub mod bom_collect;
pub mod checks;
pub mod console;
pub mod debian12;
pub mod debian13;
pub mod distro;
pub mod error;
pub mod kubeadm_test;
pub mod node_conformance;
pub mod node_role;
pub mod payload;
pub mod seal;
pub mod shell;
pub mod spec_files;
pub mod step;
pub mod ubuntu2204;
pub mod ubuntu2404;

pub use archive::{Archive, ArchiveSource, NODE_ROLE_PACKAGES};
pub use checks::{
    Check, CheckKind, Expectations, FirstBoot, first_boot_checks, no_outbound_network_check,
    node_checks, user_check,
};
pub use console::{ConsoleFinding, FindingKind, scan_console};
pub use distro::{
    ChecksumAlgorithm, CloudImage, CloudInit, CloudInitQuirk, ContainerPackages,
    ContainerdConfigSchema, Distro, Family, Package, PackageManager, Partitions,
    PublishedChecksums,
};
pub use error::{Error, Result};
pub use node_role::{NodeRole, node_role_steps};
pub use seal::{BUILD_USER, SEAL_FAILED_MARKER, SEAL_MARKER, seal_detached_script, seal_steps};
pub use step::{Step, sudo_sh};

/// Every known distro, in a stable order (oldest family release first).
static REGISTRY: &[&Distro] = &[
    &debian12::DEBIAN_12,
    &debian13::DEBIAN_13,
    &ubuntu2204::UBUNTU_2204,
    &ubuntu2404::UBUNTU_2404,
];

/// Every known distro.
pub fn all() -> &'static [&'static Distro] {
    REGISTRY
}

/// The ids of every known distro, in registry order.
pub fn known_ids() -> Vec<&'static str> {
    REGISTRY.iter().map(|d| d.id).collect()
}

/// The distro with this id (exact match), or [`Error::UnknownDistro`] listing the known ids.
pub fn find(id: &str) -> Result<&'static Distro> {
    REGISTRY
        .iter()
        .copied()
        .find(|d| d.id == id)
        .ok_or_else(|| Error::UnknownDistro {
            id: id.to_owned(),
            known: known_ids().join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_found() {
        let ids: HashSet<_> = all().iter().map(|d| d.id).collect();
        assert_eq!(ids.len(), all().len());
        for d in all() {
            assert!(std::ptr::eq(find(d.id).unwrap(), *d));
        }
    }

    #[test]
    fn unknown_id_lists_known_ones() {
        let err = find("fedora-40").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown distro \"fedora-40\"; known: debian-12, debian-13, ubuntu-22.04, ubuntu-24.04"
        );
    }

    #[test]
    fn image_urls_follow_each_family_scheme() {
        for d in all() {
            let img = &d.cloud_image;
            match d.family {
                Family::Debian => {
                    assert_eq!(
                        img.url,
                        format!(
                            "https://cloud.debian.org/images/cloud/{}/latest/debian-{}-genericcloud-amd64.qcow2",
                            d.codename, d.version_id
                        )
                    );
                    assert_eq!(img.checksum, ChecksumAlgorithm::Sha512);
                    assert!(img.checksums_url.ends_with("/latest/SHA512SUMS"));
                    assert_eq!(
                        (img.checksums_signature, img.checksums_keyring),
                        (None, None)
                    );
                    assert_eq!(d.default_user, "debian");
                    assert_eq!(d.kernel_package, "linux-image-cloud-amd64");
                }
                Family::Ubuntu => {
                    assert_eq!(
                        img.url,
                        format!(
                            "https://cloud-images.ubuntu.com/{0}/current/{0}-server-cloudimg-amd64.img",
                            d.codename
                        )
                    );
                    assert_eq!(img.checksum, ChecksumAlgorithm::Sha256);
                    assert!(img.checksums_url.ends_with("/current/SHA256SUMS"));
                    assert_eq!(img.checksums_signature, Some("SHA256SUMS.gpg"));
                    assert_eq!(
                        img.checksums_keyring,
                        Some("/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg")
                    );
                    assert_eq!(d.default_user, "ubuntu");
                }
            }
            assert_eq!(img.format, diskimg::ImageFormat::Qcow2);
            let dir = img.url.rsplit_once('/').unwrap().0;
            assert!(img.checksums_url.starts_with(dir), "{}", d.id);
            assert_eq!(d.partitions.root, 1);
            assert_eq!(d.partitions.esp, 15);
            assert!(d.run_is_noexec);
            assert_eq!(d.cloud_init.result_json, "/run/cloud-init/result.json");
        }
    }

    #[test]
    fn release_specific_facts() {
        let deb12 = find("debian-12").unwrap();
        assert_eq!(
            deb12.cloud_image.file_name(),
            "debian-12-genericcloud-amd64.qcow2"
        );
        assert_eq!(deb12.cloud_init.version, Some("22.4.2"));
        assert_eq!(
            deb12
                .cloud_init
                .quirks
                .iter()
                .map(|q| q.cloud_config())
                .collect::<Vec<_>>(),
            ["ssh_genkeytypes: [rsa, ecdsa, ed25519]", "locale: C.UTF-8"]
        );
        let cp = &deb12.container_packages;
        assert_eq!(
            [cp.containerd, cp.runc, cp.cni_plugins].map(|p| (p.name, p.version)),
            [
                ("containerd", Some("1.6.20")),
                ("runc", Some("1.1.5")),
                ("containernetworking-plugins", Some("1.1.1")),
            ]
        );
        let noble = find("ubuntu-24.04").unwrap();
        assert_eq!(noble.ssh_unit, "ssh.socket");
        assert!(noble.ssh_socket_activated());
        assert_eq!(noble.partitions.boot, Some(16));
        assert_eq!(noble.partitions.bios_boot, Some(14));
        let jammy = find("ubuntu-22.04").unwrap();
        assert!(!jammy.ssh_socket_activated());
        assert_eq!(jammy.partitions.boot, None);
        assert_eq!(ChecksumAlgorithm::Sha512.hex_len(), 128);
    }
}
