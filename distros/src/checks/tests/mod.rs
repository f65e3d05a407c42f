//! Every check is rendered and run under the real `/bin/sh` in a [`sandbox::Sandbox`]; each
//! kind is shown passing and failing, and a failure names what was found and what was
//! expected.

mod boot;
mod node;
mod render;
mod sandbox;

use sandbox::{
    CONFIG_DUMP, CONTAINERD_VERSION, CRICTL_YAML, CTR_VERSION, KUBECTL_120, RUNC_VERSION, Sandbox,
};

use crate::checks::{Check, Expectations};
use crate::debian12::DEBIAN_12;
use crate::node_role::NodeRole;

/// The control-plane images of kubeadm v1.20.2 as the fixture payload imports them.
pub const IMAGES: &[&str] = &[
    "k8s.gcr.io/kube-apiserver:v1.20.2",
    "k8s.gcr.io/kube-controller-manager:v1.20.2",
    "k8s.gcr.io/kube-scheduler:v1.20.2",
    "k8s.gcr.io/kube-proxy:v1.20.2",
    "k8s.gcr.io/etcd:3.4.13-0",
    "k8s.gcr.io/pause:3.2",
];

/// The pins of the Debian 12 fixture build.
pub fn expectations() -> Expectations {
    let role = NodeRole {
        extra_sysctls: vec![("net.ipv4.tcp_rmem".into(), "4096 131072 6291456".into())],
        ..NodeRole::default()
    };
    Expectations {
        kubernetes: "v1.20.2".into(),
        containerd: "1.6.20".into(),
        runc: "1.1.5".into(),
        cni_plugins: "1.1.1".into(),
        // what the fixture payload's crictl stand-in (installed below) reports
        crictl: "0.1.0-nodeimg-standin".into(),
        pause_image: "k8s.gcr.io/pause:3.2".into(),
        images: IMAGES.iter().map(|s| (*s).to_owned()).collect(),
        sysctls: role.sysctls(),
        held_packages: vec![
            "kubelet".into(),
            "kubeadm".into(),
            "kubectl".into(),
            "containerd".into(),
        ],
    }
}

pub fn node_checks() -> Vec<Check> {
    crate::checks::node_checks(&DEBIAN_12, &expectations()).unwrap()
}

pub fn check(checks: &[Check], name: &str) -> Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}"))
        .clone()
}

/// `ctr -n k8s.io images ls -q` after importing the payload: each reference, and each image's
/// config digest as a digest-only name (as real ctr lists them).
pub fn images_listing(refs: &[&str]) -> String {
    let mut out = String::new();
    for (i, r) in refs.iter().enumerate() {
        out.push_str(r);
        out.push('\n');
        out.push_str(&format!("sha256:{i:064x}\n"));
    }
    out
}

/// A sandbox where every node check passes: the Debian 12 fixture node.
pub fn healthy() -> Sandbox {
    let sb = Sandbox::bare();
    sandbox::install_stubs(&sb);
    sb.set("containerd.version", &format!("{CONTAINERD_VERSION}\n"));
    sb.set("config-dump.toml", CONFIG_DUMP);
    sb.set("ctr.version", &format!("{CTR_VERSION}\n"));
    sb.set("images", &images_listing(IMAGES));
    sb.simple("runc", "--version", RUNC_VERSION, 0);
    sb.simple("kubeadm", "version -o short", "v1.20.2", 0);
    sb.simple("kubelet", "--version", "Kubernetes v1.20.2", 0);
    sb.simple("kubectl", "version --client", KUBECTL_120, 0);
    sb.raw_stub("crictl", &sandbox::crictl_standin());
    // upstream CNI plugins in /opt/cni/bin print their version on stderr
    sb.exe(
        "/opt/cni/bin/bridge",
        b"#!/bin/sh\necho 'CNI bridge plugin v1.1.1' >&2\necho 'CNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0' >&2\n",
    );
    sb.set("dpkg/containernetworking-plugins", "1.1.1+ds1-3+b5");
    sb.unit("containerd.service", Some("enabled"), "active");
    sb.unit("kubelet.service", Some("enabled"), "inactive");
    sb.unit("apt-daily.timer", Some("masked"), "inactive");
    sb.unit("apt-daily-upgrade.timer", Some("masked"), "inactive");
    sb.unit("unattended-upgrades.service", None, "inactive");
    for (k, v) in expectations().sysctls {
        // the kernel separates the fields of a multi-value sysctl with tabs
        sb.file(
            &format!("/proc/sys/{}", k.replace('.', "/")),
            &format!("{}\n", v.replace(' ', "\t")),
        );
    }
    sb.mkdir("/sys/module/overlay");
    sb.mkdir("/sys/module/br_netfilter");
    sb.file("/etc/modules-load.d/k8s.conf", "overlay\nbr_netfilter\n");
    sb.file(
        "/etc/fstab",
        "# /etc/fstab: static file system information\n\
         PARTUUID=5d3c5a1e-01 / ext4 rw,discard,errors=remount-ro,x-systemd.growfs 0 1\n\
         PARTUUID=5d3c5a1e-0f /boot/efi vfat defaults 0 0\n\
         #/swapfile none swap sw 0 0\n",
    );
    sb.file("/etc/crictl.yaml", CRICTL_YAML);
    sb.set("held", "containerd\nkubeadm\nkubectl\nkubelet\n");
    sb.file(
        "/etc/nodeimg-release",
        "NODEIMG_VERSION=0.1.0\nKUBERNETES_VERSION=v1.20.2\n",
    );
    sb
}
