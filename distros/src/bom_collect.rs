//! Collecting the bill of materials from the build guest: one root shell script, run after the
//! spec's commands and before the payload is unmounted (deb and archive components are
//! resolved to their installed files through the payload), prints sections
//! (`@@nodeimg-bom NAME`, in the order of [`SECTIONS`], then `end`) that the host parses.

use std::fmt::Write as _;
use std::time::Duration;

use crate::error::Result;
use crate::node_role::NodeRole;
use crate::shell::{self, quote};
use crate::step::Step;

/// Marks the start of a section in the script's output: `@@nodeimg-bom NAME`.
pub const SECTION_MARKER: &str = "@@nodeimg-bom ";
/// The sections the script prints, in order (then `end`).
pub const SECTIONS: &[&str] = &[
    "os-release",
    "kernel",
    "packages",
    "files",
    "images",
    "sysctls",
    "modules",
    "containerd",
];
/// How long the guest may take to list and hash everything.
pub const COLLECT_TIMEOUT: Duration = Duration::from_secs(300);

/// How a pinned component's files are found in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// A Debian package on the payload: its executables (`dpkg -L`).
    Deb {
        /// The payload file.
        file: String,
    },
    /// A file installed at `dest`.
    Installed {
        /// The path in the guest.
        dest: String,
    },
    /// An archive on the payload extracted into `dest`: its regular files.
    Archive {
        /// The payload file.
        file: String,
        /// The directory it was extracted into.
        dest: String,
    },
}

/// A pinned component to find in the guest, by its lock entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentQuery {
    /// The lock entry's name (what the script prints back).
    pub artifact: String,
    /// The component (`kubeadm`, `containerd`, …).
    pub component: String,
    /// Its pinned version.
    pub version: String,
    /// The lock's source.
    pub source: String,
    /// How its files are found.
    pub how: ComponentSource,
}

/// What the script needs to know.
#[derive(Debug, Clone)]
pub struct Query {
    /// Where the payload is mounted.
    pub payload_mount: String,
    /// The components.
    pub components: Vec<ComponentQuery>,
    /// The sysctls the role sets.
    pub sysctls: Vec<String>,
    /// The modules the role loads.
    pub modules: Vec<String>,
}

impl Query {
    /// The query for a build guest provisioned with `role`: the payload at
    /// [`crate::payload::PAYLOAD_MOUNT`], `components`, the sysctls the role sets and the
    /// kernel modules it loads ([`crate::node_role::KERNEL_MODULES`]).
    pub fn for_node_role(components: Vec<ComponentQuery>, role: &NodeRole) -> Query {
        Query {
            payload_mount: crate::payload::PAYLOAD_MOUNT.to_owned(),
            components,
            sysctls: role.sysctls().into_iter().map(|(k, _)| k).collect(),
            modules: crate::node_role::KERNEL_MODULES
                .iter()
                .map(|m| (*m).to_owned())
                .collect(),
        }
    }

    /// Checks the sysctl keys and module names that go into the script (everything else is
    /// only ever quoted); the error names the field.
    pub fn validate(&self) -> Result<()> {
        for k in &self.sysctls {
            shell::check_sysctl_key("sysctl key", k)?;
        }
        for m in &self.modules {
            shell::check_name("kernel module", m)?;
        }
        Ok(())
    }

