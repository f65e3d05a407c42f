//! The by-hand reference scripts, written for the bench independently of the build's own
//! steps (only the node role's commands are taken from `distros`, as the issue allows), and
//! the marker lines they print: `@@bench NAME UPTIME`, the guest's `/proc/uptime` at each
//! point, so the host's SSH and scheduling add nothing to what is measured.

use std::fmt::Write as _;

use distros::payload::{Install, PAYLOAD_LABEL, PayloadItem};
use distros::shell::quote;

/// What starts a marker line.
pub const MARK: &str = "@@bench";

/// The guest's kubeadm markers, in order: init start, init done, healthz ok, node Ready, pod
/// Running.
pub const KUBEADM_MARKS: [&str; 5] = [
    "init-start",
    "init-done",
    "healthz-ok",
    "node-ready",
    "pod-running",
];

/// The shell line printing marker `name`.
fn mark(name: &str) -> String {
    format!("echo \"{MARK} {name} $(cut -d' ' -f1 /proc/uptime)\"\n")
}

/// `wait_for WHAT SECONDS CMD…`: runs CMD every second until it succeeds, or fails the script.
const WAIT_FOR: &str = "wait_for() {\n\
    \twhat=$1; limit=$2; shift 2\n\
    \tend=$(( $(date +%s) + limit ))\n\
    \tuntil \"$@\" >/dev/null 2>&1; do\n\
    \t\tif [ \"$(date +%s)\" -ge \"$end\" ]; then echo \"bench: $what not within ${limit}s\" >&2; exit 1; fi\n\
    \t\tsleep 1\n\
    \tdone\n\
    }\n";

/// The by-hand `kubeadm init` on a golden disk.
#[derive(Debug, Clone)]
pub struct KubeadmReference {
    /// `v1.20.2`.
    pub kubernetes_version: String,
    /// The registry and path the control-plane images are tagged with (`k8s.gcr.io`).
    pub image_repository: String,
    /// The pause image the pod runs.
    pub pause_image: String,
    /// kubeadm phases to skip (`addon/coredns`).
    pub skip_phases: Vec<String>,
}

/// The image repository of an image reference: everything before its last `/`
/// (`k8s.gcr.io/kube-apiserver:v1.20.2` → `k8s.gcr.io`).
pub fn image_repository(reference: &str) -> Option<&str> {
    reference.rsplit_once('/').map(|(repo, _)| repo)
}

/// The root script of the by-hand kubeadm reference: network and hosts entry, a bridge CNI,
/// a minimal config, a plain `kubeadm init`, then healthz, node Ready and a pause pod Running.
pub fn kubeadm_script(r: &KubeadmReference) -> String {
    let mut s = String::from("#!/bin/sh\nset -eu\nexport KUBECONFIG=/etc/kubernetes/admin.conf\n");
    s.push_str(WAIT_FOR);
    s.push_str(
        "ip route show default | grep -q . || ip route add default via 10.0.2.2\n\
         h=$(hostname)\n\
         grep -qw \"$h\" /etc/hosts || echo \"10.0.2.15 $h\" >> /etc/hosts\n\
         mkdir -p /etc/cni/net.d\n\
         cat > /etc/cni/net.d/10-bench-bridge.conflist <<'EOF'\n\
         {\"cniVersion\": \"0.4.0\", \"name\": \"bench-bridge\", \"plugins\": [{\"type\": \"bridge\", \
         \"bridge\": \"cni0\", \"isGateway\": true, \"ipMasq\": true, \"hairpinMode\": true, \
         \"ipam\": {\"type\": \"host-local\", \"ranges\": [[{\"subnet\": \"10.244.0.0/24\"}]], \
         \"routes\": [{\"dst\": \"0.0.0.0/0\"}]}}]}\n\
         EOF\n",
    );
    let _ = write!(
        s,
        "cat > /root/bench-kubeadm.yaml <<'EOF'\n\
         apiVersion: kubeadm.k8s.io/v1beta2\n\
         kind: InitConfiguration\n\
         localAPIEndpoint: {{advertiseAddress: 10.0.2.15, bindPort: 6443}}\n\
         nodeRegistration:\n  criSocket: /run/containerd/containerd.sock\n  kubeletExtraArgs: {{node-ip: 10.0.2.15}}\n\
         ---\n\
         apiVersion: kubeadm.k8s.io/v1beta2\n\
         kind: ClusterConfiguration\n\
         kubernetesVersion: {version}\n\
         imageRepository: {repo}\n\
         networking: {{podSubnet: 10.244.0.0/16, serviceSubnet: 10.96.0.0/12}}\n\
         ---\n\
         apiVersion: kubelet.config.k8s.io/v1beta1\n\
         kind: KubeletConfiguration\n\
         cgroupDriver: systemd\n\
         EOF\n",
        version = r.kubernetes_version,
        repo = r.image_repository,
    );
    let skip = if r.skip_phases.is_empty() {
        String::new()
    } else {
        format!(" --skip-phases={}", quote(&r.skip_phases.join(",")))
    };
    s.push_str(&mark(KUBEADM_MARKS[0]));
    let _ = writeln!(
        s,
        "kubeadm init --config /root/bench-kubeadm.yaml --ignore-preflight-errors=NumCPU,Mem,ImagePull{skip} </dev/null"
    );
    s.push_str(&mark(KUBEADM_MARKS[1]));
    s.push_str(
        "wait_for \"the API server's /healthz\" 600 sh -c 'kubectl get --raw /healthz | grep -qx ok'\n",
    );
    s.push_str(&mark(KUBEADM_MARKS[2]));
    s.push_str(
        "wait_for 'the node object' 600 sh -c 'kubectl get nodes -o name | grep -q .'\n\
         kubectl wait --for=condition=Ready node --all --timeout=900s\n",
    );
    s.push_str(&mark(KUBEADM_MARKS[3]));
    let _ = write!(
        s,
        "wait_for 'the default service account' 300 kubectl get serviceaccount default\n\
         kubectl run bench-pause --image={pause} --image-pull-policy=Never --restart=Never \
         --overrides='{{\"apiVersion\": \"v1\", \"spec\": {{\"tolerations\": [{{\"operator\": \"Exists\"}}]}}}}'\n\
         wait_for 'the pause pod Running' 900 sh -c '[ \"$(kubectl get pod bench-pause -o jsonpath={{.status.phase}})\" = Running ]'\n",
        pause = quote(&r.pause_image),
    );
    s.push_str(&mark(KUBEADM_MARKS[4]));
    s
}

