//! Node checks, each kind passing and failing in the sandbox.

use super::sandbox::{KUBECTL_120, Sandbox, require_tools};
use super::{IMAGES, check, expectations, healthy, images_listing, node_checks};
use crate::checks::{CheckKind, Expectations};
use crate::debian12::DEBIAN_12;

fn run_named(sb: &Sandbox, name: &str) -> super::sandbox::Run {
    sb.run(&check(&node_checks(), name))
}

fn pass(sb: &Sandbox, name: &str) {
    sb.pass(&check(&node_checks(), name));
}

fn fail(sb: &Sandbox, name: &str, needles: &[&str]) -> String {
    sb.fail(&check(&node_checks(), name), needles)
}

#[test]
fn every_node_check_passes_on_a_healthy_node() {
    let sb = healthy();
    let checks = node_checks();
    for c in &checks {
        sb.pass(c);
    }
    // the container run cleaned up after itself
    assert_eq!(sb.get("containers"), "");
    assert_eq!(sb.get("tasks"), "");
    assert!(sb.get("runs").starts_with("nodeimg-check-run-"));
}

#[test]
fn versions_fail_with_found_and_expected() {
    let sb = healthy();
    sb.set(
        "containerd.version",
        "containerd github.com/containerd/containerd 1.6.19~ds1 1.6.19~ds1-1\n",
    );
    let line = fail(&sb, "version-containerd", &[]);
    assert_eq!(
        line,
        "containerd --version says 1.6.19~ds1, expected 1.6.20"
    );
    // an upstream binary prints v1.6.20 and its commit
    sb.set(
        "containerd.version",
        "containerd github.com/containerd/containerd v1.6.20 2806fc1057397dbaeefbea0e4e17bddfbd388f38\n",
    );
    pass(&sb, "version-containerd");
    // 1.6.2 is not 1.6.20, and 1.6.20 is not 1.6.2
    sb.set(
        "containerd.version",
        "containerd github.com/containerd/containerd v1.6.2 0\n",
    );
    fail(
        &sb,
        "version-containerd",
        &["says v1.6.2", "expected 1.6.20"],
    );

    sb.simple(
        "runc",
        "--version",
        "runc version 1.1.4\nspec: 1.0.2-dev",
        0,
    );
    fail(
        &sb,
        "version-runc",
        &["runc --version says 1.1.4", "expected 1.1.5"],
    );
    sb.simple("kubeadm", "version -o short", "v1.20.1", 0);
    fail(
        &sb,
        "version-kubeadm",
        &["kubeadm version -o short says v1.20.1", "expected v1.20.2"],
    );
    sb.simple("kubelet", "--version", "Kubernetes v1.21.0", 0);
    fail(
        &sb,
        "version-kubelet",
        &["says v1.21.0", "expected v1.20.2"],
    );
    sb.simple(
        "kubectl",
        "version --client",
        &KUBECTL_120.replace("v1.20.2", "v1.20.3"),
        0,
    );
    fail(
        &sb,
        "version-kubectl",
        &["kubectl version --client says v1.20.3", "expected v1.20.2"],
    );
}

#[test]
fn version_tools_that_fail_or_are_missing_fail_the_check() {
    let sb = healthy();
    sb.remove_tool("kubelet");
    fail(
        &sb,
        "version-kubelet",
        &["kubelet --version failed", "not found", "expected v1.20.2"],
    );
    sb.simple("kubeadm", "version -o short", "boom", 3);
    fail(
        &sb,
        "version-kubeadm",
        &["kubeadm version -o short failed: boom", "expected v1.20.2"],
    );
    sb.simple("runc", "--version", "something else", 0);
    fail(
        &sb,
        "version-runc",
        &["printed no version (something else)", "expected 1.1.5"],
    );
}

#[test]
fn kubectl_old_and_new_formats() {
    let sb = healthy();
    pass(&sb, "version-kubectl");
    let new = "Client Version: v1.20.2\nKustomize Version: v5.0.4-0.20230601165947-6ce0bf390ce3";
    sb.simple("kubectl", "version --client", new, 0);
    pass(&sb, "version-kubectl");
    sb.simple(
        "kubectl",
        "version --client",
        &new.replace("v1.20.2", "v1.30.2"),
        0,
    );
    fail(&sb, "version-kubectl", &["says v1.30.2, expected v1.20.2"]);
}

