//! Installing the offline payload: the build's locked artifacts on a read-only ext4 disk
//! (label [`PAYLOAD_LABEL`]), mounted in the guest and installed by kind. The host checked
//! every file against the disk's `SHA256SUMS` when it made the disk; the guest only checks
//! that the filesystem it mounts carries the UUID the host derived from that content, so it is
//! that disk. These steps run before [`crate::node_role_steps`].

use std::fmt::Write as _;
use std::time::Duration;

use crate::distro::{Distro, PackageManager};
use crate::error::{Error, Result};
use crate::shell::{self, quote};
use crate::step::Step;

/// The payload filesystem's label.
pub const PAYLOAD_LABEL: &str = "nodeimg-payload";
/// Where the payload is mounted in the guest (tmpfs: nothing is left on the disk).
pub const PAYLOAD_MOUNT: &str = "/run/nodeimg-payload";
/// Where CNI plugins are looked for by containerd's default config and installed by add-ons.
pub const CNI_BIN_DIR: &str = "/opt/cni/bin";
/// The checksum file at the payload's root (`sha256sum -c` format, paths relative to it).
pub const PAYLOAD_SUMS: &str = "SHA256SUMS";

/// How one payload file is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// A distro package (`.deb`), installed together with the others; `hold` keeps the
    /// package manager from upgrading it (`apt-mark hold`).
    Package {
        /// Hold it at this version.
        hold: bool,
    },
    /// An executable or plain file copied to `dest` with `mode`.
    Copy {
        /// Absolute guest path.
        dest: String,
        /// Permission bits.
        mode: u32,
    },
    /// A `.tar.gz` extracted into the directory `dest`.
    Extract {
        /// Absolute guest directory.
        dest: String,
    },
    /// A container image archive imported into containerd's `k8s.io` namespace; `reference`
    /// must be listed afterwards.
    Image {
        /// The reference the archive carries.
        reference: String,
    },
}

/// One file on the payload disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadItem {
    /// Path relative to the payload's root (`[A-Za-z0-9._/-]`, no `..`).
    pub file: String,
    /// What to do with it.
    pub install: Install,
}

/// The payload disk as the guest is to use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// Every file and what to do with it.
    pub items: Vec<PayloadItem>,
    /// The UUID of the payload filesystem (lower-case `8-4-4-4-12` hex), derived by the host
    /// from the payload's content: the mount step refuses a filesystem without it.
    pub fs_uuid: String,
}

/// Refuses anything but a lower-case `8-4-4-4-12` hex UUID (what `blkid` prints).
fn check_uuid(uuid: &str) -> Result<()> {
    let groups: Vec<&str> = uuid.split('-').collect();
    let ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "payload filesystem UUID",
            uuid,
            "must be lower-case hex in the form 8-4-4-4-12",
        ))
    }
}

fn check_relative(file: &str) -> Result<()> {
    let ok = !file.is_empty()
        && !file.starts_with('/')
        && file
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '+' | '~'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "payload file",
            file,
            "must be a relative path of letters, digits and . _ - + ~ /",
        ))
    }
}

fn check_dest(dest: &str) -> Result<()> {
    let ok = dest.starts_with('/')
        && dest.len() > 1
        && dest.split('/').skip(1).all(|c| c != "." && c != "..")
        && !dest.chars().any(|c| c.is_control());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "install path",
            dest,
            "must be an absolute path without . or .. and without control characters",
        ))
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn at(file: &str) -> String {
    quote(&format!("{PAYLOAD_MOUNT}/{file}"))
}

