//! Concrete content of the rendered steps and checks.

use distros::{CheckKind, NodeRole, SEAL_MARKER, Step, node_role_steps, seal_steps};

use crate::{every_check, sample_role};

fn step<'a>(steps: &'a [Step], name: &str) -> &'a Step {
    steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

fn node(id: &str) -> Vec<Step> {
    node_role_steps(distros::find(id).unwrap(), &sample_role()).unwrap()
}

#[test]
fn every_script_is_strict_and_never_reads_stdin() {
    for (d, s) in crate::every_step() {
        assert!(
            s.script.starts_with(&format!(
                "#!/bin/sh\n# nodeimg step: {}\nset -eu\nexec </dev/null\n",
                s.name
            )),
            "{} {}",
            d.id,
            s.name
        );
        assert!(!s.script.contains("pipefail"), "{} {}", d.id, s.name);
        assert!(!s.script.contains("| head"), "{} {}", d.id, s.name);
        assert!(!s.timeout.is_zero());
    }
}

#[test]
fn containerd_step_pins_cgroup_driver_pause_image_and_mirrors() {
    let steps = node("debian-12");
    let s = &step(&steps, "containerd").script;
    assert!(s.contains("containerd config default > \"$new\""));
    assert!(s.contains("-e 's/SystemdCgroup = false/SystemdCgroup = true/'"));
    assert!(s.contains(
        "-e 's|sandbox_image = \"[^\"]*\"|sandbox_image = \"registry.k8s.io/pause:3.10\"|'"
    ));
    assert!(s.contains("'config_path = \"/etc/containerd/certs.d\"'"));
    assert!(s.contains("'SystemdCgroup = true'"));
    for line in [
        "'OOMScoreAdjust=-999'",
        "'TasksMax=infinity'",
        "'LimitNOFILE=1048576'",
    ] {
        assert!(s.contains(line), "{line}");
    }
    assert!(s.contains("/etc/systemd/system/containerd.service.d/10-nodeimg.conf"));
    assert!(s.ends_with("systemctl is-active --quiet containerd.service\n"));
}

#[test]
fn host_configuration_steps() {
    let steps = node("ubuntu-24.04");
    let m = &step(&steps, "kernel-modules").script;
    assert!(m.contains("printf '%s\\n' 'overlay' 'br_netfilter' > '/etc/modules-load.d/k8s.conf'"));
    assert!(m.contains("modprobe -- \"$m\""));

    let s = &step(&steps, "sysctls").script;
    assert!(s.contains("> '/etc/sysctl.d/99-kubernetes.conf'"));
    for kv in [
        "'net.bridge.bridge-nf-call-iptables = 1'",
        "'net.ipv4.ip_forward = 1'",
        "'net.ipv6.conf.all.disable_ipv6 = 0'",
        "'kernel.panic = 10'",
        "'fs.inotify.max_user_watches = 524288'",
        "'net.ipv4.tcp_congestion_control = bbr'",
    ] {
        assert!(s.contains(kv), "{kv}");
    }
    assert!(s.contains("\nsysctl --system\n"));
    assert!(s.contains("check 'vm.overcommit_memory' '1'\n"));

    let w = &step(&steps, "swap-off").script;
    assert!(w.contains("swapoff -a\n"));
    assert!(w.contains("systemctl mask swap.target\n"));
    assert!(w.contains("s/^/#/' /etc/fstab"));

    let c = &step(&steps, "crictl-config").script;
    assert!(c.contains("'runtime-endpoint: unix:///run/containerd/containerd.sock'"));
    assert!(c.contains("> /etc/crictl.yaml"));

    let k = &step(&steps, "kubelet").script;
    assert!(k.contains("printf '%s\\n' 'KUBELET_EXTRA_ARGS=' > /etc/default/kubelet"));
    assert!(k.contains("systemctl enable kubelet.service\n"));
    assert!(!k.contains("enable --now"));
    assert!(!k.contains("systemctl start"));

    let a = &step(&steps, "auto-upgrades-off").script;
    let units = "'apt-daily.timer' 'apt-daily-upgrade.timer' 'unattended-upgrades.service'";
    assert!(a.contains(&format!(
        "systemctl list-unit-files --no-legend --no-pager -- {units} 2>/dev/null"
    )));
    assert!(a.contains("| xargs -r systemctl disable --no-reload --now --\n"));
    assert!(a.contains(&format!(
        "systemctl mask --no-reload -- {units}\nsystemctl daemon-reload\n"
    )));
    assert!(a.contains("systemctl stop -- 'apt-daily.service' 'apt-daily-upgrade.service'"));

    let h = &step(&steps, "hold-packages").script;
    assert!(h.contains("apt-mark hold 'kubelet' 'kubeadm' 'kubectl' 'containerd'\n"));

    let g = &step(&steps, "serial-console").script;
    assert!(g.contains(
        "'GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX console=tty1 console=ttyS0,115200n8\"'"
    ));
    assert!(g.contains("/etc/default/grub.d/60-nodeimg-console.cfg"));
    assert!(g.contains("if command -v update-grub >/dev/null 2>&1 && [ -d /boot/grub ]; then"));
    assert!(g.contains("standalone GRUB"));

    let p = &step(&steps, "provenance").script;
    assert!(p.contains("'NODEIMG_VERSION=0.1.0'"));
    assert!(p.contains(r"'SPEC_SHA256=ab'\''cd $(x) `y`'"));
    assert!(p.contains("> '/etc/nodeimg-release'"));
}