#[test]
fn cni_from_opt_cni_bin_or_the_distro_package() {
    let sb = healthy();
    pass(&sb, "version-cni-plugins");
    sb.exe(
        "/opt/cni/bin/bridge",
        b"#!/bin/sh\necho 'CNI bridge plugin v1.1.0' >&2\n",
    );
    fail(
        &sb,
        "version-cni-plugins",
        &["/opt/cni/bin/bridge says v1.1.0, expected 1.1.1"],
    );
    // an upstream-dir plugin without a version is not good enough
    sb.exe(
        "/opt/cni/bin/bridge",
        b"#!/bin/sh\necho 'CNI bridge plugin version unknown' >&2\n",
    );
    fail(
        &sb,
        "version-cni-plugins",
        &["/opt/cni/bin/bridge says version unknown, expected 1.1.1"],
    );
    sb.remove("/opt/cni");
    fail(
        &sb,
        "version-cni-plugins",
        &[
            "no CNI bridge plugin in /opt/cni/bin or /usr/lib/cni",
            "expected CNI plugins 1.1.1",
        ],
    );
    // Debian's build says "version unknown": the package version decides
    sb.exe("/usr/lib/cni/bridge", b"#!/bin/sh\necho 'CNI bridge plugin version unknown' >&2\necho 'CNI protocol versions supported: 0.1.0, 1.0.0' >&2\n");
    pass(&sb, "version-cni-plugins");
    sb.set("dpkg/containernetworking-plugins", "1.1.0+ds1-3");
    fail(
        &sb,
        "version-cni-plugins",
        &["dpkg-query says containernetworking-plugins 1.1.0+ds1-3, expected 1.1.1"],
    );
    sb.set("dpkg/containernetworking-plugins", "1:1.1.1-1");
    pass(&sb, "version-cni-plugins");
    // /opt/cni/bin linked to the distro's plugins (what provisioning does): the package decides
    sb.mkdir("/opt/cni/bin");
    std::os::unix::fs::symlink(
        sb.root().join("usr/lib/cni/bridge"),
        sb.root().join("opt/cni/bin/bridge"),
    )
    .unwrap();
    pass(&sb, "version-cni-plugins");
    sb.set("dpkg/containernetworking-plugins", "1.1.0+ds1-3");
    fail(
        &sb,
        "version-cni-plugins",
        &["dpkg-query says containernetworking-plugins 1.1.0+ds1-3, expected 1.1.1"],
    );
    sb.remove("/opt/cni");
    sb.set("dpkg/containernetworking-plugins", "1:1.1.1-1");
    sb.set("dpkg/containernetworking-plugins", "1.1.10-1");
    fail(&sb, "version-cni-plugins", &["1.1.10-1, expected 1.1.1"]);
    sb.unset("dpkg/containernetworking-plugins");
    fail(
        &sb,
        "version-cni-plugins",
        &[
            "dpkg-query knows no containernetworking-plugins",
            "expected 1.1.1",
        ],
    );
}

#[test]
fn cni_with_the_real_debian_bridge_binary() {
    let real = std::path::Path::new("/usr/lib/cni/bridge");
    if !real.exists() {
        assert!(!require_tools(), "/usr/lib/cni/bridge missing");
        println!(
            "SKIP: /usr/lib/cni/bridge not installed (apt-get install containernetworking-plugins)"
        );
        return;
    }
    let sb = healthy();
    sb.remove("/opt/cni");
    sb.exe("/usr/lib/cni/bridge", &std::fs::read(real).unwrap());
    pass(&sb, "version-cni-plugins");
    sb.set("dpkg/containernetworking-plugins", "1.2.0+ds1-1");
    fail(&sb, "version-cni-plugins", &["1.2.0+ds1-1, expected 1.1.1"]);
}

#[test]
fn crictl_standin_and_cri_tools() {
    let sb = healthy();
    pass(&sb, "version-crictl");
    // a real crictl where the stand-in is pinned
    sb.simple("crictl", "--version", "crictl version v1.20.0", 0);
    fail(
        &sb,
        "version-crictl",
        &["crictl --version says v1.20.0, expected 0.1.0-nodeimg-standin"],
    );
    let mut e = expectations();
    e.crictl = "1.20.0".into();
    let checks = crate::checks::node_checks(&DEBIAN_12, &e).unwrap();
    sb.pass(&check(&checks, "version-crictl"));
    sb.simple("crictl", "--version", "crictl version v1.21.0", 0);
    sb.fail(
        &check(&checks, "version-crictl"),
        &["crictl --version says v1.21.0, expected 1.20.0"],
    );
    // the stand-in where cri-tools is pinned
    sb.raw_stub("crictl", &super::sandbox::crictl_standin());
    sb.fail(
        &check(&checks, "version-crictl"),
        &["crictl --version says 0.1.0-nodeimg-standin, expected 1.20.0"],
    );
}

