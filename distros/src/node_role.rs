//! The Kubernetes node role: host configuration from node-role.md ("Host configuration"),
//! rendered as guest steps.
//!
//! The steps expect the node's packages (containerd, runc, kubelet, …) to be installed already
//! from the offline payload; they configure, they do not install.

use std::fmt::Write as _;
use std::time::Duration;

use crate::distro::{ContainerdConfigSchema, Distro, Family};
use crate::error::{Error, Result};
use crate::shell::{self, quote, quote_words};
use crate::step::Step;

/// Kernel modules a node needs, loaded now and at every boot.
pub const KERNEL_MODULES: &[&str] = &["overlay", "br_netfilter"];
/// Where the module list goes.
pub const MODULES_LOAD_FILE: &str = "/etc/modules-load.d/k8s.conf";
/// The sysctls every node gets (node-role.md), before [`NodeRole::extra_sysctls`].
pub const SYSCTLS: &[(&str, &str)] = &[
    ("net.bridge.bridge-nf-call-iptables", "1"),
    ("net.bridge.bridge-nf-call-ip6tables", "1"),
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv6.conf.all.forwarding", "1"),
    ("net.ipv6.conf.all.disable_ipv6", "0"),
    ("vm.overcommit_memory", "1"),
    ("kernel.panic", "10"),
    ("kernel.panic_on_oops", "1"),
    ("fs.inotify.max_user_instances", "8192"),
    ("fs.inotify.max_user_watches", "524288"),
];
/// Where the sysctls go.
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/99-kubernetes.conf";
/// containerd's CRI socket.
pub const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";
/// Registry mirror configuration directory (`config_path` in containerd's config).
pub const CONTAINERD_CERTS_DIR: &str = "/etc/containerd/certs.d";
/// Kernel command-line arguments for the serial console (the last `console=` is
/// `/dev/console`).
pub const SERIAL_CONSOLE_ARGS: &str = "console=tty1 console=ttyS0,115200n8";
/// The provenance file.
pub const PROVENANCE_FILE: &str = "/etc/nodeimg-release";

/// What the node role is parameterised by; the distro's facts supply the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeRole {
    /// The pinned pause (sandbox) image reference, as imported from the payload, e.g.
    /// `registry.k8s.io/pause:3.10`.
    pub pause_image: String,
    /// Packages to hold with `apt-mark hold` (e.g. `kubelet`, `kubeadm`, `containerd`).
    pub held_packages: Vec<String>,
    /// `KEY=value` lines of [`PROVENANCE_FILE`], in order (tool version, spec hash,
    /// component versions).
    pub provenance: Vec<(String, String)>,
    /// More sysctls; a key already in [`SYSCTLS`] replaces that value.
    pub extra_sysctls: Vec<(String, String)>,
}

impl NodeRole {
    /// Checks every parameter that goes into a script; the error names the field.
    pub fn validate(&self) -> Result<()> {
        shell::check_image_ref("pause image", &self.pause_image)?;
        for p in &self.held_packages {
            shell::check_package_name("held package", p)?;
        }
        for (i, (k, v)) in self.provenance.iter().enumerate() {
            shell::check_provenance_key("provenance key", k)?;
            shell::check_provenance_value("provenance value", v)?;
            if self.provenance[..i].iter().any(|(prev, _)| prev == k) {
                return Err(Error::invalid("provenance key", k, "given more than once"));
            }
        }
        for (k, v) in &self.extra_sysctls {
            shell::check_sysctl_key("sysctl key", k)?;
            shell::check_sysctl_value("sysctl value", v)?;
        }
        Ok(())
    }

    /// [`SYSCTLS`] with [`NodeRole::extra_sysctls`] applied (replaced in place or appended),
    /// values with runs of spaces collapsed (as `sysctl -n` prints them).
    pub fn sysctls(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = SYSCTLS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        for (k, v) in &self.extra_sysctls {
            let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
            match out.iter_mut().find(|(key, _)| key == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k.clone(), v)),
            }
        }
        out
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Renders the node role's steps for `distro`, in the order they must run. Fails with
/// [`Error::InvalidInput`] naming the field when a parameter is not acceptable.
pub fn node_role_steps(distro: &Distro, role: &NodeRole) -> Result<Vec<Step>> {
    role.validate()?;
    let mut steps = vec![
        kernel_modules(),
        sysctls(role),
        swap_off(),
        containerd(distro, role),
        crictl(),
        kubelet(),
        time_sync(distro),
        auto_upgrades_off(distro),
    ];
    if !role.held_packages.is_empty() {
        steps.push(hold_packages(role));
    }
    steps.push(serial_console(distro));
    steps.push(ssh_host_keys());
    steps.push(provenance(role));
    Ok(steps)
}

