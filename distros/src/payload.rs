//! Installing the offline payload: the build's locked artifacts on a read-only ext4 disk
//! (label [`PAYLOAD_LABEL`]), mounted in the guest, verified there against its `SHA256SUMS`,
//! and installed by kind. These steps run before [`crate::node_role_steps`].

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

/// The steps that mount, verify and install `items`, in order: mount, verify, packages,
/// copies and extractions, containerd running, images. Fails with [`Error::InvalidInput`]
/// naming the value when a path or reference is not acceptable, or when packages are given
/// for a distro whose package manager cannot install them.
pub fn payload_install_steps(distro: &Distro, items: &[PayloadItem]) -> Result<Vec<Step>> {
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
    let mut steps = vec![mount(), verify()];
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

fn mount() -> Step {
    let body = format!(
        "udevadm settle --timeout=30 || true\n\
         dev=$(blkid -L {label} || true)\n\
         if [ -z \"$dev\" ]; then echo 'no filesystem labelled {label}: the payload disk is not attached' >&2; exit 1; fi\n\
         mkdir -p {mnt}\n\
         mountpoint -q {mnt} || mount -o ro,noload \"$dev\" {mnt}\n\
         echo \"payload $dev mounted on {mnt}\"\n",
        label = PAYLOAD_LABEL,
        mnt = PAYLOAD_MOUNT,
    );
    Step::new("payload-mount", secs(60), &body)
}

fn verify() -> Step {
    let body = format!(
        "cd {mnt}\n\
         sha256sum --quiet --strict -c {PAYLOAD_SUMS}\n\
         echo \"$(wc -l < {PAYLOAD_SUMS}) payload files match {PAYLOAD_SUMS}\"\n",
        mnt = PAYLOAD_MOUNT,
    );
    Step::new("payload-verify", secs(300), &body)
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
    Step::new("import-images", secs(900), &body)
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
        let steps = payload_install_steps(d, &items()).unwrap();
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "payload-mount",
                "payload-verify",
                "install-packages",
                "install-files",
                "containerd-running",
                "import-images"
            ]
        );
        assert!(
            steps[2]
                .script
                .contains("'/run/nodeimg-payload/deb/containerd_1.6.20~ds1-1+b1_amd64.deb'")
        );
        assert!(
            steps[3].script.contains(
                "install -D -m 0755 '/run/nodeimg-payload/bin/kubeadm' '/usr/bin/kubeadm'"
            )
        );
        assert!(steps[2].script.contains(
            "apt-mark hold \"$(dpkg-deb -f '/run/nodeimg-payload/deb/containerd_1.6.20~ds1-1+b1_amd64.deb' Package)\""
        ));
        assert!(steps[3].script.contains("-C '/opt/cni/bin'"));
        assert!(
            steps[5]
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
                &[PayloadItem {
                    file: file.into(),
                    install,
                }],
            );
            assert!(
                matches!(e, Err(Error::InvalidInput { .. })),
                "{file}: {e:?}"
            );
        }
    }

    /// The mount, verify and unmount scripts run for real under sh against a directory laid
    /// out like the payload: a flipped byte makes verify fail.
    #[test]
    fn verify_fails_on_a_changed_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), b"one").unwrap();
        let sums = child_process::Command::new("sha256sum", secs(60))
            .arg("a")
            .current_dir(d.path())
            .run()
            .unwrap();
        std::fs::write(d.path().join(PAYLOAD_SUMS), &sums.stdout).unwrap();
        let script = verify()
            .script
            .replace(PAYLOAD_MOUNT, &d.path().display().to_string());
        let run = || {
            child_process::Command::new("/bin/sh", secs(60))
                .arg("-c")
                .arg(&script)
                .run_status()
                .unwrap()
        };
        let ok = run();
        assert!(ok.status.success(), "{ok:?}");
        assert!(ok.stdout_lossy().contains("1 payload files match"));
        std::fs::write(d.path().join("a"), b"onE").unwrap();
        let bad = run();
        assert!(!bad.status.success());
        assert!(bad.stdout_lossy().contains("a: FAILED"), "{bad:?}");
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