/// The steps that mount `payload` and install its items, in order: mount (checking the
/// filesystem's UUID), packages, copies and extractions, containerd running, images. Fails
/// with [`Error::InvalidInput`] naming the value when a path, reference or the UUID is not
/// acceptable, or when packages are given for a distro whose package manager cannot install
/// them.
pub fn payload_install_steps(distro: &Distro, payload: &Payload) -> Result<Vec<Step>> {
    let items = &payload.items;
    check_uuid(&payload.fs_uuid)?;
    for item in items {
        check_relative(&item.file)?;
        match &item.install {
            Install::Package { .. } => {}
            Install::Copy { dest, mode } => {
                check_dest(dest)?;
                if *mode > 0o7777 {
                    return Err(Error::invalid("mode", &format!("{mode:o}"), "above 7777"));
                }
            }
            Install::Extract { dest } => check_dest(dest)?,
            Install::Image { reference } => shell::check_image_ref("image", reference)?,
        }
    }
    let mut steps = vec![mount(&payload.fs_uuid)];
    let packages: Vec<(&str, bool)> = items
        .iter()
        .filter_map(|i| match i.install {
            Install::Package { hold } => Some((i.file.as_str(), hold)),
            _ => None,
        })
        .collect();
    if !packages.is_empty() {
        match distro.package_manager {
            PackageManager::Apt => steps.push(install_debs(&packages)),
        }
    }
    let mut files = String::new();
    for item in items {
        match &item.install {
            Install::Copy { dest, mode } => {
                let _ = writeln!(
                    files,
                    "install -D -m {mode:04o} {} {}\necho \"installed {}\"",
                    at(&item.file),
                    quote(dest),
                    dest.replace(['"', '\\', '$', '`'], "_")
                );
            }
            Install::Extract { dest } => {
                let _ = writeln!(
                    files,
                    "mkdir -p {d}\ntar -xzf {} -C {d} --no-same-owner\necho \"extracted into {}\"",
                    at(&item.file),
                    dest.replace(['"', '\\', '$', '`'], "_"),
                    d = quote(dest),
                );
            }
            _ => {}
        }
    }
    if !files.is_empty() {
        files.push_str("systemctl daemon-reload\n");
        steps.push(Step::new("install-files", secs(300), &files));
    }
    let images: Vec<(&str, &str)> = items
        .iter()
        .filter_map(|i| match &i.install {
            Install::Image { reference } => Some((i.file.as_str(), reference.as_str())),
            _ => None,
        })
        .collect();
    steps.push(containerd_running());
    if !images.is_empty() {
        steps.push(import_images(&images));
    }
    Ok(steps)
}

fn mount(fs_uuid: &str) -> Step {
    mount_disk(&PAYLOAD_DISK, fs_uuid)
}

/// A read-only ext4 disk the host makes for a guest and the guest mounts by its label,
/// checking the UUID the host derived from the disk's content.
#[derive(Debug, Clone, Copy)]
pub struct ReadOnlyDisk {
    /// The mount step's name (`payload-mount`).
    pub step: &'static str,
    /// The filesystem label.
    pub label: &'static str,
    /// Where the guest mounts it.
    pub mount: &'static str,
    /// What it is, for errors (`the payload disk`).
    pub what: &'static str,
}

/// The payload disk.
pub const PAYLOAD_DISK: ReadOnlyDisk = ReadOnlyDisk {
    step: "payload-mount",
    label: PAYLOAD_LABEL,
    mount: PAYLOAD_MOUNT,
    what: "the payload disk",
};

/// The step that mounts `disk` read-only (no journal replay), refusing a filesystem whose UUID
/// is not `fs_uuid`.
pub fn mount_disk(disk: &ReadOnlyDisk, fs_uuid: &str) -> Step {
    let body = format!(
        "udevadm settle --timeout=30 || true\n\
         dev=$(blkid -L {label} || true)\n\
         if [ -z \"$dev\" ]; then echo 'no filesystem labelled {label}: {what} is not attached' >&2; exit 1; fi\n\
         uuid=$(blkid -s UUID -o value \"$dev\" || true)\n\
         if [ \"$uuid\" != {fs_uuid} ]; then echo \"$dev has UUID '$uuid', not {fs_uuid}: not {what} this build made\" >&2; exit 1; fi\n\
         mkdir -p {mnt}\n\
         mountpoint -q {mnt} || mount -o ro,noload \"$dev\" {mnt}\n\
         echo \"{label} $dev (UUID {fs_uuid}) mounted on {mnt}\"\n",
        label = disk.label,
        mnt = disk.mount,
        what = disk.what,
    );
    Step::new(disk.step, secs(60), &body)
}