    /// The script's body (after the step header).
    fn body(&self) -> String {
        let mut s = String::from("export LC_ALL=C\n");
        let _ = writeln!(s, "P={}", quote(&self.payload_mount));
        s.push_str(
            "sect() { printf '@@nodeimg-bom %s\\n' \"$1\"; }\n\
             tmp=$(mktemp -d)\n\
             trap 'rm -rf \"$tmp\"' EXIT\n\
             : > \"$tmp/list\"\n\
             # Files are listed first and hashed together at the end, in two lanes.\n\
             file_row() { [ -f \"$2\" ] && [ ! -L \"$2\" ] || return 0; \
             printf '%s\\t%s\\n' \"$1\" \"$2\" >> \"$tmp/list\"; }\n\
             sect os-release\ncat /etc/os-release\n\
             sect kernel\n\
             if [ -f /boot/grub/grub.cfg ] && line=$(grep -m1 -E '^[[:space:]]*linux[[:space:]]' /boot/grub/grub.cfg); then\n\
             \tset -- $line\n\
             \tprintf 'release\\t%s\\n' \"${2##*/vmlinuz-}\"\n\
             \tshift 2\n\
             \tprintf 'cmdline\\t%s\\n' \"$*\"\n\
             else\n\
             \tprintf 'release\\t%s\\n' \"$(uname -r)\"\n\
             \tprintf 'cmdline\\t%s\\n' \"$(sed 's/^BOOT_IMAGE=[^ ]* //' /proc/cmdline)\"\n\
             fi\n\
             sect packages\n\
             dpkg-query -W -f '${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\t${source:Version}\\n'\n",
        );
        for c in &self.components {
            let art = quote(&c.artifact);
            match &c.how {
                ComponentSource::Deb { file } => {
                    let _ = writeln!(
                        s,
                        "pkg=$(dpkg-deb -f \"$P\"/{file} Package)\n\
                         dpkg -L \"$pkg\" | grep -E '/(s?bin|libexec|lib/cni)/' | while read -r f; do\n\
                         \tif [ -x \"$f\" ]; then file_row {art} \"$f\"; fi\n\
                         done",
                        file = quote(file),
                    );
                }
                ComponentSource::Installed { dest } => {
                    let _ = writeln!(s, "file_row {art} {}", quote(dest));
                }
                ComponentSource::Archive { file, dest } => {
                    let _ = writeln!(
                        s,
                        "tar -tzf \"$P\"/{file} | while read -r m; do\n\
                         \tfile_row {art} {dest}/\"${{m#./}}\"\n\
                         done",
                        file = quote(file),
                        dest = quote(dest.trim_end_matches('/')),
                    );
                }
            }
        }
        s.push_str(
            "sect files\n\
             cut -f 2 \"$tmp/list\" | tr '\\n' '\\0' | xargs -0 -r -P 2 -n 16 sha256sum -- > \"$tmp/sums\"\n\
             awk -F '\\t' 'NR == FNR { h[substr($0, 67)] = substr($0, 1, 64); next } \
             { printf \"F\\t%s\\t%s\\t%s\\n\", $1, $2, h[$2] }' \"$tmp/sums\" \"$tmp/list\"\n\
             sect images\nctr -n k8s.io images ls\nsect sysctls\n",
        );
        for k in &self.sysctls {
            let _ = writeln!(
                s,
                "printf '%s\\t%s\\n' {k} \"$(sysctl -n {k} 2>/dev/null || echo '<unset>')\"",
                k = quote(k)
            );
        }
        s.push_str("sect modules\n");
        for m in &self.modules {
            let _ = writeln!(
                s,
                "if [ -d /sys/module/{m} ]; then printf '%s\\tyes\\n' {m}; else printf '%s\\tno\\n' {m}; fi",
                m = quote(m)
            );
        }
        s.push_str("sect containerd\ncontainerd config dump\nsect end\n");
        s
    }
}