#[test]
fn services() {
    let sb = healthy();
    sb.unit("containerd.service", Some("enabled"), "failed");
    fail(
        &sb,
        "service-containerd.service",
        &["containerd.service is enabled and failed, expected enabled and active"],
    );
    sb.unit("containerd.service", Some("disabled"), "active");
    fail(
        &sb,
        "service-containerd.service",
        &["is disabled and active, expected enabled and active"],
    );
    sb.unit("containerd.service", None, "inactive");
    fail(
        &sb,
        "service-containerd.service",
        &["is absent and inactive"],
    );

    sb.unit("kubelet.service", Some("enabled"), "active");
    fail(
        &sb,
        "service-kubelet.service",
        &[
            "kubelet.service is enabled and active (15 samples 1 s apart), expected enabled and not active",
        ],
    );
    // crash-looping: caught once while active, then activating (auto-restart)
    sb.unit("kubelet.service", Some("enabled"), "active\nactivating\n");
    pass(&sb, "service-kubelet.service");
    sb.unit("kubelet.service", Some("disabled"), "inactive");
    fail(
        &sb,
        "service-kubelet.service",
        &["kubelet.service is disabled, expected enabled"],
    );
    sb.unit("kubelet.service", Some("enabled"), "inactive");
    sb.file(
        "/var/lib/kubelet/config.yaml",
        "kind: KubeletConfiguration\n",
    );
    fail(
        &sb,
        "service-kubelet.service",
        &["/var/lib/kubelet/config.yaml", "expected none"],
    );

    for (enabled, active, ok) in [
        (Some("masked"), "inactive", true),
        (Some("disabled"), "inactive", true),
        (None, "inactive", true),
        (Some("not-found"), "inactive", true),
        (Some("enabled"), "active", false),
        (Some("static"), "inactive", false),
        (Some("masked"), "active", false),
    ] {
        sb.unit("apt-daily.timer", enabled, active);
        let r = run_named(&sb, "service-off-apt-daily.timer");
        assert_eq!(r.code == Some(0), ok, "{enabled:?} {active}: {r:?}");
    }
    sb.unit("unattended-upgrades.service", Some("enabled"), "active");
    fail(
        &sb,
        "service-off-unattended-upgrades.service",
        &["unattended-upgrades.service is enabled, expected disabled, masked or absent"],
    );
    sb.unit("unattended-upgrades.service", Some("masked"), "active");
    fail(
        &sb,
        "service-off-unattended-upgrades.service",
        &["is masked but active, expected not active"],
    );
}

#[test]
fn sysctls() {
    let sb = healthy();
    sb.file("/proc/sys/net/ipv4/ip_forward", "0\n");
    fail(
        &sb,
        "sysctl-net.ipv4.ip_forward",
        &["sysctl net.ipv4.ip_forward is 0, expected 1"],
    );
    sb.remove("/proc/sys/net/bridge/bridge-nf-call-iptables");
    fail(
        &sb,
        "sysctl-net.bridge.bridge-nf-call-iptables",
        &[
            "bridge-nf-call-iptables: No such file or directory",
            "expected 1",
        ],
    );
    sb.file("/proc/sys/net/ipv4/tcp_rmem", "4096\t87380\t6291456\n");
    fail(
        &sb,
        "sysctl-net.ipv4.tcp_rmem",
        &["is 4096 87380 6291456, expected 4096 131072 6291456"],
    );
}

#[test]
fn modules() {
    let sb = healthy();
    sb.remove("/sys/module/br_netfilter");
    fail(
        &sb,
        "module-br_netfilter",
        &[
            "kernel module br_netfilter is not loaded (no /sys/module/br_netfilter), expected loaded",
        ],
    );
    pass(&sb, "module-overlay");
    sb.file("/etc/modules-load.d/k8s.conf", "# overlay\nbr_netfilter\n");
    fail(
        &sb,
        "module-overlay",
        &["kernel module overlay is not listed in /etc/modules-load.d/k8s.conf, expected listed"],
    );
    sb.remove("/etc/modules-load.d/k8s.conf");
    fail(
        &sb,
        "module-overlay",
        &["/etc/modules-load.d/k8s.conf is missing, expected it to list overlay"],
    );
}