fn install_debs(debs: &[(&str, bool)]) -> Step {
    let files: Vec<String> = debs.iter().map(|(d, _)| at(d)).collect();
    let mut body = format!(
        "export DEBIAN_FRONTEND=noninteractive\n\
         dpkg -i --force-confold --force-unsafe-io {}\n\
         dpkg --audit\n",
        files.join(" ")
    );
    for (deb, _) in debs.iter().filter(|(_, hold)| *hold) {
        let _ = writeln!(body, "apt-mark hold \"$(dpkg-deb -f {} Package)\"", at(deb));
    }
    Step::new("install-packages", secs(600), &body)
}

fn containerd_running() -> Step {
    let body = "systemctl enable containerd\n\
                systemctl is-active -q containerd || systemctl restart containerd\n\
                for _ in $(seq 1 60); do\n\
                \tctr version >/dev/null 2>&1 && break\n\
                \tsleep 1\n\
                done\n\
                ctr version | sed -n 's/^ *Version: */containerd /p' | tail -n 1\n";
    Step::new("containerd-running", secs(120), body)
}

/// How many imports run at once (one per vCPU of a small build VM; unpacking is CPU-bound).
const IMPORT_LANES: usize = 2;

fn import_images(images: &[(&str, &str)]) -> Step {
    import_images_from("import-images", PAYLOAD_MOUNT, images)
}

/// The step `name` that imports image archives (`(file under mount, reference)`) into
/// containerd's `k8s.io` namespace, two at a time, and checks that every reference is then
/// listed.
pub fn import_images_from(name: &str, mount: &str, images: &[(&str, &str)]) -> Step {
    let at = |file: &str| quote(&format!("{mount}/{file}"));
    // Dealt round-robin into lanes that run side by side.
    let mut body = String::from("lane_failed=0\n");
    for lane in 0..IMPORT_LANES {
        body.push_str("(\n\t:\n");
        for (file, _) in images.iter().skip(lane).step_by(IMPORT_LANES) {
            let _ = writeln!(
                body,
                "\tctr -n k8s.io images import {} >/dev/null || {{ echo \"importing {file} failed\" >&2; exit 1; }}",
                at(file)
            );
        }
        let _ = writeln!(body, ") &\npid{lane}=$!");
    }
    for lane in 0..IMPORT_LANES {
        let _ = writeln!(body, "wait \"$pid{lane}\" || lane_failed=1");
    }
    body.push_str("[ \"$lane_failed\" = 0 ] || exit 1\nlisted=$(ctr -n k8s.io images ls -q)\n");
    for (file, reference) in images {
        let _ = writeln!(
            body,
            "printf '%s\\n' \"$listed\" | grep -Fqx -- {r} || {{ echo \"importing {file} did not add \"{r} >&2; exit 1; }}\n\
             echo \"imported \"{r}",
            r = quote(reference),
        );
    }
    Step::new(name, secs(900), &body)
}

/// Unmounts the payload (the last provisioning step).
pub fn payload_unmount_step() -> Step {
    let body = format!(
        "if mountpoint -q {mnt}; then umount {mnt}; fi\nrmdir {mnt} 2>/dev/null || true\n",
        mnt = PAYLOAD_MOUNT
    );
    Step::new("payload-unmount", secs(60), &body)
}