fn kernel_modules() -> Step {
    let mods = quote_words(KERNEL_MODULES);
    let body = format!(
        "printf '%s\\n' {mods} > {file}\n\
         for m in {mods}; do\n\
         \tmodprobe -- \"$m\"\n\
         \tif [ ! -d \"/sys/module/$m\" ]; then\n\
         \t\techo \"kernel module $m is not loaded\" >&2\n\
         \t\texit 1\n\
         \tfi\n\
         done\n",
        file = quote(MODULES_LOAD_FILE),
    );
    Step::new("kernel-modules", secs(30), &body)
}

fn sysctls(role: &NodeRole) -> Step {
    let all = role.sysctls();
    let lines = all
        .iter()
        .map(|(k, v)| quote(&format!("{k} = {v}")))
        .collect::<Vec<_>>()
        .join(" \\\n\t");
    let mut body = format!(
        "printf '%s\\n' '# nodeimg: Kubernetes node sysctls' \\\n\t{lines} > {file}\n\
         sysctl --system\n\
         check() {{\n\
         \tactual=$(sysctl -n \"$1\" | tr -s '[:blank:]' ' ')\n\
         \tif [ \"$actual\" != \"$2\" ]; then\n\
         \t\techo \"sysctl $1 is '$actual', want '$2'\" >&2\n\
         \t\texit 1\n\
         \tfi\n\
         }}\n",
        file = quote(SYSCTL_FILE),
    );
    for (k, v) in &all {
        let _ = writeln!(body, "check {} {}", quote(k), quote(v));
    }
    Step::new("sysctls", secs(30), &body)
}

