//! Integration tests of the distros crate: registry, rendered scripts (parsed by a real
//! `/bin/sh -n`, and by shellcheck when it is installed), script content, and quoting through
//! a real shell. Nothing here runs a rendered script.

mod content;
mod quoting;
mod registry;
mod syntax;

use distros::{Distro, NodeRole, Step};

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