/// `cni-plugins-path`: links every plugin of the distro's CNI package (installed in
/// `distro.container_packages.cni_plugins_dir`) into [`CNI_BIN_DIR`], where containerd's
/// default config and CNI add-ons look. Needed only when that directory differs.
pub fn cni_plugins_link_step(distro: &Distro) -> Step {
    let body = format!(
        "mkdir -p {CNI_BIN_DIR}\nfor p in {dir}/*; do ln -sfn \"$p\" {CNI_BIN_DIR}/; done\nls {CNI_BIN_DIR}",
        dir = quote(distro.container_packages.cni_plugins_dir)
    );
    Step::new("cni-plugins-path", secs(30), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "0f1e2d3c-4b5a-8978-a695-b4c3d2e1f0ab";

    fn payload(items: Vec<PayloadItem>) -> Payload {
        Payload {
            items,
            fs_uuid: UUID.into(),
        }
    }

    fn items() -> Vec<PayloadItem> {
        vec![
            PayloadItem {
                file: "deb/containerd_1.6.20~ds1-1+b1_amd64.deb".into(),
                install: Install::Package { hold: true },
            },
            PayloadItem {
                file: "bin/kubeadm".into(),
                install: Install::Copy {
                    dest: "/usr/bin/kubeadm".into(),
                    mode: 0o755,
                },
            },
            PayloadItem {
                file: "archive/cni.tgz".into(),
                install: Install::Extract {
                    dest: "/opt/cni/bin".into(),
                },
            },
            PayloadItem {
                file: "image/pause.tar".into(),
                install: Install::Image {
                    reference: "k8s.gcr.io/pause:3.2".into(),
                },
            },
        ]
    }

    #[test]
    fn steps_in_order_with_every_item() {
        let d = crate::find("debian-12").unwrap();
        let steps = payload_install_steps(d, &payload(items())).unwrap();
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        // No hashing in the guest: the host checked the payload disk it made.
        assert_eq!(
            names,
            [
                "payload-mount",
                "install-packages",
                "install-files",
                "containerd-running",
                "import-images"
            ]
        );
        assert!(
            steps[0]
                .script
                .contains(&format!("if [ \"$uuid\" != {UUID} ]"))
        );
        assert!(!steps.iter().any(|s| s.script.contains("sha256sum")));
        assert!(
            steps[1]
                .script
                .contains("'/run/nodeimg-payload/deb/containerd_1.6.20~ds1-1+b1_amd64.deb'")
        );
        assert!(
            steps[2].script.contains(
                "install -D -m 0755 '/run/nodeimg-payload/bin/kubeadm' '/usr/bin/kubeadm'"
            )
        );
        assert!(steps[1].script.contains(
            "apt-mark hold \"$(dpkg-deb -f '/run/nodeimg-payload/deb/containerd_1.6.20~ds1-1+b1_amd64.deb' Package)\""
        ));
        assert!(steps[2].script.contains("-C '/opt/cni/bin'"));
        assert!(
            steps[4]
                .script
                .contains("grep -Fqx -- 'k8s.gcr.io/pause:3.2'")
        );
    }

    #[test]
    fn bad_paths_and_references_are_refused_by_name() {
        let d = crate::find("debian-12").unwrap();
        for (file, install) in [
            ("../etc/shadow", Install::Package { hold: false }),
            ("/abs", Install::Package { hold: false }),
            ("a b", Install::Package { hold: false }),
            (
                "ok",
                Install::Copy {
                    dest: "/usr/../etc/x".into(),
                    mode: 0o644,
                },
            ),
            (
                "ok",
                Install::Copy {
                    dest: "relative".into(),
                    mode: 0o644,
                },
            ),
            (
                "ok",
                Install::Image {
                    reference: "x'; rm -rf /".into(),
                },
            ),
        ] {
            let e = payload_install_steps(
                d,
                &payload(vec![PayloadItem {
                    file: file.into(),
                    install,
                }]),
            );
            assert!(
                matches!(e, Err(Error::InvalidInput { .. })),
                "{file}: {e:?}"
            );
        }
        for uuid in [
            "",
            "0F1E2D3C-4B5A-8978-A695-B4C3D2E1F0AB",
            "0f1e2d3c4b5a8978a695b4c3d2e1f0ab",
            "0f1e2d3c-4b5a-8978-a695-b4c3d2e1f0a;",
            "$(reboot)",
        ] {
            let e = payload_install_steps(
                d,
                &Payload {
                    items: items(),
                    fs_uuid: uuid.into(),
                },
            );
            assert!(
                matches!(&e, Err(Error::InvalidInput { value, .. }) if value == uuid),
                "{uuid}: {e:?}"
            );
        }
    }

    /// The mount script under a real sh with fake `blkid`, `mountpoint`, `mount` and
    /// `udevadm`: the filesystem labelled as the payload is mounted only when it carries the
    /// UUID the host gave the payload it made; another UUID (or none) is refused, naming both.
    #[test]
    fn mount_refuses_a_filesystem_with_another_uuid() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let mounted = d.path().join("mounted");
        let tool = |name: &str, body: &str| {
            let path = bin.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        tool(
            "blkid",
            "case \"$*\" in\n\
             '-L nodeimg-payload') echo /dev/vdb ;;\n\
             '-s UUID -o value /dev/vdb') cat \"$FAKE_UUID_FILE\" ;;\n\
             *) exit 2 ;;\n\
             esac",
        );
        tool("udevadm", "exit 0");
        tool("mountpoint", "exit 1");
        tool("mount", &format!("echo \"$*\" > {}", mounted.display()));
        let uuid_file = d.path().join("uuid");
        let mnt = d.path().join("mnt").display().to_string();
        let script = mount(UUID).script.replace(PAYLOAD_MOUNT, &mnt);
        let run = |uuid: &str| {
            let _ = std::fs::remove_file(&mounted);
            std::fs::write(&uuid_file, format!("{uuid}\n")).unwrap();
            child_process::Command::new("/bin/sh", secs(60))
                .arg("-c")
                .arg(&script)
                .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
                .env("FAKE_UUID_FILE", &uuid_file)
                .run_status()
                .unwrap()
        };
        let ok = run(UUID);
        assert!(ok.status.success(), "{ok:?}");
        assert!(ok.stdout_lossy().contains("mounted on"), "{ok:?}");
        assert_eq!(
            std::fs::read_to_string(&mounted).unwrap().trim(),
            format!("-o ro,noload /dev/vdb {mnt}")
        );
        for other in ["0f1e2d3c-4b5a-8978-a695-b4c3d2e1f0ac", ""] {
            let bad = run(other);
            assert!(!bad.status.success(), "{other:?}: {bad:?}");
            assert!(
                bad.stderr_tail.contains(&format!(
                    "/dev/vdb has UUID '{other}', not {UUID}: not the payload disk this build made"
                )),
                "{bad:?}"
            );
            assert!(!mounted.exists(), "{other:?}: mounted anyway");
        }
    }

    /// The import step under a real sh with a fake `ctr`: every archive imported, every
    /// reference checked; a missing reference or a failed import fails the step, naming it.
    #[test]
    fn import_images_imports_in_lanes_and_checks_every_reference() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let ctr = bin.join("ctr");
        std::fs::write(
            &ctr,
            format!(
                "#!/bin/sh\nlog={log}\ncase \"$*\" in\n\
                 *'images import '*) f=\"$5\"; case \"$f\" in *bad*) exit 3;; esac; basename \"$f\" .tar >> \"$log\" ;;\n\
                 *'images ls -q') sed 's|^|k8s.gcr.io/|; s|_|:|' \"$log\"; echo sha256:abc ;;\n\
                 esac\n",
                log = d.path().join("imported").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&ctr, std::fs::Permissions::from_mode(0o755)).unwrap();
        let run = |images: &[(&str, &str)]| {
            let _ = std::fs::remove_file(d.path().join("imported"));
            let script = import_images(images)
                .script
                .replace(PAYLOAD_MOUNT, &d.path().display().to_string());
            child_process::Command::new("/bin/sh", secs(120))
                .arg("-c")
                .arg(&script)
                .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
                .run_status()
                .unwrap()
        };
        let good = [
            ("image/pause_3.2.tar", "k8s.gcr.io/pause:3.2"),
            ("image/etcd_3.4.tar", "k8s.gcr.io/etcd:3.4"),
            ("image/kube-proxy_v1.tar", "k8s.gcr.io/kube-proxy:v1"),
        ];
        let o = run(&good);
        assert!(o.status.success(), "{o:?}");
        let out = o.stdout_lossy();
        for (_, r) in good {
            assert!(out.contains(&format!("imported {r}")), "{out}");
        }
        let o = run(&[("image/pause_3.2.tar", "k8s.gcr.io/pause:3.3")]);
        assert!(!o.status.success());
        assert!(
            o.stderr_tail.contains("did not add k8s.gcr.io/pause:3.3"),
            "{o:?}"
        );
        let o = run(&[good[0], ("image/bad_1.tar", "k8s.gcr.io/bad:1")]);
        assert!(!o.status.success());
        assert!(
            o.stderr_tail.contains("importing image/bad_1.tar failed"),
            "{o:?}"
        );
    }
}