#[test]
fn swap() {
    let sb = healthy();
    sb.set("swaps", "/swapfile\n");
    fail(
        &sb,
        "swap-off",
        &["swap is active on /swapfile, expected none"],
    );
    sb.unset("swaps");
    sb.file(
        "/etc/fstab",
        "PARTUUID=1 / ext4 rw 0 1\n/dev/vda2 none swap sw 0 0\n  /swap.img none swap sw 0 0\n",
    );
    fail(
        &sb,
        "swap-off",
        &["/etc/fstab has swap entries /dev/vda2 /swap.img, expected none"],
    );
    sb.remove("/etc/fstab");
    pass(&sb, "swap-off");
    sb.remove_tool("swapon");
    fail(
        &sb,
        "swap-off",
        &["swapon --show failed", "expected no active swap"],
    );
}

#[test]
fn systemd_cgroup_from_the_dump() {
    let sb = healthy();
    let dump = super::sandbox::CONFIG_DUMP;
    sb.set(
        "config-dump.toml",
        &dump.replace("SystemdCgroup = true", "SystemdCgroup = false"),
    );
    fail(
        &sb,
        "containerd-systemd-cgroup",
        &[
            "SystemdCgroup = false in [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options], expected true",
        ],
    );
    // only in another section (the file has it, the runc options do not)
    sb.set("config-dump.toml", &dump.replace("            SystemdCgroup = true\n", "").replace(
        "[plugins.\"io.containerd.grpc.v1.cri\".containerd.default_runtime.options]\n",
        "[plugins.\"io.containerd.grpc.v1.cri\".containerd.default_runtime.options]\n          SystemdCgroup = true\n",
    ));
    fail(
        &sb,
        "containerd-systemd-cgroup",
        &["SystemdCgroup = (not set)", "expected true"],
    );
    sb.set(
        "config-dump.toml",
        &dump.replace(
            "default_runtime_name = \"runc\"",
            "default_runtime_name = \"crun\"",
        ),
    );
    fail(
        &sb,
        "containerd-systemd-cgroup",
        &["default_runtime_name = crun, expected runc"],
    );
    sb.set(
        "containerd.dump-fails",
        "containerd: failed to load TOML: /etc/containerd/config.toml: (1, 1): parsing error\n",
    );
    fail(
        &sb,
        "containerd-systemd-cgroup",
        &["containerd config dump failed", "parsing error"],
    );
}

#[test]
fn pause_image() {
    let sb = healthy();
    let dump = super::sandbox::CONFIG_DUMP;
    sb.set(
        "config-dump.toml",
        &dump.replace("k8s.gcr.io/pause:3.2", "registry.k8s.io/pause:3.6"),
    );
    fail(
        &sb,
        "pause-image",
        &["sandbox_image = registry.k8s.io/pause:3.6, expected k8s.gcr.io/pause:3.2"],
    );
    sb.set("config-dump.toml", dump);
    let without: Vec<&str> = IMAGES
        .iter()
        .copied()
        .filter(|i| !i.contains("pause"))
        .collect();
    sb.set("images", &images_listing(&without));
    fail(
        &sb,
        "pause-image",
        &[
            "pause image k8s.gcr.io/pause:3.2 is not in containerd's k8s.io namespace, expected present",
        ],
    );
    sb.set(
        "images-fail",
        "ctr: failed to dial \"/run/containerd/containerd.sock\": connection refused\n",
    );
    fail(
        &sb,
        "pause-image",
        &["ctr -n k8s.io images ls -q failed", "connection refused"],
    );
}

#[test]
fn images_exactly_the_pinned_ones() {
    let sb = healthy();
    let mut listed: Vec<&str> = IMAGES
        .iter()
        .copied()
        .filter(|i| !i.contains("etcd"))
        .collect();
    listed.push("docker.io/library/busybox:latest");
    sb.set("images", &images_listing(&listed));
    let line = fail(&sb, "images", &[]);
    assert!(line.starts_with("images in k8s.io: missing: k8s.gcr.io/etcd:3.4.13-0, unexpected: docker.io/library/busybox:latest; expected exactly k8s.gcr.io/kube-apiserver:v1.20.2 "), "{line}");
    // only digest-only extra names: fine
    sb.set(
        "images",
        &format!("{}sha256:{}\n", images_listing(IMAGES), "f".repeat(64)),
    );
    pass(&sb, "images");
    sb.set("images", &images_listing(&IMAGES[1..]));
    fail(
        &sb,
        "images",
        &["missing: k8s.gcr.io/kube-apiserver:v1.20.2, unexpected: none"],
    );
}