/// The collection step for `query` (named `bom`, run as root; its stdout is the answer).
pub fn step(query: &Query) -> Result<Step> {
    query.validate()?;
    Ok(Step::new("bom-collect", COLLECT_TIMEOUT, &query.body()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_sections_and_validation() {
        let q = Query {
            payload_mount: "/run/nodeimg-payload".into(),
            components: Vec::new(),
            sysctls: vec!["net.ipv4.ip_forward".into()],
            modules: vec!["overlay".into()],
        };
        let s = step(&q).unwrap();
        assert_eq!(s.name, "bom-collect");
        assert_eq!(s.timeout, COLLECT_TIMEOUT);
        assert!(s.script.starts_with(
            "#!/bin/sh\n# nodeimg step: bom-collect\nset -eu\nexec </dev/null\nexport LC_ALL=C\nP='/run/nodeimg-payload'\n"
        ));
        assert!(s.remote_command().ends_with(" 'nodeimg-bom-collect'"));
        for name in SECTIONS.iter().chain(&["end"]) {
            assert!(
                s.script.contains(&format!("sect {name}\n")),
                "{name}: {}",
                s.script
            );
        }
        let bad = Query {
            sysctls: vec!["net.x; reboot".into()],
            ..q.clone()
        };
        assert!(step(&bad).is_err());
        let bad = Query {
            modules: vec!["a b".into()],
            ..q
        };
        assert!(step(&bad).is_err());
    }

    /// The script's file rows under a real sh (fake `ctr` and `containerd`): every installed
    /// file and every archive member once, with its SHA-256, from the one hashing pass.
    #[test]
    fn file_rows_carry_each_files_sha256() {
        use std::os::unix::fs::PermissionsExt;
        const HELLO: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let bin = root.join("fakebin");
        std::fs::create_dir_all(&bin).unwrap();
        for tool in ["ctr", "containerd"] {
            let p = bin.join(tool);
            std::fs::write(&p, "#!/bin/sh\necho fake\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let payload = root.join("payload");
        let member = root.join("src/bin");
        std::fs::create_dir_all(&member).unwrap();
        std::fs::create_dir_all(&payload).unwrap();
        std::fs::write(member.join("a"), "hello\n").unwrap();
        std::fs::write(member.join("b"), "").unwrap();
        let tar = child_process::Command::new("tar", std::time::Duration::from_secs(60))
            .arg("-czf")
            .arg(payload.join("a.tgz"))
            .arg("-C")
            .arg(root.join("src"))
            .arg(".")
            .run_status()
            .unwrap();
        assert!(tar.status.success(), "{tar:?}");
        let dest = root.join("dest");
        std::fs::create_dir_all(dest.join("bin")).unwrap();
        std::fs::write(dest.join("bin/a"), "hello\n").unwrap();
        std::fs::write(dest.join("bin/b"), "").unwrap();
        let installed = root.join("usr bin/tool");
        std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
        std::fs::write(&installed, "").unwrap();
        let q = Query {
            payload_mount: payload.display().to_string(),
            components: vec![
                ComponentQuery {
                    artifact: "tool".into(),
                    component: "tool".into(),
                    version: "1".into(),
                    source: "s".into(),
                    how: ComponentSource::Installed {
                        dest: installed.display().to_string(),
                    },
                },
                ComponentQuery {
                    artifact: "arch".into(),
                    component: "arch".into(),
                    version: "1".into(),
                    source: "s".into(),
                    how: ComponentSource::Archive {
                        file: "a.tgz".into(),
                        dest: dest.display().to_string(),
                    },
                },
            ],
            sysctls: Vec::new(),
            modules: Vec::new(),
        };
        let out = child_process::Command::new("/bin/sh", std::time::Duration::from_secs(60))
            .arg("-c")
            .arg(step(&q).unwrap().script)
            .env(
                "PATH",
                format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display()),
            )
            .run_status()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = out.stdout_lossy();
        let mut rows: Vec<&str> = text.lines().filter(|l| l.starts_with("F\t")).collect();
        rows.sort_unstable();
        let want = [
            format!("F\tarch\t{}/bin/a\t{HELLO}", dest.display()),
            format!("F\tarch\t{}/bin/b\t{EMPTY}", dest.display()),
            format!("F\ttool\t{}\t{EMPTY}", installed.display()),
        ];
        assert_eq!(
            rows,
            want.iter().map(String::as_str).collect::<Vec<_>>(),
            "{text}"
        );
    }
}
