//! Integration tests of the distros crate: registry, rendered scripts (every script distros
//! renders parsed by a real `/bin/sh -n`, and by shellcheck when it is installed: `syntax`),
//! script content, and quoting through a real shell. Nothing here runs a rendered script.

mod content;
mod quoting;
mod registry;
mod syntax;

use distros::{Check, Distro, Expectations, FirstBoot, NodeRole, Step};

/// A node role with every kind of parameter set.
pub fn sample_role() -> NodeRole {
    NodeRole {
        pause_image: "registry.k8s.io/pause:3.10".into(),
        held_packages: vec![
            "kubelet".into(),
            "kubeadm".into(),
            "kubectl".into(),
            "containerd".into(),
        ],
        provenance: vec![
            ("NODEIMG_VERSION".into(), "0.1.0".into()),
            ("SPEC_SHA256".into(), "ab'cd $(x) `y`".into()),
            ("KUBERNETES_VERSION".into(), "v1.20.2".into()),
        ],
        extra_sysctls: vec![("net.ipv4.tcp_congestion_control".into(), "bbr".into())],
    }
}

/// Every step of every distro, node role then seal, with the distro it belongs to.
pub fn every_step() -> Vec<(&'static Distro, Step)> {
    let mut out = Vec::new();
    for d in distros::all() {
        for s in distros::node_role_steps(d, &sample_role()).expect("node role renders") {
            out.push((*d, s));
        }
        for s in distros::seal_steps(d, "builder").expect("seal renders") {
            out.push((*d, s));
        }
    }
    out
}

/// The pins of a Kubernetes release, as the node checks see them.
pub fn expectations(kubernetes: &str, registry: &str, pause: &str, etcd: &str) -> Expectations {
    let pause_image = format!("{registry}/pause:{pause}");
    let mut images: Vec<String> = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
    ]
    .iter()
    .map(|c| format!("{registry}/{c}:{kubernetes}"))
    .collect();
    images.push(format!("{registry}/etcd:{etcd}"));
    images.push(pause_image.clone());
    let role = NodeRole {
        pause_image: pause_image.clone(),
        extra_sysctls: vec![("net.ipv4.tcp_rmem".into(), "4096 131072 6291456".into())],
        ..NodeRole::default()
    };
    Expectations {
        kubernetes: kubernetes.into(),
        containerd: "1.6.20".into(),
        runc: "1.1.5".into(),
        cni_plugins: "1.1.1".into(),
        crictl: "1.20.0-nodeimg-standin".into(),
        pause_image,
        images,
        sysctls: role.sysctls(),
        held_packages: vec!["kubelet".into(), "kubeadm".into(), "containerd".into()],
    }
}

/// The fixture's Kubernetes v1.20.2 (k8s.gcr.io) and a 1.30 release (registry.k8s.io).
pub fn releases() -> Vec<Expectations> {
    vec![
        expectations("v1.20.2", "k8s.gcr.io", "3.2", "3.4.13-0"),
        expectations("v1.30.2", "registry.k8s.io", "3.9", "3.5.12-0"),
    ]
}

/// Every check distros renders, with the distro it belongs to (`any` for those of none): node
/// checks for each release of [`releases`], first-boot checks, the no-outbound-network check
/// and a user check.
pub fn every_check() -> Vec<(&'static str, Check)> {
    let boot = FirstBoot {
        build_user: "builder".into(),
        old_machine_id: Some("0123456789abcdef0123456789abcdef".into()),
        old_host_key_fingerprints: vec![format!("SHA256:{}", "A".repeat(43))],
        ignorable_failed_units: vec!["x.service".into()],
    };
    let mut out = Vec::new();
    for d in distros::all() {
        for expect in releases() {
            for c in distros::node_checks(d, &expect).expect("node checks render") {
                out.push((d.id, c));
            }
        }
        for c in distros::first_boot_checks(d, &boot).expect("first-boot checks render") {
            out.push((d.id, c));
        }
    }
    out.push(("any", distros::no_outbound_network_check()));
    out.push((
        "any",
        distros::user_check("etc-hosts", "grep -q localhost /etc/hosts\n").unwrap(),
    ));
    out
}