#[test]
fn provenance_lines_round_trip_through_sh() {
    // Render the printf of the provenance step with its file redirected to stdout.
    let steps = node("debian-12");
    let p = &step(&steps, "provenance").script;
    let printf: String = p
        .lines()
        .skip_while(|l| !l.starts_with("printf"))
        .take_while(|l| !l.starts_with("chmod"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(" > '/etc/nodeimg-release'", "");
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&printf)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "NODEIMG_VERSION=0.1.0\nSPEC_SHA256=ab'cd $(x) `y`\nKUBERNETES_VERSION=v1.20.2\n"
    );
}

#[test]
fn time_sync_uses_the_distro_units() {
    let steps = node("debian-12");
    let t = &step(&steps, "time-sync").script;
    assert!(t.contains("for u in 'systemd-timesyncd.service' 'chrony.service'; do"));
}

#[test]
fn seal_part_a_covers_the_seal_list() {
    let d = distros::find("debian-12").unwrap();
    let steps = seal_steps(d, "builder").unwrap();
    let names: Vec<_> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "seal-apt",
            "seal-cloud-init",
            "seal-identity",
            "seal-scratch",
            "seal-detach"
        ]
    );
    let all: String = steps.iter().map(|s| s.script.as_str()).collect();
    for needle in [
        "apt-get clean\n",
        "rm -rf /var/lib/apt/lists/*\n",
        "cloud-init clean --logs --seed\n",
        "rm -rf -- /etc/systemd/network/10-cloud-init-*.network ",
        "truncate -s 0 /etc/machine-id\n",
        "rm -f /var/lib/dbus/machine-id\n",
        "rm -f /etc/ssh/ssh_host_*\n",
        "printf '%s\\n' 'debian' > /etc/hostname\n",
        "for d in /tmp /var/tmp; do\n",
        "\"$d/.bash_history\"",
        "rm -rf /var/crash/* /var/lib/systemd/coredump/*\n",
        "home=$(getent passwd 'builder' | cut -d: -f6)\n",
        "rm -f -- \"$home/.ssh/authorized_keys\" /etc/sudoers.d/90-cloud-init-users\n",
        "systemd-run --no-block '--unit=nodeimg-seal' '--description=nodeimg seal, part B' \\\n\t/bin/sh -c '",
    ] {
        assert!(all.contains(needle), "missing {needle:?}");
    }
    let ubuntu = seal_steps(distros::find("ubuntu-22.04").unwrap(), "builder").unwrap();
    let u: String = ubuntu.iter().map(|s| s.script.as_str()).collect();
    assert!(u.contains("printf '%s\\n' 'ubuntu' > /etc/hostname\n"));
    assert!(u.contains("/etc/netplan/50-cloud-init.yaml"));
}

#[test]
fn seal_part_b_terminates_deletes_trims_and_signals() {
    for d in distros::all() {
        let b = distros::seal_detached_script(d, "ops_1");
        let order = [
            "user='ops_1'",
            "loginctl terminate-user -- \"$user\"",
            "while pgrep -u \"$user\"",
            "userdel -r -- \"$user\"",
            "journalctl --relinquish-var",
            "/var/log/wtmp /var/log/btmp /var/log/lastlog",
            "fstrim -av",
            "echo SEAL-DONE > /dev/console",
        ];
        let mut at = 0;
        for needle in order {
            let pos = b[at..]
                .find(needle)
                .unwrap_or_else(|| panic!("{}: {needle:?} missing or out of order", d.id));
            at += pos + needle.len();
        }
        assert_eq!(&b[at..], "\n", "{}: marker is not last", d.id);
        assert_eq!(SEAL_MARKER, "SEAL-DONE");
    }
}

#[test]
fn invalid_role_is_refused_before_rendering() {
    let role = NodeRole {
        pause_image: "registry.k8s.io/pause:3.10'; reboot; '".into(),
        ..sample_role()
    };
    let err = node_role_steps(distros::find("debian-12").unwrap(), &role).unwrap_err();
    assert!(err.to_string().starts_with("invalid pause image "), "{err}");
}

/// Every check starts with its header and the remote command names it.
#[test]
fn header_prelude_and_remote_command() {
    for (_, c) in every_check() {
        let header = format!("#!/bin/sh\n# nodeimg check: {}\n", c.name);
        assert!(c.script.starts_with(&header), "{}", c.name);
        assert!(c.script.contains("exec </dev/null\n"), "{}", c.name);
        assert!(c.script.ends_with('\n'));
        assert!(!c.timeout.is_zero());
        let rc = c.remote_command();
        assert!(
            rc.starts_with("sudo -n /bin/sh -c '#!/bin/sh\n"),
            "{}",
            c.name
        );
        assert!(rc.ends_with(&format!(" 'nodeimg-check-{}'", c.name)));
        if c.kind != CheckKind::User {
            assert!(
                c.script
                    .contains("set -eu\nexec </dev/null\n# fail MESSAGE")
            );
            assert_eq!(
                c.script.contains("R=${NODEIMG_CHECK_ROOT:-}\n"),
                c.script.contains("\"$R"),
                "{}",
                c.name
            );
        }
    }
}
