//! Tests of [`super::scripts`].

use super::scripts::*;
use distros::payload::{Install, PAYLOAD_LABEL, PayloadItem};

fn sh_parses(script: &str) {
    let out = child_process::Command::new("/bin/sh", std::time::Duration::from_secs(30))
        .arg("-n")
        .stdin_bytes(script.as_bytes().to_vec())
        .run_status()
        .unwrap();
    assert!(out.status.success(), "{}\n{script}", out.stderr_tail);
}

fn kubeadm() -> KubeadmReference {
    KubeadmReference {
        kubernetes_version: "v1.20.2".into(),
        image_repository: image_repository("k8s.gcr.io/kube-apiserver:v1.20.2")
            .unwrap()
            .into(),
        pause_image: "k8s.gcr.io/pause:3.2".into(),
        skip_phases: vec!["addon/coredns".into()],
    }
}

#[test]
fn the_kubeadm_script_is_plain_kubeadm_with_markers_in_order() {
    let s = kubeadm_script(&kubeadm());
    sh_parses(&s);
    assert!(s.contains(
        "kubeadm init --config /root/bench-kubeadm.yaml --ignore-preflight-errors=NumCPU,Mem,ImagePull --skip-phases='addon/coredns' </dev/null"
    ), "{s}");
    assert!(s.contains("imageRepository: k8s.gcr.io\n") && s.contains("cgroupDriver: systemd"));
    assert!(s.contains("--image='k8s.gcr.io/pause:3.2' --image-pull-policy=Never"));
    let positions: Vec<usize> = KUBEADM_MARKS
        .iter()
        .map(|m| s.find(&format!("{MARK} {m} ")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let none = kubeadm_script(&KubeadmReference {
        skip_phases: vec![],
        ..kubeadm()
    });
    assert!(!none.contains("--skip-phases"));
    assert_eq!(image_repository("pause"), None);
}

#[test]
fn the_provision_script_installs_every_item_and_runs_each_role_step() {
    let item = |file: &str, install| PayloadItem {
        file: file.into(),
        install,
    };
    let r = ProvisionReference {
        items: vec![
            item("deb/deb-containerd.deb", Install::Package { hold: true }),
            item("deb/deb-iptables.deb", Install::Package { hold: false }),
            item(
                "bin/kubeadm",
                Install::Copy {
                    dest: "/usr/bin/kubeadm".into(),
                    mode: 0o755,
                },
            ),
            item(
                "archive/cni.tar.gz",
                Install::Extract {
                    dest: "/opt/cni/bin".into(),
                },
            ),
            item(
                "image/pause.tar",
                Install::Image {
                    reference: "k8s.gcr.io/pause:3.2".into(),
                },
            ),
        ],
        cni_link_from: Some("/usr/lib/cni".into()),
        role_steps: vec![(
            "swap-off".into(),
            "#!/bin/sh\nset -eu\nswapoff -a\necho 'it''s off'\n".into(),
        )],
    };
    let s = provision_script(&r);
    sh_parses(&s);
    assert!(s.contains(&format!(
        "mount -o ro,noload LABEL={PAYLOAD_LABEL} /run/bench-payload"
    )));
    assert!(s.contains("dpkg -i --force-confold --force-unsafe-io '/run/bench-payload/deb/deb-containerd.deb' '/run/bench-payload/deb/deb-iptables.deb'\n"), "{s}");
    assert_eq!(s.matches("apt-mark hold").count(), 1);
    assert!(s.contains("install -D -m 0755 '/run/bench-payload/bin/kubeadm' '/usr/bin/kubeadm'"));
    assert!(s.contains("tar -xzf '/run/bench-payload/archive/cni.tar.gz' -C '/opt/cni/bin'"));
    assert!(s.contains("ctr -n k8s.io images import '/run/bench-payload/image/pause.tar'"));
    assert!(s.contains("for p in '/usr/lib/cni'/*"));
    assert!(s.contains("swapoff -a") && s.contains(&format!("{MARK} role:swap-off ")));
    assert!(
        s.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("echo \"@@bench end ")
    );
}

#[test]
fn markers_spans_and_segments() {
    let out = "noise\n@@bench init-start 100.50\n[init] lines\n@@bench init-done 190.25\n\
               @@bench broken\n@@bench pod-running 230.00 extra\n";
    let m = markers(out);
    assert_eq!(m.len(), 3);
    assert_eq!(between(&m, "init-start", "pod-running"), Some(129.5));
    assert_eq!(between(&m, "init-start", "node-ready"), None);
    let seg = segments(&m);
    assert_eq!(seg[0], ("init-done".to_owned(), 89.75));
    assert_eq!(seg.len(), 2);
}