/// The by-hand provisioning of a base image from the payload disk.
#[derive(Debug, Clone)]
pub struct ProvisionReference {
    /// The payload's files and what becomes of each.
    pub items: Vec<PayloadItem>,
    /// The distro package's CNI plugin directory to link into `/opt/cni/bin`, when the build
    /// does that.
    pub cni_link_from: Option<String>,
    /// The node role's steps: name and script.
    pub role_steps: Vec<(String, String)>,
}

/// The root script of the by-hand provisioning: mount the payload, one `dpkg -i` of every deb,
/// copy binaries and files, extract archives, start containerd, import every image, then the
/// node role's commands, with a marker after each part (`role:NAME` after each role step).
pub fn provision_script(r: &ProvisionReference) -> String {
    let mnt = "/run/bench-payload";
    let at = |file: &str| quote(&format!("{mnt}/{file}"));
    let mut s = String::from("#!/bin/sh\nset -eu\nexport DEBIAN_FRONTEND=noninteractive\n");
    s.push_str(&mark("start"));
    let _ = write!(
        s,
        "udevadm settle --timeout=30 || true\nmkdir -p {mnt}\nmount -o ro,noload LABEL={PAYLOAD_LABEL} {mnt}\n"
    );
    s.push_str(&mark("mounted"));
    let debs: Vec<&PayloadItem> = r
        .items
        .iter()
        .filter(|i| matches!(i.install, Install::Package { .. }))
        .collect();
    if !debs.is_empty() {
        let files: Vec<String> = debs.iter().map(|i| at(&i.file)).collect();
        let _ = writeln!(
            s,
            "dpkg -i --force-confold --force-unsafe-io {}",
            files.join(" ")
        );
        for deb in debs
            .iter()
            .filter(|i| matches!(i.install, Install::Package { hold: true }))
        {
            let _ = writeln!(
                s,
                "apt-mark hold \"$(dpkg-deb -f {} Package)\"",
                at(&deb.file)
            );
        }
        s.push_str(&mark("debs"));
    }
    let mut images = Vec::new();
    for item in &r.items {
        match &item.install {
            Install::Copy { dest, mode } => {
                let _ = writeln!(
                    s,
                    "install -D -m {mode:04o} {} {}",
                    at(&item.file),
                    quote(dest)
                );
            }
            Install::Extract { dest } => {
                let _ = writeln!(
                    s,
                    "mkdir -p {d}\ntar -xzf {} -C {d} --no-same-owner",
                    at(&item.file),
                    d = quote(dest)
                );
            }
            Install::Image { .. } => images.push(at(&item.file)),
            Install::Package { .. } => {}
        }
    }
    s.push_str("systemctl daemon-reload\n");
    s.push_str(&mark("files"));
    s.push_str(WAIT_FOR);
    s.push_str("systemctl enable --now containerd\nwait_for containerd 120 ctr version\n");
    s.push_str(&mark("containerd"));
    for image in &images {
        let _ = writeln!(
            s,
            "ctr -n k8s.io images import {image} >/dev/null </dev/null"
        );
    }
    s.push_str(&mark("images"));
    if let Some(dir) = &r.cni_link_from {
        let _ = writeln!(
            s,
            "mkdir -p /opt/cni/bin\nfor p in {}/*; do ln -sfn \"$p\" /opt/cni/bin/; done",
            quote(dir)
        );
    }
    for (name, script) in &r.role_steps {
        let _ = writeln!(
            s,
            "/bin/sh -c {} </dev/null || {{ echo \"bench: node role step {} failed\" >&2; exit 1; }}",
            quote(script),
            name.replace(['"', '\\', '$', '`'], "_")
        );
        s.push_str(&mark(&format!("role:{name}")));
    }
    s.push_str(&mark("end"));
    s
}

/// The markers in a script's output: `(name, guest uptime seconds)`, in order.
pub fn markers(output: &str) -> Vec<(String, f64)> {
    output
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix(MARK)?.split_whitespace();
            let name = words.next()?;
            let secs = words.next()?.parse().ok()?;
            Some((name.to_owned(), secs))
        })
        .collect()
}

/// Seconds from marker `from` to marker `to` (their first occurrences).
pub fn between(markers: &[(String, f64)], from: &str, to: &str) -> Option<f64> {
    let at = |name: &str| markers.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
    Some(at(to)? - at(from)?)
}

/// Each marker with the seconds since the one before it.
pub fn segments(markers: &[(String, f64)]) -> Vec<(String, f64)> {
    markers
        .windows(2)
        .map(|w| (w[1].0.clone(), w[1].1 - w[0].1))
        .collect()
}