#[test]
fn container_run() {
    let sb = healthy();
    sb.set("task-status", "STOPPED");
    fail(
        &sb,
        "container-run",
        &["from k8s.gcr.io/pause:3.2 is STOPPED after 10 s, expected RUNNING"],
    );
    assert_eq!(sb.get("containers"), "", "cleaned up after a failure");
    assert_eq!(sb.get("tasks"), "");
    sb.unset("task-status");
    sb.set("images", &images_listing(&IMAGES[..5]));
    fail(
        &sb,
        "container-run",
        &[
            "ctr run of k8s.gcr.io/pause:3.2 failed",
            "not found",
            "expected a running container",
        ],
    );
    sb.set("images", &images_listing(IMAGES));
    sb.set("rm-fails", "");
    fail(
        &sb,
        "container-run",
        &["is still there after ctr containers rm, expected removed"],
    );
}

#[test]
fn crictl() {
    let sb = healthy();
    sb.file(
        "/etc/crictl.yaml",
        "runtime-endpoint: unix:///var/run/dockershim.sock\n",
    );
    fail(
        &sb,
        "crictl",
        &[
            "/etc/crictl.yaml has runtime-endpoint: unix:///var/run/dockershim.sock, expected unix:///run/containerd/containerd.sock",
        ],
    );
    sb.file(
        "/etc/crictl.yaml",
        "runtime-endpoint: \"unix:///run/containerd/containerd.sock\"\n",
    );
    pass(&sb, "crictl");
    sb.remove("/etc/crictl.yaml");
    fail(
        &sb,
        "crictl",
        &[
            "/etc/crictl.yaml is missing, expected runtime-endpoint: unix:///run/containerd/containerd.sock",
        ],
    );
    sb.file("/etc/crictl.yaml", super::sandbox::CRICTL_YAML);
    sb.set(
        "containers-fail",
        "ctr: failed to dial \"/run/containerd/containerd.sock\"\n",
    );
    fail(
        &sb,
        "crictl",
        &["crictl ps failed", "failed to dial", "expected success"],
    );
}

#[test]
fn held_packages() {
    let sb = healthy();
    sb.set("held", "containerd\nkubectl\n");
    fail(
        &sb,
        "held-packages",
        &[
            "not held: kubelet kubeadm (apt-mark showhold lists containerd kubectl), expected held: kubelet kubeadm kubectl containerd",
        ],
    );
    sb.set("held", "");
    fail(&sb, "held-packages", &["lists nothing"]);
    let mut e = expectations();
    e.held_packages.clear();
    let checks = crate::checks::node_checks(&DEBIAN_12, &e).unwrap();
    assert!(checks.iter().all(|c| c.kind != CheckKind::Held));
}

#[test]
fn provenance() {
    let sb = healthy();
    sb.file(
        "/etc/nodeimg-release",
        "NODEIMG_VERSION=0.1.0\nnot a line\n",
    );
    fail(
        &sb,
        "provenance",
        &["/etc/nodeimg-release line 2 is not KEY=value"],
    );
    sb.remove("/etc/nodeimg-release");
    fail(
        &sb,
        "provenance",
        &["/etc/nodeimg-release is missing, expected the provenance file"],
    );
}

#[test]
fn every_kind_of_node_check_is_rendered() {
    let checks = node_checks();
    for kind in [
        CheckKind::Version,
        CheckKind::Service,
        CheckKind::Sysctl,
        CheckKind::Module,
        CheckKind::Swap,
        CheckKind::SystemdCgroup,
        CheckKind::Pause,
        CheckKind::Crictl,
        CheckKind::Images,
        CheckKind::ContainerRun,
        CheckKind::Held,
        CheckKind::Provenance,
    ] {
        assert!(checks.iter().any(|c| c.kind == kind), "{kind:?}");
    }
    let versions: Vec<&str> = checks
        .iter()
        .filter(|c| c.kind == CheckKind::Version)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        versions,
        [
            "version-containerd",
            "version-runc",
            "version-kubeadm",
            "version-kubelet",
            "version-kubectl",
            "version-cni-plugins",
            "version-crictl"
        ]
    );
    let e = Expectations { ..expectations() };
    assert_eq!(
        checks
            .iter()
            .filter(|c| c.kind == CheckKind::Sysctl)
            .count(),
        e.sysctls.len()
    );
}