fn swap_off() -> Step {
    let body = "\
list=$(mktemp)
awk 'NR > 1 && $2 == \"file\" { print $1 }' /proc/swaps > \"$list\"
swapoff -a
while IFS= read -r f; do
\trm -f -- \"$f\"
done < \"$list\"
rm -f -- \"$list\"
if [ -f /etc/fstab ]; then
\tsed -ri '/^[[:space:]]*[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap([[:space:]]|$)/s/^/#/' /etc/fstab
fi
systemctl mask swap.target
if [ \"$(awk 'NR > 1' /proc/swaps)\" != \"\" ]; then
\techo 'swap is still active' >&2
\texit 1
fi
";
    Step::new("swap-off", secs(60), body)
}

fn containerd(distro: &Distro, role: &NodeRole) -> Step {
    let ContainerdConfigSchema::V2 = distro.container_packages.containerd_config;
    let sandbox = format!("sandbox_image = \"{}\"", role.pause_image);
    let config_path = format!("config_path = \"{CONTAINERD_CERTS_DIR}\"");
    let edits = [
        "s/SystemdCgroup = false/SystemdCgroup = true/".to_owned(),
        format!("s|sandbox_image = \"[^\"]*\"|{sandbox}|"),
        format!("s|config_path = \"\"|{config_path}|"),
    ];
    let sed = edits
        .iter()
        .map(|e| format!("-e {}", quote(e)))
        .collect::<Vec<_>>()
        .join(" ");
    let wants = quote_words([
        "SystemdCgroup = true",
        sandbox.as_str(),
        config_path.as_str(),
    ]);
    let body = format!(
        "mkdir -p /etc/containerd {certs}\n\
         new=/etc/containerd/config.toml.nodeimg-new\n\
         containerd config default > \"$new\"\n\
         sed -i {sed} \"$new\"\n\
         for want in {wants}; do\n\
         \tif ! grep -qF -- \"$want\" \"$new\"; then\n\
         \t\techo \"containerd config: '$want' missing after the edit (config schema changed?)\" >&2\n\
         \t\texit 1\n\
         \tfi\n\
         done\n\
         if grep -qF 'SystemdCgroup = false' \"$new\"; then\n\
         \techo 'containerd config: a runtime still has SystemdCgroup = false' >&2\n\
         \texit 1\n\
         fi\n\
         mv -f -- \"$new\" /etc/containerd/config.toml\n\
         mkdir -p /etc/systemd/system/containerd.service.d\n\
         printf '%s\\n' '[Service]' 'OOMScoreAdjust=-999' 'TasksMax=infinity' 'LimitNOFILE=1048576' \\\n\
         \t> /etc/systemd/system/containerd.service.d/10-nodeimg.conf\n\
         systemctl daemon-reload\n\
         systemctl enable containerd.service\n\
         systemctl restart containerd.service\n\
         systemctl is-active --quiet containerd.service\n",
        certs = quote(CONTAINERD_CERTS_DIR),
    );
    Step::new("containerd", secs(120), &body)
}

fn crictl() -> Step {
    let endpoint = format!("unix://{CONTAINERD_SOCKET}");
    let body = format!(
        "printf '%s\\n' {} {} 'timeout: 10' > /etc/crictl.yaml\n",
        quote(&format!("runtime-endpoint: {endpoint}")),
        quote(&format!("image-endpoint: {endpoint}")),
    );
    Step::new("crictl-config", secs(10), &body)
}

fn kubelet() -> Step {
    let body = "\
if ! systemctl cat kubelet.service >/dev/null 2>&1; then
\techo 'kubelet.service is not installed: install the payload before the node role' >&2
\texit 1
fi
printf '%s\\n' 'KUBELET_EXTRA_ARGS=' > /etc/default/kubelet
systemctl enable kubelet.service
# enabled, not running: kubeadm starts it
if systemctl is-active --quiet kubelet.service; then
\tsystemctl stop kubelet.service
fi
";
    Step::new("kubelet", secs(30), body)
}

fn time_sync(distro: &Distro) -> Step {
    let units = quote_words(distro.time_sync_units);
    let body = format!(
        "for u in {units}; do\n\
         \tif systemctl cat -- \"$u\" >/dev/null 2>&1; then\n\
         \t\tsystemctl enable -- \"$u\"\n\
         \t\texit 0\n\
         \tfi\n\
         done\n\
         echo {msg} >&2\n\
         exit 1\n",
        msg = quote(&format!(
            "no time sync unit installed (looked for {})",
            distro.time_sync_units.join(", ")
        )),
    );
    Step::new("time-sync", secs(30), &body)
}

fn auto_upgrades_off(distro: &Distro) -> Step {
    let units = quote_words(distro.auto_upgrade_units);
    // A timer's service may be running right now (apt-daily.service): stop it too.
    let services: Vec<String> = distro
        .auto_upgrade_units
        .iter()
        .filter_map(|u| u.strip_suffix(".timer"))
        .map(|base| format!("{base}.service"))
        .collect();
    // Those installed and not masked yet are stopped and disabled, then all are masked, with
    // one reload of systemd for all of them (each reload costs seconds under emulation).
    let body = format!(
        "systemctl list-unit-files --no-legend --no-pager -- {units} 2>/dev/null \\\n\
         \t| awk '$2 !~ /^masked/ {{ print $1 }}' \\\n\
         \t| xargs -r systemctl disable --no-reload --now --\n\
         systemctl mask --no-reload -- {units}\n\
         systemctl daemon-reload\n\
         systemctl stop -- {services} 2>/dev/null || true\n\
         printf '%s\\n' 'APT::Periodic::Update-Package-Lists \"0\";' 'APT::Periodic::Unattended-Upgrade \"0\";' \\\n\
         \t> /etc/apt/apt.conf.d/99nodeimg-no-auto-upgrades\n",
        services = quote_words(&services),
    );
    Step::new("auto-upgrades-off", secs(60), &body)
}

fn hold_packages(role: &NodeRole) -> Step {
    let pkgs = quote_words(&role.held_packages);
    let body = format!(
        "apt-mark hold {pkgs}\n\
         held=$(mktemp)\n\
         apt-mark showhold > \"$held\"\n\
         for p in {pkgs}; do\n\
         \tif ! grep -qx -- \"$p\" \"$held\"; then\n\
         \t\techo \"package $p is not held\" >&2\n\
         \t\texit 1\n\
         \tfi\n\
         done\n\
         rm -f -- \"$held\"\n"
    );
    Step::new("hold-packages", secs(60), &body)
}

fn serial_console(distro: &Distro) -> Step {
    let body = match distro.family {
        Family::Debian | Family::Ubuntu => {
            let line = format!("GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX {SERIAL_CONSOLE_ARGS}\"");
            format!(
                "# grub-mkconfig (update-grub) reads /etc/default/grub.d/*.cfg after /etc/default/grub.\n\
                 # An image booted by a standalone GRUB with an embedded config (like the project's\n\
                 # Debian fixture) keeps its own kernel command line: this file changes nothing there.\n\
                 mkdir -p /etc/default/grub.d\n\
                 printf '%s\\n' '# nodeimg: serial console for every cloud' {line} \\\n\
                 \t> /etc/default/grub.d/60-nodeimg-console.cfg\n\
                 if command -v update-grub >/dev/null 2>&1 && [ -d /boot/grub ]; then\n\
                 \tupdate-grub\n\
                 else\n\
                 \techo 'update-grub or /boot/grub not found: the boot loader keeps its own configuration' >&2\n\
                 fi\n",
                line = quote(&line),
            )
        }
    };
    Step::new("serial-console", secs(180), &body)
}

fn ssh_host_keys() -> Step {
    // sshd must start even when cloud-init did not run (no datasource): generate missing
    // host keys first. The distro's own `ExecStartPre=/usr/sbin/sshd -t` fails without host
    // keys, so the list is reset and the check re-added after the generation.
    let body = "\
mkdir -p /etc/systemd/system/ssh.service.d
printf '%s\\n' '[Service]' 'ExecStartPre=' 'ExecStartPre=-/usr/bin/ssh-keygen -A' 'ExecStartPre=/usr/sbin/sshd -t' \\
\t> /etc/systemd/system/ssh.service.d/10-nodeimg-hostkeys.conf
systemctl daemon-reload
";
    Step::new("ssh-host-keys", secs(30), body)
}

fn provenance(role: &NodeRole) -> Step {
    let file = quote(PROVENANCE_FILE);
    let body = if role.provenance.is_empty() {
        format!(": > {file}\nchmod 0644 {file}\n")
    } else {
        let lines = role
            .provenance
            .iter()
            .map(|(k, v)| quote(&format!("{k}={v}")))
            .collect::<Vec<_>>()
            .join(" \\\n\t");
        format!("printf '%s\\n' \\\n\t{lines} > {file}\nchmod 0644 {file}\n")
    };
    Step::new("provenance", secs(10), &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debian12::DEBIAN_12;

    fn role() -> NodeRole {
        NodeRole {
            pause_image: "registry.k8s.io/pause:3.10".into(),
            held_packages: vec!["kubelet".into(), "kubeadm".into()],
            provenance: vec![("NODEIMG_VERSION".into(), "0.1.0".into())],
            extra_sysctls: vec![
                ("kernel.panic".into(), "30".into()),
                ("net.ipv4.tcp_congestion_control".into(), "bbr".into()),
            ],
        }
    }

    #[test]
    fn extra_sysctls_replace_or_append() {
        let s = role().sysctls();
        assert_eq!(s.len(), SYSCTLS.len() + 1);
        assert!(s.contains(&("kernel.panic".into(), "30".into())));
        assert!(!s.contains(&("kernel.panic".into(), "10".into())));
        assert_eq!(
            s.last().unwrap(),
            &("net.ipv4.tcp_congestion_control".into(), "bbr".into())
        );
    }

    #[test]
    fn step_names_in_order() {
        let steps = node_role_steps(&DEBIAN_12, &role()).unwrap();
        let names: Vec<_> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "kernel-modules",
                "sysctls",
                "swap-off",
                "containerd",
                "crictl-config",
                "kubelet",
                "time-sync",
                "auto-upgrades-off",
                "hold-packages",
                "serial-console",
                "ssh-host-keys",
                "provenance",
            ]
        );
        let mut no_hold = role();
        no_hold.held_packages.clear();
        let steps = node_role_steps(&DEBIAN_12, &no_hold).unwrap();
        assert!(steps.iter().all(|s| s.name != "hold-packages"));
    }

    #[test]
    fn bad_inputs_name_their_field() {
        type Mutation = fn(&mut NodeRole);
        let cases: [(Mutation, &str); 5] = [
            (
                |r| r.pause_image = "pause:3.10; reboot".into(),
                "pause image",
            ),
            (
                |r| r.held_packages.push("kubelet && reboot".into()),
                "held package",
            ),
            (
                |r| r.provenance.push(("A B".into(), "x".into())),
                "provenance key",
            ),
            (
                |r| r.provenance.push(("X".into(), "a\nb".into())),
                "provenance value",
            ),
            (
                |r| r.extra_sysctls.push(("k.x".into(), "$(id)".into())),
                "sysctl value",
            ),
        ];
        for (mutate, want) in cases {
            let mut r = role();
            mutate(&mut r);
            match node_role_steps(&DEBIAN_12, &r) {
                Err(Error::InvalidInput { field, .. }) => assert_eq!(field, want),
                other => panic!("{want}: {other:?}"),
            }
        }
        let mut dup = role();
        dup.provenance.push(("NODEIMG_VERSION".into(), "2".into()));
        assert!(matches!(
            dup.validate(),
            Err(Error::InvalidInput {
                field: "provenance key",
                ..
            })
        ));
    }
}
